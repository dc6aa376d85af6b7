"""Domain errors shared by every service, mapped once at the gateway to RFC 9457 problems."""
from __future__ import annotations


class DomainError(Exception):
    """An expected refusal: bad input or a command not allowed now. Nothing is recorded."""

    status = 400
    title = "Bad request"

    def __init__(self, detail: str, **extra):
        super().__init__(detail)
        self.detail = detail
        self.extra = extra
        self.message: dict | None = None  # {"key", "params"} of services/common/problem_texts

    @classmethod
    def coded(cls, key: str, /, *, extra: dict | None = None, **params):
        """A refusal whose words the gateway renders in the client's language: `key` names its
        message in the catalogue (services/common/problem_texts), `params` fill it in (plain
        JSON values: they travel in the RPC reply). Its `detail` is the English text.

        A parameter that is no JSON scalar (an id, a Decimal, a date, a tuple) is passed as its
        text, the words an f-string would have used, so the detail reads the same after the trip."""
        from .problem_texts import EN, render

        params = {name: value if value is None or isinstance(value, (str, int, float, bool)) else str(value)
                  for name, value in params.items()}
        error = cls(render(key, EN, params) or key, **(extra or {}))
        error.message = {"key": key, "params": params}
        return error

    @classmethod
    def relayed(cls, problem: dict):
        """Another service's refusal (the problem of its RPC reply) raised again here, its words
        kept: the English detail and, if it was coded, its message key for the gateway."""
        error = cls(problem.get("detail", "refused"))
        error.message = problem.get("i18n")
        return error

    @property
    def type_name(self) -> str:
        return type(self).__name__

    def to_problem(self) -> dict:
        relayed = getattr(self, "_problem", None)
        if relayed is not None:
            return dict(relayed)  # another service's refusal, passed on exactly as it was given
        problem = {
            "type": f"https://consult.example/problems/{self.type_name}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.type_name,
        }
        problem.update(self.extra)
        if self.message:
            problem["i18n"] = self.message  # taken off by the gateway when it localises
        return problem


class InvalidInput(DomainError):
    status = 422
    title = "Invalid input"


class PayloadTooLarge(InvalidInput):
    """A file larger than the configured limit (an evidence file): 413, and nothing is kept."""
    status = 413
    title = "Payload too large"


class NotFound(DomainError):
    status = 404
    title = "Not found"


class Forbidden(DomainError):
    status = 403
    title = "Forbidden"


class Unauthorized(DomainError):
    status = 401
    title = "Unauthorized"


class Conflict(DomainError):
    """The command conflicts with the current state (wrong state, duplicate, already done)."""

    status = 409
    title = "Conflict"


class Unavailable(DomainError):
    """The service cannot take commands now (e.g. its records are held for an operator)."""

    status = 503
    title = "Service unavailable"


_BY_STATUS: dict[int, type[DomainError]] = {401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict,
                                            413: PayloadTooLarge, 422: InvalidInput, 503: Unavailable}
_REPLY_KEYS = frozenset({"ok", "result", "problem"})


def from_problem(problem: dict) -> DomainError:
    """Another service's refusal (the problem of its RPC reply) raised here as the DomainError of
    its HTTP status (`except NotFound` works on it), carrying the problem itself: passed on, it
    reaches the client exactly as the service that refused gave it — same status, `type`, words
    and extra fields. So a lock timeout three services away is a 503 at the client, not a 422."""
    status = problem.get("status")
    status = status if isinstance(status, int) and not isinstance(status, bool) else 422
    cls = _BY_STATUS.get(status) or (Unavailable if status >= 500 else InvalidInput)
    error = cls(str(problem.get("detail") or problem.get("title") or "refused"))
    error.message = problem.get("i18n")
    error.status = status
    error._problem = dict(problem, status=status)
    return error


def unwrap(reply):
    """The result of an RPC reply in our envelope ({"ok": true, "result": …} or {"ok": false,
    "problem": {…}}); a refusal is raised (from_problem). The one place replies are unwrapped: the
    gateway, every service's calls to another and the CLI use it. Anything that is not such an
    envelope (a plain query's answer) is returned as it is."""
    if isinstance(reply, dict) and "ok" in reply and set(reply) <= _REPLY_KEYS:
        if reply["ok"] is True:
            return reply.get("result")
        problem = reply.get("problem")
        raise from_problem(problem if isinstance(problem, dict) else {"status": 500, "detail": "refused"})
    return reply
