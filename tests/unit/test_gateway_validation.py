"""The gateway's request path without a broker: schemas checked by jsonschema with clear messages,
bodies accepted only as I-JSON, exact media types, werkzeug routing with UUID ids and 405s that
name the allowed methods, and a catch-all that answers 500 problem+json and logs the incident."""
from __future__ import annotations

import json
import logging
import uuid

import pytest

from services.common.errors import InvalidInput
from services.gateway import router, routes_load
from services.gateway import schema as S

routes_load.load_all()

C = str(uuid.uuid4())
WORKER = {"person": str(uuid.uuid4()), "community": C, "roles": [{"role": "community_worker", "scope": None}]}


def refused(checker: S.Checker, value) -> list[str]:
    with pytest.raises(InvalidInput) as caught:
        checker.check(value)
    problem = caught.value.to_problem()
    assert problem["detail"] == problem["errors"][0]["message"]
    return [e["message"] for e in problem["errors"]]


# ---- schemas ----------------------------------------------------------------------------------------
PERSON = S.Checker(S.normalise(S.obj(["name"], name=S.text(100), note=S.text(1000), area=S.decimal(),
                                     at=S.uuid_str(), days={"type": "integer", "minimum": 1},
                                     when={"type": "string", "format": "date-time"},
                                     kind={"type": "string", "enum": ["a", "b"]},
                                     tags={"type": "array", "items": S.text(10), "maxItems": 2})))


def test_every_refusal_names_the_field_and_what_is_wrong_without_echoing_the_value():
    assert refused(PERSON, {}) == ["body.name is required"]
    assert refused(PERSON, {"name": "x", "secret": "cst_token"}) == ["body.secret is not a known field"]
    assert refused(PERSON, {"name": 42}) == ["body.name must be of type string"]
    assert refused(PERSON, {"name": ""}) == ["body.name must not be empty"]
    assert refused(PERSON, {"name": "x" * 101}) == ["body.name is too long (at most 100 characters)"]
    assert refused(PERSON, {"name": "x", "area": "75,5"}) == [
        "body.area must be a decimal number written as a string, like '75.5'"]
    assert refused(PERSON, {"name": "x", "at": "not-a-uuid"}) == ["body.at must be a UUID"]
    assert refused(PERSON, {"name": "x", "at": uuid.uuid4().hex}) == ["body.at must be a UUID"]  # no hyphens
    assert refused(PERSON, {"name": "x", "when": "2026-05-01 09:00"}) == [
        "body.when must be an ISO-8601 time with its zone, like 2026-05-01T09:00:00+08:00"]
    assert refused(PERSON, {"name": "x", "when": "2026-13-01T09:00:00Z"})[0].startswith("body.when must be an ISO")
    assert refused(PERSON, {"name": "x", "kind": "c"}) == ["body.kind must be one of: a, b"]
    assert refused(PERSON, {"name": "x", "days": 0}) == ["body.days must be at least 1"]
    assert refused(PERSON, {"name": "x", "tags": ["ok", "x" * 11, "z"]}) == [
        "body.tags has too many items (at most 2)", "body.tags[1] is too long (at most 10 characters)"]
    # Several faults at once: every one is listed, the shallowest first.
    assert refused(PERSON, {"secret": 1, "area": 5}) == [
        "body.name is required", "body.secret is not a known field", "body.area must be of type string"]
    for value in ({"name": "王", "note": "第一行\n第二行\t", "area": "75.5", "at": str(uuid.uuid4()),
                   "when": "2026-05-01T09:00:00+08:00", "days": 3, "kind": "a", "tags": ["x"]},):
        PERSON.check(value)


def test_one_line_fields_refuse_control_characters_and_free_text_allows_line_breaks():
    assert refused(PERSON, {"name": "a\nb"}) == ["body.name must be one line without control characters"]
    assert refused(PERSON, {"name": "a\x00b"}) == ["body.name must be one line without control characters"]
    assert refused(PERSON, {"name": "a\x85b"}) == ["body.name must be one line without control characters"]
    assert refused(PERSON, {"name": "x", "note": "a\x07b"}) == [
        "body.note must not contain control characters (line breaks and tabs are allowed)"]
    assert refused(PERSON, {"name": "x", "tags": ["a\tb"]}) == ["body.tags[0] must be one line without control "
                                                                 "characters"]
    PERSON.check({"name": "x", "note": "line\r\nline\ttab"})


def test_a_final_line_feed_does_not_slip_past_an_anchored_pattern():
    """Python's `$` matches before a final line feed; JSON Schema's (ECMA-262) does not."""
    assert refused(PERSON, {"name": "x", "area": "75.5\n"})[0].startswith("body.area must be a decimal number")
    hex64 = S.Checker({"type": "string", "pattern": "^[0-9a-f]{64}$"}, "query.receipt")
    assert refused(hex64, "a" * 64 + "\n") == ["query.receipt has the wrong format"]
    hex64.check("a" * 64)


