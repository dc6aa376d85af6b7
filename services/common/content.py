"""The erasable content store: texts and their salts, keyed by commitment."""
from __future__ import annotations

import re
from contextlib import contextmanager

import sqlalchemy as sa

from . import clock
from .envelope import commit_text
from .errors import DomainError, InvalidInput
from .tables import texts

# NUL cannot be stored in PostgreSQL text, and an unpaired surrogate cannot be encoded at all: both
# would fail a command after part of it was done. The gateway refuses them too; this is for RPC callers.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def validate_text(text, field: str, *, min_len: int = 1, max_len: int = 5000, required: bool = True) -> str | None:
    if text is None and not required:
        return None
    if not isinstance(text, str):
        raise InvalidInput.coded("text.not_string", field=field)
    if _UNSTORABLE.search(text):
        raise InvalidInput.coded("text.unstorable", field=field)
    text = text.strip()
    if len(text) < min_len:
        raise (InvalidInput.coded("text.empty", field=field) if min_len == 1 else
               InvalidInput.coded("text.too_short", field=field, min=min_len))
    if len(text) > max_len:
        raise InvalidInput.coded("text.too_long", field=field, length=len(text), max=max_len)
    return text


class TextBatch:
    """Texts collected for `ContentStore.batch`: `put` answers the commitment at once."""

    def __init__(self):
        self.rows: list[dict] = []

    def put(self, text: str, subject: str | None = None) -> str:
        commitment, salt = commit_text(text)
        self.rows.append({"commitment": commitment, "salt": salt, "body": text, "subject": subject})
        return commitment


class ContentStore:
    def __init__(self, engine: sa.Engine):
        self.engine = engine

    def put(self, text: str, subject: str | None = None) -> str:
        """Store text, return its commitment. Call before saving the event that holds it."""
        return self.put_many([(text, subject)])[0]

    @contextmanager
    def batch(self):
        """Texts of one large command (a directory import: a name per new owner), stored together in
        one transaction when the block ends -- before the events that hold them are saved, as `put`
        is -- instead of a transaction each. If the block raises, none of them is stored."""
        batch = TextBatch()
        yield batch
        self._insert(batch.rows)

    def put_many(self, items) -> list[str]:
        """Store (text, subject) pairs in one transaction; their commitments, in order."""
        batch = TextBatch()
        commitments = [batch.put(text, subject) for text, subject in items]
        self._insert(batch.rows)
        return commitments

    def _insert(self, rows: list[dict]) -> None:
        if rows:
            with self.engine.begin() as conn:
                conn.execute(sa.insert(texts), rows)

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

    def count_subject(self, subject: str) -> int:
        """How many texts of this subject are held (not yet erased)."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(texts).where(
                texts.c.subject == subject, texts.c.erased_at.is_(None))).scalar()

    def of_subject(self, subject: str, commitments) -> list[str]:
        """Which of `commitments` are texts of this subject (erased or not: the row keeps whose it was)."""
        wanted = sorted({c for c in commitments if c})
        if not wanted:
            return []
        with self.engine.connect() as conn:
            return [r.commitment for r in conn.execute(sa.select(texts.c.commitment).where(
                texts.c.subject == subject, texts.c.commitment.in_(wanted)))]

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


def gather_texts(content: ContentStore, commitments, sources, read_texts) -> dict:
    """Readable texts of commitments, ours first, then each other stage in `sources` asked in turn
    through `read_texts(source, commitments)` (its `read_texts` RPC) for the rest.

    Why at read time and not copied when the event arrives: a text stays in the store of the stage
    that took it down, so erasing a person there (PersonTextsErased) removes it from every read at
    once; a copy here would outlive it. Commitments are salted hashes, so each names one text
    wherever it is stored. Erased and unknown ones are absent (a view shows null)."""
    wanted = {c for c in commitments if c}
    texts = {c: v for c, v in content.get_many(wanted).items() if v is not None}
    for source in sources:
        missing = sorted(wanted - texts.keys())
        if not missing or read_texts is None:
            break
        for start in range(0, len(missing), 1000):
            texts.update(read_texts(source, missing[start:start + 1000]) or {})
    return texts
