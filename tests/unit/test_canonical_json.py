"""One canonical JSON encoder (rules/canonical.py, found by services in services.common.canonical):
envelopes, checkpoints, the export's text lines and its verification, webhook bodies, the roll's
fingerprint and seals all encode with it, and no module builds a sorted compact encoder of its own."""
from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import pytest

from rules import hashing
from services.audit import checkpoints, export, verify
from services.common import envelope
from services.common.canonical import canonical_bytes, canonical_text
from services.notifications import channels

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = {"b": [1, "二", None, True], "a": {"z": "x\"y", "é": "\u2028"}, "n": 12}


def test_the_encoding():
    assert canonical_text(SAMPLE) == '{"a":{"z":"x\\"y","é":"\u2028"},"b":[1,"二",null,true],"n":12}'
    assert canonical_bytes(SAMPLE) == canonical_text(SAMPLE).encode("utf-8")
    assert canonical_text(SAMPLE) == json.dumps(SAMPLE, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    with pytest.raises(ValueError):
        canonical_text({"x": math.nan})


def test_every_user_encodes_alike():
    expected = canonical_bytes(SAMPLE)
    assert envelope.canonical(SAMPLE) == expected
    assert checkpoints.canonical(SAMPLE) == expected
    assert export.text_line(SAMPLE) == expected
    assert channels.canonical_json(SAMPLE) == expected
    assert hashing.canonical_value_json(SAMPLE).encode("utf-8") == expected
    assert verify._parse(expected) == (verify.ENTRY, SAMPLE, None)


def _own_encoders(path: Path) -> list[int]:
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            kw = {k.arg: k.value for k in node.keywords}
            sep = kw.get("separators")
            if isinstance(kw.get("sort_keys"), ast.Constant) and kw["sort_keys"].value is True and \
                    isinstance(sep, ast.Tuple) and [getattr(e, "value", None) for e in sep.elts] == [",", ":"]:
                lines.append(node.lineno)
    return lines


def test_no_module_builds_its_own_canonical_encoder():
    found = {str(p.relative_to(ROOT)): lines for p in sorted([*ROOT.glob("services/**/*.py"), *ROOT.glob("rules/*.py")])
             if (lines := _own_encoders(p))}
    assert list(found) == ["rules/canonical.py"], found
