"""`consult bench`'s arguments that are refused before anything starts (bench/platform.py, main)."""
from __future__ import annotations

from argparse import Namespace

import pytest

from bench.platform import Sizes, main, scaled, with_clients
from services.cli.rpc import CliError


def args(**given) -> Namespace:
    base = dict(faults=False, restart_broker=False, only="votes", scale=0.5, quick=False, cells="0", busy_cells=None,
                replicas="", backend="postgres", json=None, clients=None)
    return Namespace(**{**base, **given})


@pytest.mark.parametrize("given, refusal", [
    ({"replicas": "gateway"}, "not a stage service or the directory: gateway"),
    ({"replicas": "decisions,nonesuch"}, "nonesuch"),
    ({"replicas": "decisions", "cells": "1"}, "without cells only"),
    ({"cells": "1", "only": "votes,supports"}, "only the votes group"),
    ({"clients": "5,x"}, "client counts from 1 to 500"),
    ({"clients": "0"}, "client counts from 1 to 500"),
])
def test_what_cannot_be_benchmarked_is_refused_before_the_platform_boots(given, refusal):
    with pytest.raises(CliError, match=refusal):
        main(args(**given))


def test_other_client_counts_get_the_full_run_s_requests_or_a_hundred_per_client():
    sizes = scaled(with_clients(Sizes(), "1,5,10,50,30"), 0.5)
    assert sizes.clients == (1, 5, 10, 50, 30)
    assert sizes.ops == {1: 100, 5: 250, 10: 500, 50: 1000, 30: 1000}
