"""The pages' languages: zh-CN (default) and en, from gettext catalogues kept as .po files in the
repository and read at start (no build step). A language's catalogue is every .po file in its
LC_MESSAGES folder (messages.po, and one per group of pages, e.g. directory.po), so pages added side by
side do not edit one file. A missing message falls back to its id, but the unit
test tests/unit/test_web_catalogues.py keeps both catalogues complete."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).parent / "locale"
LANGS = ("zh-CN", "en")
DEFAULT = "zh-CN"
FOLDERS = {"zh-CN": "zh_CN", "en": "en"}


@lru_cache(maxsize=None)
def catalogue(lang: str) -> dict[str, str]:
    messages: dict[str, str] = {}
    for path in sorted((LOCALE_DIR / FOLDERS[lang] / "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as f:
            cat = read_po(f, locale=FOLDERS[lang])
        messages.update({m.id: m.string for m in cat if m.id and isinstance(m.id, str) and m.string})
    return messages


class Translations:
    """gettext-like, for Jinja2's i18n extension (newstyle: %(name)s placeholders)."""

    def __init__(self, lang: str):
        self.lang = lang
        self.messages = catalogue(lang)

    def gettext(self, message: str) -> str:
        return self.messages.get(message) or message

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self.gettext(singular if n == 1 else plural)


def negotiate(cookie: str | None, accept_language: str | None) -> str:
    """The cookie's choice (the switch remembers it), else the browser's Accept-Language, else zh-CN."""
    if cookie in LANGS:
        return cookie
    best, best_q = None, -1.0
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip().lower()
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        lang = "zh-CN" if tag.startswith("zh") else "en" if tag.startswith("en") else None
        if lang and q > best_q:
            best, best_q = lang, q
    return best or DEFAULT
