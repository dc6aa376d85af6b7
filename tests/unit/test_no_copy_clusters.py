"""A clone detector over `services/` and `rules/` (issue 16, "Show it": a clone detector run over the
tree finds none of the copy clusters the issue names).

Read from the source (every module's AST), nothing imported. Two kinds of detector:

- one per copy cluster the issue names, each finding every *definition* of that thing: a function
  that unwraps our {"ok", "result"|"problem"} RPC reply, a function that parses a UUID id (tries
  uuid.UUID, catches what a bad one raises), a canonical JSON encoder (json.dumps/JSONEncoder with
  sorted keys and compact separators, or with sorted keys in a function that hashes or signs), an
  advisory-lock helper (PostgreSQL advisory locks or flock), a `Caller` class (or any class with
  `holds`), a `_save` that maps IntegrityError to Conflict, an Application `__init__` that builds
  engine, content store and read model itself, and a module of a stage service that asks the
  directory (communities) over RPC;
- a generic one: every function body normalised (identifiers and constants replaced, docstrings
  dropped, `ast.dump`), and any normalised body of at least MIN_STATEMENTS statements that occurs in
  two different packages (`services/<name>`, `rules`) reported.

Each cluster has its one allowed home (ONE). What the tree still holds beyond that is listed in
KNOWN, one line each with why it is a copy; a new definition anywhere fails, and so does a KNOWN
entry that is gone (take it off the list: the allowlist only shrinks). NOT_COPIES lists hits judged
not to be copies, with the reason.
"""
from __future__ import annotations

import ast
import copy
import textwrap
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MIN_STATEMENTS = 8

# ---- the allowlists --------------------------------------------------------------------------------------

# cluster -> the one place it is defined (relative path:qualified name)
ONE = {
    "reply-unwrap": {"services/common/errors.py:unwrap"},
    "id-parser": {"services/common/ids.py:as_uuid"},  # parse_id answers NotFound through it
    "canonical-json": {"rules/canonical.py:<module>"},
    # one module: a transaction's advisory lock (KeyedLocks per key takes it on its own connection,
    # a shared read model in its own transaction), SessionLock (held until released: the relay's
    # and the sender's lease, table creation) and the flock try they share, one key hash
    "advisory-lock": {"services/common/locks.py:take_transaction_turn", "services/common/locks.py:KeyedLocks",
                      "services/common/locks.py:SessionLock", "services/common/locks.py:_try_flock"},
    "caller": {"services/common/caller.py:Caller"},
    "save-conflict": {"services/common/store.py:ServiceApplication.save_or_conflict"},
    "app-init": {"services/common/store.py:StageApplication.__init__"},
    "directory-client": {"services/common/directory.py:Directory"},
}

# cluster -> {location: why it is (still) a copy}. Real copies of the clusters issue 16 names,
# present in main today and not this file's to fix.
KNOWN = {
    "canonical-json": {
        "services/common/idempotency.py:request_key":
            "json.dumps(sort_keys=True, default=str) of the RPC arguments, hashed into the request key; kept "
            "on purpose: canonical JSON would re-key every recorded request, so a client retrying across an "
            "upgrade with its Idempotency-Key would have its command run twice",
    },
}

# cluster -> {location: why the hit is not a copy}
NOT_COPIES: dict[str, dict[str, str]] = {}

# Generic detector: pairs of functions whose normalised bodies are identical across packages and are
# not copies, as frozenset({location, location}) -> why.
GENERIC_NOT_COPIES: dict[frozenset, str] = {}

# ---- reading the tree ------------------------------------------------------------------------------------


