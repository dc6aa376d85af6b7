"""`consult bench`'s arguments that are refused before anything starts (bench/platform.py, main)."""
from __future__ import annotations

from argparse import Namespace

import pytest

from bench.platform import main
from services.cli.rpc import CliError


def args(**given) -> Namespace:
    base = dict(faults=False, restart_broker=False, only="votes", scale=0.5, quick=False, cells="0", busy_cells=None,
                replicas="", backend="postgres", json=None)
    return Namespace(**{**base, **given})


@pytest.mark.parametrize("given, refusal", [
    ({"replicas": "gateway"}, "not a stage service or the directory: gateway"),
    ({"replicas": "decisions,nonesuch"}, "nonesuch"),
    ({"replicas": "decisions", "cells": "1"}, "without cells only"),
    ({"cells": "1", "only": "votes,supports"}, "only the votes group"),
])
def test_what_cannot_be_benchmarked_is_refused_before_the_platform_boots(given, refusal):
    with pytest.raises(CliError, match=refusal):
        main(args(**given))
