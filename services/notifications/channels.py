"""Delivery channels of the notifications service: e-mail and signed webhooks.

Plain Python with no nameko/kombu imports: the nameko service drives these objects and
decides, from :class:`DeliveryFailed`, whether to retry (see :func:`backoff_schedule`),
give up on one delivery, or pause an endpoint that keeps failing (see
:class:`EndpointHealth`).

Nothing here reads a clock to make a decision: the caller passes ``now`` (architecture
rule "one clock"). The only clock read left is the default ``Date:`` header of an e-mail
when the caller passes no ``date``.
"""

from __future__ import annotations

import email.policy
import email.utils
import hashlib
import hmac
import ipaddress
import os
import random
import re
import smtplib
import socket
import ssl
from datetime import datetime
from email.message import EmailMessage
from typing import Any, Callable, Iterable, Mapping, Optional
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

from services.common.canonical import canonical_bytes

__all__ = [
    "DeliveryFailed",
    "EmailSender",
    "make_message_id",
    "canonical_json",
    "sign_webhook",
    "verify_webhook_signature",
    "WebhookSender",
    "WebhookTargets",
    "TargetRefused",
    "ALLOWLIST_SETTING",
    "SIGNATURE_HEADER",
    "DELIVERY_HEADER",
    "backoff_schedule",
    "EndpointHealth",
]


class DeliveryFailed(Exception):
    """A delivery did not succeed.

    ``permanent`` -- retrying the same delivery will not help (5xx from an SMTP server,
    4xx other than 408/429 from a webhook receiver, an unusable address or URL).
    Otherwise the failure is transient and the delivery should be retried with back-off.
    ``code`` is the SMTP or HTTP status when there was one; ``retry_after`` is the
    receiver's ``Retry-After`` hint in seconds, when it sent one as a number.
    """

    def __init__(
        self,
        permanent: bool,
        reason: str,
        *,
        code: Optional[int] = None,
        retry_after: Optional[float] = None,
    ) -> None:
        self.permanent = bool(permanent)
        self.reason = str(reason)
        self.code = code
        self.retry_after = retry_after
        super().__init__(self.permanent, self.reason)

    @property
    def transient(self) -> bool:
        return not self.permanent

    def __str__(self) -> str:
        kind = "permanent" if self.permanent else "transient"
        return f"{kind} delivery failure: {self.reason}"

    def __repr__(self) -> str:
        return (
            f"DeliveryFailed(permanent={self.permanent!r}, reason={self.reason!r}, "
            f"code={self.code!r})"
        )


# --------------------------------------------------------------------------- e-mail

_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+=-]{0,127}")
_SAFE_DOMAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
_LANG_TAG = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*")
_FALLBACK_DOMAIN = "consult.invalid"
_MAIL_POLICY = email.policy.default.clone(cte_type="7bit")


def make_message_id(message_id: str, sender: str) -> str:
    """The ``Message-ID`` header for the delivery ``message_id``: ``<id@sender-domain>``.

    Deterministic, so a message re-sent after a crash carries the same Message-ID and the
    receiving side can recognise the duplicate. An id that is not a plain token (letters,
    digits, ``._+=-``, at most 128 characters) is replaced by a SHA-256 of it.
    """
    if not isinstance(message_id, str) or not message_id:
        raise ValueError("message_id must be a non-empty string")
    if _SAFE_ID.fullmatch(message_id):
        left = message_id
    else:
        left = "h." + hashlib.sha256(message_id.encode("utf-8")).hexdigest()[:40]
    _, at, domain = email.utils.parseaddr(sender)[1].rpartition("@")
    domain = domain.lower()
    if not at or not _SAFE_DOMAIN.fullmatch(domain):
        domain = _FALLBACK_DOMAIN
    return f"<{left}@{domain}>"


def _one_line(text: str) -> str:
    """Collapse every run of whitespace (including CR/LF) into one space."""
    return " ".join(str(text).split())


def _lang_tag(lang: Optional[str]) -> str:
    tag = (lang or "zh-CN").replace("_", "-").strip()
    return tag if _LANG_TAG.fullmatch(tag) else "zh-CN"