def tree_sources() -> dict[str, str]:
    """relative path -> source of every module of services/ and rules/."""
    paths = sorted([*ROOT.glob("services/**/*.py"), *ROOT.glob("rules/**/*.py")])
    return {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8") for p in paths}


def package(path: str) -> str:
    """'services/actions/service.py' -> 'services/actions'; 'rules/x.py' -> 'rules'."""
    parts = path.split("/")
    return "/".join(parts[:2]) if parts[0] == "services" and len(parts) > 2 else parts[0]


def definitions(tree: ast.Module):
    """(qualified name, node) of every function and class, nested ones too."""
    out = []

    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                out.append((name, child))
                walk(child, name + ".")
            elif not isinstance(child, ast.Lambda):
                walk(child, prefix)

    walk(tree, "")
    return out


def _call_name(node: ast.AST) -> str:
    """'json.dumps' for json.dumps(...), 'dumps' for dumps(...), '' otherwise."""
    if not isinstance(node, ast.Call):
        return ""
    f = node.func
    if isinstance(f, ast.Name):
        return f.id
    parts = []
    while isinstance(f, ast.Attribute):
        parts.append(f.attr)
        f = f.value
    if isinstance(f, ast.Name):
        parts.append(f.id)
    return ".".join(reversed(parts))


def _const(node, *values) -> bool:
    return isinstance(node, ast.Constant) and node.value in values


def _own_nodes(fn: ast.AST):
    """The nodes of a function's own body: nested functions and classes are definitions of their own."""
    stack = list(ast.iter_child_nodes(fn))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            stack.extend(ast.iter_child_nodes(node))


# ---- the named clusters ----------------------------------------------------------------------------------


def _reads_key(nodes, key: str) -> bool:
    """Whether `key` is read off a mapping: x[key], x.get(key), key in x."""
    for n in nodes:
        if isinstance(n, ast.Subscript) and _const(n.slice, key) and isinstance(n.ctx, ast.Load):
            return True
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "get" and n.args \
                and _const(n.args[0], key):
            return True
        if isinstance(n, ast.Compare) and _const(n.left, key) and any(isinstance(o, (ast.In, ast.NotIn))
                                                                      for o in n.ops):
            return True
    return False


def reply_unwrappers(path, tree):
    for name, node in definitions(tree):
        if isinstance(node, ast.ClassDef):
            continue
        nodes = list(_own_nodes(node))
        if _reads_key(nodes, "ok") and (_reads_key(nodes, "result") or _reads_key(nodes, "problem")):
            yield f"{path}:{name}"


_BAD_ID_ERRORS = {"ValueError", "TypeError", "AttributeError"}


def _handler_names(handler: ast.ExceptHandler) -> set[str]:
    t = handler.type
    elts = t.elts if isinstance(t, ast.Tuple) else [t] if t is not None else []
    return {e.id if isinstance(e, ast.Name) else getattr(e, "attr", "") for e in elts}


def id_parsers(path, tree):
    """Functions that parse an id: a try whose body calls uuid.UUID(...) (or UUID(...)) on a value and
    whose handler catches what a bad id raises. A UUID built from bytes or a constant is no parsing."""
    for name, node in definitions(tree):
        if isinstance(node, ast.ClassDef):
            continue
        for t in _own_nodes(node):
            if not isinstance(t, ast.Try) or not any(_handler_names(h) & _BAD_ID_ERRORS for h in t.handlers):
                continue
            calls = [c for s in t.body for c in ast.walk(s) if _call_name(c) in ("uuid.UUID", "UUID")]
            if any(c.args and not isinstance(c.args[0], ast.Constant) for c in calls):
                yield f"{path}:{name}"
                break


def _kw(call: ast.Call, name: str):
    return next((k.value for k in call.keywords if k.arg == name), None)


def canonical_encoders(path, tree):
    """json.dumps / json.JSONEncoder / JSONEncoder calls with sort_keys=True and separators (",", ":"),
    or with sort_keys=True inside a function that hashes or signs. Module level counts as <module>."""
    scopes = [("<module>", tree)] + [(n, d) for n, d in definitions(tree) if not isinstance(d, ast.ClassDef)]
    for name, scope in scopes:
        nodes = list(_own_nodes(scope)) if name != "<module>" else [
            n for stmt in tree.body if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            for n in ast.walk(stmt)]
        hashes = any(_call_name(n).split(".")[0] in ("hashlib", "hmac") or _call_name(n).startswith(
            ("sha256", "blake2b", "sha1", "md5")) for n in nodes)
        for n in nodes:
            if _call_name(n).split(".")[-1] not in ("dumps", "JSONEncoder", "dump"):
                continue
            sort_keys, sep = _kw(n, "sort_keys"), _kw(n, "separators")
            if not _const(sort_keys, True):
                continue
            compact = isinstance(sep, ast.Tuple) and [getattr(e, "value", None) for e in sep.elts] == [",", ":"]
            if compact or hashes:
                yield f"{path}:{name}"
                break


_ADVISORY = ("pg_advisory_lock", "pg_try_advisory_lock", "pg_advisory_xact_lock", "pg_try_advisory_xact_lock")


def advisory_locks(path, tree):
    """The outermost definition (class or function) that takes a PostgreSQL advisory lock or an flock."""
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for n in ast.walk(node):
            sql = isinstance(n, ast.Constant) and isinstance(n.value, str) and any(a in n.value for a in _ADVISORY)
            if sql or _call_name(n) in ("fcntl.flock", "flock", "fcntl.lockf"):
                yield f"{path}:{node.name}"
                break


def callers(path, tree):
    for name, node in definitions(tree):
        if isinstance(node, ast.ClassDef) and (node.name.endswith("Caller") or any(
                isinstance(b, (ast.FunctionDef, ast.AsyncFunctionDef)) and b.name == "holds" for b in node.body)):
            yield f"{path}:{name}"


def save_conflicts(path, tree):
    """A function named *save* whose `except IntegrityError` raises Conflict."""
    for name, node in definitions(tree):
        if isinstance(node, ast.ClassDef) or "save" not in node.name:
            continue
        for t in _own_nodes(node):
            if isinstance(t, ast.Try) and any("IntegrityError" in _handler_names(h) and any(
                    isinstance(r, ast.Raise) and "Conflict" in ast.dump(r) for r in ast.walk(h)) for h in t.handlers):
                yield f"{path}:{name}"
                break


def app_inits(path, tree):
    """An __init__ that builds engine, content store and read model itself (the five-fold copy)."""
    for name, node in definitions(tree):
        if isinstance(node, ast.ClassDef) or node.name != "__init__":
            continue
        assigned = {t.attr for s in node.body if isinstance(s, ast.Assign) for t in s.targets
                    if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"}
        if {"engine", "content", "projection"} <= assigned:
            yield f"{path}:{name}"


STAGE_SKIP = {"services/communities", "services/gateway", "services/cli", "services/web", "services/common",
              "services/contracts", "rules"}


def directory_clients(path, tree):
    """A module of a stage service (not the directory itself, nor the gateway or CLI, which call every
    service through their one client) that names the communities service as an RPC target; in
    services/common, the top-level definition that does (the one shared client)."""
    common = package(path) == "services/common"
    if package(path) in STAGE_SKIP and not common:
        return
    for name, node in ([(d.name, d) for d in tree.body if isinstance(d, (ast.ClassDef, ast.FunctionDef))]
                       if common else [(None, tree)]):
        for n in ast.walk(node):
            if isinstance(n, ast.Call) and _call_name(n).split(".")[-1] in ("RpcProxy", "rpc", "rpc_or_none",
                                                                             "partial"):
                if any(_const(a, "communities") for a in n.args):
                    yield f"{path}:{name}" if common else path
                    break


DETECTORS = {
    "reply-unwrap": reply_unwrappers,
    "id-parser": id_parsers,
    "canonical-json": canonical_encoders,
    "advisory-lock": advisory_locks,
    "caller": callers,
    "save-conflict": save_conflicts,
    "app-init": app_inits,
    "directory-client": directory_clients,
}


def find_clusters(sources: dict[str, str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {c: [] for c in DETECTORS}
    for path, text in sources.items():
        tree = ast.parse(text, filename=path)
        for cluster, detect in DETECTORS.items():
            found[cluster].extend(detect(path, tree))
    return found


# ---- the generic detector --------------------------------------------------------------------------------


class _Anonymise(ast.NodeTransformer):
    """Every identifier and constant replaced: what is left is the shape of the code."""

    def visit_Name(self, node):
        return ast.copy_location(ast.Name(id="_", ctx=node.ctx), node)

    def visit_arg(self, node):
        return ast.copy_location(ast.arg(arg="_", annotation=None), node)

    def visit_Attribute(self, node):
        self.generic_visit(node)
        node.attr = "_"
        return node

    def visit_keyword(self, node):
        self.generic_visit(node)
        node.arg = "_" if node.arg is not None else None
        return node

    def visit_Constant(self, node):
        return ast.copy_location(ast.Constant(value=type(node.value).__name__), node)

    def visit_FunctionDef(self, node):
        self.generic_visit(node)
        node.name, node.returns, node.decorator_list = "_", None, []
        return node

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node):
        self.generic_visit(node)
        node.name = "_"
        return node

    def visit_alias(self, node):
        return ast.alias(name="_", asname=None)


def _body(fn) -> list[ast.stmt]:
    body = list(fn.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]  # the docstring
    return body


def statement_count(body: list[ast.stmt]) -> int:
    return sum(isinstance(n, ast.stmt) for s in body for n in ast.walk(s))


def normalised(fn) -> str:
    body = [_Anonymise().visit(copy.deepcopy(s)) for s in _body(fn)]
    return "\n".join(ast.dump(s, annotate_fields=False, include_attributes=False) for s in body)


def generic_clones(sources: dict[str, str], min_statements: int = MIN_STATEMENTS) -> list[tuple[str, ...]]:
    """Groups of locations (in two or more packages) whose function bodies normalise alike."""
    shapes: dict[str, list[str]] = defaultdict(list)
    for path, text in sources.items():
        for name, node in definitions(ast.parse(text, filename=path)):
            if isinstance(node, ast.ClassDef) or statement_count(_body(node)) < min_statements:
                continue
            shapes[normalised(node)].append(f"{path}:{name}")
    return sorted(tuple(sorted(where)) for where in shapes.values()
                  if len({package(w.split(":")[0]) for w in where}) > 1)


# ---- the tests -------------------------------------------------------------------------------------------


def _unexpected_and_stale(found: dict[str, list[str]]):
    unexpected, stale = {}, {}
    for cluster, hits in found.items():
        allowed = ONE[cluster] | set(KNOWN.get(cluster, {})) | set(NOT_COPIES.get(cluster, {}))
        if extra := sorted(set(hits) - allowed):
            unexpected[cluster] = extra
        gone = sorted((ONE[cluster] | set(KNOWN.get(cluster, {})) | set(NOT_COPIES.get(cluster, {}))) - set(hits))
        if gone:
            stale[cluster] = gone
    return unexpected, stale


def test_no_named_copy_cluster_grows():
    """Each cluster the issue names: its one home, the listed copies, and nothing else. A listed copy
    that has gone must come off the list."""
    unexpected, stale = _unexpected_and_stale(find_clusters(tree_sources()))
    assert unexpected == {}, f"a new copy of a cluster issue 16 names (use the one in ONE): {unexpected}"
    assert stale == {}, f"gone from the tree: take them off KNOWN/NOT_COPIES/ONE: {stale}"


def test_no_function_is_copied_between_packages():
    clones = [c for c in generic_clones(tree_sources())
              if not any(pair <= set(c) for pair in GENERIC_NOT_COPIES)]
    assert clones == [], "identical functions (names and constants aside) in two packages: " + repr(clones)


def test_every_known_copy_says_why():
    for cluster, entries in [*KNOWN.items(), *NOT_COPIES.items()]:
        assert cluster in DETECTORS
        assert all(reason.strip() for reason in entries.values()), cluster


# ---- the detectors can fail --------------------------------------------------------------------------------

SYNTHETIC = {
    "services/alpha/service.py": '''
        import functools, hashlib, json, uuid, fcntl
        from nameko.rpc import RpcProxy
        from eventsourcing.persistence import IntegrityError

        def my_unwrap(reply):
            if reply.get("ok"):
                return reply["result"]
            raise RuntimeError(reply["problem"])

        def as_id(v):
            try:
                return uuid.UUID(str(v))
            except ValueError:
                raise LookupError(v)

        def key(args):
            return hashlib.sha256(json.dumps(args, sort_keys=True).encode()).hexdigest()

        def compact(v):
            return json.dumps(v, sort_keys=True, separators=(",", ":"))

        class Mutex:
            def take(self, conn, k):
                conn.execute("SELECT pg_try_advisory_lock(%s)", (k,))

        class Who:
            def holds(self, *roles):
                return True

        class App:
            def __init__(self, settings, engine):
                self.engine = engine
                self.content = object()
                self.projection = object()

            def _save(self, *aggs):
                try:
                    self.save(*aggs)
                except IntegrityError:
                    raise Conflict("taken")

        class Service:
            communities = RpcProxy("communities")

        def tally(rows, limit):
            total, seen = 0, set()
            for row in rows:
                if row["id"] in seen:
                    continue
                seen.add(row["id"])
                total += row["n"]
                if total > limit:
                    break
            out = {"total": total}
            out["seen"] = len(seen)
            return out
    ''',
    "services/beta/application.py": '''
        import uuid

        def count_them(items, cap):
            """The same function under other names and constants."""
            s, known = 1, set()
            for it in items:
                if it["key"] in known:
                    continue
                known.add(it["key"])
                s += it["weight"]
                if s > cap:
                    break
            res = {"sum": s}
            res["known"] = len(known)
            return res

        def fine(v):
            return uuid.UUID(bytes=b"0" * 16)

        def short(a):
            return a + 1
    ''',
}


def test_the_detectors_see_a_synthetic_copy_of_each_cluster():
    sources = {p: textwrap.dedent(t) for p, t in SYNTHETIC.items()}
    found = find_clusters(sources)
    a = "services/alpha/service.py"
    assert found == {
        "reply-unwrap": [f"{a}:my_unwrap"],
        "id-parser": [f"{a}:as_id"],
        "canonical-json": [f"{a}:key", f"{a}:compact"],
        "advisory-lock": [f"{a}:Mutex"],
        "caller": [f"{a}:Who"],
        "save-conflict": [f"{a}:App._save"],
        "app-init": [f"{a}:App.__init__"],
        "directory-client": [a],
    }
    unexpected, _ = _unexpected_and_stale(found)
    assert set(unexpected) == set(DETECTORS), "every one of them would fail the tree's test"


def test_the_generic_detector_sees_a_function_copied_into_another_package():
    sources = {p: textwrap.dedent(t) for p, t in SYNTHETIC.items()}
    assert generic_clones(sources) == [("services/alpha/service.py:tally", "services/beta/application.py:count_them")]
    # the same two in one package are no cross-package copy; below the size limit nothing is reported
    same_package = {"services/alpha/a.py": sources["services/alpha/service.py"],
                    "services/alpha/b.py": sources["services/beta/application.py"]}
    assert generic_clones(same_package) == []
    assert generic_clones(sources, min_statements=100) == []
    # a changed shape (one statement more) is no clone
    changed = dict(sources)
    changed["services/beta/application.py"] = sources["services/beta/application.py"].replace(
        'res["known"] = len(known)', 'res["known"] = len(known)\n    res["x"] = 1')
    assert generic_clones(changed) == []
