"""The gateway writes no enumeration of its own (issue 16): the values a route's schema allows are the
owning service's constants (services/contracts/<service>.py, which the service's domain imports too),
so a status added in a stage cannot be missing from the API, nor the other way round.

Read from the source (every gateway module's AST): an `"enum"` whose value is a list or tuple literal
with a string in it (`{"enum": ["open", "closed"]}`, `dict(S, enum=("a", "b"))`), or a name the module
binds to such a literal, is refused. `list(STATUSES)`, `[audit.CHECKPOINT]`, `[*OUTCOMES, None]` pass.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = ROOT / "services" / "gateway"


def _literal_of_strings(node: ast.AST) -> bool:
    """A list or tuple written out with at least one string in it."""
    return isinstance(node, (ast.List, ast.Tuple)) and any(
        isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts)


def inline_enums(source: str, filename: str) -> list[str]:
    """`file:line` of every enumeration written out in `source`."""
    tree = ast.parse(source, filename=filename)
    bound = {}  # module-level names bound to a literal of strings
    for node in tree.body:
        if isinstance(node, ast.Assign) and _literal_of_strings(node.value):
            bound.update({t.id: node.value for t in node.targets if isinstance(t, ast.Name)})

    def written_out(value: ast.AST) -> bool:
        return _literal_of_strings(value) or (isinstance(value, ast.Name) and value.id in bound)

    lines = []
    for node in ast.walk(tree):
        values = []
        if isinstance(node, ast.Dict):
            values = [v for k, v in zip(node.keys, node.values)
                      if isinstance(k, ast.Constant) and k.value == "enum"]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict":
            values = [k.value for k in node.keywords if k.arg == "enum"]
        lines += [v.lineno for v in values if written_out(v)]
    return [f"{filename}:{line}" for line in sorted(lines)]


def test_the_gateway_writes_out_no_enumeration():
    modules = sorted(GATEWAY.glob("*.py"))
    assert any(p.name.startswith("routes_") for p in modules)
    found = [hit for path in modules
             for hit in inline_enums(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))]
    assert found == [], ("enumerations written out in the gateway; name them once in "
                         "services/contracts/<service>.py and use list(CONSTANT): " + ", ".join(found))


def test_the_scan_sees_a_written_out_enumeration():
    snippet = '\n'.join([
        'from services.contracts.actions import PLAN_STATUSES, RATINGS',
        'A = {"type": "string", "enum": ["open", "closed"]}',
        'B = {"properties": {"x": {"enum": ("a", "b")}}}',
        'C = dict(A, enum=["c"])',
        'ROLES = ["resident", "expert"]',
        'D = {"enum": ROLES}',
        'E = {"enum": [None, "x"]}',
        'OK = [{"enum": list(PLAN_STATUSES)}, {"enum": [RATINGS[0]]}, {"enum": [*RATINGS, None]},',
        '      {"enum": sorted(RATINGS)}, {"const": "x"}, {"description": ["enum", "words"]}]',
    ])
    assert inline_enums(snippet, "services/gateway/routes_x.py") == [
        f"services/gateway/routes_x.py:{line}" for line in (2, 3, 4, 6, 7)]