def _smtp_failure(code: int, error: Any, what: str) -> DeliveryFailed:
    if isinstance(error, bytes):
        error = error.decode("utf-8", "replace")
    return DeliveryFailed(
        permanent=500 <= code <= 599,
        reason=f"{what}: {code} {error}".strip(),
        code=code,
    )


class EmailSender:
    """Sends one plain-text UTF-8 e-mail per :meth:`send` call over SMTP.

    ``starttls=True`` upgrades the connection (with certificate verification through
    ``ssl_context``, default :func:`ssl.create_default_context`) before logging in with
    ``username``/``password`` when a username is given.
    """

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        starttls: bool = False,
        username: Optional[str] = None,
        password: Optional[str] = None,
        timeout: float = 10,
        *,
        ssl_context: Optional[ssl.SSLContext] = None,
        local_hostname: Optional[str] = None,
    ) -> None:
        if not email.utils.parseaddr(sender)[1]:
            raise ValueError(f"not a usable sender address: {sender!r}")
        self.host = host
        self.port = int(port)
        self.sender = sender
        self.starttls = bool(starttls)
        self.username = username
        self.password = password
        self.timeout = timeout
        self.ssl_context = ssl_context
        self.local_hostname = local_hostname

    def build_message(
        self,
        to_addr: str,
        subject: str,
        body_text: str,
        message_id: str,
        lang: Optional[str],
        *,
        date: Optional[datetime] = None,
    ) -> EmailMessage:
        """The message :meth:`send` would send (exposed for tests and previews)."""
        # 7-bit on the wire (base64 or quoted-printable bodies, RFC 2047 headers): no
        # reliance on the server's 8BITMIME support.
        msg = EmailMessage(policy=_MAIL_POLICY)
        msg["From"] = self.sender
        msg["To"] = to_addr
        msg["Subject"] = _one_line(subject)
        msg["Message-ID"] = make_message_id(message_id, self.sender)
        msg["Date"] = (
            email.utils.format_datetime(date)
            if date is not None
            else email.utils.formatdate(usegmt=True)
        )
        # RFC 3834: tell auto-responders (vacation replies) not to answer.
        msg["Auto-Submitted"] = "auto-generated"
        msg.set_content(body_text, charset="utf-8")
        # after set_content, which drops every Content-* header set before it
        msg["Content-Language"] = _lang_tag(lang)
        return msg

    def send(
        self,
        to_addr: str,
        subject: str,
        body_text: str,
        message_id: str,
        lang: Optional[str],
        *,
        date: Optional[datetime] = None,
    ) -> None:
        """Deliver one message to the SMTP server; raise :class:`DeliveryFailed` if not.

        5xx replies are permanent; 4xx replies, timeouts, refused or dropped connections
        are transient. Exception: a failure of STARTTLS or of the login is reported as
        transient whatever its code, because it is a problem of this sender's
        configuration or of the server, not of this message, and the message can go out
        once it is fixed.
        """
        if not isinstance(to_addr, str) or any(c in to_addr for c in "\r\n") or (
            "@" not in email.utils.parseaddr(to_addr)[1]
        ):
            raise DeliveryFailed(True, f"not a usable recipient address: {to_addr!r}")
        rcpt = email.utils.parseaddr(to_addr)[1]
        envelope_from = email.utils.parseaddr(self.sender)[1]
        msg = self.build_message(to_addr, subject, body_text, message_id, lang, date=date)

        smtp: Optional[smtplib.SMTP] = None
        phase = "connect"
        try:
            smtp = smtplib.SMTP(
                self.host,
                self.port,
                local_hostname=self.local_hostname,
                timeout=self.timeout,
            )
            phase = "ehlo"
            smtp.ehlo_or_helo_if_needed()
            if self.starttls:
                phase = "starttls"
                smtp.starttls(context=self.ssl_context or ssl.create_default_context())
                smtp.ehlo()
            if self.username is not None:
                phase = "login"
                smtp.login(self.username, self.password or "")
            phase = "send"
            smtp.send_message(msg, from_addr=envelope_from, to_addrs=[rcpt])
        except smtplib.SMTPRecipientsRefused as exc:
            code, error = next(iter(exc.recipients.values()), (0, b"recipient refused"))
            raise _smtp_failure(code, error, f"recipient {rcpt} refused") from exc
        except smtplib.SMTPResponseException as exc:
            failure = _smtp_failure(exc.smtp_code, exc.smtp_error, f"SMTP {phase}")
            if phase in ("starttls", "login"):
                failure.permanent = False
            raise failure from exc
        except smtplib.SMTPNotSupportedError as exc:
            # During "send" this means a non-ASCII address the server cannot take.
            raise DeliveryFailed(phase == "send", f"SMTP {phase}: {exc}") from exc
        except (smtplib.SMTPException, OSError) as exc:
            # Connection refused/reset/closed, timeouts, TLS errors, DNS failures.
            raise DeliveryFailed(
                False, f"SMTP {phase}: {type(exc).__name__}: {exc}"
            ) from exc
        finally:
            if smtp is not None:
                _close_quietly(smtp)


