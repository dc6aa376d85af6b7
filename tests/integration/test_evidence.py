"""Evidence files several hosts can serve (issue 17.3), on PostgreSQL with two actions instances.

An evidence file uploaded (base64 in JSON, as the API always took it) through one actions instance
is served byte-identical by another that has a data folder of its own (another host), because on
PostgreSQL the bytes live in the service's store: with the media type told from the bytes against
the allow-list (a file that claims to be a PNG but is not is not kept at all), the ETag (its
SHA-256), caching headers, a Content-Disposition, and 304 on If-None-Match. A file over the
configured limit is refused with 413 and nothing of it is kept; another community's token finds
nothing.
"""
from __future__ import annotations

import base64
import hashlib
import os

import pytest

from tests.harness import running
from tests.integration.audit_world import state_db

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

LIMIT = 200_000
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + os.urandom(150_000)  # the cleared drain
PDF = b"%PDF-1.7\n" + os.urandom(2_000)  # the invoice
FAKE_PNG = b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>"  # declared image/png


@pytest.fixture(scope="module")
def platform():
    with running("postgres", services=["communities", "audit", "actions", "gateway"],
                 CONSULT_EVIDENCE_MAX_BYTES=str(LIMIT)) as p:
        yield p


def upload(platform, c: dict, data: bytes, media_type: str | None, expect: int = 201):
    body = {"content_base64": base64.b64encode(data).decode("ascii")}
    if media_type:
        body["media_type"] = media_type
    return platform.api("POST", f"/api/v1/communities/{c['id']}/evidence", c["token"], body, expect=expect)


def stored(platform) -> tuple[int, int]:
    with state_db(platform, "actions") as run:
        return (run("SELECT count(*) FROM actions_evidence_files")[0][0],
                run("SELECT count(*) FROM actions_evidence")[0][0])


def test_evidence_uploaded_through_one_instance_is_served_by_another(platform):
    c, other = platform.new_community("证据社区"), platform.new_community("另一个社区")
    path = f"/api/v1/communities/{c['id']}/evidence"
    shots = {data: upload(platform, c, data, media).json() for data, media in
             ((JPEG, "image/jpeg"), (PDF, None))}
    assert {s["sha256"] for s in shots.values()} == {hashlib.sha256(d).hexdigest() for d in shots}
    assert [s["media_type"] for s in shots.values()] == ["image/jpeg", "application/pdf"]
    # A page that claims to be a PNG is not kept at all (the allow-list, told from the bytes).
    assert upload(platform, c, FAKE_PNG, "image/png", expect=422).headers["Content-Type"].startswith(
        "application/problem+json")

    # Another host: a second instance with a data folder of its own; the first one stops.
    own_folder = platform.env["CONSULT_DATA_DIR"]
    platform.env["CONSULT_DATA_DIR"] = str(platform.dir / "host-2")
    try:
        platform.start_replica("actions")
    finally:
        platform.env["CONSULT_DATA_DIR"] = own_folder
    platform.stop("actions")
    assert not (platform.dir / "data" / "evidence").exists(), "on PostgreSQL nothing is written to a folder"

    for data, media, disposition, extension in ((JPEG, "image/jpeg", "inline", "jpg"),
                                                (PDF, "application/pdf", "inline", "pdf")):
        digest = hashlib.sha256(data).hexdigest()
        got = platform.api("GET", f"{path}/{digest}", c["token"], expect=200)
        assert got.content == data, "byte-identical"
        h = got.headers
        assert h["Content-Type"] == media, "told from the bytes, not from what the uploader declared"
        assert h["ETag"] == f'"{digest}"' and h["X-Content-Type-Options"] == "nosniff"
        assert "immutable" in h["Cache-Control"] and "private" in h["Cache-Control"]
        assert h["Content-Disposition"] == f'{disposition}; filename="{digest}.{extension}"'
        assert int(h["Content-Length"]) == len(data)
        for tag in (f'"{digest}"', f'W/"{digest}"', f'"{"0" * 64}", "{digest}"', "*"):
            cached = platform.api("GET", f"{path}/{digest}", c["token"], headers={"If-None-Match": tag}, expect=304)
            assert cached.content == b"" and cached.headers["ETag"] == f'"{digest}"'
        stale = platform.api("GET", f"{path}/{digest}", c["token"], headers={"If-None-Match": f'"{"0" * 64}"'},
                             expect=200)
        assert stale.content == data
        # Another community's member finds nothing, conditional or not.
        for headers in ({}, {"If-None-Match": f'"{digest}"'}):
            refused = platform.api("GET", f"/api/v1/communities/{other['id']}/evidence/{digest}", other["token"],
                                   headers=headers, expect=404)
            assert refused.headers["Content-Type"].startswith("application/problem+json")

    # Too large: refused by the service (just over the limit) or already by the gateway (far over it);
    # nothing of either is kept.
    before = stored(platform)
    for size in (LIMIT + 1, 3 * LIMIT):
        big = b"\xff\xd8\xff" + os.urandom(size - 3)
        refused = upload(platform, c, big, "image/jpeg", expect=413)
        assert refused.headers["Content-Type"].startswith("application/problem+json")
        if size == LIMIT + 1:  # the service names the file limit; the gateway the body's
            assert f"at most {LIMIT} bytes" in refused.json()["detail"]
        platform.api("GET", f"{path}/{hashlib.sha256(big).hexdigest()}", c["token"], expect=404)
    assert stored(platform) == before == (2, 2)
    platform.api("GET", f"{path}/{hashlib.sha256(FAKE_PNG).hexdigest()}", c["token"], expect=404)
    # Exactly at the limit is accepted.
    upload(platform, c, b"\xff\xd8\xff" + os.urandom(LIMIT - 3), "image/jpeg")
    assert stored(platform) == (3, 3)
