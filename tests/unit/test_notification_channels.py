"""Delivery channels of the notifications service, against real local servers.

E-mail goes to an aiosmtpd server on 127.0.0.1; webhooks go to an http.server receiver
on 127.0.0.1 that checks signatures with verify_webhook_signature, as a subscriber would.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import hashlib
import hmac
import http.server
import ipaddress
import json
import random
import socket
import ssl
import threading

import pytest
import requests
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from services.notifications import templates
from services.notifications.channels import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    DeliveryFailed,
    EmailSender,
    TargetRefused,
    EndpointHealth,
    WebhookSender,
    WebhookTargets,
    backoff_schedule,
    canonical_json,
    make_message_id,
    sign_webhook,
    verify_webhook_signature,
)

pytestmark = pytest.mark.timeout(60)

SENDER = "社区议事平台 <noreply@s-community.example>"
NOW = 1_795_000_000  # a fixed "platform clock" second


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- SMTP


class CapturingHandler:
    """aiosmtpd handler: keeps accepted messages; refuses recipients on request."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.refuse: dict[str, str] = {}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(
            {
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "raw": envelope.original_content or envelope.content,
                "tls": session.ssl is not None,
            }
        )
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server():
    handler = CapturingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield handler, controller.port
    finally:
        controller.stop()


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def test_zh_cn_mail_arrives_with_utf8_subject_body_and_deterministic_message_id(smtp_server):
    handler, port = smtp_server
    subject, body = templates.render(
        "MeetingScheduled",
        "zh-CN",
        {"title": "3号院排水沟疏通", "starts_at": "2026-12-01 19:00", "place": "社区活动室"},
    )
    sender = EmailSender("127.0.0.1", port, SENDER)
    sender.send("wang@example.org", subject, body, "delivery-42", "zh-CN")

    assert len(handler.messages) == 1
    captured = handler.messages[0]
    assert captured["mail_from"] == "noreply@s-community.example"
    assert captured["rcpt_tos"] == ["wang@example.org"]
    captured["raw"].decode("ascii")  # 7-bit on the wire: encoded words and base64/qp
    msg = parse(captured["raw"])
    assert msg["Subject"] == "【议事会议通知】3号院排水沟疏通"
    assert msg.get_content().replace("\r\n", "\n") == body
    assert "社区活动室" in msg.get_content()
    assert msg.get_content_charset() == "utf-8"
    assert msg["Message-ID"] == "<delivery-42@s-community.example>"
    assert msg["Content-Language"] == "zh-CN"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["From"].addresses[0].display_name == "社区议事平台"

    # A resend of the same delivery (say after a crash) carries the same Message-ID.
    sender.send("wang@example.org", subject, body, "delivery-42", "zh-CN")
    assert parse(handler.messages[1]["raw"])["Message-ID"] == msg["Message-ID"]


def test_english_mail_and_newlines_in_subject_cannot_inject_headers(smtp_server):
    handler, port = smtp_server
    sender = EmailSender("127.0.0.1", port, "noreply@s-community.example")
    sender.send(
        "li@example.org",
        "Voting open\r\nBcc: everyone@example.org",
        "Line one\nLine two\n",
        "d-1",
        "en",
    )
    msg = parse(handler.messages[0]["raw"])
    assert msg["Subject"] == "Voting open Bcc: everyone@example.org"
    assert msg["Bcc"] is None
    assert msg["Content-Language"] == "en"
    assert msg.get_content().replace("\r\n", "\n") == "Line one\nLine two\n"


def test_message_id_is_deterministic_and_safe():
    assert make_message_id("abc-1", SENDER) == "<abc-1@s-community.example>"
    odd = make_message_id("ballot 7 / voter 3 <x>", SENDER)
    assert odd == make_message_id("ballot 7 / voter 3 <x>", SENDER)
    assert odd.startswith("<h.") and " " not in odd and odd.count("<") == 1
    assert odd != make_message_id("ballot 7 / voter 4 <x>", SENDER)
    assert make_message_id("x", "no-domain") == "<x@consult.invalid>"


def test_refused_recipient_is_a_permanent_failure(smtp_server):
    handler, port = smtp_server
    handler.refuse["gone@example.org"] = "550 5.1.1 No such user"
    sender = EmailSender("127.0.0.1", port, SENDER)
    with pytest.raises(DeliveryFailed) as info:
        sender.send("gone@example.org", "主题", "正文", "d-2", "zh-CN")
    assert info.value.permanent is True
    assert info.value.code == 550
    assert "No such user" in info.value.reason
    assert handler.messages == []