def test_every_route_schema_is_bounded_and_says_what_text_it_takes():
    """What the normalisation guarantees for every route: integers have both bounds (a 2^64 never
    reaches a store), every string a pattern, format or fixed set of values."""
    def walk(schema, where):
        types = S.types_of(schema)
        if "integer" in types:
            assert schema["minimum"] >= S.INT_MIN and schema["maximum"] <= S.INT_MAX, where
        if "string" in types:
            assert {"pattern", "format", "enum", "const"} & set(schema), where
        for name, sub in schema.get("properties", {}).items():
            walk(sub, f"{where}.{name}")
        if isinstance(schema.get("items"), dict):
            walk(schema["items"], f"{where}[]")

    for r in router.ROUTES:
        if r.body is not None:
            walk(r.body, f"{r.method} {r.path} body")
        for name, sch in r.query.items():
            walk(sch, f"{r.method} {r.path} query.{name}")
    proposals = router.find("POST", f"/api/v1/communities/{C}/proposals")[0]
    assert proposals.body["properties"]["body"]["pattern"] == S.TEXT
    assert proposals.body["properties"]["title"]["pattern"] == S.LINE


# ---- JSON bodies ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("raw, message", [
    (b"[" * 1000 + b"]" * 1000, "nested too deeply"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'{"a":' * 40 + b"1" + b"}" * 40, "nested too deeply"),
    (b'{"name": "\\ud800"}', "valid Unicode"),
    (b'{"name": "x\\udc00y"}', "valid Unicode"),
    (b'{"\\ud800": 1}', "valid Unicode"),
    (b'{"rules": {"a": ["\\u0000"]}}', "NUL"),
    (b'{"name": "a", "name": "b"}', "names a member twice"),
    (b'{"days": 18446744073709551616}', "within"),
    (b'{"days": 1.5}', "decimal strings"),
    (b'{"days": 1e3}', "decimal strings"),
    (b'{"days": NaN}', "decimal strings"),
    (b'{"days": ' + b"9" * 5000 + b"}", "not valid JSON"),
    (b'{"name": "\xff"}', "not UTF-8"),
    (b"{not json", "not valid JSON"),
])
def test_bodies_are_accepted_only_as_i_json(raw, message):
    with pytest.raises(InvalidInput) as caught:
        router.parse_json(raw)
    assert message in caught.value.detail


def test_a_surrogate_pair_and_modest_nesting_are_fine():
    assert router.parse_json('{"name": "\\ud83d\\ude00 😀"}'.encode()) == {"name": "😀 😀"}
    deep = b'{"a":' * 31 + b"1" + b"}" * 31
    assert router.parse_json(deep)["a"]["a"]


@pytest.mark.parametrize("header, ok", [
    ("application/json", True), ("application/json; charset=utf-8", True), ("Application/JSON; Charset=UTF-8", True),
    ("application/problem+json", True), ("application/merge-patch+json", True),
    ("text/jsonx", False), ("application/jsonx", False), ("text/json", False), ("application/x-json", False),
    ("application/json; charset=latin-1", False), ("application/json; boundary=x", False), ("", False),
    ("application/+json", False), ("multipart/form-data", False),
])
def test_json_bodies_need_an_exact_json_media_type(header, ok):
    r = router.find("POST", f"/api/v1/communities/{C}/compounds")[0]
    if ok:
        assert router.parse_body(r, b'{"name": "x"}', header) == {"name": "x"}
    else:
        with pytest.raises(router.Problem) as caught:
            router.parse_body(r, b'{"name": "x"}', header)
        assert caught.value.problem["status"] == 415


def test_the_csv_import_takes_text_csv_without_control_characters():
    r = router.find("POST", f"/api/v1/communities/{C}/directory/import")[0]
    assert router.parse_body(r, "a,b\r\n1,\t2\n".encode(), "text/csv; charset=utf-8") == "a,b\r\n1,\t2\n"
    with pytest.raises(router.Problem):
        router.parse_body(r, b"a,b\n", "application/json")
    with pytest.raises(InvalidInput):
        router.parse_body(r, b"a,b\n1,\x002\n", "text/csv")