def _close_quietly(smtp: smtplib.SMTP) -> None:
    # The message is accepted once DATA is answered with 250; a failing QUIT must not
    # turn a delivered message into a failure (and so into a duplicate).
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        pass
    finally:
        try:
            smtp.close()
        except OSError:
            pass


# --------------------------------------------------------------------------- webhooks

SIGNATURE_HEADER = "X-Consult-Signature"
DELIVERY_HEADER = "X-Consult-Delivery"


def canonical_json(payload: Any) -> bytes:
    """The exact bytes a webhook body carries (and that the signature covers)."""
    return canonical_bytes(payload)


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    raise TypeError(f"expected bytes or str, got {type(value).__name__}")


def _hmac_hex(secret: bytes, timestamp: int, body: bytes) -> str:
    signed = f"{int(timestamp)}.".encode("ascii") + body
    return hmac.new(secret, signed, hashlib.sha256).hexdigest()


def sign_webhook(secret: bytes, timestamp: int, body: bytes) -> str:
    """The ``X-Consult-Signature`` value: ``t=<timestamp>,v1=<hex HMAC-SHA256>``.

    The MAC is over ``f"{timestamp}.".encode() + body`` with ``secret`` as key.
    """
    if isinstance(timestamp, bool) or int(timestamp) != timestamp:
        raise ValueError("timestamp must be a whole number of seconds")
    ts = int(timestamp)
    return f"t={ts},v1={_hmac_hex(_as_bytes(secret), ts, _as_bytes(body))}"


def verify_webhook_signature(
    secret: bytes,
    header: Optional[str],
    body: bytes,
    now: float,
    tolerance_s: float = 300,
) -> bool:
    """True when ``header`` is a valid signature of ``body`` made within ``tolerance_s``.

    Rejects (returns False, never raises on bad input) a missing or malformed header, a
    timestamp more than ``tolerance_s`` seconds away from ``now`` in either direction,
    and a body that is not exactly the signed bytes. Several ``v1=`` entries are allowed
    (a sender rotating its secret); any one matching is enough. Comparison is
    constant-time.
    """
    try:
        if isinstance(header, bytes):
            header = header.decode("ascii")
        if not isinstance(header, str) or len(header) > 4096:
            return False
        timestamp: Optional[int] = None
        candidates: list[str] = []
        for part in header.split(","):
            key, sep, value = part.strip().partition("=")
            if not sep:
                continue
            if key == "t":
                if timestamp is not None or not re.fullmatch(r"[0-9]{1,12}", value):
                    return False
                timestamp = int(value)
            elif key == "v1":
                candidates.append(value.strip().lower())
        if timestamp is None or not candidates:
            return False
        if abs(float(now) - timestamp) > tolerance_s:
            return False
        expected = _hmac_hex(_as_bytes(secret), timestamp, _as_bytes(body))
        matched = False
        for candidate in candidates:
            # no short-circuit, so timing does not reveal which entry matched
            matched |= hmac.compare_digest(
                expected.encode("ascii"), candidate.encode("ascii", "replace")
            )
        return matched
    except (TypeError, ValueError, UnicodeError):
        return False


def _retry_after_seconds(value: Optional[str]) -> Optional[float]:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    return None  # HTTP-date form is not interpreted: the caller's back-off applies


ALLOWLIST_SETTING = "CONSULT_WEBHOOK_ALLOWLIST"
# IPv6 prefixes that carry an IPv4 address in their last 32 bits (NAT64): checked as that address.
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