def test_temporarily_refused_recipient_is_a_transient_failure(smtp_server):
    handler, port = smtp_server
    handler.refuse["busy@example.org"] = "451 4.3.0 Try again later"
    sender = EmailSender("127.0.0.1", port, SENDER)
    with pytest.raises(DeliveryFailed) as info:
        sender.send("busy@example.org", "主题", "正文", "d-3", "zh-CN")
    assert info.value.permanent is False
    assert info.value.code == 451


def test_closed_port_is_a_transient_failure():
    sender = EmailSender("127.0.0.1", free_port(), SENDER, timeout=2)
    with pytest.raises(DeliveryFailed) as info:
        sender.send("wang@example.org", "主题", "正文", "d-4", "zh-CN")
    assert info.value.permanent is False
    assert info.value.transient is True


def test_unusable_recipient_address_is_permanent_without_connecting():
    sender = EmailSender("127.0.0.1", free_port(), SENDER)
    for bad in ("not-an-address", "a@example.org\r\nRCPT TO:<b@example.org>"):
        with pytest.raises(DeliveryFailed) as info:
            sender.send(bad, "s", "b", "d-5", "en")
        assert info.value.permanent is True


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


@pytest.fixture
def tls_smtp_server(tls_files):
    cert_path, key_path = tls_files
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert_path, key_path)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login == b"mailer" and auth_data.password == b"s3cret"
        )
        # handled=False: let aiosmtpd answer 535 itself on failure
        return AuthResult(success=ok, handled=False)

    handler = CapturingHandler()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=server_ctx,
        require_starttls=True,
        auth_required=True,
        authenticator=authenticator,
    )
    controller.start()
    try:
        yield handler, controller.port, ssl.create_default_context(cafile=cert_path)
    finally:
        controller.stop()


def test_starttls_and_login(tls_smtp_server):
    handler, port, client_ctx = tls_smtp_server
    sender = EmailSender(
        "127.0.0.1", port, SENDER, starttls=True, username="mailer", password="s3cret",
        ssl_context=client_ctx,
    )
    sender.send("zhao@example.org", "投票即将截止", "请尽快投票。", "d-6", "zh-CN")
    assert handler.messages[0]["tls"] is True
    assert parse(handler.messages[0]["raw"])["Subject"] == "投票即将截止"


def test_rejected_login_is_transient_because_it_is_not_the_messages_fault(tls_smtp_server):
    handler, port, client_ctx = tls_smtp_server
    sender = EmailSender(
        "127.0.0.1", port, SENDER, starttls=True, username="mailer", password="wrong",
        ssl_context=client_ctx,
    )
    with pytest.raises(DeliveryFailed) as info:
        sender.send("zhao@example.org", "s", "b", "d-7", "zh-CN")
    assert info.value.permanent is False
    assert info.value.code == 535
    assert handler.messages == []


def test_untrusted_certificate_is_a_transient_failure(tls_smtp_server):
    _, port, _ = tls_smtp_server
    sender = EmailSender("127.0.0.1", port, SENDER, starttls=True, timeout=5)
    with pytest.raises(DeliveryFailed) as info:
        sender.send("zhao@example.org", "s", "b", "d-8", "zh-CN")
    assert info.value.permanent is False


# --------------------------------------------------------------------------- webhooks

SECRET = b"whsec-test-\xe4\xb8\xad"
LOCAL = WebhookTargets(["127.0.0.1"])  # the test receivers listen on 127.0.0.1: allow-listed, as an operator would


class Receiver:
    """What a subscriber runs: verify the signature, dedupe on the delivery id."""

    def __init__(self) -> None:
        self.now = NOW
        self.status = 204
        self.extra_headers: dict[str, str] = {}
        self.deliveries: list[dict] = []
        self.rejected: list[bytes] = []
        self.seen: set[str] = set()
        self.requests = 0


