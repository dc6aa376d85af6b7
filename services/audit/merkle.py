"""Merkle tree hashing exactly as RFC 6962 / RFC 9162 §2.1, with proofs served from stored nodes.

Leaf hash = SHA-256(0x00 ‖ leaf bytes), node hash = SHA-256(0x01 ‖ left ‖ right), the root of the
empty tree is SHA-256(""). A tree of n leaves splits at k, the largest power of two below n.

`MerkleTree` appends in O(log n) and persists every *complete* subtree hash, keyed (level, index):
node (l, i) covers leaves [i·2^l, (i+1)·2^l). Every subtree that RFC 6962's MTH, PATH and PROOF
name is either such a perfect subtree or a right-edge range that decomposes into at most
⌈log2 n⌉ of them, so roots of any past size and every proof cost O(log n) store look-ups and no
recomputation of the tree. Hashes are `bytes` throughout this module (hex is for the edges).
"""
from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Iterable, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:  # SQLAlchemy is imported only by the SQL store, so offline verifiers need not have it
    import sqlalchemy as sa

HASH_SIZE = 32
_sha256 = hashlib.sha256
_LEAF = b"\x00"
_NODE = b"\x01"
EMPTY_ROOT = _sha256(b"").digest()


def leaf_hash(data: bytes | str) -> bytes:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return _sha256(_LEAF + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(_NODE + left + right).digest()


def _split(n: int) -> int:
    """k: the largest power of two smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


# --- the reference: RFC 6962 §2.1 written as recursion, O(n); for tests and small trees ----------

def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over already-hashed leaves, straight from the RFC's definition."""
    n = len(hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return hashes[0]
    k = _split(n)
    return node_hash(root_from_leaf_hashes(hashes[:k]), root_from_leaf_hashes(hashes[k:]))


def reference_inclusion_proof(index: int, hashes: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 6962 §2.1.1, recursively."""
    n = len(hashes)
    if not 0 <= index < n:
        raise ValueError(f"leaf {index} is not in a tree of size {n}")
    if n == 1:
        return []
    k = _split(n)
    if index < k:
        return reference_inclusion_proof(index, hashes[:k]) + [root_from_leaf_hashes(hashes[k:])]
    return reference_inclusion_proof(index - k, hashes[k:]) + [root_from_leaf_hashes(hashes[:k])]


def reference_consistency_proof(old_size: int, hashes: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 6962 §2.1.2, recursively (empty for m = 0 and m = n)."""
    n = len(hashes)
    if not 0 <= old_size <= n:
        raise ValueError(f"no consistency proof from {old_size} to {n}")
    if old_size in (0, n):
        return []

    def subproof(m: int, d: Sequence[bytes], complete: bool) -> list[bytes]:
        if m == len(d):
            return [] if complete else [root_from_leaf_hashes(d)]
        k = _split(len(d))
        if m <= k:
            return subproof(m, d[:k], complete) + [root_from_leaf_hashes(d[k:])]
        return subproof(m - k, d[k:], False) + [root_from_leaf_hashes(d[:k])]

    return subproof(old_size, hashes, True)


# --- which subtrees a proof names, as leaf ranges [start, end) -----------------------------------

def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """PATH(index, D[size]) as ranges, leaf-to-root (the RFC's order)."""
    out = []
    start, n, m = 0, size, index
    while n > 1:
        k = _split(n)
        if m < k:
            out.append((start + k, start + n))
            n = k
        else:
            out.append((start, start + k))
            start, m, n = start + k, m - k, n - k
    out.reverse()
    return out


def _consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """PROOF(old_size, D[new_size]) as ranges, in the RFC's order."""
    if old_size in (0, new_size):
        return []
    out = []
    start, m, n, complete = 0, old_size, new_size, True
    while m != n:
        k = _split(n)
        if m <= k:
            out.append((start + k, start + n))
            n = k
        else:
            out.append((start, start + k))
            start, m, n, complete = start + k, m - k, n - k, False
    if not complete:
        out.append((start, start + m))
    out.reverse()
    return out


def _perfect_parts(start: int, end: int) -> list[tuple[int, int]]:
    """The perfect subtrees (level, index) whose MTHs fold, right to left, into MTH(D[start:end]).

    Every range a proof or a past root names starts at a multiple of a power of two no smaller
    than its length, so its binary decomposition is made of aligned, stored nodes.
    """
    out = []
    pos, left = start, end - start
    while left:
        level = left.bit_length() - 1
        width = 1 << level
        if pos & (width - 1):  # cannot happen for RFC ranges; guards against misuse
            raise ValueError(f"range [{start}, {end}) is not aligned")
        out.append((level, pos >> level))
        pos += width
        left -= width
    return out


def _fold(parts: list[bytes]) -> bytes:
    acc = parts[-1]
    for h in reversed(parts[:-1]):
        acc = _sha256(_NODE + h + acc).digest()
    return acc


# --- node stores ---------------------------------------------------------------------------------

@runtime_checkable
class NodeStore(Protocol):
    """Where a tree keeps its complete subtree hashes. `size()` is the number of leaves (level 0).

    `get` raises KeyError for a node that is not stored. A store may also offer
    `get_many(keys) -> dict[(level, index), bytes]` to fetch a proof's nodes in one round trip.
    """

    def get(self, level: int, index: int) -> bytes: ...

    def put_many(self, items: Iterable[tuple[int, int, bytes]]) -> None: ...

    def size(self) -> int: ...


def _fetch(store: NodeStore, keys: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    keys = list(dict.fromkeys(keys))
    get_many = getattr(store, "get_many", None)
    if get_many is not None:
        found = get_many(keys)
        missing = [k for k in keys if k not in found]
        if missing:
            raise KeyError(f"nodes missing from the store: {missing[:5]}")
        return found
    return {k: store.get(*k) for k in keys}


class MemoryNodeStore:
    """Complete nodes in one bytearray per level (32 bytes a node): compact and append-only."""

    def __init__(self) -> None:
        self.levels: list[bytearray] = [bytearray()]

    def size(self) -> int:
        return len(self.levels[0]) // HASH_SIZE

    def count(self, level: int) -> int:
        return len(self.levels[level]) // HASH_SIZE if level < len(self.levels) else 0

    def get(self, level: int, index: int) -> bytes:
        if index < 0 or level >= len(self.levels) or (index + 1) * HASH_SIZE > len(self.levels[level]):
            raise KeyError((level, index))
        return bytes(self.levels[level][index * HASH_SIZE:(index + 1) * HASH_SIZE])

    def get_many(self, keys: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        out = {}
        for level, index in keys:
            try:
                out[(level, index)] = self.get(level, index)
            except KeyError:
                pass
        return out

    def put_many(self, items: Iterable[tuple[int, int, bytes]]) -> None:
        for level, index, value in items:
            if len(value) != HASH_SIZE:
                raise ValueError("a node hash is 32 bytes")
            while level >= len(self.levels):
                self.levels.append(bytearray())
            have = len(self.levels[level]) // HASH_SIZE
            if index == have:
                self.levels[level] += value
            elif index < have:
                if self.get(level, index) != value:
                    raise ValueError(f"node ({level}, {index}) is already stored with another hash")
            else:
                raise ValueError(f"node ({level}, {index}) would leave a gap (level holds {have})")

    def append_leaf_hashes(self, block: bytes) -> None:
        """Append many leaf hashes at once and compute every node they complete, level by level.

        Each node is hashed once, from its two children lying side by side in the level below;
        the half-finished right edge simply waits for its sibling (the streaming 'stack').
        """
        if len(block) % HASH_SIZE:
            raise ValueError("leaf hashes come 32 bytes each")
        levels = self.levels
        levels[0] += block
        sha, node = _sha256, _NODE
        level = 0
        while True:
            below = levels[level]
            want = len(below) // (2 * HASH_SIZE)
            if level + 1 == len(levels):
                if want == 0:
                    return
                levels.append(bytearray())
            above = levels[level + 1]
            have = len(above) // HASH_SIZE
            if have >= want:
                return
            above += b"".join([sha(node + below[i:i + 64]).digest()
                               for i in range(have * 64, want * 64, 64)])
            level += 1


def node_table(metadata: sa.MetaData, name: str) -> sa.Table:
    """The table of a `SqlNodeStore`: one row per complete node of any number of trees."""
    import sqlalchemy as sa

    return sa.Table(
        name, metadata,
        sa.Column("tree", sa.String(200), primary_key=True),
        sa.Column("level", sa.SmallInteger, primary_key=True),
        sa.Column("idx", sa.BigInteger, primary_key=True),
        sa.Column("hash", sa.LargeBinary(HASH_SIZE), nullable=False),
    )


class SqlNodeStore:
    """Nodes of one tree (e.g. a community id) in a SQL table, through the caller's connection.

    Appends run inside the caller's transaction, so they commit or roll back with whatever else it
    writes. The primary key (tree, level, idx) makes a concurrent append of the same position fail
    instead of forking the tree.
    """

    def __init__(self, connection: sa.Connection, table: sa.Table | str, tree: str):
        import sqlalchemy

        if isinstance(table, str):
            table = node_table(sqlalchemy.MetaData(), table)
        self.connection = connection
        self.table = table
        self.tree = str(tree)

    def create_table(self) -> None:
        self.table.create(self.connection, checkfirst=True)

    def size(self) -> int:
        import sqlalchemy as sa

        t = self.table
        top = self.connection.execute(
            sa.select(sa.func.max(t.c.idx)).where(t.c.tree == self.tree, t.c.level == 0)).scalar()
        return 0 if top is None else int(top) + 1

    def get(self, level: int, index: int) -> bytes:
        found = self.get_many([(level, index)])
        if (level, index) not in found:
            raise KeyError((level, index))
        return found[(level, index)]

    def get_many(self, keys: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        by_level: dict[int, list[int]] = {}
        for level, index in keys:
            by_level.setdefault(level, []).append(index)
        if not by_level:
            return {}
        import sqlalchemy as sa

        t = self.table
        # One indexed look-up per level, joined by UNION ALL: an OR of (level, idx) conditions
        # makes SQLite scan every node of the tree, which would make each proof O(n).
        rows = self.connection.execute(sa.union_all(*[
            sa.select(t.c.level, t.c.idx, t.c.hash).where(t.c.tree == self.tree, t.c.level == level,
                                                          t.c.idx.in_(idxs))
            for level, idxs in by_level.items()]))
        return {(int(r.level), int(r.idx)): bytes(r.hash) for r in rows}

    def put_many(self, items: Iterable[tuple[int, int, bytes]]) -> None:
        rows = [{"tree": self.tree, "level": level, "idx": index, "hash": bytes(value)}
                for level, index, value in items]
        if rows:
            import sqlalchemy as sa

            self.connection.execute(sa.insert(self.table), rows)


# --- proofs and roots from a store ---------------------------------------------------------------

def _check_size(store: NodeStore, size: int) -> None:
    have = store.size()
    if size > have:
        raise ValueError(f"the tree has {have} leaves, not {size}")


def _ranges_hashes(store: NodeStore, ranges: list[tuple[int, int]]) -> list[bytes]:
    plans = [_perfect_parts(a, b) for a, b in ranges]
    nodes = _fetch(store, [key for plan in plans for key in plan])
    return [_fold([nodes[key] for key in plan]) for plan in plans]


def root_at(size: int, store: NodeStore) -> bytes:
    """MTH of the first `size` leaves: the fold of the perfect subtrees that decompose it."""
    if size < 0:
        raise ValueError("size must not be negative")
    if size == 0:
        return EMPTY_ROOT
    _check_size(store, size)
    return _ranges_hashes(store, [(0, size)])[0]


def inclusion_proof(index: int, size: int, store: NodeStore) -> list[bytes]:
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    _check_size(store, size)
    return _ranges_hashes(store, _inclusion_ranges(index, size))


def consistency_proof(old_size: int, new_size: int, store: NodeStore) -> list[bytes]:
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from {old_size} to {new_size}")
    _check_size(store, new_size)
    return _ranges_hashes(store, _consistency_ranges(old_size, new_size))


# --- verification (RFC 9162 §2.1.3.2 and §2.1.4.2) ------------------------------------------------

def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    if not 0 <= index < size or any(len(p) != HASH_SIZE for p in proof):
        return False
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _sha256(_NODE + p + r).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _sha256(_NODE + r + p).digest()
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> bool:
    if not 0 <= old_size <= new_size or any(len(p) != HASH_SIZE for p in proof):
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        # Every tree extends the empty one; its root is fixed.
        return not proof and old_root == EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is itself a node of the new tree
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = _sha256(_NODE + c + fr).digest()
            sr = _sha256(_NODE + c + sr).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _sha256(_NODE + sr + c).digest()
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0


# --- the tree ------------------------------------------------------------------------------------

class MerkleTree:
    """An append-only RFC 6962 tree over a `NodeStore`.

    It keeps the right edge (the roots of the perfect subtrees that decompose the current size)
    in memory, so an append hashes one leaf plus, on average, one node, and writes only the nodes
    it completes. If another writer appended to the same store meanwhile, the edge is reloaded
    before the next append (and a SQL store's primary key refuses a duplicate position).
    """

    def __init__(self, store: NodeStore | None = None):
        self.store = store if store is not None else MemoryNodeStore()
        self._load()

    @classmethod
    def resume(cls, store: NodeStore, size: int, edge: Sequence[bytes]) -> "MerkleTree":
        """The tree of `size` leaves in `store`, opened with its right edge (the roots of the
        perfect subtrees that decompose `size`, left to right) as the caller kept it from the last
        append: no node is read to open it."""
        if len(edge) != bin(size).count("1") or any(len(h) != HASH_SIZE for h in edge):
            raise ValueError(f"a right edge of {size} leaves has {bin(size).count('1')} hashes of 32 bytes")
        tree = cls.__new__(cls)
        tree.store, tree._size, tree._edge = store, size, list(edge)
        return tree

    @property
    def edge(self) -> list[bytes]:
        """The right edge: what `resume` needs to open the tree again at this size."""
        return list(self._edge)

    def _load(self) -> None:
        size = self.store.size()
        parts = _perfect_parts(0, size)
        nodes = _fetch(self.store, parts) if parts else {}
        self._size = size
        self._edge: list[bytes] = [nodes[key] for key in parts]

    @property
    def size(self) -> int:
        return self._size

    def __len__(self) -> int:
        return self._size

    def append(self, data: bytes | str) -> int:
        """Append one leaf (its bytes); returns its index."""
        return self.extend_leaf_hashes([leaf_hash(data)])

    def extend(self, leaves: Iterable[bytes | str]) -> int:
        """Append many leaves in one write; returns the index of the first."""
        return self.extend_leaf_hashes([leaf_hash(d) for d in leaves])

    def extend_leaf_hashes(self, hashes: Iterable[bytes]) -> int:
        if self.store.size() != self._size:
            self._load()
        first = self._size
        n, edge, new = self._size, self._edge, []
        sha, node = _sha256, _NODE
        for h in hashes:
            if len(h) != HASH_SIZE:
                raise ValueError("a leaf hash is 32 bytes")
            new.append((0, n, h))
            edge.append(h)
            level, i = 0, n
            while i & 1:  # a right child completes its parent, and so on up
                right = edge.pop()
                parent = sha(node + edge.pop() + right).digest()
                edge.append(parent)
                level += 1
                i >>= 1
                new.append((level, i, parent))
            n += 1
        if new:
            self.store.put_many(new)
        self._size = n
        return first

    def root(self, size: int | None = None) -> bytes:
        if size is None or size == self._size:
            return _fold(self._edge) if self._edge else EMPTY_ROOT
        return root_at(size, self.store)

    def leaf_hash_at(self, index: int) -> bytes:
        return self.store.get(0, index)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return inclusion_proof(index, self._size if size is None else size, self.store)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        return consistency_proof(old_size, self._size if new_size is None else new_size, self.store)