class TargetRefused(ValueError):
    """A webhook URL or address the platform will not post to (not an OSError, so that no HTTP
    library mistakes it for a network failure and retries or wraps it)."""


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> Optional[ipaddress.IPv4Address]:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if any(ip in net for net in _NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _why_not_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> Optional[str]:
    """None for an address on the public internet; else what it is (private, loopback, link-local
    -- the cloud metadata services live there --, shared, multicast, reserved...)."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            return _why_not_public(inner)
    for name in ("loopback", "link_local", "private", "multicast", "unspecified", "reserved", "site_local"):
        if getattr(ip, f"is_{name}", False):
            return name.replace("_", "-")
    if not ip.is_global:
        return "not public"  # e.g. 100.64.0.0/10 (shared, where some metadata services live)
    return None


class WebhookTargets:
    """Where webhooks may go. Only ``https://`` URLs whose host resolves to public addresses --
    never a private, loopback, link-local (cloud metadata), shared, multicast or reserved one.
    An operator may allow-list addresses or networks (``CONSULT_WEBHOOK_ALLOWLIST``, comma
    separated, e.g. ``127.0.0.1,10.2.0.0/16``): those may be reached although private, and over
    ``http://`` too. The check runs when an endpoint is registered and again at every connection,
    after DNS, on the address actually connected to (so a name that later resolves elsewhere
    cannot lead the sender into the internal network)."""

    def __init__(self, allow: Iterable[str] = (), resolve: Optional[Callable[..., list]] = None) -> None:
        self.allowed = [ipaddress.ip_network(a.strip(), strict=False) for a in allow if a and a.strip()]
        self._resolve = resolve

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "WebhookTargets":
        return cls(environ.get(ALLOWLIST_SETTING, "").split(","))

    def _allow_listed(self, ip) -> bool:
        return any(ip.version == net.version and ip in net for net in self.allowed)

    def parse(self, url: str) -> tuple[str, str, int]:
        """(scheme, host, port) of a URL the sender could use at all; TargetRefused if not."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise TargetRefused("the webhook URL is not a valid URL") from None
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise TargetRefused("the webhook URL must be an https:// address")
        if parts.username is not None or parts.password is not None:
            raise TargetRefused("the webhook URL must not carry a user name or password")
        return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)

    def addresses(self, host: str, port: int, scheme: str) -> list[str]:
        """The host's addresses, each checked (all must pass: a name with one internal address
        is refused whole); TargetRefused if one may not be reached or the name does not resolve."""
        try:
            infos = (self._resolve or socket.getaddrinfo)(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError, OSError):
            raise TargetRefused(f"the webhook host {host} does not resolve") from None
        found = list(dict.fromkeys(info[4][0] for info in infos))
        if not found:
            raise TargetRefused(f"the webhook host {host} does not resolve")
        for address in found:
            self.check(ipaddress.ip_address(address.split("%", 1)[0]), scheme, host)
        return found

    def check(self, ip, scheme: str, host: str) -> None:
        if self._allow_listed(ip):
            return
        if scheme != "https":
            raise TargetRefused("the webhook URL must be an https:// address (http:// only to an address the "
                                "operator allow-lists)")
        why = _why_not_public(ip)
        if why is not None:
            raise TargetRefused(f"the webhook host {host} resolves to a {why} address, which webhooks may not reach")

    def check_url(self, url: str) -> None:
        """At registration: the URL, and the addresses its host resolves to now."""
        scheme, host, port = self.parse(url)
        self.addresses(host, port, scheme)

    def session(self) -> requests.Session:
        """A requests session whose every connection resolves, checks and connects to the checked
        address itself, takes no proxy from the environment and follows no redirect."""
        session = requests.Session()
        session.trust_env = False
        adapter = _GuardedAdapter(self)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session