@pytest.fixture
def receiver():
    state = Receiver()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            state.requests += 1
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            signature = self.headers.get(SIGNATURE_HEADER)
            if not verify_webhook_signature(SECRET, signature, body, now=state.now):
                state.rejected.append(body)
                self._reply(401)
                return
            if 200 <= state.status <= 299:
                delivery = self.headers[DELIVERY_HEADER]
                if delivery not in state.seen:
                    state.seen.add(delivery)
                    state.deliveries.append(
                        {
                            "path": self.path,
                            "delivery": delivery,
                            "content_type": self.headers["Content-Type"],
                            "body": body,
                            "payload": json.loads(body.decode("utf-8")),
                        }
                    )
            self._reply(state.status)

        def do_GET(self):
            state.requests += 1
            self._reply(200)

        def _reply(self, status):
            payload = b"" if status == 204 else b'{"error":"nope"}'
            self.send_response(status)
            for name, value in state.extra_headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}/hooks/consult"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


ENVELOPE = {
    "schema": "consult.event/1",
    "id": "5a0d6d6e-0000-4000-8000-000000000001",
    "source": "decisions",
    "position": 17,
    "type": "BallotOpened",
    "community": "s-community",
    "aggregate": {"type": "Ballot", "id": "b-1", "version": 1},
    "data": {"title": "草坪改菜地", "area": "580.00"},
}


