"""What may import what, read from the source (every module's AST), so the boundaries between
services cannot erode one convenient import at a time:

- a domain module (`services/*/domain.py`) imports no nameko, kombu, SQLAlchemy or psycopg, and
  loading one does not load them either: aggregates are plain Python with guards, no I/O;
- no service imports another service's modules: what services share is `services.contracts`
  (event contracts, the constants the gateway needs), `services.common` (plumbing) and `rules`
  (the pure counting rules). A service's CLI plugin (`<service>/cli.py`) may import the CLI's
  plugin interface (`services.cli`), which is the command line, not a service;
- `services.common` imports no service (the contracts are none: the directory client sends the
  communities contract's declared calls); `services.contracts` imports nothing of `services` but
  itself, and no framework; `rules` imports nothing of `services`.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = {"common", "contracts"}
SERVICES = sorted(p.parent.name for p in (ROOT / "services").glob("*/service.py"))
FRAMEWORKS = {"nameko", "kombu", "sqlalchemy", "psycopg", "psycopg2", "eventlet"}


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in `path`; `from a import b` counts as both
    `a` and `a.b` (b may be a module); relative imports are resolved against the file's package."""
    package = list(path.relative_to(ROOT).with_suffix("").parts[:-1])
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            out.append((node.lineno, module))
            out += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return out


def modules(*parts: str) -> list[Path]:
    return sorted((ROOT.joinpath(*parts)).rglob("*.py"))


def services_part(name: str) -> str | None:
    """'services.proposals.domain' -> 'proposals'; None for anything outside `services`."""
    bits = name.split(".")
    return bits[1] if bits[0] == "services" and len(bits) > 1 else None


def where(path: Path, line: int, name: str) -> str:
    return f"{path.relative_to(ROOT)}:{line} imports {name}"


def test_the_walk_sees_every_service_and_resolves_relative_imports():
    assert {"communities", "proposals", "deliberation", "decisions", "actions", "notifications", "audit",
            "gateway"} <= set(SERVICES)
    names = {n for _, n in imports(ROOT / "services" / "audit" / "replay.py")}
    assert "services.audit.checkpoints" in names and "services.contracts" in names and "rules.record" in names


@pytest.mark.parametrize("service", SERVICES)
def test_no_service_imports_another_service(service):
    found = []
    for path in modules("services", service):
        for line, name in imports(path):
            other = services_part(name)
            if other in (None, service) or other in SHARED or other == "__init__":
                continue
            if other == "cli" and path.name == "cli.py":
                continue  # a CLI plugin speaks the command line's plugin interface
            found.append(where(path, line, name))
    assert found == []


def test_domain_modules_import_no_framework_or_driver():
    found = [where(path, line, name) for path in sorted((ROOT / "services").glob("*/domain.py"))
             for line, name in imports(path) if name.split(".")[0] in FRAMEWORKS]
    assert found == []
    domains = [f"services.{p.parent.name}.domain" for p in sorted((ROOT / "services").glob("*/domain.py"))]
    assert len(domains) >= 6
    code = ("import importlib, sys\n"
            f"for m in {domains!r}: importlib.import_module(m)\n"
            f"print(','.join(sorted({{k.split('.')[0] for k in sys.modules}} & set({sorted(FRAMEWORKS)!r}))))")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout.strip()
    assert loaded == "", f"loading the domain modules loads {loaded}"


def test_common_imports_no_service():
    found = [where(path, line, name) for path in modules("services", "common") for line, name in imports(path)
             if services_part(name) not in (None, "common", "contracts", "__init__")]
    assert found == []


def test_contracts_import_only_themselves_and_the_standard_library():
    allowed = set(sys.stdlib_module_names) | {"services"}
    found = []
    for path in modules("services", "contracts"):
        for line, name in imports(path):
            if name.split(".")[0] not in allowed or services_part(name) not in (None, "contracts"):
                found.append(where(path, line, name))
    assert found == []


def test_rules_import_nothing_of_services():
    found = [where(path, line, name) for path in modules("rules") for line, name in imports(path)
             if name.split(".")[0] == "services"]
    assert found == []


def test_a_violation_is_seen(tmp_path, monkeypatch):
    """The walk would catch the import this issue removed (the gateway reading a stage's domain)."""
    fake = ROOT / "services" / "gateway" / "routes_proposals.py"
    text = fake.read_text(encoding="utf-8").replace("services.contracts.proposals", "services.proposals.domain")
    copy = tmp_path / "services" / "gateway" / "routes_proposals.py"
    copy.parent.mkdir(parents=True)
    copy.write_text(text, encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert any(n.startswith("services.proposals.domain") for _, n in imports(copy))
    with pytest.raises(AssertionError, match="services.proposals.domain"):
        test_no_service_imports_another_service("gateway")
