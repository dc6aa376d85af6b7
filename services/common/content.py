"""The erasable content store: texts and their salts, keyed by commitment."""
from __future__ import annotations

from contextlib import contextmanager

import sqlalchemy as sa

from . import clock
from .envelope import commit_text
from .errors import DomainError, InvalidInput
from .tables import texts


def validate_text(text, field: str, *, min_len: int = 1, max_len: int = 5000, required: bool = True) -> str | None:
    if text is None and not required:
        return None
    if not isinstance(text, str):
        raise InvalidInput(f"{field} must be a string")
    text = text.strip()
    if len(text) < min_len:
        raise InvalidInput(f"{field} must not be empty" if min_len == 1 else f"{field} needs at least {min_len} characters")
    if len(text) > max_len:
        raise InvalidInput(f"{field} is too long ({len(text)} characters, at most {max_len})")
    return text


class ContentStore:
    def __init__(self, engine: sa.Engine):
        self.engine = engine

    def put(self, text: str, subject: str | None = None) -> str:
        """Store text, return its commitment. Call before saving the event that holds it."""
        commitment, salt = commit_text(text)
        with self.engine.begin() as conn:
            conn.execute(sa.insert(texts).values(commitment=commitment, salt=salt, body=text, subject=subject))
        return commitment

    def put_many(self, items) -> list[str]:
        """Store (text, subject) pairs in one transaction; their commitments, in order."""
        rows = []
        for text, subject in items:
            commitment, salt = commit_text(text)
            rows.append({"commitment": commitment, "salt": salt, "body": text, "subject": subject})
        if rows:
            with self.engine.begin() as conn:
                conn.execute(sa.insert(texts), rows)
        return [r["commitment"] for r in rows]

    @contextmanager
    def for_command(self, subject: str | None, **named: str | None):
        """The texts of one command, stored now; yields {name: commitment} (None for an absent
        text) for the events to carry. If the command is refused (a DomainError), the texts are
        erased again, so a refused command keeps nobody's words."""
        present = {name: text for name, text in named.items() if text is not None}
        stored = dict(zip(present, self.put_many((text, subject) for text in present.values())))
        try:
            yield {name: stored.get(name) for name in named}
        except DomainError:
            for commitment in stored.values():
                self.erase(commitment)
            raise

    def get(self, commitment: str | None) -> str | None:
        if not commitment:
            return None
        return self.get_many([commitment]).get(commitment)

    def get_many(self, commitments) -> dict[str, str | None]:
        wanted = [c for c in set(commitments) if c]
        if not wanted:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(texts.c.commitment, texts.c.body).where(texts.c.commitment.in_(wanted)))
            return {r.commitment: r.body for r in rows}

    def records(self, commitments) -> list[dict]:
        """Texts with salts, for an auditor's export; erased ones say so."""
        wanted = sorted({c for c in commitments if c})
        out = []
        with self.engine.connect() as conn:
            found = {r.commitment: r for r in conn.execute(sa.select(texts).where(texts.c.commitment.in_(wanted)))}
        for c in wanted:
            row = found.get(c)
            if row is None or row.erased_at:
                out.append({"kind": "text", "commitment": c, "erased": True})
            else:
                out.append({"kind": "text", "commitment": c, "salt": row.salt, "text": row.body})
        return out

    def erase_subject(self, subject: str) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(texts)
                .where(texts.c.subject == subject, texts.c.erased_at.is_(None))
                .values(body=None, salt=None, erased_at=clock.format(clock.now()))
            )
            return result.rowcount

    def erase(self, commitment: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(texts).where(texts.c.commitment == commitment).values(
                    body=None, salt=None, erased_at=clock.format(clock.now())
                )
            )