def test_signature_format_is_t_and_v1_hmac_sha256():
    body = b'{"a":1}'
    expected = hmac.new(SECRET, b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign_webhook(SECRET, 1700000000, body) == f"t=1700000000,v1={expected}"


def test_webhook_2xx_is_delivered_with_canonical_signed_body(receiver):
    state, url = receiver
    WebhookSender(targets=LOCAL).send(url, SECRET, ENVELOPE, "dlv-1", NOW)
    assert len(state.deliveries) == 1
    got = state.deliveries[0]
    assert got["delivery"] == "dlv-1"
    assert got["content_type"] == "application/json"
    assert got["path"] == "/hooks/consult"
    assert got["payload"] == ENVELOPE
    assert got["body"] == json.dumps(
        ENVELOPE, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()
    assert "草坪改菜地".encode("utf-8") in got["body"]  # not \u-escaped

    # A redelivery carries the same delivery id, so the receiver can drop it.
    WebhookSender(targets=LOCAL).send(url, SECRET, ENVELOPE, "dlv-1", NOW + 60)
    assert state.requests == 2 and len(state.deliveries) == 1


@pytest.mark.parametrize(
    "status, permanent",
    [(500, False), (503, False), (408, False), (429, False), (302, False),
     (400, True), (404, True), (410, True), (422, True)],
)
def test_webhook_status_classification(receiver, status, permanent):
    state, url = receiver
    state.status = status
    with pytest.raises(DeliveryFailed) as info:
        WebhookSender(targets=LOCAL).send(url, SECRET, ENVELOPE, "dlv-2", NOW)
    assert info.value.permanent is permanent
    assert info.value.code == status


def test_webhook_redirect_is_not_followed(receiver):
    state, url = receiver
    state.status = 307
    state.extra_headers["Location"] = url + "/elsewhere"
    with pytest.raises(DeliveryFailed) as info:
        WebhookSender(targets=LOCAL).send(url, SECRET, ENVELOPE, "dlv-3", NOW)
    assert info.value.permanent is False
    assert state.requests == 1


def test_webhook_retry_after_is_reported(receiver):
    state, url = receiver
    state.status = 429
    state.extra_headers["Retry-After"] = "120"
    with pytest.raises(DeliveryFailed) as info:
        WebhookSender(targets=LOCAL).send(url, SECRET, ENVELOPE, "dlv-4", NOW)
    assert info.value.permanent is False
    assert info.value.retry_after == 120


def test_tampered_body_is_rejected_by_the_verifier(receiver):
    state, url = receiver
    body, headers = WebhookSender().build_request(SECRET, ENVELOPE, "dlv-5", NOW)
    assert verify_webhook_signature(SECRET, headers[SIGNATURE_HEADER], body, now=NOW)
    tampered = body.replace("草坪改菜地".encode(), "草坪保留".encode())
    assert not verify_webhook_signature(SECRET, headers[SIGNATURE_HEADER], tampered, now=NOW)

    # and end to end: the receiver refuses the forged request
    response = requests.post(url, data=tampered, headers=headers, timeout=5)
    assert response.status_code == 401
    assert state.rejected == [tampered] and state.deliveries == []


def test_stale_timestamp_is_rejected(receiver):
    state, url = receiver
    with pytest.raises(DeliveryFailed) as info:
        WebhookSender(targets=LOCAL).send(url, SECRET, ENVELOPE, "dlv-6", NOW - 301)
    assert info.value.code == 401 and info.value.permanent is True
    assert state.deliveries == []

    body = canonical_json(ENVELOPE)
    assert verify_webhook_signature(SECRET, sign_webhook(SECRET, NOW - 300, body), body, NOW)
    assert not verify_webhook_signature(SECRET, sign_webhook(SECRET, NOW - 301, body), body, NOW)
    # a timestamp from the future is as suspect as one from the past
    assert not verify_webhook_signature(SECRET, sign_webhook(SECRET, NOW + 301, body), body, NOW)
    assert verify_webhook_signature(
        SECRET, sign_webhook(SECRET, NOW - 1000, body), body, NOW, tolerance_s=3600
    )


def test_verifier_rejects_bad_headers_and_wrong_secret():
    body = canonical_json(ENVELOPE)
    good = sign_webhook(SECRET, NOW, body)
    mac = good.split("v1=")[1]
    assert verify_webhook_signature(SECRET, good, body, NOW)
    assert verify_webhook_signature(SECRET, good.encode(), body, NOW)
    assert not verify_webhook_signature(b"other secret", good, body, NOW)
    for header in (None, "", "garbage", f"v1={mac}", f"t={NOW}", f"t=abc,v1={mac}",
                   f"t={NOW},t={NOW},v1={mac}", f"t={NOW},v1=", f"t={NOW},v1={mac[:-1]}",
                   f"t={NOW},v1=é{mac[1:]}", f"t=-{NOW},v1={mac}"):
        assert not verify_webhook_signature(SECRET, header, body, NOW), header
    # secret rotation: any one of several v1 entries may match
    assert verify_webhook_signature(SECRET, f"t={NOW},v1={'0' * 64},v1={mac}", body, NOW)


def test_webhook_connection_refused_is_transient_and_bad_url_permanent():
    with pytest.raises(DeliveryFailed) as info:
        WebhookSender(timeout=2, targets=LOCAL).send(
            f"http://127.0.0.1:{free_port()}/x", SECRET, ENVELOPE, "dlv-7", NOW
        )
    assert info.value.permanent is False
    for url in ("not a url", "ftp://example.org/hook", "http://"):
        with pytest.raises(DeliveryFailed) as info:
            WebhookSender(targets=LOCAL).send(url, SECRET, ENVELOPE, "dlv-8", NOW)
        assert info.value.permanent is True, url


def test_webhook_timeout_is_transient():
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the TCP connection but never answers
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/slow"
        with pytest.raises(DeliveryFailed) as info:
            WebhookSender(timeout=0.5, targets=LOCAL).send(url, SECRET, ENVELOPE, "dlv-9", NOW)
        assert info.value.permanent is False
    finally:
        listener.close()


# --------------------------------------------------------------------------- webhook targets (SSRF)


def resolver(table: dict[str, list[str]]):
    """A DNS of the test's own: host -> addresses (what a name resolves to is up to its owner)."""
    def resolve(host, port, type=0):  # noqa: A002 - socket.getaddrinfo's keyword
        if host not in table:
            try:
                ipaddress.ip_address(host)
            except ValueError:
                raise socket.gaierror("unknown host") from None
            addresses = [host]
        else:
            addresses = table[host]
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in addresses]

    return resolve


PUBLIC_DNS = {"hooks.example.org": ["93.184.216.34"], "rebind.example.org": ["127.0.0.1"],
              "split.example.org": ["93.184.216.34", "10.0.0.7"], "meta.example.org": ["169.254.169.254"],
              "v6.example.org": ["2606:2800:220:1:248:1893:25c8:1946"]}


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/hook", "https://127.0.0.1/hook", "http://[::1]:8080/hook", "https://[::1]/hook",
    "http://169.254.169.254/latest/meta-data/", "https://169.254.169.254/latest/meta-data/",
    "https://10.0.0.5/hook", "https://192.168.1.1/hook", "https://172.16.0.1/hook", "https://100.100.100.200/",
    "https://[fe80::1]/hook", "https://[fd00:ec2::254]/", "https://[::ffff:127.0.0.1]/hook",
    "https://[64:ff9b::a9fe:a9fe]/", "https://0.0.0.0/hook", "https://224.0.0.1/hook",
    "https://rebind.example.org/hook", "https://meta.example.org/", "https://split.example.org/hook",
    "http://hooks.example.org/hook", "ftp://hooks.example.org/hook", "https://user:pw@hooks.example.org/hook",
    "https://nowhere.example.org/hook", "not a url", "https:///hook", "https://hooks.example.org:99999/",
])
def test_webhook_targets_refuse_everything_but_public_https(url):
    with pytest.raises(TargetRefused):
        WebhookTargets(resolve=resolver(PUBLIC_DNS)).check_url(url)


