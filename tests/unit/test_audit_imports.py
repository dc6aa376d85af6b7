"""The counting rules are one pure module that the decisions service and the audit replay both
import — the one sanctioned shared domain module — and neither service imports the other."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(service: str) -> dict[str, set[str]]:
    """Every module each file of services/<service>/ imports (absolute names; relative imports
    resolved within the package)."""
    out = {}
    for path in sorted((ROOT / "services" / service).glob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = f"services.{service}" if node.level else ""
                module = ".".join(p for p in (base, node.module or "") if p)
                names.add(module)
                names |= {f"{module}.{alias.name}" for alias in node.names}
        out[path.name] = names
    return out


def uses(modules: dict[str, set[str]], prefix: str) -> list[str]:
    return sorted(f for f, names in modules.items() if any(n == prefix or n.startswith(prefix + ".") for n in names))


def test_decisions_and_audit_both_import_the_rules_and_neither_imports_the_other():
    decisions, audit = imported_modules("decisions"), imported_modules("audit")
    assert uses(decisions, "rules"), "the decisions service counts with the rules module"
    assert uses(audit, "rules") == ["replay.py"], "the audit replay recounts with the same module"
    assert uses(decisions, "services.audit") == []
    assert uses(audit, "services.decisions") == []


def test_loading_either_side_does_not_load_the_other():
    code = ("import sys, importlib; importlib.import_module(sys.argv[1]); "
            "print(','.join(sorted(m for m in sys.modules if m.split('.')[:2] in "
            "(['services', 'audit'], ['services', 'decisions']) or m == 'rules')))")
    loaded = {}
    for module in ("services.audit.replay", "services.audit.service", "services.decisions.application"):
        out = subprocess.run([sys.executable, "-c", code, module], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.strip().split(",")
        loaded[module] = set(out)
    assert "rules" in loaded["services.audit.replay"] and "rules" in loaded["services.decisions.application"]
    assert not any(m.startswith("services.decisions") for m in loaded["services.audit.replay"] | loaded["services.audit.service"])
    assert not any(m.startswith("services.audit") for m in loaded["services.decisions.application"])


def test_the_rules_package_is_pure():
    """No I/O, no framework, no service: it imports only the standard library and itself."""
    allowed = set(sys.stdlib_module_names) | {"rules"}
    for path in sorted((ROOT / "rules").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = {"rules"} if node.level else {(node.module or "").split(".")[0]}
            else:
                continue
            assert roots <= allowed, f"{path.name} imports {roots - allowed}"
