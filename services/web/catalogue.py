"""The message catalogues: which message ids the pages use, and keeping both .po files complete.

    python -m services.web.catalogue check    # exit 1 and list what is missing
    python -m services.web.catalogue update [NAME]   # add new ids to NAME.po (default messages.po;
                                                     # en: the id itself; zh-CN: empty, to translate)

Ids come from `_()`/`gettext()` in the templates and the Python modules, and from the code tables
(filters.CODES, app.PROBLEM_MESSAGES) whose values are message ids. The unit test
tests/unit/test_web_catalogues.py runs `missing()` for both languages."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract
from babel.messages.pofile import read_po, write_po
from jinja2.ext import babel_extract

from .i18n import FOLDERS, LANGS, LOCALE_DIR

HERE = Path(__file__).parent
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2)}


def _python_ids(path: Path) -> set[str]:
    """`t("...")`, `_("...")` and the message-id constants of a module: every string literal assigned
    to a name in MESSAGE_TABLES or passed to Refused(...)/values["error"] is an id."""
    ids: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name in ("_", "t", "gettext", "Refused", "say"):
                for arg in node.args:
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and not arg.value.isdigit():
                        ids.add(arg.value)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            for target in node.targets:
                if isinstance(target, ast.Subscript) and getattr(target.slice, "value", None) == "error":
                    ids.add(node.value.value)
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "message" for t in node.targets) and \
                isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            ids.add(node.value.value)
        if isinstance(node, ast.keyword) and node.arg in ("message", "error") and \
                isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            ids.add(node.value.value)
    return ids


def used_ids() -> set[str]:
    from . import app, filters

    ids: set[str] = set(filters.CODES.values()) | set(app.PROBLEM_MESSAGES.values())
    ids.add("The platform refused this.")
    for template in sorted((HERE / "templates").glob("*.html")):
        with template.open("rb") as f:
            for _lineno, message, _comments, _context in extract(
                    babel_extract, f, keywords=KEYWORDS, options={"extensions": "jinja2.ext.i18n",
                                                                  "trim_blocks": "1", "lstrip_blocks": "1"}):
                for m in (message if isinstance(message, tuple) else (message,)):
                    if m:
                        ids.add(m)
    for module in sorted(HERE.glob("*.py")):
        ids |= _python_ids(module)
    return ids


def path_of(lang: str, name: str = "messages") -> Path:
    return LOCALE_DIR / FOLDERS[lang] / "LC_MESSAGES" / f"{name}.po"


def read(lang: str, name: str = "messages") -> Catalog:
    path = path_of(lang, name)
    if not path.exists():
        return Catalog(locale=FOLDERS[lang], project="consult web", fuzzy=False)
    with path.open("rb") as f:
        return read_po(f, locale=FOLDERS[lang])


def translated(lang: str) -> set[str]:
    """The ids with a translation in any of the language's .po files."""
    done: set[str] = set()
    for path in sorted(path_of(lang).parent.glob("*.po")):
        done |= {m.id for m in read(lang, path.stem) if m.id and isinstance(m.id, str) and m.string}
    return done


def missing(lang: str) -> list[str]:
    return sorted(used_ids() - translated(lang))


def update(name: str = "messages") -> None:
    ids = used_ids()
    for lang in LANGS:
        known: set[str] = set()
        for path in sorted(path_of(lang).parent.glob("*.po")):
            known |= {m.id for m in read(lang, path.stem) if m.id and isinstance(m.id, str)}
        cat = read(lang, name)
        for m in sorted(ids - known):
            cat.add(m, m if lang == "en" else "")
        path = path_of(lang, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            write_po(f, cat, width=0, omit_header=False, sort_output=True)


def main(argv: list[str]) -> int:
    if argv[:1] == ["update"]:
        update(*argv[1:2])
    gaps = {lang: missing(lang) for lang in LANGS}
    for lang, ids in gaps.items():
        for m in ids:
            print(f"{lang}: no translation for {m!r}")
    return 1 if any(gaps.values()) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