def test_webhook_targets_take_public_https_and_what_the_operator_allow_lists():
    targets = WebhookTargets(resolve=resolver(PUBLIC_DNS))
    targets.check_url("https://hooks.example.org/hook")
    targets.check_url("https://v6.example.org:8443/hook")
    allowing = WebhookTargets(["127.0.0.1", "10.0.0.0/8"], resolve=resolver(PUBLIC_DNS))
    for url in ("http://127.0.0.1:8080/hook", "https://127.0.0.1/hook", "http://10.2.3.4/hook",
                "https://split.example.org/hook"):
        allowing.check_url(url)
    for url in ("http://[::1]/hook", "http://hooks.example.org/hook", "https://169.254.169.254/"):
        with pytest.raises(TargetRefused):
            allowing.check_url(url)  # allow-listing 127.0.0.1 allows neither ::1 nor http:// to the internet
    assert WebhookTargets.from_env({"CONSULT_WEBHOOK_ALLOWLIST": " 127.0.0.1 , fd00::/8"}).allowed == [
        ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("fd00::/8")]
    assert WebhookTargets.from_env({}).allowed == []


def test_a_name_that_resolves_inside_at_send_time_is_not_connected_to(receiver):
    """DNS rebinding: public when the endpoint is registered, the receiver's 127.0.0.1 when it is
    sent to. The address is checked after resolution, at the connection: nothing reaches it."""
    state, url = receiver
    port = url.split(":")[2].split("/")[0]
    answers = iter([["93.184.216.34"], ["127.0.0.1"], ["127.0.0.1"]])
    targets = WebhookTargets(resolve=lambda host, p, type=0: [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, p)) for a in next(answers)])
    hook = f"https://rebind.example.org:{port}/hooks/consult"
    targets.check_url(hook)  # registration: public
    with pytest.raises(DeliveryFailed) as info:
        WebhookSender(targets=targets).send(hook, SECRET, ENVELOPE, "dlv-r", NOW)
    assert info.value.permanent and "loopback" in info.value.reason
    assert state.requests == 0


def test_webhook_sender_refuses_internal_targets_before_connecting(receiver):
    state, url = receiver
    for target in (url, url.replace("127.0.0.1", "[::1]"), "http://169.254.169.254/latest/meta-data/"):
        with pytest.raises(DeliveryFailed) as info:
            WebhookSender().send(target, SECRET, ENVELOPE, "dlv-s", NOW)  # no allow-list
        assert info.value.permanent and "refused" in info.value.reason
    assert state.requests == 0


def test_a_webhook_failure_keeps_the_status_code_never_the_answer(receiver):
    state, url = receiver
    state.status = 404  # the receiver answers {"error":"nope"} with it
    with pytest.raises(DeliveryFailed) as info:
        WebhookSender(targets=LOCAL).send(url, SECRET, ENVELOPE, "dlv-b", NOW)
    assert info.value.reason == "webhook answered HTTP 404" and info.value.code == 404
    assert "nope" not in str(info.value)


# --------------------------------------------------------------------------- back-off


def test_backoff_is_exponential_and_capped():
    assert [backoff_schedule(a) for a in range(1, 8)] == [2, 4, 8, 16, 32, 64, 128]
    assert backoff_schedule(11) == 2048
    assert backoff_schedule(12) == 3600
    assert backoff_schedule(10_000) == 3600
    assert backoff_schedule(3, base_s=10, factor=3, cap_s=60) == 60
    assert backoff_schedule(2, base_s=10, factor=3, cap_s=60) == 30
    assert backoff_schedule(5, base_s=1, factor=1) == 1


def test_backoff_jitter_stays_within_bounds_and_is_reproducible_with_a_seed():
    values = [backoff_schedule(4, jitter=0.5, rng=random.Random(7)) for _ in range(3)]
    assert values[0] == values[1] == values[2]
    for seed in range(200):
        value = backoff_schedule(4, jitter=0.5, rng=random.Random(seed))
        assert 8 <= value <= 16
        assert backoff_schedule(50, jitter=1.0, rng=random.Random(seed)) <= 3600


