"""The web pages' own guards, without a platform: the sealed session cookie, CSRF, security headers,
no open redirect, no traceback to the browser. (The pages with a platform: tests/integration/test_web.py.)"""
from __future__ import annotations

import re

import pytest
from werkzeug.test import Client

from services.common import config
from services.web import app as web_app
from services.web.seal import Sealer, load_key


@pytest.fixture()
def client(tmp_path):
    settings = config.load({"CONSULT_DATA_DIR": str(tmp_path)})
    app = web_app.WebApp(settings, api_url="http://127.0.0.1:9")  # nothing listens: the API is unreachable
    return Client(app), app


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def test_sealed_cookie_opens_only_unaltered_and_under_its_key(tmp_path):
    sealer = Sealer(load_key(tmp_path))
    sealed = sealer.seal({"t": "cst_secret", "c": "c1"})
    assert "cst_secret" not in sealed
    assert sealer.open(sealed) == {"t": "cst_secret", "c": "c1"}
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    assert sealer.open(flipped) is None
    assert Sealer(b"x" * 32).open(sealed) is None
    assert sealer.open("garbage") is None and sealer.open(None) is None
    assert (tmp_path / "web" / "cookie.key").stat().st_mode & 0o777 == 0o600
    assert load_key(tmp_path) == load_key(tmp_path)  # made once, then read


def test_every_response_has_the_security_headers(client):
    c, _ = client
    for path in ("/sign-in", "/no-such-page", "/static/site.css"):
        resp = c.get(path)
        csp = resp.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Referrer-Policy"] == "same-origin"
    assert c.get("/no-such-page").status_code == 404


def test_cookies_are_httponly_and_samesite_lax_and_secure_behind_https(client):
    c, _ = client
    cookie = c.get("/sign-in").headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    cookie = c.get("/sign-in", base_url="https://web.example").headers["Set-Cookie"]
    assert "Secure" in cookie


def test_a_form_without_or_with_a_wrong_csrf_token_is_refused(client):
    c, _ = client
    html = c.get("/sign-in").get_data(as_text=True)
    for form in ({"mode": "token", "token": "x"}, {"mode": "token", "token": "x", "csrf": "0" * 64}):
        resp = c.post("/sign-in", data=form)
        assert resp.status_code == 403
        assert "表单已失效" in resp.get_data(as_text=True)
    # The right token passes the check (and then the unreachable API is a polite error page, no traceback).
    resp = c.post("/sign-in", data={"mode": "token", "token": "x", "csrf": csrf_of(html)})
    assert resp.status_code in (502, 503) and "Traceback" not in resp.get_data(as_text=True)


def test_language_switch_is_remembered_and_never_an_open_redirect(client):
    c, _ = client
    resp = c.get("/lang/en?next=//evil.example/x")
    assert resp.status_code == 303 and resp.headers["Location"] == "/"
    assert any("consult_lang=en" in v for v in resp.headers.getlist("Set-Cookie"))
    assert "Sign in" in c.get("/sign-in").get_data(as_text=True)
    assert c.get("/lang/en?next=/sign-in").headers["Location"] == "/sign-in"
    assert c.get("/lang/fr").status_code == 404


def test_signed_out_pages_of_a_community_send_to_sign_in(client):
    c, _ = client
    resp = c.get("/communities/6dbc55d2-390a-4344-ab4a-f53d725c2eed/")
    assert resp.status_code == 303 and resp.headers["Location"].startswith("/sign-in?next=")


def test_an_english_browser_reads_english_and_a_chinese_one_chinese(client):
    c, _ = client
    assert "登录" in c.get("/sign-in").get_data(as_text=True)
    c2 = Client(client[1])
    assert "Sign in" in c2.get("/sign-in", headers={"Accept-Language": "en-US,en;q=0.9"}).get_data(as_text=True)