def _guarded(base: type, targets: WebhookTargets, scheme: str) -> type:
    class Guarded(base):
        def _new_conn(self) -> socket.socket:
            last: Optional[Exception] = None
            for address in targets.addresses(self._dns_host, self.port, scheme):
                try:
                    return urllib3.util.connection.create_connection(
                        (address, self.port), self.timeout, source_address=self.source_address,
                        socket_options=self.socket_options)
                except socket.timeout as exc:
                    last = urllib3.exceptions.ConnectTimeoutError(self, f"connecting to {self.host} timed out")
                    last.__cause__ = exc
                except OSError as exc:
                    last = urllib3.exceptions.NewConnectionError(self, f"failed to connect: {exc}")
            raise last  # type: ignore[misc]

    return Guarded


class _GuardedAdapter(HTTPAdapter):
    def __init__(self, targets: WebhookTargets) -> None:
        self.targets = targets
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        pools = urllib3.connectionpool
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("GuardedHTTPPool", (pools.HTTPConnectionPool,), {
                "ConnectionCls": _guarded(urllib3.connection.HTTPConnection, self.targets, "http")}),
            "https": type("GuardedHTTPSPool", (pools.HTTPSConnectionPool,), {
                "ConnectionCls": _guarded(urllib3.connection.HTTPSConnection, self.targets, "https")}),
        }


class WebhookSender:
    """POSTs one signed, canonical-JSON event to a subscriber's URL per :meth:`send`.

    Only to targets :class:`WebhookTargets` allows, checked on the address actually connected
    to. Redirects are not followed (a redirected POST would become a GET, and following them
    lets a receiver point the platform at arbitrary addresses); a 3xx reply is a transient
    failure like any other non-2xx, non-4xx status. What a receiver answers is never kept:
    a failure says its status code only.
    """

    def __init__(
        self,
        timeout: float = 5,
        *,
        user_agent: str = "consult-webhooks/1",
        post: Optional[Callable[..., requests.Response]] = None,
        targets: Optional[WebhookTargets] = None,
    ) -> None:
        self.timeout = timeout
        self.user_agent = user_agent
        self.targets = targets or WebhookTargets.from_env()
        self._post = post or self.targets.session().post

    def build_request(
        self, secret: bytes, payload: Mapping[str, Any], delivery_id: str, now_ts: int
    ) -> tuple[bytes, dict[str, str]]:
        """The body and headers :meth:`send` would POST."""
        body = canonical_json(payload)
        delivery = _one_line(delivery_id)
        if not delivery:
            raise ValueError("delivery_id must be a non-empty string")
        headers = {
            "Content-Type": "application/json",
            "User-Agent": self.user_agent,
            SIGNATURE_HEADER: sign_webhook(secret, int(now_ts), body),
            DELIVERY_HEADER: delivery,
        }
        return body, headers

    def send(
        self,
        url: str,
        secret: bytes,
        payload: Mapping[str, Any],
        delivery_id: str,
        now_ts: int,
    ) -> None:
        """Deliver; return on 2xx, else raise :class:`DeliveryFailed`.

        4xx other than 408 and 429 is permanent, as is a URL requests cannot use at
        all; 408, 429, 3xx, 5xx, timeouts and connection errors are transient. A
        payload that is not JSON-serialisable raises TypeError/ValueError: that is a
        bug in the caller, not a delivery failure.
        """
        body, headers = self.build_request(secret, payload, delivery_id, now_ts)
        try:
            self.targets.parse(url)
            response = self._post(
                url,
                data=body,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
                stream=True,  # the answer's body is never read
            )
        except TargetRefused as exc:
            raise DeliveryFailed(True, f"webhook target refused: {exc}") from exc
        except (
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
            requests.exceptions.InvalidURL,
        ) as exc:
            raise DeliveryFailed(True, "unusable webhook URL") from exc
        except requests.exceptions.RequestException as exc:
            raise DeliveryFailed(False, f"webhook {type(exc).__name__}") from exc
        try:
            status = response.status_code
            if 200 <= status <= 299:
                return
        finally:
            response.close()
        reason = f"webhook answered HTTP {status}"
        permanent = 400 <= status <= 499 and status not in (408, 429)
        raise DeliveryFailed(
            permanent,
            reason,
            code=status,
            retry_after=_retry_after_seconds(response.headers.get("Retry-After")),
        )


# --------------------------------------------------------------------------- retries