# ---- routing ------------------------------------------------------------------------------------------
def test_ids_in_paths_are_uuids_and_405_names_the_allowed_methods():
    r, params = router.find("GET", f"/api/v1/communities/{C.upper()}/proposals/{C}")
    assert r.handler.__name__ == "get_proposal" and params == {"community": C, "proposal": C}
    for path in ("/api/v1/communities/not-a-uuid", f"/api/v1/communities/{C}/proposals/{uuid.uuid4().hex}",
                 f"/api/v1/communities/{C}/evidence/{C}", "/api/v1/me/", "/api/v1//me", "/api/v2/me"):
        with pytest.raises(router.Problem) as caught:
            router.find("GET", path)
        assert caught.value.problem["status"] == 404, path
    with pytest.raises(router.Problem) as caught:
        router.find("TRACE", f"/api/v1/communities/{C}/proposals")
    assert caught.value.problem["status"] == 405
    assert caught.value.headers == {"Allow": "GET, HEAD, OPTIONS, POST"}
    assert router.find("HEAD", "/api/v1/me")[0].handler.__name__ == "me"
    assert router.find("GET", f"/api/v1/communities/{C}/evidence/{'a' * 64}")[1]["sha256"] == "a" * 64


def dispatch(method, path, query=(), body=b"", headers=None, principal=WORKER, rpc=None):
    h = {"authorization": "Bearer t", "content-type": "application/json", **(headers or {})}
    read = []

    def read_body(n):
        read.append(n)
        return body[:n]

    reply = router.dispatch(method, path, list(query), h, read_body, lambda token: principal,
                            rpc or (lambda *a, **k: {"ok": True, "result": {"called": a[:2]}}))
    reply.read = read
    return reply


def test_options_answers_the_allowed_methods_and_unknown_methods_get_405():
    reply = dispatch("OPTIONS", f"/api/v1/communities/{C}/proposals")
    assert (reply.status, reply.headers) == (204, {"Allow": "GET, HEAD, OPTIONS, POST"})
    reply = dispatch("FOO", "/api/v1/me")
    assert reply.status == 405 and reply.headers["Allow"] == "GET, HEAD, OPTIONS"
    assert reply.content_type == "application/problem+json"
    assert dispatch("OPTIONS", "/api/v1/nothing").status == 404


def test_query_parameters_are_checked_against_their_schema():
    entries = f"/api/v1/communities/{C}/audit/entries"
    assert dispatch("GET", entries, [("from", "3"), ("limit", "10")]).status == 200
    for query, message in ((("from", "18446744073709551616"),), "query.from must be at most 2147483647"), \
                          ((("from", "1e3"),), "query.from must be a whole number"), \
                          ((("from", "٣"),), "query.from must be a whole number"), \
                          ((("from", "1"), ("from", "2")), "query parameter from is given more than once"), \
                          ((("case", "x"),), "query.case must be a UUID"), \
                          ((("sneaky", "1"),), "query.sneaky is not a known field"):
        reply = dispatch("GET", entries, query)
        assert (reply.status, reply.body["detail"]) == (422, message), query


def test_a_body_too_large_by_its_declared_length_is_refused_unread():
    reply = dispatch("POST", f"/api/v1/communities/{C}/compounds", body=b"{}", headers={"content-length": "2000000"})
    assert reply.status == 413 and reply.read == []
    reply = dispatch("POST", f"/api/v1/communities/{C}/compounds", body=b'{"name": "' + b"x" * 1_100_000 + b'"}')
    assert reply.status == 413 and reply.read == [router.MAX_BODY + 1]


def test_an_unexpected_failure_is_a_500_problem_without_internals_and_is_logged(monkeypatch, caplog):
    r = router.find("GET", "/api/v1/me")[0]

    def broken(call):
        raise RuntimeError("SELECT secret FROM tokens WHERE token = 'cst_x'")

    monkeypatch.setattr(r, "handler", broken)
    with caplog.at_level(logging.ERROR, logger="services.gateway.router"):
        reply = dispatch("GET", "/api/v1/me")
    assert reply.status == 500 and reply.content_type == "application/problem+json"
    assert reply.template == "/api/v1/me"
    assert "SELECT" not in json.dumps(reply.body) and "RuntimeError" not in json.dumps(reply.body)
    assert reply.body["title"] == "Internal server error" and reply.body["incident"] in reply.body["detail"]
    logged = [rec for rec in caplog.records if reply.body["incident"] in rec.getMessage()]
    assert logged and "SELECT secret" in logged[0].exc_text


def test_a_stage_service_crash_is_a_500_problem_too():
    def crashing_rpc(*args, **kwargs):
        from nameko.exceptions import RemoteError

        raise RemoteError("OverflowError", "Python int too large to convert to SQLite INTEGER")

    reply = dispatch("GET", f"/api/v1/communities/{C}/audit/entries", rpc=crashing_rpc)
    assert reply.status == 500 and "SQLite" not in json.dumps(reply.body)


def test_the_services_refuse_unstorable_text_from_any_caller():
    """Behind the gateway, for RPC callers: NUL (PostgreSQL cannot store it) and unpaired surrogates."""
    from services.common.content import validate_text

    for bad in ("a\x00b", "a\ud800", "\udfff"):
        with pytest.raises(InvalidInput):
            validate_text(bad, "title")
    assert validate_text(" 议事 😀\n ", "title") == "议事 😀"
