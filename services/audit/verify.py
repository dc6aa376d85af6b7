"""Offline verification of an audit export, trusting only the file, the public key(s) and, if the
auditor has one, a checkpoint seen earlier (say, on the notice board).

Export: JSON Lines, UTF-8, "\\n" separated. An entry line is the canonical envelope exactly as it
was hashed (the leaf is the line's bytes); entries come in log order. Text lines carry each free
text with its salt (or say it was erased); checkpoint and key_rotation lines may come anywhere.

What is checked: every entry line is hashed as it is and the tree rebuilt; every checkpoint is
well formed, signed by a trusted key (learnt through rotations where needed) and names the root
of the entries up to its size; the trusted checkpoint matches too (else the log forked or was
rewritten); entries are canonical JSON, of the exported community, in order per source; every
text matches its commitment and every commitment has a text line (present or erased). The
export's signed header fixes how many entries it holds (none appended, none cut off), and every
entry must lie under a checkpoint that verified: an entry no signed checkpoint covers is a
failure, unless the caller accepts an unsigned tail, which is then counted as unvouched.

Speed: a line is hashed once and never re-serialised for the tree. Parsing and re-serialising
every envelope to prove it canonical would cost many times the hashing, so a line whose
structure (everything outside its strings, with digits masked, plus its keys) was already proven
canonical on an earlier line, and which has no escapes, control characters, negative numbers or
leading zeros, is known canonical without parsing; its few needed fields are read at the
positions proven on that earlier line. Other lines take the full path. Large files are split
at line boundaries over worker processes; the tree is built level by level as results arrive.
"""
from __future__ import annotations

import bisect
import hashlib
import json
import operator
import os
import sys
from array import array
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from services.common.canonical import canonical_text

from .checkpoints import (BUNDLE_EXTENT, CHECKPOINT, EXPORT_HEADER, KEY_ROTATION, PLATFORM, PRODUCTION, TRAINING,
                          SPAN, CheckpointError, KeyRing, count_of, parse_time, verify_platform_inclusion,
                          verify_span_inclusion)
from .merkle import (EMPTY_ROOT, MemoryNodeStore, leaf_hash, root_at, verify_consistency,
                     verify_inclusion)

SCHEMA = "consult.event/1"
REQUIRED_FIELDS = ("schema", "id", "source", "position", "type", "community", "aggregate",
                   "occurred_at", "actor", "data")
TEXT = "text"
ENTRY = "entry"
HEADER = "header"  # the export's signed header
EXTENT = "extent"  # a bundle's signed extent
_AUX_KINDS = frozenset({TEXT, CHECKPOINT, KEY_ROTATION, EXPORT_HEADER})
_MAX_PROBLEMS = 1000  # kept per scan; the total is still counted
_PIECE = 24 << 20  # bytes of export per worker task

_Q = b'"'
_LEAF = b"\x00"
_UNSAFE = bytes(range(32)) + b"\\"  # control characters and the backslash: lines with them take the full path
_ZEROS = bytes.maketrans(b"123456789", b"000000000")  # digits masked in a shape
# Lines that plainly are texts, checkpoints or rotations need not try the entry fast path.
_NOT_ENTRIES = (b'{"kind"', b'{"commitment"', b'{"community"', b'{"erased"', b'{"key_id"', b'{"new_key_id"')


@dataclass(frozen=True)
class Problem:
    kind: str  # "entry" | "checkpoint" | "text" | "key_rotation" | "header" | "extent"
    message: str
    line: int | None = None  # 1-based line of the export; 0 is the trusted checkpoint
    index: int | None = None  # the entry (log index) implicated, when one is
    range: tuple[int, int] | None = None  # entries [a, b) among which an undetected change lies


@dataclass
class Report:
    ok: bool
    first_error: Problem | None
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    erased: list[str] = field(default_factory=list)  # commitments whose text was erased
    community: str | None = None
    size: int = 0
    root: str = EMPTY_ROOT.hex()
    checkpoint: dict | None = None  # the largest checkpoint that verified
    key_ids: list[str] = field(default_factory=list)
    workers: int = 1  # processes that read the export
    covered: int = 0  # entries [0, covered) lie under a checkpoint that verified (or the trusted one)
    unvouched: int = 0  # entries accepted, at the caller's request, without a checkpoint over them
    extent: dict | None = None  # the signed export header or bundle extent, if it verified
    mode: str = PRODUCTION  # the kind of deployment whose record was verified (training only when asked)
    spanned: dict | None = None  # with cells: the checkpoint of the platform log spanning them that verified

    def summary(self) -> str:
        ok = ("OK: a TRAINING record — made by a training deployment for practice, it is not a production record "
              "and decides nothing" if self.mode == TRAINING else "OK")
        head = ok if self.ok else f"FAILED: {self.first_error.kind}" + (
            f" line {self.first_error.line}" if self.first_error.line is not None else "") + (
            f" entry {self.first_error.index}" if self.first_error.index is not None else "") + (
            f": {self.first_error.message}")
        counts = ", ".join(f"{k} {v}" for k, v in self.counts.items())
        unvouched = (f"\n{entries_text(self.unvouched)} could not be vouched for: no signed checkpoint covers them"
                     if self.unvouched else "")
        spanned = (f"\nits cell's head is in the platform log spanning the cells: {self.spanned['size']} cell heads, "
                   f"root {self.spanned['root']}, signed {self.spanned['time']}" if self.spanned else "")
        return f"{head}\n{counts}{unvouched}{spanned}" + "".join(f"\nwarning: {w}" for w in self.warnings)


def entries_text(k: int) -> str:
    """'1 entry', '2 entries': how many entries, in words for the reader."""
    return f"{k} entry" if k == 1 else f"{k} entries"


# --- one line at a time, the full way ------------------------------------------------------------

