"""Counting a ballot from its record: the envelopes the decisions service published.

The decisions service counts a closed ballot with :func:`tally_record`, and anyone holding the
record (``consult decisions retally``, the audit replay) recounts it the same way, so a replayed
result can be compared number for number with the recorded one (:func:`differences`).

What the record holds (see docs/events/decisions.md):

* ``BallotOpened`` — the frozen roll, its hash, the full rule, the options, and ``secret``;
* ``VoteCast`` / ``VoteChanged`` — ``ballot``, ``weight`` (decimal string), ``headcount``, and
  for an open ballot ``voter`` (the roll's voter id) and ``choice``. A secret ballot's votes carry
  no voter: each is keyed by its vote aggregate id, an HMAC the service alone can compute; and
  (from version 2 of these events) no choice either, only ``sealed_choice``, a salted hash of it
  (:func:`rules.hashing.seal`);
* ``BallotClosed`` — votes recorded after it do not count;
* ``VotesRevealed`` — a secret ballot's count opens its seals: ``reveals``, a list of
  ``{vote, version, choice, salt}`` for every vote recorded before ``BallotClosed``. A reveal must
  open the vote's seal, or the record cannot be counted (:class:`InvalidReveal`);
* ``ResolutionAdopted`` / ``ResolutionRejected`` — ``result``, a :meth:`Result.to_dict`.

A secret ballot is counted against an *equivalent roll*: one entry per vote key with the vote's
weight and headcount, plus one entry holding everyone who did not vote. Every number of the
result depends only on these weights (never on who the voters are), so the count equals the count
against the real roll. The replay also checks that the sealed weights fit the roll (each vote
matches a distinct roll entry's weight and headcount), which is all an outsider can check.

Pure: no I/O, no framework.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .errors import InvalidReveal, InvalidRoll, NotRevealed
from .hashing import roll_hash, seal
from .model import RollEntry, Rule, Vote
from .numbers import exact_arithmetic, parse_decimal
from .result import Result
from .tally import tally

VOTE_TYPES = ("VoteCast", "VoteChanged")
RESULT_TYPES = ("ResolutionAdopted", "ResolutionRejected")
REVEAL_TYPE = "VotesRevealed"
NOT_VOTED = "(not voted)"  # the equivalent roll's entry for everyone who did not vote


@dataclass
class BallotRecord:
    """What the record says about one ballot (built by :func:`replay_ballot`)."""

    ballot: str
    opened: Mapping[str, Any] | None = None
    votes: list[dict[str, Any]] = field(default_factory=list)  # before BallotClosed, in record order
    late_votes: int = 0  # recorded after BallotClosed: they do not count
    closed: bool = False
    reveals: dict[tuple[str, int], Mapping[str, Any]] = field(default_factory=dict)  # (vote, version) -> reveal
    recorded_result: Mapping[str, Any] | None = None  # the last ResolutionAdopted/Rejected


def vote_record(envelope: Mapping[str, Any]) -> dict[str, Any]:
    """A VoteCast/VoteChanged envelope as a vote to count: keyed by the voter (open ballot)
    or by the vote's aggregate id (secret ballot, whose votes carry no voter). A sealed vote has
    no choice until its reveal is applied (:func:`open_seals`)."""
    data, aggregate = envelope["data"], envelope["aggregate"]
    record = {
        "voter": data.get("voter") or aggregate["id"],
        "choice": data.get("choice"),
        "weight": data["weight"],
        "headcount": data["headcount"],
    }
    if data.get("sealed_choice"):  # version 1 events never have it: their choice is in the clear
        record.update(sealed_choice=data["sealed_choice"], vote=aggregate["id"], version=aggregate["version"])
    return record


def reveals_of(envelope: Mapping[str, Any]) -> dict[tuple[str, int], Mapping[str, Any]]:
    """A VotesRevealed envelope's reveals, by (vote aggregate id, version)."""
    return {(r["vote"], r["version"]): r for r in envelope["data"]["reveals"]}


