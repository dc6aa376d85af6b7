import http
import http.server
import os
import sys

import pytest

# nameko.web imports eventlet.wsgi, whose green import of http.server leaves `http.server` (in
# sys.modules and as the package's attribute) a copy bound to eventlet's green sockets. A test's
# webhook receiver built on that copy, serving from a real thread, hangs the test run. Let nameko
# make its copy now, then put the real module back for everything imported after this file.
_REAL_HTTP_SERVER = http.server
import nameko.web.handlers  # noqa: E402,F401

sys.modules["http.server"] = _REAL_HTTP_SERVER
http.server = _REAL_HTTP_SERVER

from tests.harness import running

BACKENDS = [b.strip() for b in os.environ.get("CONSULT_TEST_BACKENDS", "sqlite,postgres").split(",") if b.strip()]


@pytest.fixture(scope="session", params=BACKENDS)
def platform(request):
    with running(request.param) as p:
        yield p