def test_backoff_rejects_nonsense():
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError):
            backoff_schedule(bad)
    with pytest.raises(ValueError):
        backoff_schedule(1, jitter=1.5)


# --------------------------------------------------------------------------- endpoint health


def test_endpoint_is_paused_after_five_consecutive_failures_and_reset_by_success():
    health = EndpointHealth()
    assert [health.record_failure("HTTP 500", now=NOW + i) for i in range(4)] == [False] * 4
    assert not health.is_paused()
    assert health.record_failure("HTTP 500", now=NOW + 4) is True  # the pausing failure
    assert health.is_paused()
    assert health.paused_at == NOW + 4
    assert health.record_failure("timeout") is False  # already paused: no second alert
    assert health.is_paused() and health.consecutive_failures == 6

    assert health.record_success(now=NOW + 100) is True
    assert not health.is_paused() and health.consecutive_failures == 0
    for _ in range(4):
        health.record_failure()
    assert not health.is_paused()


def test_a_success_in_between_restarts_the_count():
    health = EndpointHealth(threshold=3)
    health.record_failure()
    health.record_failure()
    health.record_success()
    health.record_failure()
    health.record_failure()
    assert not health.is_paused()
    assert health.record_failure() is True


def test_endpoint_health_round_trips_through_json():
    health = EndpointHealth(threshold=5)
    for i in range(5):
        health.record_failure(f"HTTP 50{i}", now=NOW + i)
    restored = EndpointHealth.from_dict(json.loads(json.dumps(health.to_dict())))
    assert restored == health
    assert restored.is_paused() and restored.last_failure_reason == "HTTP 504"
    assert restored.resume() is True and not restored.is_paused()
    assert EndpointHealth.from_dict({}) == EndpointHealth()
    with pytest.raises(ValueError):
        EndpointHealth.from_dict({"format": 99})


# --------------------------------------------------------------------------- templates

LISTED = [
    "ProposalSubmitted", "ProposalScreened", "ProposalQualified", "ProposalExpired",
    "ProposalWithdrawn", "ConsultationOpened", "MeetingScheduled", "BallotOpened",
    "BallotClosingSoon", "ResolutionAdopted", "ResolutionRejected", "ResolutionFinal",
    "TaskAssigned", "TaskOverdue", "CaseClosed",
    # issue 13.2
    "EvaluationOpened", "EvaluationClosingSoon", "EvaluationExtended", "PlanReopened", "FollowUpOpened",
    "MeetingCancelled", "MinutesAwaitingSignature", "ObjectionRuled", "ProposalMerged",
]

FULL_CONTEXT = {
    "title": "3号院排水沟疏通",
    "task": "清理下水道",
    "scope": "3号院2栋",
    "support_deadline": "2026-12-05",
    "outcome": "resolved",
    "reason": "已完成疏通，雨季未再积水",
    "supports": "12户",
    "threshold": "10户",
    "deadline": "2026-12-05",
    "role": "楼栋长",
    "convener": "社区党委",
    "starts_at": "2026-12-01 19:00",
    "place": "社区活动室",
    "agenda": "讨论维修方案",
    "closes_at": "2026-12-10 20:00",
    "rule": "owners_major",
    "result": "同意 6 户 / 570 m²",
    "publicity_ends_at": "2026-12-17",
    "due_at": "2026-12-20",
    "description": "疏通 3 号院全部排水沟",
    "assignee": "物业公司",
    "link": "https://consult.example/c/123",
    "preferences_link": "https://consult.example/prefs",
    "respondents": "2", "denominator": "12", "min_response_share": "1/3", "reason": "天气原因",
    "starts_at": "2026-12-05 19:00", "role": "网格长",
}


def has_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def test_exactly_the_listed_event_types_have_templates():
    assert sorted(templates.EVENT_TYPES) == sorted(LISTED)


