"""Regressions of issue 12 not shown elsewhere, over HTTP on both backends (the session platform):

8. evidence files: the media type is read from the bytes against an allow-list of photo and
   document formats; HTML (or SVG, or a script) is refused whatever type the uploader claims, and
   a declared type the bytes do not show is refused too. A refused file is neither stored nor
   served, and nothing enters any log.

The map of every finding of the issue to the test that shows it is in docs/security.md.
"""
from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from tests.integration.proposals_world import Neighbourhood
from tests.integration.test_tenancy import heads, problem_of, quiet_audit

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR the new drain cover"
HOSTILE = (
    (b"<!DOCTYPE html><html><script>fetch('/api/v1/me')</script></html>", None),
    (b"<!DOCTYPE html><html><script>fetch('/api/v1/me')</script></html>", "text/html"),
    (b"<!DOCTYPE html><html><script>fetch('/api/v1/me')</script></html>", "image/jpeg"),
    (b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>", "image/svg+xml"),
    (b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>", "image/png"),
    (PNG, "text/html"),  # a real photo, claimed as HTML: the claim is refused, not believed
    (PNG, "image/jpeg"),
)


def upload(n, data: bytes, media_type: str | None):
    body = {"content_base64": base64.b64encode(data).decode()}
    if media_type is not None:
        body["media_type"] = media_type
    return n.api("POST", "/evidence", n.worker_token, body)


def test_evidence_is_kept_only_as_what_its_bytes_are_from_an_allow_list(platform):
    n = Neighbourhood(platform, buildings=1)
    [resident] = n.residents(n.buildings[0], 1)
    folder = Path(platform.env["CONSULT_DATA_DIR"]) / "evidence"
    before = {"audit": quiet_audit(platform, n.id, n.worker_token), "heads": heads(platform)}

    for data, claimed in HOSTILE:
        problem = problem_of(upload(n, data, claimed), 422)
        assert "media_type" in problem["detail"] or "must be one of" in problem["detail"], problem
        assert "<script" not in problem["detail"] and "<svg" not in problem["detail"]  # never echoed
        digest = hashlib.sha256(data).hexdigest()
        if data != PNG:
            assert not any(folder.rglob(digest)), "a refused file was written to the evidence store"
            problem_of(n.api("GET", f"/evidence/{digest}", resident.token), 404)
    problem_of(n.api("GET", f"/evidence/{hashlib.sha256(PNG).hexdigest()}", resident.token), 404)
    assert {"audit": quiet_audit(platform, n.id, n.worker_token), "heads": heads(platform)} == before

    # The same photo, declared rightly or not at all: kept, and served with the type its bytes show.
    for claimed in ("image/png", None):
        kept = upload(n, PNG, claimed)
        assert kept.status_code == 201, kept.text
        assert kept.json() == {"sha256": hashlib.sha256(PNG).hexdigest(), "size": len(PNG), "media_type": "image/png"}
    got = n.api("GET", f"/evidence/{hashlib.sha256(PNG).hexdigest()}", resident.token, expect=200)
    assert (got.content, got.headers["Content-Type"]) == (PNG, "image/png")  # served as the file itself
