"""Import every routes_*.py module of the gateway, so each stage adds its routes in its own file."""
from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path


def load_all() -> list[str]:
    names = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if m.name.startswith("routes_")
                   and m.name != "routes_load")
    for name in names:
        importlib.import_module(f"services.gateway.{name}")
    return names