def backoff_schedule(
    attempt: int,
    base_s: float = 2,
    factor: float = 2,
    cap_s: float = 3600,
    jitter: Optional[float] = None,
    *,
    rng: Optional[random.Random] = None,
) -> float:
    """Seconds to wait before retry number ``attempt`` (1 = the first retry).

    Without jitter: ``min(cap_s, base_s * factor ** (attempt - 1))`` -- 2, 4, 8, ...
    3600, 3600 with the defaults. ``jitter`` is a fraction in [0, 1]: the delay is then
    drawn uniformly from ``[d * (1 - jitter), d]`` with ``rng`` (default: the ``random``
    module), so it never exceeds the deterministic value or the cap.
    """
    if isinstance(attempt, bool) or int(attempt) != attempt or attempt < 1:
        raise ValueError("attempt must be an integer >= 1")
    if base_s < 0 or factor < 1 or cap_s < 0:
        raise ValueError("need base_s >= 0, factor >= 1, cap_s >= 0")
    delay = float(base_s)
    for _ in range(int(attempt) - 1):
        if delay >= cap_s:
            break
        delay *= factor
    delay = min(float(cap_s), delay)
    if jitter is None:
        return delay
    if not 0 <= jitter <= 1:
        raise ValueError("jitter must be a fraction between 0 and 1")
    draw = (rng or random).random()
    return delay * (1 - jitter * draw)


class EndpointHealth:
    """Whether a delivery endpoint (a webhook URL, a mail host) should be paused.

    Pure bookkeeping: after ``threshold`` consecutive failures the endpoint is paused
    and stays paused -- further failures keep being counted -- until a success is
    recorded (e.g. an operator's test delivery) or :meth:`resume` is called. Times are
    whatever the caller passes (the platform clock); nothing here reads a clock.
    """

    FORMAT = 1

    def __init__(self, threshold: int = 5) -> None:
        if int(threshold) != threshold or threshold < 1:
            raise ValueError("threshold must be an integer >= 1")
        self.threshold = int(threshold)
        self.consecutive_failures = 0
        self.paused = False
        self.paused_at: Optional[float] = None
        self.last_failure_at: Optional[float] = None
        self.last_failure_reason: Optional[str] = None
        self.last_success_at: Optional[float] = None

    def is_paused(self) -> bool:
        return self.paused

    def record_failure(
        self, reason: Optional[str] = None, now: Optional[float] = None
    ) -> bool:
        """Count a failure. True exactly when this failure paused the endpoint."""
        self.consecutive_failures += 1
        self.last_failure_at = now
        self.last_failure_reason = None if reason is None else str(reason)
        if not self.paused and self.consecutive_failures >= self.threshold:
            self.paused = True
            self.paused_at = now
            return True
        return False

    def record_success(self, now: Optional[float] = None) -> bool:
        """Reset the failure count and unpause. True when the endpoint was paused."""
        was_paused = self.paused
        self.consecutive_failures = 0
        self.paused = False
        self.paused_at = None
        self.last_success_at = now
        return was_paused

    def resume(self) -> bool:
        """Operator action: unpause and start counting afresh. True if it was paused."""
        was_paused = self.paused
        self.consecutive_failures = 0
        self.paused = False
        self.paused_at = None
        return was_paused

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.FORMAT,
            "threshold": self.threshold,
            "consecutive_failures": self.consecutive_failures,
            "paused": self.paused,
            "paused_at": self.paused_at,
            "last_failure_at": self.last_failure_at,
            "last_failure_reason": self.last_failure_reason,
            "last_success_at": self.last_success_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "EndpointHealth":
        fmt = data.get("format", cls.FORMAT)
        if fmt != cls.FORMAT:
            raise ValueError(f"unknown EndpointHealth format {fmt!r}")
        health = cls(threshold=data.get("threshold", 5))
        health.consecutive_failures = int(data.get("consecutive_failures", 0))
        health.paused = bool(data.get("paused", False))
        health.paused_at = data.get("paused_at")
        health.last_failure_at = data.get("last_failure_at")
        health.last_failure_reason = data.get("last_failure_reason")
        health.last_success_at = data.get("last_success_at")
        return health

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EndpointHealth):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return (
            f"EndpointHealth(threshold={self.threshold}, "
            f"consecutive_failures={self.consecutive_failures}, paused={self.paused})"
        )
