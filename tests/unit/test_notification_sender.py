"""The sender timer looks for due deliveries after a save of its process, and otherwise once a
second with the reminders and the pending gauge (services/notifications/service.py, `Sender`): an
idle platform's sender used to ask its store three questions five times a second."""
from __future__ import annotations

from types import SimpleNamespace

from services.notifications import service as notifications


class _App:
    def __init__(self):
        self.saves = 0
        self.calls: list[str] = []

    def fire_reminders(self, directory):
        self.calls.append("reminders")

    def refresh_pending_gauge(self):
        self.calls.append("gauge")


class _Dispatcher:
    def __init__(self, app: _App, saves_while_sending: list[int]):
        self.app, self.saves_while_sending = app, saves_while_sending

    def run(self, budget_s: float):
        self.app.calls.append("dispatch")
        self.app.saves += self.saves_while_sending.pop(0) if self.saves_while_sending else 0


def _sender(monkeypatch, saves_while_sending=()):
    app = _App()
    now = [100.0]
    sender = notifications.Sender(monotonic=lambda: now[0])
    sender.dispatcher = _Dispatcher(app, list(saves_while_sending))
    sender.lease = SimpleNamespace(still_held=lambda: True, try_acquire=lambda: True)
    monkeypatch.setattr(notifications.Directory, "of_runtime", staticmethod(lambda rt: "directory"))
    return sender, SimpleNamespace(app=app), app, now


def test_an_idle_sender_looks_once_a_second_not_on_every_tick(monkeypatch):
    sender, rt, app, now = _sender(monkeypatch)
    for _ in range(5):  # one second of 0.2 s ticks, nothing saved
        sender(rt)
        now[0] += 0.2
    assert app.calls == ["reminders", "dispatch", "gauge"]
    sender(rt)  # a second after the first look
    assert app.calls == ["reminders", "dispatch", "gauge"] * 2


def test_a_save_of_its_process_brings_a_look_on_the_next_tick_and_its_own_batch_one_more(monkeypatch):
    sender, rt, app, now = _sender(monkeypatch, saves_while_sending=[0, 1, 0])
    sender(rt)  # the first look: nothing due
    app.calls.clear()
    now[0] += 0.2
    sender(rt)
    assert app.calls == []
    app.saves += 1  # the planner recorded deliveries
    now[0] += 0.2
    sender(rt)
    assert app.calls == ["dispatch"]  # it sent them, saving its records: more may be due
    now[0] += 0.2
    sender(rt)
    assert app.calls == ["dispatch"] * 2  # nothing saved this time
    now[0] += 0.2
    sender(rt)
    assert app.calls == ["dispatch"] * 2  # nothing new: back to the once-a-second look


def test_a_save_while_it_sends_is_not_missed(monkeypatch):
    sender, rt, app, now = _sender(monkeypatch, saves_while_sending=[1, 0])
    sender(rt)  # the look's dispatch: a delivery planned meanwhile (a save during the send)
    now[0] += 0.2
    sender(rt)
    assert app.calls == ["reminders", "dispatch", "gauge", "dispatch"]
