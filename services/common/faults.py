"""Fault injection for the reliability tests, active only in test mode.

CONSULT_FAULTS_FILE names a JSON file: a list of {"consumer", "type", "aggregate"} matchers. A
consumer handling a matching event raises, as a buggy handler would. Outside test mode nothing
is read, so production cannot be made to fail this way.
"""
from __future__ import annotations

import json
import os


class InjectedFault(RuntimeError):
    pass


def check(consumer: str, env: dict) -> None:
    from .config import test_mode

    if not test_mode():
        return
    path = os.environ.get("CONSULT_FAULTS_FILE")
    if not path or not os.path.exists(path):
        return
    try:
        with open(path, encoding="utf-8") as f:
            rules = json.load(f)
    except (OSError, ValueError):
        return
    for rule in rules:
        if all(rule.get(k) in (None, v) for k, v in (
            ("consumer", consumer), ("type", env.get("type")), ("aggregate", env.get("aggregate", {}).get("id")),
            ("community", env.get("community")),
        )):
            raise InjectedFault(f"injected fault for {consumer} on {env.get('type')}@{env.get('position')}")
