"""One unwrapping of RPC replies (services.common.errors.unwrap): a refusal is raised as the
DomainError of its status and, passed on, is the same problem the refusing service gave."""
import pytest

from services.common.errors import (Conflict, DomainError, Forbidden, InvalidInput, NotFound, PayloadTooLarge,
                                    Unauthorized, Unavailable, from_problem, unwrap)
from services.common.locks import LockTimeout


def _reply(error: DomainError) -> dict:
    return {"ok": False, "problem": error.to_problem()}


def test_a_result_is_returned_and_a_plain_answer_left_as_it_is():
    assert unwrap({"ok": True, "result": {"a": 1}}) == {"a": 1}
    assert unwrap({"ok": True, "result": None}) is None
    assert unwrap([1, 2]) == [1, 2]
    assert unwrap({"ok": True, "status": "fine"}) == {"ok": True, "status": "fine"}  # not our envelope


@pytest.mark.parametrize("cls", [InvalidInput, NotFound, Forbidden, Unauthorized, Conflict, Unavailable,
                                 PayloadTooLarge])
def test_a_refusal_is_raised_as_its_own_kind(cls):
    with pytest.raises(cls) as caught:
        unwrap(_reply(cls("nope")))
    assert caught.value.status == cls.status


def test_a_lock_timeout_two_services_away_is_still_a_503_with_its_type_and_words():
    first = LockTimeout.coded("common.busy_try_again", namespace="proposal")
    with pytest.raises(Unavailable) as caught:
        unwrap(_reply(first))
    # passed on by a second service, and unwrapped by the gateway: the same problem
    again = _reply(caught.value)
    with pytest.raises(Unavailable) as at_gateway:
        unwrap(again)
    assert at_gateway.value.to_problem() == first.to_problem()
    assert at_gateway.value.to_problem()["type"].endswith("/LockTimeout")
    assert at_gateway.value.status == 503


def test_extra_fields_and_the_message_key_travel_with_the_problem():
    refused = Conflict.coded("common.someone_else_changed_same", extra={"errors": [{"line": 3, "message": "x"}]})
    error = from_problem(refused.to_problem())
    assert isinstance(error, Conflict)
    assert error.to_problem()["errors"] == [{"line": 3, "message": "x"}]
    assert error.message == refused.message
    assert error.detail == refused.detail


def test_an_unknown_status_keeps_its_number():
    assert isinstance(from_problem({"status": 418, "detail": "teapot"}), InvalidInput)
    assert from_problem({"status": 418, "detail": "teapot"}).status == 418
    assert isinstance(from_problem({"status": 502, "detail": "x"}), Unavailable)
    assert from_problem({"detail": "no status"}).status == 422
    with pytest.raises(Unavailable):
        unwrap({"ok": False, "problem": "garbled"})