@pytest.mark.parametrize("event_type", LISTED)
@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_every_type_renders_in_both_languages(event_type, lang):
    subject, body = templates.render(event_type, lang, FULL_CONTEXT)
    assert subject and body.strip()
    assert "\n" not in subject
    assert "{" not in subject + body and "}" not in subject + body
    assert templates.PLACEHOLDER[lang] not in subject + body
    assert "https://consult.example/prefs" in body
    text_key = "task" if event_type.startswith("Task") else "title"
    assert FULL_CONTEXT[text_key] in subject
    own_subject, own_body = subject, body  # the template's own words, without the values
    for value in sorted(FULL_CONTEXT.values(), key=len, reverse=True):
        own_subject, own_body = own_subject.replace(value, ""), own_body.replace(value, "")
    assert has_cjk(own_subject) is (lang == "zh-CN")
    assert has_cjk(own_body) is (lang == "zh-CN")
    # every key the template declares is actually shown with a full context
    fields = templates.template_fields(event_type)
    for key in fields["required"]:
        if key != "outcome":
            assert FULL_CONTEXT[key] in subject + body, key


@pytest.mark.parametrize("event_type", LISTED)
@pytest.mark.parametrize("lang", ["zh-CN", "en", None, "fr"])
def test_missing_context_renders_placeholders_and_never_crashes(event_type, lang):
    subject, body = templates.render(event_type, lang, {})
    placeholder = templates.PLACEHOLDER[templates.resolve_lang(lang)]
    assert placeholder in subject
    assert "{" not in subject + body
    assert "http" not in body  # optional link lines are left out, not shown empty
    assert templates.render(event_type, lang, None) == (subject, body)


def test_unknown_event_type_raises_key_error():
    with pytest.raises(KeyError):
        templates.render("VoteCast", "zh-CN", FULL_CONTEXT)
    with pytest.raises(KeyError):
        templates.template_fields("VoteCast")


def test_language_resolution():
    assert templates.resolve_lang(None) == "zh-CN"
    assert templates.resolve_lang("zh") == "zh-CN"
    assert templates.resolve_lang("zh_CN") == "zh-CN"
    assert templates.resolve_lang("EN-gb") == "en"
    assert templates.resolve_lang("de") == "zh-CN"
    assert templates.render("BallotOpened", "en-US", FULL_CONTEXT)[0].startswith("Voting open")


def test_screening_outcome_selects_the_template():
    ctx = {"title": "种菜", "reason": "不属于本社区事务"}
    subject, body = templates.render("ProposalScreened", "zh-CN", dict(ctx, outcome="inadmissible"))
    assert subject == "【提议未予受理】种菜" and "理由：不属于本社区事务" in body
    subject, body = templates.render("ProposalScreened", "en", dict(ctx, outcome="Admissible"))
    assert subject == "Proposal admissible: 种菜"
    subject, body = templates.render("ProposalScreened", "en", {"title": "x", "outcome": "inadmissible"})
    assert "Reason: (not provided)" in body  # a required reason is shown as missing
    subject, body = templates.render("ProposalScreened", "zh-CN", {"title": "x", "outcome": "deferred"})
    assert subject == "【提议审核结果】x" and "deferred" in body


def test_case_closed_shows_outcome_and_reasons():
    subject, body = templates.render(
        "CaseClosed", "zh-CN", {"title": "排水", "outcome": "resolved", "reason": "雨季未再积水"}
    )
    assert subject == "【事项已办结】排水"
    assert "结果：已解决" in body and "理由：雨季未再积水" in body
    _, body = templates.render("CaseClosed", "en", {"title": "drains", "outcome": "moved to a new case"})
    assert "Outcome: moved to a new case" in body and "Reasons: (not provided)" in body


def test_context_values_are_inserted_verbatim_never_interpreted():
    tricky = "{link} {0} {__class__} %s $title"
    subject, body = templates.render(
        "BallotOpened", "en", {"title": tricky, "closes_at": "20:00", "link": "L"}
    )
    assert subject == f"Voting open: {tricky}"
    assert f'"{tricky}"' in body


def test_newlines_in_titles_stay_out_of_the_subject():
    subject, _ = templates.render("ProposalSubmitted", "zh-CN", {"title": "排水\r\n问题"})
    assert subject == "【新提议】排水 问题"


def test_optional_lines_are_dropped_and_required_ones_kept():
    _, body = templates.render(
        "MeetingScheduled", "zh-CN", {"title": "排水", "starts_at": "19:00"}
    )
    assert "时间：19:00" in body
    assert "地点：（未提供）" in body  # required: shown as missing
    assert "议程" not in body and "会议材料" not in body  # optional: left out
    assert "\n\n\n" not in body