def _parse(raw: bytes) -> tuple[str, Any, str | None]:
    """(kind, parsed object, problem). Anything not a text/checkpoint/rotation line is an entry."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return ENTRY, None, "not valid UTF-8"
    try:
        obj = json.loads(text)
    except ValueError as exc:
        return ENTRY, None, f"not JSON ({getattr(exc, 'msg', exc)} at column {getattr(exc, 'colno', '?')})"
    if isinstance(obj, dict) and "schema" not in obj and obj.get("kind") in _AUX_KINDS:
        return obj["kind"], obj, None
    try:
        canon = canonical_text(obj)
    except ValueError:
        canon = None
    if canon != text:
        return ENTRY, obj, "not canonical JSON (sorted keys, no whitespace, minimal escapes): re-serialised it differs"
    return ENTRY, obj, None


def _commitments(data: Any) -> tuple[list[str], str | None]:
    """Values of keys ending in '_commitment' anywhere in data: a string, or lists of them."""
    found: list[str] = []
    bad: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if isinstance(k, str) and k.endswith("_commitment"):
                    take(v, k)
                elif isinstance(v, (dict, list)):
                    walk(v)
        elif isinstance(value, list):
            for v in value:
                if isinstance(v, (dict, list)):
                    walk(v)

    def take(value: Any, key: str) -> None:
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, list):
            for v in value:
                take(v, key)
        elif isinstance(value, dict):
            walk(value)
        elif value is not None:
            bad.append(key)

    walk(data)
    return found, (f"{bad[0]} holds {type(bad[0]).__name__} where a commitment belongs" if bad else None)


def commitments_of(data: Any) -> list[str]:
    """The text commitments an envelope's data holds (every value of a key ending in
    '_commitment', at any depth): the texts an export or a bundle must carry for it."""
    return _commitments(data)[0]


def _entry_problem(obj: Any) -> str | None:
    if not isinstance(obj, dict):
        return "an entry must be a JSON object"
    missing = [f for f in REQUIRED_FIELDS if f not in obj]
    if missing:
        return f"not an envelope: missing {', '.join(missing)}"
    if obj["schema"] != SCHEMA:
        return f"unknown envelope schema {obj['schema']!r}"
    if not isinstance(obj["community"], str) or not isinstance(obj["source"], str):
        return "community and source must be strings"
    pos = obj["position"]
    if not isinstance(pos, int) or isinstance(pos, bool) or pos < 0:
        return "position must be a non-negative integer"
    agg = obj["aggregate"]
    if not isinstance(agg, dict) or not {"type", "id", "version"} <= set(agg):
        return "aggregate must hold type, id and version"
    if not isinstance(obj["data"], dict):
        return "data must be an object"
    return None


def _has_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_float(v) for v in value)
    return False


def _getter(indices: list[int]):
    if len(indices) == 1:
        i = indices[0]
        return lambda parts: (parts[i],)
    return operator.itemgetter(*indices)


def _derive_plan(parts: list[bytes], obj: dict, commitments: list[str]):
    """Where, in a line split at its quotes, the fields the verifier needs sit; proven on `obj`.

    `parts` is a canonical entry line without escapes split at its quotes, so the even parts are
    everything outside strings. Returns (keys getter, joined keys, plan) or None. Which parts are
    keys follows from the shape alone, so one getter serves every plan of a shape. A line of the
    same shape, with the same keys, no escapes and no control characters differs from this one
    only in the contents of string values and in the digits of integers of the same lengths; it
    is canonical if no integer of two digits or more starts with 0 (the plan lists where each
    starts), and its fields sit where they sit here.
    """
    n = len(parts)
    if n < 3 or _has_float(obj) or any(b"-" in parts[i] for i in range(0, n, 2)):
        return None  # floats and negative numbers always take the full path
    is_key = [i % 2 == 1 and i + 1 < n and parts[i + 1][:1] == b":" for i in range(n)]
    # frames: [kind, current key, inside data, array of commitments]
    stack: list[list] = []
    top_values: dict[bytes, int] = {}
    position_at = None
    commit_at: list[int] = []
    for i, seg in enumerate(parts):
        if i % 2:
            if not stack:
                return None
            frame = stack[-1]
            if is_key[i]:
                frame[1] = seg
                if len(stack) == 1 and seg == b"position":
                    position_at = i + 1
            else:
                if len(stack) == 1:
                    top_values[frame[1]] = i
                elif frame[2] and ((frame[0] == "o" and frame[1].endswith(b"_commitment"))
                                   or (frame[0] == "a" and frame[3])):
                    commit_at.append(i)
            continue
        for ch in seg:
            if ch in (0x7B, 0x5B):  # { [
                parent = stack[-1] if stack else None
                in_data = bool(parent and (parent[2] or (len(stack) == 1 and parent[1] == b"data")))
                commit_list = bool(ch == 0x5B and parent and in_data and (
                    (parent[0] == "o" and parent[1].endswith(b"_commitment")) or (parent[0] == "a" and parent[3])))
                stack.append(["o" if ch == 0x7B else "a", b"", in_data, commit_list])
            elif ch in (0x7D, 0x5D):  # } ]
                if not stack:
                    return None
                stack.pop()
    if stack or position_at is None or not {b"schema", b"community", b"source"} <= set(top_values):
        return None
    seg = parts[position_at]
    if len(seg) < 3 or seg[:1] != b":" or seg[-1:] not in (b",", b"}") or not seg[1:-1].isdigit():
        return None
    src_at, schema_at, community_at = top_values[b"source"], top_values[b"schema"], top_values[b"community"]
    keys_getter = _getter([i for i in range(n) if is_key[i]])
    leading_digits = []
    for i in range(0, n, 2):
        run = 0
        for j, ch in enumerate(parts[i] + b" "):
            if 0x30 <= ch <= 0x39:
                run += 1
            else:
                if run >= 2:
                    leading_digits.append((i, j - run))
                run = 0
    commit_getter = _getter(commit_at) if commit_at else None
    # prove the plan on the line it was made from
    if (parts[schema_at].decode() != obj["schema"] or parts[community_at].decode() != obj["community"]
            or parts[src_at].decode() != obj["source"] or int(seg[1:-1]) != obj["position"]
            or [c.decode() for c in (commit_getter(parts) if commit_getter else ())] != commitments):
        return None
    return keys_getter, _Q.join(keys_getter(parts)), (
        src_at, position_at, commit_getter, schema_at, community_at, parts[community_at], tuple(leading_digits))


# --- a run of lines: what one worker returns ------------------------------------------------------

class _Scan:
    """Everything the verifier learns from a run of consecutive lines, with local numbering."""

    def __init__(self) -> None:
        self.lines = 0
        self.entries = 0
        self.leaves = bytearray()  # 32 bytes per entry
        self.entry_lines = array("q")  # local line of each entry
        self.problems: list[tuple] = []  # (kind, local line, local entry index or None, message)
        self.problem_count = 0
        self.first_pos: dict[bytes, tuple[int, int, int]] = {}  # source -> (position, entry, line)
        self.last_pos: dict[bytes, int] = {}
        self.communities: dict[str, tuple[int, int]] = {}  # community -> first (entry, line)
        self.refs: dict[bytes, tuple[int, int]] = {}  # commitment -> first (entry, line) using it
        self.texts: dict[bytes, int] = {}  # commitment -> 2 text ok, 1 erased, 0 bad
        self.text_lines = 0
        self.aux: list[tuple[int, dict]] = []  # checkpoints and key rotations, (line, object)

    def problem(self, kind: str, line: int, index: int | None, message: str) -> None:
        self.problem_count += 1
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append((kind, line, index, message))


def _scan(lines: Iterable[bytes], expected: str | None, utf8: bool = False) -> _Scan:
    """`utf8`: the caller already knows every line is valid UTF-8."""
    s = _Scan()
    sha, leaf_prefix, q, schema = hashlib.sha256, _LEAF, _Q, SCHEMA.encode()
    zeros, unsafe, not_entries = _ZEROS, _UNSAFE, _NOT_ENTRIES
    hasher = sha(_LEAF)  # copying a primed hash is cheaper than starting one
    leaves, entry_lines = s.leaves, s.entry_lines
    first_pos, last_pos, refs = s.first_pos, s.last_pos, s.refs
    # shape -> [keys getter, keys of the first plan, first plan, {other keys: plan}]
    shapes: dict[bytes, list] = {}
    n = 0
    lineno = 0
    for raw in lines:
        lineno += 1
        plan = None
        parts = None
        if len(raw.translate(None, unsafe)) == len(raw) and (utf8 or raw.isascii() or _utf8(raw)):
            parts = raw.split(q)
            if raw.startswith(not_entries):
                known = None
                if len(parts) == 17 and _fast_text(s, parts, lineno):
                    continue
            else:
                known = shapes.get(q.join(parts[::2]).translate(zeros))
            if known is not None:
                keys = q.join(known[0](parts))
                plan = known[2] if keys == known[1] else known[3].get(keys)
                if plan is not None:
                    if parts[plan[3]] != schema or parts[plan[4]] != plan[5]:
                        plan = None  # another schema or community: the full path says what is wrong
                    else:
                        for i, j in plan[6]:
                            if parts[i][j] == 48:  # a leading zero: not canonical
                                plan = None
                                break
        if plan is not None:
            # the fast path: canonical by construction, fields read where the plan says
            src = parts[plan[0]]
            pos = int(parts[plan[1]][1:-1])
            last = last_pos.get(src)
            if last is None:
                first_pos[src] = (pos, n, lineno)
            elif pos <= last:
                s.problem(ENTRY, lineno, n, f"source {src.decode()!r} position {pos} comes after position "
                          f"{last}: entries are out of order, replayed or inserted")
            last_pos[src] = pos
            if plan[2] is not None:
                for c in plan[2](parts):
                    if c not in refs:
                        refs[c] = (n, lineno)
            h = hasher.copy()
            h.update(raw)
            leaves += h.digest()
            entry_lines.append(lineno)
            n += 1
            continue

        kind, obj, problem = _parse(raw)
        if kind == ENTRY:
            leaves += sha(leaf_prefix + raw).digest()
            entry_lines.append(lineno)
            if problem is None:
                problem = _entry_problem(obj)
            if problem is None:
                commitments, problem = _commitments(obj["data"])
            if problem is not None:
                s.problem(ENTRY, lineno, n, problem)
            else:
                community, src, pos = obj["community"], obj["source"].encode("utf-8"), obj["position"]
                if expected is None:
                    expected = community
                if community not in s.communities:
                    s.communities[community] = (n, lineno)
                last = last_pos.get(src)
                if last is None:
                    first_pos[src] = (pos, n, lineno)
                elif pos <= last:
                    s.problem(ENTRY, lineno, n, f"source {obj['source']!r} position {pos} comes after "
                              f"position {last}: entries are out of order, replayed or inserted")
                last_pos[src] = pos
                for c in commitments:
                    c = c.encode("utf-8")
                    if c not in refs:
                        refs[c] = (n, lineno)
                if community == expected and parts is not None:
                    made = _derive_plan(parts, obj, commitments)
                    if made is not None:
                        shape = q.join(parts[::2]).translate(zeros)
                        if shape not in shapes:
                            shapes[shape] = [made[0], made[1], made[2], {}]
                        else:
                            shapes[shape][3][made[1]] = made[2]
            n += 1
        elif kind == TEXT:
            s.text_lines += 1
            _check_text(s, obj, lineno)
        else:
            s.aux.append((lineno, obj))
    s.lines = lineno
    s.entries = n
    return s


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


_TEXT_LAYOUTS = frozenset({b'{":",":",":",":"}', b'{": ", ": ", ": ", ": "}'})  # compact, json.dumps default


def _fast_text(s: _Scan, parts: list[bytes], lineno: int) -> bool:
    """A text line with four string fields and no escapes, checked without parsing: the bytes
    between its quotes are the UTF-8 of its strings. Returns False to leave it to the full path."""
    if _Q.join(parts[0::2]) not in _TEXT_LAYOUTS:
        return False
    fields = {parts[1]: parts[3], parts[5]: parts[7], parts[9]: parts[11], parts[13]: parts[15]}
    if fields.get(b"kind") != b"text" or len(fields) != 4:
        return False
    commitment, salt, text = fields.get(b"commitment"), fields.get(b"salt"), fields.get(b"text")
    if commitment is None or salt is None or text is None:
        return False
    s.text_lines += 1
    try:
        ok = hashlib.sha256(bytes.fromhex(salt.decode("latin-1")) + text).hexdigest().encode() == commitment
    except ValueError:
        ok = False
    if ok:
        s.texts[commitment] = 2
    else:
        s.problem(TEXT, lineno, None, f"text does not match its commitment {commitment.decode('utf-8', 'replace')}: "
                                      "the text or its salt was altered")
        s.texts[commitment] = max(s.texts.get(commitment, 0), 0)
    return True


def _check_text(s: _Scan, obj: dict, lineno: int) -> None:
    commitment = obj.get("commitment")
    if not isinstance(commitment, str):
        s.problem(TEXT, lineno, None, "text line without a commitment")
        return
    key = commitment.encode("utf-8")
    if obj.get("erased") is True:
        if set(obj) - {"kind", "commitment", "erased"}:
            s.problem(TEXT, lineno, None, f"erased text {commitment} still carries {sorted(set(obj) - {'kind', 'commitment', 'erased'})}")
            s.texts[key] = max(s.texts.get(key, 0), 0)
            return
        s.texts[key] = max(s.texts.get(key, 0), 1)
        return
    salt, text = obj.get("salt"), obj.get("text")
    try:
        ok = (isinstance(salt, str) and isinstance(text, str)
              and hashlib.sha256(bytes.fromhex(salt) + text.encode("utf-8")).hexdigest() == commitment)
    except (ValueError, UnicodeEncodeError):
        ok = False
    if ok:
        s.texts[key] = 2
    else:
        s.problem(TEXT, lineno, None, f"text does not match its commitment {commitment}: the text or its salt was altered")
        s.texts[key] = max(s.texts.get(key, 0), 0)


# --- reading the export ---------------------------------------------------------------------------

def _lines_of(source: Iterable[bytes | str]) -> Iterator[bytes]:
    for line in source:
        if isinstance(line, str):
            line = line.encode("utf-8")
        if line.endswith(b"\n"):
            line = line[:-1]
        yield line


def _scan_range(path: str, start: int, end: int, expected: str | None) -> _Scan:
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read(end - start)
    utf8 = data.isascii() or _utf8(data)
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the newline that ends the last line
    del data
    return _scan(lines, expected, utf8)


def _boundaries(path: str, size: int, pieces: int) -> list[int]:
    cuts = [0]
    with open(path, "rb") as f:
        for k in range(1, pieces):
            f.seek(size * k // pieces)
            f.readline()
            cut = f.tell()
            if cuts[-1] < cut < size:
                cuts.append(cut)
    cuts.append(size)
    return cuts


def _peek_community(path: str, limit: int = 200) -> str | None:
    with open(path, "rb") as f:
        for _, raw in zip(range(limit), f):
            kind, obj, problem = _parse(raw.rstrip(b"\n"))
            if kind == ENTRY and problem is None and isinstance(obj, dict) and isinstance(obj.get("community"), str):
                return obj["community"]
    return None


def _can_fork() -> bool:
    """Worker processes are forked (no re-import of the caller's main module, no start-up cost),
    which is safe only while this process runs no other thread."""
    import multiprocessing
    import threading

    if "fork" not in multiprocessing.get_all_start_methods() or threading.active_count() > 1:
        return False
    patcher = sys.modules.get("eventlet.patcher")
    return not (patcher is not None and patcher.is_monkey_patched("thread"))


def _scans(source: Any, expected: str | None, workers: int | None, used: list[int]) -> Iterator[_Scan]:
    used.append(1)
    if not isinstance(source, (str, os.PathLike)):
        yield _scan(_lines_of(source), expected)
        return
    path = os.fspath(source)
    size = os.path.getsize(path)
    workers = workers or os.cpu_count() or 1
    piece = _PIECE
    if workers <= 1 or size < 2 * piece or not _can_fork():
        yield _scan_range(path, 0, size, expected)
        return
    if expected is None:
        expected = _peek_community(path)
    cuts = _boundaries(path, size, max(workers * 3, -(-size // piece)))
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    used[0] = workers
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
        n = len(cuts) - 1
        yield from pool.map(_scan_range, [path] * n, cuts[:-1], cuts[1:], [expected] * n)


# --- putting the runs together ---------------------------------------------------------------------

class _Export:
    def __init__(self) -> None:
        self.store = MemoryNodeStore()
        self.lines = 0
        self.entries = 0
        self.problems: list[Problem] = []
        self.unlisted = 0  # problems beyond the per-scan cap
        self.chunks: list[tuple[int, int, array]] = []  # (first entry, first line - 1, entry lines)
        self.last_pos: dict[bytes, int] = {}
        self.communities: dict[str, tuple[int, int]] = {}
        self.refs: dict[bytes, tuple[int, int]] = {}
        self.texts: dict[bytes, int] = {}
        self.text_lines = 0
        self.aux: list[tuple[int, dict]] = []

    def add(self, s: _Scan) -> None:
        e0, l0 = self.entries, self.lines
        self.store.append_leaf_hashes(s.leaves)
        self.chunks.append((e0, l0, s.entry_lines))
        for kind, line, index, message in s.problems:
            self.problems.append(Problem(kind, message, line + l0, None if index is None else index + e0))
        self.unlisted += s.problem_count - len(s.problems)
        for src, (pos, index, line) in s.first_pos.items():
            last = self.last_pos.get(src)
            if last is not None and pos <= last:
                self.problems.append(Problem(
                    ENTRY, f"source {src.decode()!r} position {pos} comes after position {last}: "
                    "entries are out of order, replayed or inserted", line + l0, index + e0))
        self.last_pos.update(s.last_pos)
        for c, (index, line) in s.communities.items():
            self.communities.setdefault(c, (index + e0, line + l0))
        refs = self.refs
        for c, (index, line) in s.refs.items():
            if c not in refs:
                refs[c] = (index + e0, line + l0)
        for c, state in s.texts.items():
            self.texts[c] = max(self.texts.get(c, 0), state)
        self.text_lines += s.text_lines
        self.aux.extend((line + l0, obj) for line, obj in s.aux)
        self.entries += s.entries
        self.lines += s.lines

    def line_of(self, index: int) -> int | None:
        k = bisect.bisect_right([c[0] for c in self.chunks], index) - 1
        if k < 0 or index >= self.entries:
            return None
        e0, l0, lines = self.chunks[k]
        return lines[index - e0] + l0


def _hex_root(value: Any) -> bytes | None:
    try:
        root = bytes.fromhex(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return root if root is not None and len(root) == 32 else None


def _learn_rotations(ring: KeyRing, rotations: list[tuple[int | None, dict]], problems: list[Problem],
                     warnings: list[str]) -> int:
    """Learn every rotation reachable from the trusted keys, in as many rounds as chains need."""
    pending, learnt = list(rotations), 0
    while pending:
        rest = []
        for line, stmt in pending:
            old = stmt.get("old_key_id") if isinstance(stmt, dict) else None
            if old in ring:
                try:
                    ring.learn(stmt)
                    learnt += 1
                except CheckpointError as exc:
                    problems.append(Problem(KEY_ROTATION, str(exc), line))
            else:
                rest.append((line, stmt))
        if len(rest) == len(pending):
            for line, stmt in rest:
                where = f" (line {line})" if line is not None else ""
                warnings.append(f"key rotation{where} from key {stmt.get('old_key_id') if isinstance(stmt, dict) else '?'}, "
                                "which is not trusted, was ignored")
            break
        pending = rest
    return learnt


def verify_export(lines: Any, public_keys: Iterable[Any], trusted_checkpoint: dict | None = None, *,
                  community: str | None = None, workers: int | None = None,
                  allow_unsigned_tail: bool = False, mode: str = PRODUCTION) -> Report:
    """Verify an export given as a path (str or PathLike; large files use worker processes) or as
    any iterable of lines (bytes or str, with or without their trailing newline).

    An entry that no verified checkpoint covers fails the export, unless `allow_unsigned_tail`:
    then the entries after the last covered one, up to what the signed header claims, are
    accepted and counted in `Report.unvouched`. `mode`: the kind of record to verify; a training
    deployment's export verifies only with `mode="training"` (and never as a production one)."""
    if trusted_checkpoint is not None and community is None and isinstance(trusted_checkpoint.get("community"), str):
        community = trusted_checkpoint["community"]
    ex, used = _Export(), []
    for scan in _scans(lines, community, workers, used):
        ex.add(scan)
    report = _finish(ex, KeyRing(public_keys, mode), trusted_checkpoint, community, allow_unsigned_tail)
    report.workers = used[0]
    return report


def _header(ex: _Export, ring: KeyRing, problems: list[Problem]) -> tuple[int | None, dict | None]:
    """(line, statement) of the export's one signed header, if it verifies; problems otherwise."""
    headers = [(line, obj) for line, obj in ex.aux if obj.get("kind") == EXPORT_HEADER]
    if not headers:
        problems.append(Problem(HEADER, "the export has no signed header: nothing vouches for how many entries it "
                                        "holds, so entries appended to it or cut off its end would go unnoticed"))
        return None, None
    for line, _ in headers[1:]:
        problems.append(Problem(HEADER, f"a second export header (the first is on line {headers[0][0]}): an export "
                                        "has exactly one", line))
    line, header = headers[0]
    try:
        ring.check(header, EXPORT_HEADER)
    except CheckpointError as exc:
        problems.append(Problem(HEADER, str(exc), line))
        return None, None
    return line, header


def _extent(ex: _Export, n: int, header_line: int | None, header: dict | None, checkpoint_sizes: set[int],
            covered: int, problems: list[Problem]) -> int:
    """Hold the export to what its signed header claims; returns how many entries it vouches
    the export holds (the entries beyond it were appended and never count).

    When every entry the header says a checkpoint covers is vouched for, a difference in number
    is itself the finding: entries appended (named from the first) or cut off the end (named on
    the header's line). When something inside already failed, it is only a consequence (an entry
    inserted or deleted in the middle changes the number too) and sorts last."""
    if header is None:
        return n
    claimed = header["size"]
    clean = covered >= min(n, header["covered"])
    if n > claimed:
        problems.append(Problem(ENTRY, f"the file holds {n} entries, its signed header (line {header_line}) "
                                       f"claims {claimed}: entries [{claimed}, {n}), from line "
                                       f"{ex.line_of(claimed)}, were added after the export was made",
                                ex.line_of(claimed) if clean else None, claimed, range=(claimed, n)))
    elif n < claimed:
        problems.append(Problem(HEADER, f"the export's signed header (line {header_line}) claims {claimed} entries "
                                        f"but the file holds {n}: entries were cut off or deleted",
                                header_line if clean else None, range=(n, claimed)))
    made_with = header["covered"]
    if made_with and made_with <= n and made_with > covered and made_with not in checkpoint_sizes:
        problems.append(Problem(CHECKPOINT, f"the export was made with a signed checkpoint of {made_with} entries "
                                            f"(its header on line {header_line} says so), which the file no longer "
                                            "carries: the checkpoint was removed", header_line))
    return min(n, claimed)


def _finish(ex: _Export, ring: KeyRing, trusted: dict | None, community: str | None,
            allow_unsigned_tail: bool = False) -> Report:
    problems, warnings = ex.problems, []
    n = ex.entries
    checkpoints = [(line, obj) for line, obj in ex.aux if obj.get("kind") == CHECKPOINT]
    rotations = [(line, obj) for line, obj in ex.aux if obj.get("kind") == KEY_ROTATION]

    learnt = _learn_rotations(ring, rotations, problems, warnings)
    header_line, header = _header(ex, ring, problems)

    if community is None:  # the export's community: as the first validly signed checkpoint says
        community = next((obj["community"] for _, obj in checkpoints if ring.verifies(obj)), None)
    if community is None and header is not None:  # or its signed header
        community = header["community"]
    if community is None and ex.communities:
        community = min(ex.communities.items(), key=lambda kv: kv[1][0])[0]
    for c, (index, line) in ex.communities.items():
        if c != community:
            problems.append(Problem(ENTRY, f"entry {index} belongs to community {c!r}, not to the exported "
                                           f"community {community!r}", line, index))

    for c, (index, line) in ex.refs.items():
        if c not in ex.texts:
            problems.append(Problem(TEXT, f"entry {index} refers to text {c.decode(errors='replace')}, but the "
                                          "export has no line for it (neither the text nor its erasure)", line, index))
    erased = sorted(c.decode(errors="replace") for c, state in ex.texts.items() if state == 1)

    # checkpoints: signature, community, size, root
    good_sizes = {0}
    verified: list[tuple[int, dict]] = []
    mismatched: list[tuple[int, dict]] = []
    signed_roots: dict[int, set[str]] = {}
    for line, c in checkpoints:
        try:
            ring.check(c)
        except CheckpointError as exc:
            problems.append(Problem(CHECKPOINT, str(exc), line))
            continue
        signed_roots.setdefault(c["size"], set()).add(c["root"])
        if c["community"] != community:
            problems.append(Problem(CHECKPOINT, f"checkpoint of community {c['community']!r} in the export of "
                                                f"{community!r}", line))
            continue
        if c["size"] > n:
            problems.append(Problem(CHECKPOINT, f"checkpoint covers {c['size']} entries but the export holds "
                                                f"only {n}: entries were removed", line, range=(n, c["size"])))
            continue
        if root_at(c["size"], ex.store).hex() == c["root"]:
            good_sizes.add(c["size"])
            verified.append((line, c))
        else:
            mismatched.append((line, c))

    trusted_size = None
    if trusted is not None:
        size, root = trusted.get("size"), _hex_root(trusted.get("root"))
        if not isinstance(size, int) or isinstance(size, bool) or size < 0 or root is None:
            problems.append(Problem(CHECKPOINT, "the trusted checkpoint needs an integer size and a hex root", 0))
        elif trusted.get("community") not in (None, community):
            problems.append(Problem(CHECKPOINT, f"the trusted checkpoint is of community {trusted.get('community')!r}, "
                                                f"the export of {community!r}", 0))
        elif size > n:
            problems.append(Problem(CHECKPOINT, f"the export holds {n} entries but the trusted checkpoint "
                                                f"already had {size}: the log was truncated or rolled back",
                                    0, range=(n, size)))
        elif root_at(size, ex.store) != root:
            other = signed_roots.get(size, set()) - {root.hex()}
            evidence = (f"; the export carries a checkpoint signed for the same size with root {sorted(other)[0]}, "
                        "so the log signed two histories (split view)") if other else ""
            if size == 1:
                problems.append(Problem(ENTRY, "entry 0 differs from the trusted checkpoint's history: "
                                               "the log forked or was rewritten" + evidence, ex.line_of(0), 0))
            else:
                problems.append(Problem(CHECKPOINT, f"fork: the exported history up to {size} entries does not have "
                                                    f"the trusted checkpoint's root; it diverges among entries "
                                                    f"[0, {size})" + evidence, 0, range=(0, size)))
        else:
            trusted_size = size
            good_sizes.add(size)

    good = sorted(good_sizes)
    for line, c in mismatched:
        hi = c["size"]
        lo = good[bisect.bisect_left(good, hi) - 1]
        other = signed_roots.get(hi, set()) - {c["root"]}
        evidence = " Another checkpoint was signed for the same size with another root: the log signed two histories." if other else ""
        if hi - lo == 1:
            problems.append(Problem(ENTRY, f"entry {lo} is not the entry the checkpoint on line {line} (size {hi}) "
                                           f"committed to: changed, inserted, deleted or moved.{evidence}",
                                    ex.line_of(lo), lo))
        else:
            problems.append(Problem(CHECKPOINT, f"checkpoint of size {hi} does not match the exported entries: "
                                                f"an entry among [{lo}, {hi}) was changed, inserted, deleted or "
                                                f"moved.{evidence}", line, range=(lo, hi)))

    if header is not None and header["community"] != community:
        problems.append(Problem(HEADER, f"the export header is of community {header['community']!r}, the export of "
                                        f"{community!r}", header_line))
        header = None
    covered = max([c["size"] for _, c in verified] + ([trusted_size] if trusted_size else []), default=0)
    # Entries under a checkpoint line that failed (its signature, its root, its size) are reported
    # at that line above; what is left unsigned is what no checkpoint line even claims to cover.
    claimed = {c["size"] for _, c in checkpoints if count_of(c.get("size"))}
    signed = min(n, max(claimed | {covered}))
    end = _extent(ex, n, header_line, header, claimed, covered, problems)
    unvouched = 0
    if signed < end:
        # Nothing signed says what these entries are: anyone could have written them.
        span = f"entries [{signed}, {end})"
        why = " (the export's signed header says it is unsigned)" if header and header["unsigned"] else ""
        if allow_unsigned_tail:
            unvouched = end - signed
            warnings.append(f"{entries_text(unvouched)}, [{signed}, {end}), could not be vouched for: no signed "
                            f"checkpoint covers them{why}")
        elif signed == 0:
            problems.append(Problem(CHECKPOINT, f"no checkpoint signed by a trusted key vouches for these entries: "
                                                f"{span} are not covered{why}", ex.line_of(0), 0, range=(0, end)))
        else:
            problems.append(Problem(ENTRY, f"{span} are not covered by a signed checkpoint: nothing vouches for "
                                           f"them{why}", ex.line_of(signed), signed, range=(signed, end)))

    problems.sort(key=lambda p: (p.line is None, p.line or 0, p.index if p.index is not None else -1))
    if ex.unlisted:
        warnings.append(f"{ex.unlisted} more problems in entries and texts were found than are listed")
    best = max(verified, key=lambda lc: lc[1]["size"], default=(None, None))[1]
    return Report(
        ok=not problems, first_error=problems[0] if problems else None, problems=problems, warnings=warnings,
        counts={"lines": ex.lines, "entries": n, "texts": ex.text_lines,
                "texts_verified": sum(1 for v in ex.texts.values() if v == 2), "erased": len(erased),
                "commitments": len(ex.refs), "checkpoints": len(checkpoints),
                "checkpoints_verified": len(verified), "key_rotations": len(rotations),
                "key_rotations_learnt": learnt, "problems": len(problems)},
        erased=erased, community=community, size=n, root=root_at(n, ex.store).hex(), checkpoint=best,
        key_ids=sorted(ring.keys), covered=min(covered, n), unvouched=unvouched, extent=header, mode=ring.mode)


# --- proofs handed out one by one ----------------------------------------------------------------

def _ring(public_keys: Any, rotations: Iterable[dict], problems: list[Problem], warnings: list[str],
          mode: str = PRODUCTION) -> KeyRing:
    ring = public_keys if isinstance(public_keys, KeyRing) else KeyRing(public_keys, mode)
    _learn_rotations(ring, [(None, r) for r in rotations or ()], problems, warnings)
    return ring


def _proof_bytes(proof: Iterable[Any]) -> list[bytes] | None:
    try:
        return [bytes.fromhex(p) if isinstance(p, str) else bytes(p) for p in proof]
    except (TypeError, ValueError):
        return None


def _report(problems: list[Problem], warnings: list[str], **kw: Any) -> Report:
    return Report(ok=not problems, first_error=problems[0] if problems else None, problems=problems,
                  warnings=warnings, **kw)


def verify_inclusion_bundle(bundle: dict, public_keys: Any, trusted_checkpoint: dict | None = None, *,
                            allow_unsigned_tail: bool = False, mode: str = PRODUCTION) -> Report:
    """Check a bundle {"kind":"bundle","checkpoint":{...},"entries":[{"index","line","proof"}],
    "texts":[...]} (optionally "key_rotations":[...], "extent":{...} and, to relate it to a
    trusted checkpoint, "consistency":[hex, ...] between the two sizes). A bundle without a
    "texts" key proves its entries and leaves their commitments unchecked (a warning says so);
    with one, every commitment needs its text or its erasure.

    Every entry must lie under the bundle's checkpoint; one beyond it (an `--unsigned` bundle
    carries them without a proof) fails the bundle unless `allow_unsigned_tail`, and is then
    counted as unvouched. A signed extent (a case bundle's) fixes which entries the bundle holds:
    one added or removed fails it, and so does an entry of another case."""
    problems: list[Problem] = []
    warnings: list[str] = []
    if not isinstance(bundle, dict) or bundle.get("kind") != "bundle":
        return _report([Problem(ENTRY, 'not a bundle (a JSON object with "kind": "bundle")')], warnings)
    ring = _ring(public_keys, bundle.get("key_rotations", ()), problems, warnings, mode)
    cp = bundle.get("checkpoint")
    try:
        ring.check(cp)
    except CheckpointError as exc:
        problems.append(Problem(CHECKPOINT, f"bundle checkpoint: {exc}"))
        return _report(problems, warnings)
    size, root = cp["size"], bytes.fromhex(cp["root"])
    extent = _bundle_extent(bundle, cp, ring, problems, warnings)

    scan = _Scan()
    held: list[int] = []
    beyond: list[int] = []  # entries no signed checkpoint covers
    for k, item in enumerate(bundle.get("entries", ())):
        if not isinstance(item, dict):
            item = {}
        index, line = item.get("index"), item.get("line")
        if not isinstance(index, int) or isinstance(index, bool) or not isinstance(line, (str, bytes)):
            problems.append(Problem(ENTRY, f"bundle entry {k} needs an index, a line and a hex proof"))
            continue
        held.append(index)
        raw = line.encode("utf-8") if isinstance(line, str) else line
        if index >= size:
            beyond.append(index)
        else:
            proof = _proof_bytes(item.get("proof", ()))
            if proof is None:
                problems.append(Problem(ENTRY, f"bundle entry {k} needs an index, a line and a hex proof"))
                continue
            if not verify_inclusion(leaf_hash(raw), index, size, proof, root):
                problems.append(Problem(ENTRY, f"entry {index} is not in the checkpoint's tree (inclusion proof "
                                               "does not verify)", index=index))
                continue
        kind, obj, problem = _parse(raw)
        problem = problem or (_entry_problem(obj) if kind == ENTRY else "not an entry line")
        if problem is None and obj["community"] != cp["community"]:
            problem = f"entry belongs to community {obj['community']!r}, the checkpoint to {cp['community']!r}"
        if problem is None and extent is not None and obj.get("case") != extent["case"]:
            problem = f"entry belongs to case {obj.get('case')!r}, the bundle's signed extent to {extent['case']!r}"
        commitments = []
        if problem is None:
            commitments, problem = _commitments(obj["data"])
        if problem is not None:
            problems.append(Problem(ENTRY, problem, index=index))
        for c in commitments:
            scan.refs.setdefault(c.encode("utf-8"), (index, 0))
    if extent is not None:
        listed, present = set(extent["indexes"]), set(held)
        for index in sorted(listed - present):
            problems.append(Problem(EXTENT, f"entry {index} of case {extent['case']}, listed by the bundle's signed "
                                            "extent, is missing from the bundle: removed", index=index))
        for index in sorted(present - listed):
            problems.append(Problem(EXTENT, f"entry {index} is not among the entries the bundle's signed extent "
                                            "lists: added to the bundle", index=index))
    unvouched = 0
    if beyond:
        span = f"{entries_text(len(beyond))} from entry {min(beyond)}"
        if allow_unsigned_tail:
            unvouched = len(beyond)
            warnings.append(f"{span} could not be vouched for: beyond the bundle's checkpoint of {size} entries")
        else:
            problems.append(Problem(ENTRY, f"not covered by the bundle's checkpoint of {size} entries: {span}; "
                                           "nothing vouches for them", index=min(beyond)))
    for k, text in enumerate(bundle.get("texts", ())):
        if isinstance(text, dict):
            _check_text(scan, text, k)
        else:
            scan.problem(TEXT, k, None, "a text is a JSON object")
    for kind, k, _, message in scan.problems:
        problems.append(Problem(kind, f"bundle text {k}: {message}"))
    if "texts" not in bundle:
        # A proof served to a reader who may not see every text (a member, not an auditor)
        # carries none; it proves the entries, and their commitments stay unchecked.
        if scan.refs:
            warnings.append(f"the bundle carries no texts: {len(scan.refs)} commitments were not checked")
    else:
        for c, (index, _) in scan.refs.items():
            if c not in scan.texts:
                problems.append(Problem(TEXT, f"entry {index} refers to text {c.decode(errors='replace')}, which "
                                              "the bundle does not carry (neither the text nor its erasure)",
                                        index=index))

    if trusted_checkpoint is not None:
        problem = _relate(cp, trusted_checkpoint, _proof_bytes(bundle.get("consistency", ())))
        if problem:
            problems.append(Problem(CHECKPOINT, problem, 0))
    return _report(problems, warnings, counts={"entries": len(bundle.get("entries", ())),
                                              "texts": len(bundle.get("texts", ()))},
                   erased=sorted(c.decode() for c, v in scan.texts.items() if v == 1),
                   community=cp["community"], size=size, root=cp["root"], checkpoint=cp, key_ids=sorted(ring.keys),
                   covered=len(held) - len(beyond), unvouched=unvouched, extent=extent, mode=ring.mode)


def _bundle_extent(bundle: dict, cp: dict, ring: KeyRing, problems: list[Problem], warnings: list[str]) -> dict | None:
    """The bundle's signed extent, if it has one and it verifies against the bundle's checkpoint."""
    extent = bundle.get("extent")
    if extent is None:
        if bundle.get("case") is not None:
            warnings.append(f"the bundle names case {bundle['case']} but carries no signed extent: it proves the "
                            "entries it holds, not that they are all of the case's")
        return None
    try:
        ring.check(extent, BUNDLE_EXTENT)
    except CheckpointError as exc:
        problems.append(Problem(EXTENT, str(exc)))
        return None
    if extent["community"] != cp["community"] or extent["size"] != cp["size"]:
        problems.append(Problem(EXTENT, f"the bundle's signed extent is of community {extent['community']!r} against "
                                        f"{extent['size']} entries, its checkpoint of {cp['community']!r} with "
                                        f"{cp['size']}"))
        return None
    return extent


def _relate(cp: dict, trusted: dict, proof: list[bytes] | None) -> str | None:
    """Why the signed checkpoint and the trusted one cannot be of one history, or None."""
    t_size, t_root = trusted.get("size"), _hex_root(trusted.get("root"))
    if not isinstance(t_size, int) or t_root is None:
        return "the trusted checkpoint needs an integer size and a hex root"
    if trusted.get("community") not in (None, cp["community"]):
        return "the trusted checkpoint is of another community"
    root = bytes.fromhex(cp["root"])
    if t_size == cp["size"]:
        return None if t_root == root else "fork: same size as the trusted checkpoint, different root"
    if proof is None:
        return "no consistency proof between the trusted checkpoint and this one"
    old, new = ((t_size, t_root), (cp["size"], root)) if t_size < cp["size"] else ((cp["size"], root), (t_size, t_root))
    if not verify_consistency(old[0], new[0], old[1], new[1], proof):
        return (f"fork: the checkpoint of size {cp['size']} is not consistent with the trusted checkpoint of "
                f"size {t_size}")
    return None


def verify_consistency_between(cp_old: dict, cp_new: dict, proof: Iterable[Any], public_keys: Any,
                               key_rotations: Iterable[dict] = (), mode: str = PRODUCTION) -> Report:
    """Are two signed checkpoints of one community states of one append-only history?"""
    problems: list[Problem] = []
    warnings: list[str] = []
    ring = _ring(public_keys, key_rotations, problems, warnings, mode)
    for name, c in (("old", cp_old), ("new", cp_new)):
        try:
            ring.check(c)
        except CheckpointError as exc:
            problems.append(Problem(CHECKPOINT, f"{name} checkpoint: {exc}"))
    if problems:
        return _report(problems, warnings)
    if cp_old["community"] != cp_new["community"]:
        problems.append(Problem(CHECKPOINT, "the checkpoints are of different communities"))
    elif cp_old["size"] > cp_new["size"]:
        problems.append(Problem(CHECKPOINT, f"the new checkpoint is smaller ({cp_new['size']}) than the old "
                                            f"({cp_old['size']}): the log shrank"))
    else:
        path = _proof_bytes(proof)
        if path is None or not verify_consistency(cp_old["size"], cp_new["size"], bytes.fromhex(cp_old["root"]),
                                                  bytes.fromhex(cp_new["root"]), path):
            problems.append(Problem(CHECKPOINT, f"fork: the checkpoint of size {cp_new['size']} does not extend the "
                                                f"one of size {cp_old['size']} (consistency proof does not verify)"))
    if not problems and parse_time(cp_new["time"]) < parse_time(cp_old["time"]) and cp_new["size"] > cp_old["size"]:
        warnings.append("the larger checkpoint carries the earlier time")
    return _report(problems, warnings, community=cp_new["community"], size=cp_new["size"], root=cp_new["root"],
                   checkpoint=cp_new, key_ids=sorted(ring.keys), mode=ring.mode)


def verify_platform_proof(proof: dict, public_keys: Any, mode: str = PRODUCTION) -> Report:
    """Check {"kind": "platform_inclusion", "checkpoint", "index", "platform_checkpoint", "proof",
    "key_rotations"}: does the signed platform checkpoint commit to the community checkpoint?"""
    problems: list[Problem] = []
    warnings: list[str] = []
    ring = _ring(public_keys, proof.get("key_rotations", ()), problems, warnings, mode)
    community_cp, platform_cp = proof.get("checkpoint"), proof.get("platform_checkpoint")
    for name, c in (("community", community_cp), ("platform", platform_cp)):
        try:
            ring.check(c)
        except CheckpointError as exc:
            problems.append(Problem(CHECKPOINT, f"{name} checkpoint: {exc}"))
    if problems:
        return _report(problems, warnings)
    index, path = proof.get("index"), _proof_bytes(proof.get("proof", ()))
    spanned = None
    if platform_cp["community"] != PLATFORM:
        problems.append(Problem(CHECKPOINT, f"the platform checkpoint names {platform_cp['community']!r}, "
                                            f"not {PLATFORM!r}"))
    elif (not isinstance(index, int) or path is None
          or not verify_platform_inclusion(platform_cp, community_cp, index, path, ring)):
        problems.append(Problem(CHECKPOINT, f"the platform checkpoint of size {platform_cp['size']} does not "
                                            f"commit to this checkpoint at leaf {index} (proof does not verify)"))
    elif "span" in proof:
        spanned = _check_span(proof["span"], platform_cp, public_keys, mode, problems, warnings)
    return _report(problems, warnings, community=community_cp["community"], size=community_cp["size"],
                   root=community_cp["root"], checkpoint=community_cp, key_ids=sorted(ring.keys), mode=ring.mode,
                   spanned=spanned)


def _check_span(spanned: Any, cell_cp: dict, public_keys: Any, mode: str, problems: list[Problem],
                warnings: list[str]) -> dict | None:
    """A deployment with cells: the platform checkpoint above is a cell's head, and `span` proves
    it a leaf of the platform log spanning the cells (services/audit/span.py), whose head the
    platform audit signed with its own chain of keys."""
    if spanned is None:
        warnings.append("the cell's head is not yet witnessed by the platform log spanning the cells (the platform "
                        "audit did not answer): this proof shows the cell's log only")
        return None
    if not isinstance(spanned, dict):
        problems.append(Problem(CHECKPOINT, "the proof's span is not an object"))
        return None
    ring = _ring(public_keys, spanned.get("key_rotations", ()), problems, warnings, mode)
    span_cp, cell, index = spanned.get("span_checkpoint"), spanned.get("cell"), spanned.get("index")
    try:
        ring.check(span_cp)
    except CheckpointError as exc:
        problems.append(Problem(CHECKPOINT, f"spanning checkpoint: {exc}"))
        return None
    path = _proof_bytes(spanned.get("proof", ()))
    if span_cp["community"] != SPAN:
        problems.append(Problem(CHECKPOINT, f"the spanning checkpoint names {span_cp['community']!r}, not {SPAN!r}"))
    elif (not isinstance(index, int) or path is None
          or not verify_span_inclusion(span_cp, cell, cell_cp, index, path, ring)):
        problems.append(Problem(CHECKPOINT, f"the platform log spanning the cells (size {span_cp['size']}) does not "
                                            f"commit to cell {cell!r}'s head of size {cell_cp['size']} at leaf "
                                            f"{index} (proof does not verify)"))
    else:
        return span_cp
    return None


def _same_state(a: dict, b: dict) -> bool:
    return a.get("size") == b.get("size") and _hex_root(a.get("root")) == _hex_root(b.get("root"))


def verify_proof(proof: Any, public_keys: Any, trusted_checkpoint: dict | None = None, *,
                 allow_unsigned_tail: bool = False, mode: str = PRODUCTION) -> Report:
    """Any proof the API or `consult audit bundle` hands out, checked offline: an inclusion
    bundle, a consistency proof between two checkpoints, or a platform inclusion proof. With a
    trusted checkpoint, the proof must also be of the trusted history: a bundle through its
    consistency proof, a consistency proof by starting or ending at the trusted checkpoint."""
    kind = proof.get("kind") if isinstance(proof, dict) else None
    if kind == "bundle":
        return verify_inclusion_bundle(proof, public_keys, trusted_checkpoint, allow_unsigned_tail=allow_unsigned_tail,
                                       mode=mode)
    if kind == "platform_inclusion":
        report = verify_platform_proof(proof, public_keys, mode)
        trusted_cp = proof.get("checkpoint")
    elif kind == "consistency":
        report = verify_consistency_between(proof.get("old"), proof.get("new"), proof.get("proof", ()), public_keys,
                                            proof.get("key_rotations", ()), mode)
        trusted_cp = None
    else:
        return _report([Problem(CHECKPOINT, f"not a proof this verifier knows (kind {kind!r})")], [])
    if trusted_checkpoint is None or not report.ok:
        return report
    if trusted_checkpoint.get("community") not in (None, report.community):
        problem = f"the trusted checkpoint is of community {trusted_checkpoint.get('community')!r}"
    elif kind == "consistency":
        ends = [c for c in (proof["old"], proof["new"]) if c["size"] == trusted_checkpoint.get("size")]
        if not ends:
            problem = "the proof neither starts nor ends at the trusted checkpoint's size"
        elif not any(_same_state(c, trusted_checkpoint) for c in ends):
            problem = (f"fork: the checkpoint of size {ends[0]['size']} has another root than the trusted "
                       "checkpoint (split view)")
        else:
            problem = None
    else:
        same_size = trusted_cp["size"] == trusted_checkpoint.get("size")
        problem = ("fork: the checkpoint has the trusted checkpoint's size but another root (split view)"
                   if same_size and not _same_state(trusted_cp, trusted_checkpoint) else None)
        if not same_size:
            report.warnings.append("the trusted checkpoint is of another size: relate them with a consistency proof")
    if problem:
        report.problems.append(Problem(CHECKPOINT, problem, 0))
        report.ok, report.first_error = False, report.problems[0]
    return report


def main(argv: list[str] | None = None) -> int:
    """python -m services.audit.verify EXPORT --key PUBLIC_KEY [--key ...] [--trusted CHECKPOINT.json]
    [--allow-unsigned-tail]"""
    import argparse

    parser = argparse.ArgumentParser(description="Verify a consult audit export offline.")
    parser.add_argument("export")
    parser.add_argument("--key", action="append", required=True, help="public key file (PEM) or base64 raw key")
    parser.add_argument("--trusted", help="a checkpoint (JSON file) you trust, e.g. copied from a notice")
    parser.add_argument("--community")
    parser.add_argument("--workers", type=int)
    parser.add_argument("--allow-unsigned-tail", action="store_true",
                        help="accept entries no signed checkpoint covers, and count them as unvouched")
    parser.add_argument("--training", action="store_true",
                        help="verify a training deployment's record (it never verifies without this flag)")
    args = parser.parse_args(argv)
    keys = [open(k, "rb").read() if os.path.exists(k) else k for k in args.key]
    trusted = json.load(open(args.trusted, encoding="utf-8")) if args.trusted else None
    report = verify_export(args.export, keys, trusted, community=args.community, workers=args.workers,
                           allow_unsigned_tail=args.allow_unsigned_tail,
                           mode=TRAINING if args.training else PRODUCTION)
    print(report.summary())
    for p in report.problems[:20]:
        print(f"- {p.kind} line {p.line} entry {p.index}: {p.message}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
