"""RFC 6962 Merkle tree: published test vectors, the RFC's recursive definitions for every size up
to 64, proof bounds, forged proofs, O(log n) store access, and the SQL node store."""
from __future__ import annotations

import math
import os
import uuid

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from services.audit import merkle as m

# The certificate-transparency reference test data (RFC 6962 trees of the first n of 8 leaves).
LEAVES = [bytes.fromhex(x) for x in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f")]
ROOTS = {
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}
H0 = "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
A = "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"
B = "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"
C = "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"
D = "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
E = "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"
F = "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"
INCLUSION = [  # (index, size, path)
    (0, 8, [A, B, C]),
    (5, 8, [D, E, ROOTS[4]]),
    (2, 3, [ROOTS[2]]),
    (1, 5, [H0, B, D]),
]
CONSISTENCY = [  # (old size, new size, proof)
    (1, 1, []),
    (1, 8, [A, B, C]),
    (6, 8, [F, E, ROOTS[4]]),
    (2, 5, [B, D]),
]


def hexes(proof):
    return [p.hex() for p in proof]


def leaf_data(i: int) -> bytes:
    return f"leaf {i}".encode()


@pytest.fixture(scope="module")
def tree64():
    tree = m.MerkleTree()
    tree.extend(leaf_data(i) for i in range(64))
    return tree, [m.leaf_hash(leaf_data(i)) for i in range(64)]


def test_empty_tree_root_is_hash_of_nothing():
    assert m.EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert m.root_from_leaf_hashes([]) == m.EMPTY_ROOT
    assert m.MerkleTree().root() == m.EMPTY_ROOT


@pytest.mark.parametrize("size", sorted(ROOTS))
def test_rfc6962_roots(size):
    hashes = [m.leaf_hash(x) for x in LEAVES[:size]]
    assert m.root_from_leaf_hashes(hashes).hex() == ROOTS[size]
    tree = m.MerkleTree()
    tree.extend(LEAVES[:size])
    assert tree.root().hex() == ROOTS[size]


def test_rfc6962_roots_of_past_sizes_from_stored_nodes():
    tree = m.MerkleTree()
    tree.extend(LEAVES)
    for size, root in ROOTS.items():
        assert tree.root(size).hex() == root


@pytest.mark.parametrize("index,size,path", INCLUSION)
def test_rfc6962_inclusion_vectors(index, size, path):
    tree = m.MerkleTree()
    tree.extend(LEAVES)
    proof = tree.inclusion_proof(index, size)
    assert hexes(proof) == path
    assert m.verify_inclusion(m.leaf_hash(LEAVES[index]), index, size, proof, bytes.fromhex(ROOTS[size]))


@pytest.mark.parametrize("old,new,path", CONSISTENCY)
def test_rfc6962_consistency_vectors(old, new, path):
    tree = m.MerkleTree()
    tree.extend(LEAVES)
    proof = tree.consistency_proof(old, new)
    assert hexes(proof) == path
    assert m.verify_consistency(old, new, bytes.fromhex(ROOTS[old]), bytes.fromhex(ROOTS[new]), proof)


def test_every_root_and_inclusion_proof_up_to_64_matches_the_rfc_recursion(tree64):
    tree, hashes = tree64
    for n in range(1, 65):
        root = m.root_from_leaf_hashes(hashes[:n])
        assert tree.root(n) == root
        bound = math.ceil(math.log2(n)) if n > 1 else 0
        for i in range(n):
            proof = tree.inclusion_proof(i, n)
            assert proof == m.reference_inclusion_proof(i, hashes[:n]), (i, n)
            assert len(proof) <= bound
            assert m.verify_inclusion(hashes[i], i, n, proof, root)


def test_every_consistency_proof_up_to_64_matches_the_rfc_recursion(tree64):
    tree, hashes = tree64
    roots = {n: m.root_from_leaf_hashes(hashes[:n]) for n in range(0, 65)}
    for n in range(1, 65):
        bound = math.ceil(math.log2(n)) + 1
        for old in range(1, n + 1):
            proof = tree.consistency_proof(old, n)
            assert proof == m.reference_consistency_proof(old, hashes[:n]), (old, n)
            assert len(proof) <= bound
            assert m.verify_consistency(old, n, roots[old], roots[n], proof), (old, n)


def test_the_empty_tree_is_consistent_with_every_tree(tree64):
    tree, _ = tree64
    assert tree.consistency_proof(0, 10) == []
    assert m.verify_consistency(0, 10, m.EMPTY_ROOT, tree.root(10), [])
    assert not m.verify_consistency(0, 10, tree.root(1), tree.root(10), [])


def flips(proof):
    """Every proof one bit away, one element dropped, one added, or two swapped."""
    for i, p in enumerate(proof):
        yield proof[:i] + [bytes([p[0] ^ 1]) + p[1:]] + proof[i + 1:]
        yield proof[:i] + proof[i + 1:]
    yield proof + [proof[0] if proof else bytes(32)]
    if len(proof) >= 2:
        yield [proof[1], proof[0]] + proof[2:]


def test_forged_inclusion_proofs_are_rejected(tree64):
    tree, hashes = tree64
    for n in (1, 2, 5, 8, 13, 32, 63, 64):
        root = tree.root(n)
        for i in range(n):
            proof = tree.inclusion_proof(i, n)
            for forged in flips(proof):
                assert not m.verify_inclusion(hashes[i], i, n, forged, root)
            wrong_leaf = hashes[(i + 1) % 64]
            assert not m.verify_inclusion(wrong_leaf, i, n, proof, root)
            assert not m.verify_inclusion(hashes[i], i, n, proof, bytes(32))
            assert not m.verify_inclusion(hashes[i], i, n, proof, tree.root(n - 1) if n > 1 else bytes(32))
            for j in range(n):
                if j != i and m.verify_inclusion(hashes[i], j, n, proof, root):
                    pytest.fail(f"proof for {i} accepted at index {j} (size {n})")
            assert not m.verify_inclusion(hashes[i], n, n, proof, root)  # index out of range


def test_a_leaf_cannot_pose_as_an_interior_node(tree64):
    # Domain separation: an interior node's children, glued together, are not a leaf.
    tree, hashes = tree64
    node = tree.store.get(1, 0)
    assert m.leaf_hash(hashes[0] + hashes[1]) != node
    assert not m.verify_inclusion(m.leaf_hash(hashes[0] + hashes[1]), 0, 32, tree.inclusion_proof(0, 32)[1:], tree.root(32))


def test_forged_consistency_proofs_are_rejected(tree64):
    tree, _ = tree64
    for n in (2, 3, 7, 8, 9, 31, 64):
        for old in range(1, n):
            proof = tree.consistency_proof(old, n)
            r_old, r_new = tree.root(old), tree.root(n)
            for forged in flips(proof):
                assert not m.verify_consistency(old, n, r_old, r_new, forged), (old, n)
            assert not m.verify_consistency(old, n, r_old, bytes(32), proof)
            assert not m.verify_consistency(old, n, bytes(32), r_new, proof)
            assert not m.verify_consistency(old, n, r_new, r_old, proof)
            for other in range(1, n):
                if other != old and tree.root(other) != r_old:
                    assert not m.verify_consistency(other, n, tree.root(other), r_new, proof), (other, old, n)
    # a forked tree: same first 5 leaves, then different
    fork = m.MerkleTree()
    fork.extend([leaf_data(i) for i in range(5)] + [b"forged"] + [leaf_data(i) for i in range(6, 9)])
    proof = fork.consistency_proof(6, 9)
    assert not m.verify_consistency(6, 9, tree.root(6), fork.root(9), proof)
    assert m.verify_consistency(5, 9, tree.root(5), fork.root(9), fork.consistency_proof(5, 9))


def test_equal_sizes_need_equal_roots_and_an_empty_proof(tree64):
    tree, _ = tree64
    assert m.verify_consistency(7, 7, tree.root(7), tree.root(7), [])
    assert not m.verify_consistency(7, 7, tree.root(7), tree.root(8), [])
    assert not m.verify_consistency(7, 7, tree.root(7), tree.root(7), [tree.root(7)])
    assert not m.verify_consistency(8, 7, tree.root(8), tree.root(7), [])


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_random_trees_agree_with_the_reference(data):
    n = data.draw(st.integers(1, 300))
    hashes = [m.leaf_hash(os.urandom(data.draw(st.integers(0, 3)))) for _ in range(n)]
    tree = m.MerkleTree()
    split = data.draw(st.integers(0, n))
    tree.extend_leaf_hashes(hashes[:split])  # appended in two batches
    tree.extend_leaf_hashes(hashes[split:])
    assert tree.root() == m.root_from_leaf_hashes(hashes)
    i = data.draw(st.integers(0, n - 1))
    size = data.draw(st.integers(i + 1, n))
    assert tree.inclusion_proof(i, size) == m.reference_inclusion_proof(i, hashes[:size])
    old = data.draw(st.integers(1, size))
    assert tree.consistency_proof(old, size) == m.reference_consistency_proof(old, hashes[:size])


class CountingStore(m.MemoryNodeStore):
    def __init__(self):
        super().__init__()
        self.reads = 0
        self.written = 0

    def get(self, level, index):
        self.reads += 1
        return super().get(level, index)

    def get_many(self, keys):
        keys = list(keys)
        self.reads += len(keys)
        return {k: m.MemoryNodeStore.get(self, *k) for k in keys}

    def put_many(self, items):
        items = list(items)
        self.written += len(items)
        super().put_many(items)


def test_appends_write_only_the_nodes_they_complete_and_read_nothing():
    store = CountingStore()
    tree = m.MerkleTree(store)
    for i in range(1000):
        before = store.written
        tree.append(leaf_data(i))
        # the leaf plus one node per trailing one-bit of its index
        assert store.written - before == 1 + ((i ^ (i + 1)).bit_length() - 1)
    assert store.reads == 0
    # 1000 leaves make 999 interior nodes at most; each was written once
    assert store.written == sum(1000 >> level for level in range(11))


def test_proofs_and_past_roots_take_logarithmic_lookups():
    store = CountingStore()
    tree = m.MerkleTree(store)
    n = 100_003
    tree.extend_leaf_hashes(m.leaf_hash(i.to_bytes(4, "big")) for i in range(n))
    bound = math.ceil(math.log2(n))
    for size in (1, 2, 3, 1000, 65_537, 99_999, n):
        store.reads = 0
        tree.root(size)
        assert store.reads <= bound
        for i in (0, size // 3, size - 1):
            store.reads = 0
            assert len(tree.inclusion_proof(i, size)) <= bound
            assert store.reads <= 2 * bound
        for old in (1, size // 2, size - 1):
            if old:
                store.reads = 0
                assert len(tree.consistency_proof(old, size)) <= bound + 1
                assert store.reads <= 2 * bound + 2


def test_a_new_tree_object_resumes_from_the_store():
    store = m.MemoryNodeStore()
    first = m.MerkleTree(store)
    first.extend(leaf_data(i) for i in range(37))
    second = m.MerkleTree(store)
    assert second.size == 37 and second.root() == first.root()
    second.extend(leaf_data(i) for i in range(37, 50))
    first.append(leaf_data(50))  # first notices that the store moved on
    assert first.size == 51
    ref = m.MerkleTree()
    ref.extend(leaf_data(i) for i in range(51))
    assert first.root() == ref.root()


def test_memory_store_refuses_gaps_and_rewrites():
    store = m.MemoryNodeStore()
    store.put_many([(0, 0, bytes(32))])
    with pytest.raises(ValueError):
        store.put_many([(0, 2, bytes(32))])
    with pytest.raises(ValueError):
        store.put_many([(0, 0, b"\x01" * 32)])
    store.put_many([(0, 0, bytes(32))])  # idempotent
    with pytest.raises(KeyError):
        store.get(0, 1)


def test_bulk_leaf_append_equals_one_by_one():
    hashes = [m.leaf_hash(leaf_data(i)) for i in range(777)]
    bulk = m.MemoryNodeStore()
    for a, b in ((0, 1), (1, 100), (100, 101), (101, 512), (512, 777)):
        bulk.append_leaf_hashes(b"".join(hashes[a:b]))
    single = m.MemoryNodeStore()
    m.MerkleTree(single).extend_leaf_hashes(hashes)
    assert bulk.levels == single.levels
    assert m.root_at(777, bulk) == m.root_from_leaf_hashes(hashes)


def test_sizes_beyond_the_tree_are_refused(tree64):
    tree, _ = tree64
    with pytest.raises(ValueError):
        tree.root(65)
    with pytest.raises(ValueError):
        tree.inclusion_proof(3, 65)
    with pytest.raises(ValueError):
        tree.inclusion_proof(10, 10)
    with pytest.raises(ValueError):
        tree.consistency_proof(9, 8)


# --- SQL store: SQLite always, PostgreSQL when one answers ---------------------------------------

def _postgres_url() -> str | None:
    url = os.environ.get("CONSULT_TEST_POSTGRES_URL") or "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    try:
        engine = sa.create_engine(url)
        with engine.connect():
            pass
        engine.dispose()
        return url
    except Exception:
        return None


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    if request.param == "sqlite":
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'nodes.db'}")
    else:
        url = _postgres_url()
        if url is None:
            pytest.skip("no PostgreSQL reachable")
        engine = sa.create_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def table_name(engine):
    name = f"test_merkle_nodes_{uuid.uuid4().hex[:10]}"
    yield name
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))


