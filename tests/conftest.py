import os

import pytest

from tests.harness import Platform

BACKENDS = [b.strip() for b in os.environ.get("CONSULT_TEST_BACKENDS", "sqlite,postgres").split(",") if b.strip()]


@pytest.fixture(scope="session", params=BACKENDS)
def platform(request):
    p = Platform(request.param).setup()
    try:
        p.start()
        yield p
    finally:
        p.teardown()