def open_seals(votes: Sequence[Mapping[str, Any]],
               reveals: Mapping[tuple[str, int], Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The votes with every sealed choice replaced by its revealed one, each reveal checked
    against its seal. Raises :class:`NotRevealed` if nothing was revealed while a vote is sealed,
    :class:`InvalidReveal` if one sealed vote has no reveal or its reveal does not open the seal."""
    out = []
    for vote in votes:
        sealed = vote.get("sealed_choice")
        if not sealed:
            out.append(dict(vote))
            continue
        if not reveals:
            raise NotRevealed("the ballot's sealed votes have not been revealed yet")
        reveal = reveals.get((vote["vote"], vote["version"]))
        if reveal is None:
            raise InvalidReveal(f"sealed vote {vote['vote']} (version {vote['version']}) has no reveal")
        if seal(reveal["choice"], reveal["salt"]) != sealed:
            raise InvalidReveal(f"the reveal of vote {vote['vote']} (version {vote['version']}) does not open its "
                                "seal: the revealed choice is not the one recorded")
        out.append({k: v for k, v in vote.items() if k not in ("sealed_choice", "vote", "version")}
                   | {"choice": reveal["choice"]})
    return out


def replay_ballot(envelopes: Iterable[Mapping[str, Any]], ballot: str) -> BallotRecord:
    """Collect one ballot's record from envelopes in their source's order (other events are skipped)."""
    record = BallotRecord(ballot)
    for env in envelopes:
        kind, data = env["type"], env["data"]
        if kind in VOTE_TYPES:
            if data.get("ballot") != ballot:
                continue
            if record.closed:
                record.late_votes += 1
            else:
                record.votes.append(vote_record(env))
        elif env["aggregate"]["id"] == ballot:
            if kind == "BallotOpened":
                record.opened = data
            elif kind == "BallotClosed":
                record.closed = True
            elif kind == REVEAL_TYPE:
                record.reveals.update(reveals_of(env))
            elif kind in RESULT_TYPES:
                record.recorded_result = data["result"]
    return record


def tally_record(opened: Mapping[str, Any], votes: Sequence[Mapping[str, Any]],
                 reveals: Mapping[tuple[str, int], Mapping[str, Any]] | None = None) -> Result:
    """Count ``votes`` (vote records in record order) under the rule and roll of ``opened``;
    sealed votes are opened with ``reveals`` first."""
    votes = open_seals(votes, reveals or {})
    rule = Rule.from_dict(opened["rule"])
    options = [o["id"] if isinstance(o, Mapping) else o for o in opened["options"]]
    roll = [RollEntry.from_dict(e) for e in opened["roll"]]
    if roll_hash(roll) != opened["roll_hash"]:
        raise InvalidRoll("the roll in BallotOpened does not match its recorded hash")
    if opened.get("secret"):
        roll = _equivalent_roll(roll, votes)
    else:
        _check_weights(roll, votes)
    return tally(rule, options, roll, [Vote(v["voter"], v["choice"]) for v in votes])


def _weight_of(vote: Mapping[str, Any]) -> tuple[Decimal, int]:
    return parse_decimal(vote["weight"], "vote weight"), vote["headcount"]


def _check_weights(roll: Sequence[RollEntry], votes: Sequence[Mapping[str, Any]]) -> None:
    entries = {e.voter: e for e in roll}
    for vote in votes:
        entry = entries.get(vote["voter"])
        if entry is not None and _weight_of(vote) != (entry.weight, entry.headcount):
            raise InvalidRoll(f"the vote of {vote['voter']!r} carries a weight the roll does not give it")


def _equivalent_roll(roll: Sequence[RollEntry], votes: Sequence[Mapping[str, Any]]) -> list[RollEntry]:
    weights: dict[str, tuple[Decimal, int]] = {}
    for vote in votes:
        weight = _weight_of(vote)
        if weights.setdefault(vote["voter"], weight) != weight:
            raise InvalidRoll(f"sealed vote {vote['voter']!r} changed its weight")
    if Counter(weights.values()) - Counter((e.weight, e.headcount) for e in roll):
        raise InvalidRoll("the sealed votes' weights do not fit the roll (more votes of a weight than voters)")
    with exact_arithmetic():
        rest_area = sum((e.weight for e in roll), Decimal(0)) - sum((w for w, _ in weights.values()), Decimal(0))
    rest_heads = sum(e.headcount for e in roll) - sum(h for _, h in weights.values())
    entries = [RollEntry(key, weight, heads) for key, (weight, heads) in weights.items()]
    return entries + [RollEntry(NOT_VOTED, rest_area, rest_heads)]


def differences(recorded: Mapping[str, Any], replayed: Mapping[str, Any], path: str = "") -> list[dict[str, Any]]:
    """Every leaf where two ``Result.to_dict()`` forms differ: ``{"field", "recorded", "replayed"}``."""
    if isinstance(recorded, Mapping) and isinstance(replayed, Mapping):
        out = []
        for key in sorted(set(recorded) | set(replayed), key=str):
            out += differences(recorded.get(key), replayed.get(key), f"{path}.{key}" if path else str(key))
        return out
    if isinstance(recorded, list) and isinstance(replayed, list) and len(recorded) == len(replayed):
        out = []
        for i, (a, b) in enumerate(zip(recorded, replayed)):
            out += differences(a, b, f"{path}[{i}]")
        return out
    return [] if recorded == replayed else [{"field": path, "recorded": recorded, "replayed": replayed}]