def test_sql_store_matches_memory_and_isolates_trees(engine, table_name):
    with engine.begin() as conn:
        store = m.SqlNodeStore(conn, table_name, "community-a")
        store.create_table()
        tree = m.MerkleTree(store)
        tree.extend(leaf_data(i) for i in range(40))
        other = m.MerkleTree(m.SqlNodeStore(conn, table_name, "community-b"))
        other.extend([b"x", b"y"])
    ref = m.MerkleTree()
    ref.extend(leaf_data(i) for i in range(40))
    with engine.connect() as conn:
        tree = m.MerkleTree(m.SqlNodeStore(conn, table_name, "community-a"))
        assert tree.size == 40 and tree.root() == ref.root()
        for size in (1, 7, 33, 40):
            assert tree.root(size) == ref.root(size)
            assert tree.inclusion_proof(size - 1, size) == ref.inclusion_proof(size - 1, size)
            assert tree.consistency_proof(size // 2, size) == ref.consistency_proof(size // 2, size)
        assert m.MerkleTree(m.SqlNodeStore(conn, table_name, "community-b")).size == 2


def test_sql_appends_roll_back_with_the_callers_transaction(engine, table_name):
    with engine.begin() as conn:
        store = m.SqlNodeStore(conn, table_name, "c")
        store.create_table()
        m.MerkleTree(store).extend([b"a", b"b", b"c"])
    with pytest.raises(RuntimeError):
        with engine.begin() as conn:
            m.MerkleTree(m.SqlNodeStore(conn, table_name, "c")).extend([b"d", b"e"])
            raise RuntimeError("the caller's transaction fails")
    with engine.begin() as conn:
        tree = m.MerkleTree(m.SqlNodeStore(conn, table_name, "c"))
        assert tree.size == 3
        tree.append(b"d")
    ref = m.MerkleTree()
    ref.extend([b"a", b"b", b"c", b"d"])
    with engine.connect() as conn:
        assert m.MerkleTree(m.SqlNodeStore(conn, table_name, "c")).root() == ref.root()


def test_sql_store_refuses_a_second_writer_at_the_same_position(engine, table_name):
    with engine.begin() as conn:
        store = m.SqlNodeStore(conn, table_name, "c")
        store.create_table()
        m.MerkleTree(store).extend([b"a"])
    with engine.connect() as conn:
        store = m.SqlNodeStore(conn, table_name, "c")
        with pytest.raises(sa.exc.IntegrityError):
            store.put_many([(0, 0, m.leaf_hash(b"forged"))])
        conn.rollback()
