"""The decisions application: commands on ballots and votes, the count, and the queries.

Directory facts (units, residents, council members, the community's rules) are fetched by the
service and passed in as plain data, so this class runs without nameko (tests, the benchmark).
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from contextvars import ContextVar
from datetime import datetime

import sqlalchemy as sa
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.utils import get_topic

import rules
from rules.record import differences, replay_ballot, tally_record
from services.common import clock, envelope, keyfile
from services.common.aggregate import command_context, derived_id
from services.common.consumer import catch_up_projection, collecting, commits_ahead
from services.common.content import gather_texts, validate_text
from services.common.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.common.ids import parse_id
from services.common.store import StageApplication

from . import tables as t
from .domain import (
    CHANNELS, CLOSED, CONFIGURED, OPEN, PREPARED, RESOLVED, ROLE_LEAD, ROLE_WORKER, SCOPES, Ballot, Proxy,
    ProxyHolder, Vote, build_roll, declaring_role,
)

SEALED = "sealed"  # the actor of every event of a secret ballot's votes and proxies
# The one answer to a proxy vote without an authorisation: the same whether or not the voter has
# voted, so that it tells nobody anything about another person's vote.
PROJECTION = "projection"
OPTION_ID = r"[A-Za-z0-9_-]{1,40}"
MAX_OPTIONS = 30



class SealingKey:
    """The HMAC key behind a secret ballot's vote ids. Only this service holds it: without it the
    roll in BallotOpened cannot be used to find a voter's vote.

    CONSULT_DECISIONS_KEY (at least 32 characters) when set — every host running the service needs
    the same key; otherwise a random key in `<data dir>/decisions-ballot.key` (mode 0600), created
    by whichever instance needs it first.
    """

    FILE = "decisions-ballot.key"

    def __init__(self, data_dir, configured: str | None = None):
        self.path = data_dir / self.FILE
        self.configured = configured  # the settings' decisions_key (CONSULT_DECISIONS_KEY), if set
        self._key: bytes | None = None

    def key(self) -> bytes:
        if self._key is None:
            configured = self.configured
            if configured is not None:
                self._key = keyfile.configured(configured, "CONSULT_DECISIONS_KEY")
            else:
                self._key = self._from_file()
        return self._key

    def _from_file(self) -> bytes:
        return bytes.fromhex(keyfile.made_once(self.path, lambda: secrets.token_hex(32).encode()).decode().strip())

    def sealed_id(self, *parts: str) -> uuid.UUID:
        """An aggregate id nobody without the key can derive from the parts (ballot, person)."""
        digest = hmac.new(self.key(), "|".join(parts).encode("utf-8"), hashlib.sha256).digest()
        return uuid.UUID(bytes=digest[:16], version=4)

    def vote_id(self, ballot: str, voter: str) -> uuid.UUID:
        return self.sealed_id(ballot, voter)


# Where a ballot's texts live when they are not ours: a ballot prepared from a deliberation
# carries the consultation's commitments (its title came from the proposal, if any).
TEXT_SOURCES = ("deliberation", "proposals")


class DecisionsApp(StageApplication):
    name = "decisions"

    def __init__(self, settings, engine: sa.Engine):
        # Cached ballots are fast-forwarded on every read, so a vote does not replay the roll.
        super().__init__(settings, "decisions", engine, project_envelope, cache_size=1000, projection=PROJECTION)
        self.sealing = SealingKey(settings.data_dir, settings.decisions_key)

    # ---- loading with tenancy ---------------------------------------------------------------
    def _load(self, agg_id: uuid.UUID, copy: bool = True):
        try:
            return self.repository.get(agg_id, deepcopy_from_cache=copy)
        except AggregateNotFoundError:
            return None

    def ballot(self, community: str, ballot_id, copy: bool = True) -> Ballot:
        """The ballot, if it belongs to `community`. copy=False for read-only use on the hot path."""
        ballot = self._load(parse_id(ballot_id, "ballot"), copy)
        if not isinstance(ballot, Ballot) or ballot.community != community:
            raise NotFound.coded("decisions.ballot_does_exist", ballot_id=ballot_id)
        return ballot

    def _ballot_by_id(self, ballot_id) -> Ballot:
        ballot = self._load(uuid.UUID(str(ballot_id)))
        if not isinstance(ballot, Ballot):
            raise NotFound.coded("decisions.ballot_does_exist", ballot_id=ballot_id)
        return ballot

    def vote_id(self, ballot: Ballot, voter: str) -> uuid.UUID:
        if ballot.secret:
            return self.sealing.vote_id(str(ballot.id), voter)
        return derived_id("vote", ballot.id, voter)

    def proxy_id(self, ballot: Ballot, principal: str) -> uuid.UUID:
        if ballot.secret:
            return self.sealing.sealed_id("proxy", str(ballot.id), principal)
        return derived_id("proxy", ballot.id, principal)

    def holder_id(self, ballot: Ballot, holder: str) -> uuid.UUID:
        if ballot.secret:
            return self.sealing.sealed_id("proxy-holder", str(ballot.id), holder)
        return derived_id("proxy-holder", ballot.id, holder)

    def _save(self, *aggregates, conflict: str | None = None):
        """Save; without a `conflict` message a concurrent change returns None (the timers: another
        instance did it first)."""
        return self.save_or_conflict(*aggregates, conflict=conflict)

    @staticmethod
    def _context(ballot: Ballot, actor: str):
        return command_context(community=ballot.community, actor=actor, case=ballot.case)

    # ---- preparing and configuring ----------------------------------------------------------
    def _options(self, actor: str, options) -> list[dict]:
        if options is None:
            return []
        if not isinstance(options, list) or len(options) > MAX_OPTIONS:
            raise InvalidInput.coded("decisions.options_list_most_options", max_options=MAX_OPTIONS)
        out = []
        for i, option in enumerate(options, start=1):
            if not isinstance(option, dict):
                raise InvalidInput.coded("decisions.each_option_object_title")
            option_id = option.get("id") or f"option-{i}"
            if not isinstance(option_id, str) or option_id == rules.ABSTAIN or not re.fullmatch(OPTION_ID, option_id):
                raise InvalidInput.coded("decisions.option_id_letters_digits", option_id=repr(option_id))
            title = validate_text(option.get("title"), f"options[{i - 1}].title", max_len=200)
            description = validate_text(option.get("description"), f"options[{i - 1}].description", required=False)
            described = self.content.put(description, subject=actor) if description else None
            out.append({"id": option_id, "title_commitment": self.content.put(title, subject=actor),
                        "description_commitment": described})
        if len({o["id"] for o in out}) != len(out):
            raise InvalidInput.coded("decisions.option_ids_unique")
        return out

    def prepare_ballot(self, actor: str, community: str, title: str, scope: str, scope_id: str | None = None,
                       description: str | None = None, options=None, category: str | None = None) -> str:
        """A community worker prepares a ballot for a simple matter (no consultation before it)."""
        title = validate_text(title, "title", max_len=200)
        description = validate_text(description, "description", required=False)
        scope, scope_id = self._scope(scope, scope_id)
        opts = self._options(actor, options)
        bid = uuid.uuid4()
        with command_context(community=community, actor=actor, case=str(bid)):
            ballot = Ballot._create(
                Ballot.BallotPrepared, id=bid, community=community, case=str(bid),
                title_commitment=self.content.put(title, subject=actor),
                description_commitment=self.content.put(description, subject=actor) if description else None,
                options=opts, scope=scope, scope_id=scope_id, category=category, consultation=None, proposal=None,
                convener=None, suggested_rule=None, rerun_of=None,
            )
            self.save(ballot)
        self.project()
        return str(bid)

    @staticmethod
    def _scope(scope, scope_id):
        if scope not in SCOPES:
            raise InvalidInput.coded("decisions.scope_one", scopes=", ".join(SCOPES))
        if scope == "community":
            return scope, None
        return scope, str(parse_id(scope_id, scope))

    def on_deliberation_event(self, env: dict) -> list:
        """A concluded deliberation that needs a vote becomes a prepared ballot with its options."""
        data = env["data"]
        if env["type"] != "DeliberationConcluded" or data.get("outcome") != "vote_needed":
            return []
        consultation = data["consultation"]
        bid = derived_id("ballot", consultation)
        if self._load(bid, copy=False) is not None:  # concluded again: a further ballot, still deterministic
            bid = derived_id("ballot", consultation, env["id"])
        options = [{"id": o["id"], "title_commitment": o.get("title_commitment"),
                    "description_commitment": o.get("description_commitment")} for o in data.get("options") or []]
        return [Ballot._create(
            Ballot.BallotPrepared, id=bid, community=env["community"], case=env.get("case") or str(bid),
            title_commitment=data.get("title_commitment") or data.get("summary_commitment"),
            description_commitment=data.get("summary_commitment"),
            options=options, scope=data.get("scope", "community"), scope_id=data.get("scope_id"),
            category=data.get("category"), consultation=consultation, proposal=data.get("proposal"),
            convener=data.get("convener"), suggested_rule=data.get("suggested_rule"), rerun_of=None,
        )]

    def configure_ballot(self, actor: str, community: str, ballot_id, *, preset: str, voting_unit: str,
                         opens_at: str, closes_at: str, secret: bool = False, changeable: bool = True,
                         method: str | None = None, params: dict | None = None, options=None,
                         community_rules: dict, facts_now: list) -> dict:
        """Set the rule, eligibility, times and secrecy; this is the notice, so the opening must be
        at least the rule's notice period away. `facts_now` (the directory's facts for the voting
        unit, now) only checks that someone would be on the roll."""
        ballot = self.ballot(community, ballot_id)
        for name, value in (("secret", secret), ("changeable", changeable)):
            if not isinstance(value, bool):
                raise InvalidInput.coded("decisions.true_false", name=name)
        try:
            rule = rules.make_rule(preset, method, params)
        except rules.RulesError as exc:
            raise InvalidInput.coded("decisions.rules_refused", reason=str(exc)) from None
        opens, closes = clock.parse_input(opens_at, "opens_at"), clock.parse_input(closes_at, "closes_at")
        new_options = None if options is None else self._options(actor, options)
        with self._context(ballot, actor):
            ballot.configure(rule=rule, voting_unit=voting_unit, options=new_options, opens_at=opens, closes_at=closes,
                             secret=secret, changeable=changeable, community_rules=community_rules, now=clock.now())
        self._roll(voting_unit, facts_now, clock.now())
        self._save(ballot, conflict="decisions.ballot_changed_look_again")
        return self.ballot_view(community, ballot_id)

    @staticmethod
    def _roll(voting_unit: str, facts: list, at: datetime) -> list[rules.RollEntry]:
        try:
            roll = build_roll(voting_unit, facts, at)
        except rules.RulesError as exc:
            raise InvalidInput.coded("decisions.voter_roll_built", exc=exc) from None
        if not roll:
            raise InvalidInput.coded("decisions.nobody_scope_vote_voter", voting_unit=voting_unit)
        return roll

    # ---- opening, closing, resolving (the timers) -------------------------------------------
    def due_to_open(self, now: datetime) -> list[dict]:
        """Configured ballots whose opening time has come, with what it takes to build their roll."""
        self.project()
        with self.engine.connect() as conn:
            ids = [r.id for r in conn.execute(sa.select(t.ballots.c.id).where(
                t.ballots.c.status == CONFIGURED, t.ballots.c.opens_at <= clock.format(now)))]
        out = []
        for bid in ids:
            b = self._ballot_by_id(bid)
            out.append({"ballot": bid, "community": b.community, "voting_unit": b.config["voting_unit"],
                        "scope": b.scope, "scope_id": b.scope_id, "at": b.config["opens_at"]})
        return out

    def open_ballot(self, ballot_id, facts: list) -> bool:
        """Freeze the roll from the directory as it stood at the opening time. If no valid roll can
        be built (e.g. a co-owned unit without a designated co-owner), the ballot is not opened and
        says why; it goes back to prepared."""
        ballot = self._ballot_by_id(ballot_id)
        if ballot.status != CONFIGURED:
            return False
        with self._context(ballot, "system"):
            try:
                ballot.open(self._roll(ballot.config["voting_unit"], facts, clock.parse(ballot.config["opens_at"])))
            except InvalidInput as exc:
                ballot.not_opened(exc.detail)
        saved = self._save(ballot) is not None
        self.project()
        return saved and ballot.status == OPEN

    def due_to_close(self, now: datetime) -> list[tuple[str, str]]:
        """(ballot, reason): open ballots past their closing time or on which everyone has voted;
        closed ones still waiting for their resolution (reason None)."""
        self.project()
        b = t.ballots
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(b.c.id, b.c.status, b.c.closes_at, b.c.voted, b.c.roll_size).where(
                b.c.status.in_((OPEN, CLOSED))))
            out = []
            for r in rows:
                if r.status == CLOSED:
                    out.append((r.id, None))
                elif r.closes_at <= clock.format(now):
                    out.append((r.id, "closing_time"))
                elif r.voted >= r.roll_size:
                    out.append((r.id, "all_voted"))
        return out

    def close_ballot(self, ballot_id, reason: str | None) -> bool:
        """Close, then count. Two steps, because the count must hold exactly the votes recorded
        before BallotClosed: a vote saved while we counted would otherwise be missed."""
        ballot = self._ballot_by_id(ballot_id)
        if ballot.status == OPEN:
            with self._context(ballot, "system"):
                ballot.close(reason or "closing_time", clock.now())
            if self._save(ballot) is None:
                return False
        return self.resolve_ballot(ballot_id)

    def resolve_ballot(self, ballot_id) -> bool:
        """Count, and record the resolution; a secret ballot's reveal is saved with it, so the
        record never holds a result that its readers cannot recompute."""
        ballot = self._ballot_by_id(ballot_id)
        if ballot.status != CLOSED:
            return False
        result, reveals = self.count(ballot)
        with self._context(ballot, "system"):
            if ballot.secret:
                ballot.reveal(reveals)
            ballot.resolve(result, clock.now())
        saved = self._save(ballot) is not None
        self.project()
        return saved

    def count(self, ballot: Ballot) -> tuple[rules.Result, list[dict]]:
        """The tally of a closed ballot from its votes recorded before BallotClosed — the same
        function the replay (retally, audit) applies to the events — and the reveals of its
        sealed votes ({vote, version, choice, salt}, from the sealed table)."""
        self.project()
        with self.engine.connect() as conn:
            closed_position = conn.execute(sa.select(t.ballots.c.closed_position).where(
                t.ballots.c.id == str(ballot.id))).scalar()
            v = t.votes
            rows = list(conn.execute(sa.select(v.c.vote, v.c.version, v.c.voter, v.c.receipt, v.c.choice, v.c.weight,
                                               v.c.headcount).where(
                v.c.ballot == str(ballot.id), v.c.position < closed_position).order_by(v.c.position)))
        sealed = self._sealed_votes([r.receipt for r in rows if r.choice is None])
        votes, reveals = [], []
        for r in rows:
            choice = r.choice
            if choice is None:  # sealed (VoteCast 2 on a secret ballot): its choice is in the sealed table
                found = sealed.get(r.receipt)
                if found is None:
                    raise RuntimeError(f"the sealed choice of vote {r.vote} (version {r.version}) is missing from "
                                       "the sealed table: the ballot cannot be counted")
                choice = found.choice
                reveals.append({"vote": r.vote, "version": r.version, "choice": choice, "salt": found.salt})
            votes.append({"voter": r.voter or r.vote, "choice": choice, "weight": r.weight, "headcount": r.headcount})
        return tally_record(ballot.opened, votes), reveals

    def _sealed_votes(self, receipts: list[str]) -> dict:
        out = {}
        with self.engine.connect() as conn:
            for i in range(0, len(receipts), 1000):
                chunk = receipts[i:i + 1000]
                out.update((r.receipt, r) for r in conn.execute(
                    sa.select(t.sealed_votes).where(t.sealed_votes.c.receipt.in_(chunk))))
        return out

    def due_to_finalise(self, now: datetime) -> list[str]:
        self.project()
        b = t.ballots
        with self.engine.connect() as conn:
            return [r.id for r in conn.execute(sa.select(b.c.id).where(
                b.c.status.in_(RESOLVED), b.c.publicity_until <= clock.format(now), b.c.pending_objections == 0))]

    def finalise(self, ballot_id) -> bool:
        ballot = self._ballot_by_id(ballot_id)
        if ballot.status not in RESOLVED:
            return False
        with self._context(ballot, "system"):
            ballot.finalise(clock.now())
        saved = self._save(ballot) is not None
        self.project()
        return saved

    # ---- voting -----------------------------------------------------------------------------
    def cast_vote(self, actor: str, community: str, ballot_id, voter: str, choice, *, channel: str = "online",
                  paper_serial: str | None = None, correction_reason: str | None = None, read_texts=None,
                  loaded: Ballot | None = None) -> dict:
        """Record a vote and return its receipt.

        channel "online": the voter votes; "proxy": `actor` votes for `voter` on an authorisation
        the voter gave (checked first, and refused the same way whether or not the voter voted);
        "paper": a community worker enters a paper ballot with its serial — a second one for the
        same voter only as a correction with a reason. A voter has one channel: the first recorded
        stands, another is refused and kept in the record. On a changeable ballot a vote through
        the same channel replaces the earlier one (both are kept). Concurrent votes of one voter race
        for the next version of one aggregate: one wins, the others get a Conflict (never two
        counted votes). On a secret ballot the record gets the choice's seal only.

        `loaded`: the ballot as the caller has just read it with `ballot(community, ballot_id,
        copy=False)`, so a vote reads it once, not twice (each read asks the store for its new events).
        """
        if channel not in CHANNELS:
            raise InvalidInput.coded("decisions.channel_one", channels=", ".join(CHANNELS))
        ballot = loaded if loaded is not None else self.ballot(community, ballot_id, copy=False)
        ballot.check_accepts_votes(clock.now())
        if channel == "proxy":
            if voter == actor:
                raise InvalidInput.coded("decisions.proxy_votes_someone_else")
            self._check_proxy(ballot, voter, actor)
        entry = ballot.roll_entry(voter)
        try:
            choice = ballot.normalised_choice(choice)
        except InvalidInput as exc:
            raise self._choice_refused(ballot, exc, read_texts) from None
        reason = None
        if channel == "paper":
            paper_serial = validate_text(paper_serial, "paper_serial", max_len=64)
            reason = validate_text(correction_reason, "correction_reason", max_len=5000, required=False)
            self._check_serial_unused(ballot, paper_serial)
        else:
            paper_serial = None
        sealed = ballot.secret
        vote_id = self.vote_id(ballot, voter)
        vote = self._load(vote_id)
        voter_in_record = None if sealed else voter
        if vote is not None and not vote.same_channel(channel):
            with self._context(ballot, SEALED if sealed else actor):
                vote.refuse(ballot=str(ballot.id), voter=voter_in_record, channel=channel, paper_serial=paper_serial,
                            reason="another channel was recorded first",
                            entered_by=actor if channel == "paper" else None)
            self._save(vote)
            if channel == "online":  # the voter hears about their own vote
                raise vote.channel_taken()
            raise Conflict.coded("decisions.vote_through_another_channel", channel=channel)
        if channel == "paper":
            self._check_paper_correction(vote, reason)
        seal = self._seal(choice, actor if channel == "proxy" else None) if sealed else {}
        fields = dict(choice=choice, weight=entry["weight"], headcount=entry["headcount"], channel=channel,
                      paper_serial=paper_serial, entered_by=actor if channel == "paper" else None,
                      cast_by=actor if channel == "proxy" and not sealed else None,
                      sealed_choice=seal.get("sealed_choice"), cast_by_seal=seal.get("cast_by_seal"))
        with self.content.for_command(actor, reason=reason) as texts:
            with self._context(ballot, SEALED if sealed else actor):
                if vote is None:
                    vote = Vote.cast(vote_id, community=community, ballot=str(ballot.id), voter=voter_in_record,
                                     **fields)
                else:
                    vote.change(changeable=ballot.changeable, correction_reason_commitment=texts["reason"], **fields)
            if sealed:
                self._keep_sealed_vote(vote, seal, choice, actor if channel == "proxy" else None)
            with commits_ahead() as committed, _lateness() as late:
                recordings = self._save(vote, conflict="decisions.another_vote_same_moment")
        position = recordings[-1].notification.id
        if position in committed and position in late:
            self._refuse_if_late(late[position])  # what the read model found, applying it as recorded
        else:
            self._check_counted(ballot.id, position)
        return {"ballot": str(ballot.id), "receipt": vote.receipt, "version": vote.version, "channel": channel,
                "choice": choice}

    def _choice_refused(self, ballot: Ballot, exc: InvalidInput, read_texts=None) -> InvalidInput:
        """A refused choice names the options by their titles (with the ids a vote sends), so the
        voter sees what they can choose, not a list of UUIDs."""
        options = self._option_titles(ballot, read_texts)
        if not options:
            return exc
        named = "; ".join(f"{o['id']} = {o['title'] if o['title'] is not None else '?'}" for o in options)
        return InvalidInput.coded("vote.invalid_choice", reason=exc.detail.removeprefix("invalid choice: "),
                                  options=named, extra={"options": options})

    @staticmethod
    def _check_paper_correction(vote: Vote | None, reason: str | None) -> None:
        """One paper ballot per voter: a second one only as a worker's correction, with a reason."""
        if vote is None and reason is not None:
            raise Conflict.coded("decisions.paper_ballot_voter_correct")
        if vote is not None and reason is None:
            raise Conflict.coded("decisions.paper_ballot_serial_already", paper_serial=vote.paper_serial)

    @staticmethod
    def _seal(choice, cast_by: str | None) -> dict:
        """Fresh salts and the seals of a secret ballot's choice (and of the proxy who cast it)."""
        salt = secrets.token_hex(16)
        out = {"salt": salt, "sealed_choice": rules.seal(choice, salt), "cast_by_salt": None, "cast_by_seal": None}
        if cast_by is not None:
            out["cast_by_salt"] = secrets.token_hex(16)
            out["cast_by_seal"] = rules.seal(cast_by, out["cast_by_salt"])
        return out

    def _keep_sealed_vote(self, vote: Vote, seal: dict, choice, cast_by: str | None) -> None:
        """What the record leaves out of a secret ballot's vote, kept before the vote is saved."""
        with self.engine.begin() as conn:
            conn.execute(sa.insert(t.sealed_votes).values(
                receipt=vote.receipt, vote=str(vote.id), version=vote.version, sealed_choice=seal["sealed_choice"],
                choice=choice, salt=seal["salt"], cast_by=cast_by, cast_by_salt=seal["cast_by_salt"]))

    # ---- proxies ------------------------------------------------------------------------------
    def _check_proxy(self, ballot: Ballot, principal: str, holder: str) -> None:
        """Refuse a proxy vote without a standing authorisation from `principal` to `holder`."""
        proxy = self._load(self.proxy_id(ballot, principal), copy=False)
        if not isinstance(proxy, Proxy) or not proxy.active or self._holder_of(proxy) != holder:
            raise Forbidden.coded("decisions.no_proxy_from_voter")

    def _holder_of(self, proxy: Proxy) -> str | None:
        if proxy.holder is not None or proxy.holder_seal is None:
            return proxy.holder
        with self.engine.connect() as conn:
            return conn.execute(sa.select(t.sealed_proxies.c.holder).where(
                t.sealed_proxies.c.holder_seal == proxy.holder_seal)).scalar()

    def authorise_proxy(self, actor: str, community: str, ballot_id, principal: str, holder: str,
                        paper_serial: str | None = None) -> dict:
        """`principal` authorises `holder` to vote for them on this ballot: on the platform (the
        actor is the principal), or from a paper authorisation (the actor is a community worker,
        who records its serial). One standing authorisation per principal; a holder holds at most
        the community's limit (frozen with the ballot's configuration)."""
        ballot = self.ballot(community, ballot_id)
        ballot.check_accepts_proxies(clock.now())
        if holder == principal:
            raise InvalidInput.coded("decisions.voter_their_own_proxy")
        if ballot.opened is not None:
            ballot.roll_entry(principal)
        source = "platform"
        if paper_serial is not None:
            source, paper_serial = "paper", validate_text(paper_serial, "paper_serial", max_len=64)
            self._check_serial_unused(ballot, paper_serial, t.proxies, "paper proxy authorisation")
        sealed = ballot.secret
        proxy_id, holding_id = self.proxy_id(ballot, principal), self.holder_id(ballot, holder)
        proxy, holding = self._load(proxy_id), self._load(holding_id)
        salt = secrets.token_hex(16) if sealed else None
        fields = dict(holder=None if sealed else holder, holder_seal=rules.seal(holder, salt) if sealed else None,
                      source=source, paper_serial=paper_serial, recorded_by=actor if source == "paper" else None)
        with self._context(ballot, SEALED if sealed else actor):
            if proxy is None:
                proxy = Proxy._create(Proxy.ProxyAuthorised, id=proxy_id, community=community, ballot=str(ballot.id),
                                      principal=None if sealed else principal, **fields)
            else:
                proxy.authorise_again(**fields)
            if holding is None:
                holding = ProxyHolder._create(ProxyHolder.ProxyHolderRegistered, id=holding_id, community=community,
                                              ballot=str(ballot.id), holder=None if sealed else holder)
            holding.take(ballot.proxy_limit)
        if sealed:
            with self.engine.begin() as conn:
                conn.execute(sa.insert(t.sealed_proxies).values(holder_seal=fields["holder_seal"], proxy=str(proxy_id),
                                                                holder=holder, salt=salt))
        self._save(proxy, holding, conflict="decisions.authorisation_recorded_same_moment")
        self.project()
        return self.proxy_view(community, ballot_id, principal)

    def revoke_proxy(self, actor: str, community: str, ballot_id, principal: str) -> dict:
        """The principal withdraws their authorisation, as long as the proxy has not voted."""
        ballot = self.ballot(community, ballot_id)
        ballot.check_accepts_proxies(clock.now())
        proxy = self._load(self.proxy_id(ballot, principal))
        if not isinstance(proxy, Proxy) or not proxy.active:
            raise NotFound.coded("decisions.you_standing_proxy_authorisation")
        vote = self._load(self.vote_id(ballot, principal), copy=False)
        if vote is not None and vote.channel == "proxy":
            raise Conflict.coded("decisions.your_proxy_already_voted")
        holding = self._load(self.holder_id(ballot, self._holder_of(proxy)))
        with self._context(ballot, SEALED if ballot.secret else actor):
            proxy.revoke()
            holding.release()
        self._save(proxy, holding, conflict="decisions.authorisation_changed_same_moment")
        self.project()
        return self.proxy_view(community, ballot_id, principal)

    def proxy_view(self, community: str, ballot_id, principal: str) -> dict:
        """The principal's own authorisation on the ballot (the holder, even on a secret ballot)."""
        ballot = self.ballot(community, ballot_id, copy=False)
        proxy = self._load(self.proxy_id(ballot, principal), copy=False)
        if not isinstance(proxy, Proxy):
            raise NotFound.coded("decisions.you_given_proxy_authorisation")
        vote = self._load(self.vote_id(ballot, principal), copy=False)
        return {"ballot": str(ballot.id), "holder": self._holder_of(proxy), "source": proxy.source,
                "paper_serial": proxy.paper_serial, "active": proxy.active,
                "used": bool(proxy.active and vote is not None and vote.channel == "proxy")}

    def _check_counted(self, ballot_id, position: int) -> None:
        """A vote checked while the ballot was open may be recorded after BallotClosed (the close
        ran meanwhile): then it does not count, and the voter must hear so.

        Usually the vote's own save found that out: its read-model transaction applied the vote
        ahead of recording it and committed (`commits_ahead`), and `_vote` saw whether the close
        was already applied. This is for a save whose read model caught up instead. The log is
        written one transaction at a time, so if the ballot is still open when read after the
        vote was recorded, its BallotClosed (if any) comes later in the log: the vote counts. Only
        otherwise is the read model asked where the close is."""
        if self._load(ballot_id, copy=False).status == OPEN:
            return
        self.project()
        closed_position = self._ballot_row(ballot_id).closed_position
        self._refuse_if_late(closed_position is not None and closed_position < position)

    @staticmethod
    def _refuse_if_late(late: bool) -> None:
        if late:
            raise Conflict.coded("decisions.voting_closed_before_vote")

    def _check_serial_unused(self, ballot: Ballot, serial: str, table: sa.Table = t.votes,
                             paper: str = "paper ballot") -> None:
        """A paper document (a ballot in `votes`, an authorisation in `proxies`) is entered once."""
        self.project()
        with self.engine.connect() as conn:
            taken = conn.execute(sa.select(table.c.ballot).where(
                table.c.ballot == str(ballot.id), table.c.paper_serial == serial).limit(1)).first()
        if taken:
            raise Conflict.coded("decisions.serial_already_been_entered", paper=paper, serial=serial)

    def _ballot_row(self, ballot_id):
        with self.engine.connect() as conn:
            return conn.execute(sa.select(t.ballots).where(t.ballots.c.id == str(ballot_id))).first()

    # ---- the publicity period, annulment, re-run ----------------------------------------------
    def lodge_objection(self, actor: str, community: str, ballot_id, text: str) -> dict:
        ballot = self.ballot(community, ballot_id)
        text = validate_text(text, "text", max_len=5000)
        objection = str(uuid.uuid4())
        with self._context(ballot, actor):
            ballot.lodge_objection(objection, self.content.put(text, subject=actor), clock.now())
        self._save(ballot, conflict="decisions.ballot_changed_try_again")
        self.project()
        return {"objection": objection, "ballot": str(ballot.id), "publicity_until": ballot.publicity_until}

    def rule_on_objection(self, actor: str, roles: list, community: str, ballot_id, objection: str, upheld: bool,
                          reason: str) -> dict:
        ballot = self.ballot(community, ballot_id)
        if not isinstance(upheld, bool):
            raise InvalidInput.coded("decisions.upheld_true_false")
        reason = validate_text(reason, "reason", max_len=5000)
        ballot.check_ruling(objection, actor, roles)
        with self._context(ballot, actor):
            ballot.rule_on_objection(objection, upheld, self.content.put(reason, subject=actor), actor, roles)
        self._save(ballot, conflict="decisions.ballot_changed_try_again")
        return self.ballot_view(community, ballot_id)

    def annul_ballot(self, actor: str, community: str, ballot_id, reason: str) -> dict:
        ballot = self.ballot(community, ballot_id)
        reason = validate_text(reason, "reason", max_len=5000)
        with self._context(ballot, actor):
            ballot.annul(self.content.put(reason, subject=actor))
        self._save(ballot, conflict="decisions.ballot_changed_try_again")
        return self.ballot_view(community, ballot_id)

    def abandon_ballot(self, actor: str, roles, community: str, ballot_id, reason: str) -> dict:
        """An annulled ballot will not be re-run (BallotAbandoned): its case ends as annulled. Said
        by those who could re-run it: a community worker or the party-committee lead."""
        if not set(roles or ()) & {"community_worker", "party_lead", "platform_admin"}:
            raise Forbidden.coded("decisions.community_worker_party_committee")
        ballot = self.ballot(community, ballot_id)
        reason = validate_text(reason, "reason", max_len=5000)
        with self._context(ballot, actor):
            ballot.abandon(self.content.put(reason, subject=actor))
        self._save(ballot, conflict="decisions.ballot_changed_try_again")
        return self.ballot_view(community, ballot_id)

    def rerun_ballot(self, actor: str, community: str, ballot_id) -> str:
        """An annulled ballot is run again as a new ballot of the same case, to be configured anew."""
        old = self.ballot(community, ballot_id)
        new_id = uuid.uuid4()
        with self._context(old, actor):
            old.rerun_as(str(new_id))
            new = Ballot._create(
                Ballot.BallotPrepared, id=new_id, community=community, case=old.case,
                title_commitment=old.title_commitment, description_commitment=old.description_commitment,
                options=old.options, scope=old.scope, scope_id=old.scope_id, category=old.category,
                consultation=old.consultation, proposal=old.proposal, convener=old.convener,
                suggested_rule=old.config["rule"] if old.config else old.suggested_rule, rerun_of=str(old.id),
            )
        self._save(old, new, conflict="decisions.ballot_re_run_same_time")
        self.project()
        return str(new_id)

    # ---- the emergency path (art. 281 ¶2) -----------------------------------------------------
    def declare_emergency(self, actor: str, roles: list, community: str, justification: str,
                          title: str | None = None, scope: str = "community", scope_id: str | None = None,
                          category: str | None = None, ballot_id=None) -> str:
        """Declared on a ballot not yet open, or as a new one; the other of the two confirms it."""
        declared_as = declaring_role(roles)
        justification = validate_text(justification, "justification", max_len=5000)
        if ballot_id is not None:
            ballot = self.ballot(community, ballot_id)
        else:
            title = validate_text(title, "title", max_len=200)
            scope, scope_id = self._scope(scope, scope_id)
            bid = uuid.uuid4()
            with command_context(community=community, actor=actor, case=str(bid)):
                ballot = Ballot._create(
                    Ballot.BallotPrepared, id=bid, community=community, case=str(bid),
                    title_commitment=self.content.put(title, subject=actor), description_commitment=None, options=[],
                    scope=scope, scope_id=scope_id, category=category, consultation=None, proposal=None,
                    convener=None, suggested_rule=None, rerun_of=None,
                )
        with self._context(ballot, actor):
            ballot.declare_emergency(self.content.put(justification, subject=actor), actor, declared_as)
        self._save(ballot, conflict="decisions.ballot_changed_try_again")
        self.project()
        return str(ballot.id)

    def confirm_emergency(self, actor: str, roles: list, community: str, ballot_id) -> dict:
        ballot = self.ballot(community, ballot_id)
        with self._context(ballot, actor):
            ballot.confirm_emergency(actor, roles)
        self._save(ballot, conflict="decisions.emergency_confirmed_same_time")
        return self.ballot_view(community, ballot_id)

    # ---- the record, replayed ----------------------------------------------------------------
    REPLAY_EVENTS = (Ballot.BallotOpened, Ballot.BallotClosed, Ballot.VotesRevealed, Ballot.ResolutionAdopted,
                     Ballot.ResolutionRejected, Vote.VoteCast, Vote.VoteChanged)

    def _record_envelopes(self):
        """The service's log as envelopes (what the audit log holds), limited to what a count reads."""
        topics = [get_topic(cls) for cls in self.REPLAY_EVENTS]
        start = 1
        while True:
            batch = self.recorder.select_notifications(start=start, limit=1000, topics=topics)
            for n in batch:
                yield envelope.from_domain_event(self.name, n.id, self.mapper.to_domain_event(n))
            if len(batch) < 1000:
                return
            start = batch[-1].id + 1

    def retally(self, ballot_id) -> dict:
        """Recount a ballot from its events alone and compare with the result it recorded."""
        bid = str(parse_id(ballot_id, "ballot"))
        record = replay_ballot(self._record_envelopes(), bid)
        if record.opened is None:
            raise NotFound.coded("decisions.ballot_does_exist_never", bid=bid)
        if record.recorded_result is None:
            raise Conflict.coded("decisions.ballot_recorded_result_yet", bid=bid)
        report = {"ballot": bid, "recorded": record.recorded_result, "votes_counted": len(record.votes),
                  "late_votes": record.late_votes, "revealed": sum(1 for v in record.votes if v.get("sealed_choice"))}
        try:
            replayed = tally_record(record.opened, record.votes, record.reveals).to_dict()
        except rules.RulesError as exc:  # the record itself cannot be counted: a bad roll hash, a false reveal
            return dict(report, match=False, replayed=None, differences=[
                {"field": "(record)", "recorded": "countable", "replayed": str(exc)}])
        diffs = differences(record.recorded_result, replayed)
        return dict(report, match=not diffs, differences=diffs, replayed=replayed)

    # ---- projection ----------------------------------------------------------------------------
    def catch_up(self) -> int:
        """Bring the read model up to the log head. Several instances share it: the tracking row's
        lock makes them take turns, and one that meets a key clash all the same carries on after it."""
        for _attempt in range(100):
            try:
                return catch_up_projection(self, self.name, self.projection)
            except sa.exc.IntegrityError:
                continue
        raise RuntimeError("the decisions read model could not catch up (100 clashes in a row)")

    # ---- queries ---------------------------------------------------------------------------------
    def _texts(self, *commitments, read_texts=None) -> dict:
        """Texts by commitment: ours, and a ballot prepared from a deliberation's texts (its title,
        summary and options) from the deliberation's store, or the proposal's (TEXT_SOURCES)."""
        return gather_texts(self.content, commitments, TEXT_SOURCES, read_texts)

    def _option_titles(self, ballot: Ballot, read_texts=None) -> list[dict]:
        """The ballot's options as voters see them: id and title (null once erased)."""
        # once configured, the options voted among ([] for a motion: agree / disagree / abstain)
        options = ballot.config["options"] if ballot.config else ballot.options
        texts = self._texts(*[o.get("title_commitment") for o in options], read_texts=read_texts)
        return [{"id": o["id"], "title": texts.get(o.get("title_commitment"))} for o in options]

    def ballot_view(self, community: str, ballot_id, read_texts=None) -> dict:
        ballot = self.ballot(community, ballot_id, copy=False)
        self.project()  # reads right after a command see it
        row = self._ballot_row(ballot.id)
        with self.engine.connect() as conn:
            o_rows = list(conn.execute(sa.select(t.objections).where(t.objections.c.ballot == str(ballot.id))
                                       .order_by(t.objections.c.lodged_at)))
            c_rows = list(conn.execute(sa.select(t.corrections).where(t.corrections.c.ballot == str(ballot.id))
                                       .order_by(t.corrections.c.recorded_at)))
        emergency = dict(ballot.emergency) if ballot.emergency else None
        annulment = dict(ballot.annulment) if ballot.annulment else None
        abandoned = dict(ballot.abandoned) if getattr(ballot, "abandoned", None) else None
        texts = self._texts(
            ballot.title_commitment, ballot.description_commitment,
            *[o["title_commitment"] for o in ballot.options], *[o["description_commitment"] for o in ballot.options],
            *[r.text_commitment for r in o_rows], *[r.reason_commitment for r in o_rows],
            (emergency or {}).get("justification_commitment"), (annulment or {}).get("reason_commitment"),
            (abandoned or {}).get("reason_commitment"), *[r.reason_commitment for r in c_rows],
            *[o.get(k) for o in _configured_options(ballot.config) for k in ("title_commitment",
                                                                              "description_commitment")],
            read_texts=read_texts)
        if emergency:
            emergency["justification"] = texts.get(emergency["justification_commitment"])
        if annulment and annulment.get("reason_commitment"):
            annulment["reason"] = texts.get(annulment["reason_commitment"])
        if abandoned:
            abandoned["reason"] = texts.get(abandoned["reason_commitment"])
        return {
            "id": str(ballot.id), "community": ballot.community, "case": ballot.case, "status": ballot.status,
            "title": texts.get(ballot.title_commitment), "title_commitment": ballot.title_commitment,
            "description": texts.get(ballot.description_commitment),
            "options": [dict(o, title=texts.get(o["title_commitment"]),
                             description=texts.get(o["description_commitment"])) for o in ballot.options],
            "scope": ballot.scope, "scope_id": ballot.scope_id, "category": ballot.category,
            "consultation": ballot.consultation, "proposal": ballot.proposal, "convener": ballot.convener,
            "suggested_rule": ballot.suggested_rule, "configuration": _with_option_texts(ballot.config, texts),
            "not_opened_reason": ballot.not_opened_reason,
            "roll_size": len(ballot.roll) if ballot.roll else None, "roll_hash": ballot.roll_hash,
            # a secret ballot's turnout is not published while it could be watched moving
            "voted": (row.voted if row else 0) if ballot.revealed else None, "revealed": ballot.revealed,
            "closed_at": ballot.closed_at, "result": ballot.result,
            "adopted_option": _adopted_option(ballot, texts),
            "publicity_until": ballot.publicity_until, "outcome": ballot.outcome,
            "objections": [{"id": r.id, "lodged_by": r.lodged_by, "lodged_at": r.lodged_at,
                            "text": texts.get(r.text_commitment), "upheld": r.upheld,
                            "reason": texts.get(r.reason_commitment), "ruled_by": r.ruled_by, "ruled_at": r.ruled_at}
                           for r in o_rows],
            "annulment": annulment, "emergency": emergency, "rerun_of": ballot.rerun_of, "rerun": ballot.rerun,
            "abandoned": abandoned,
            "corrections": [{"receipt": r.receipt, "paper_serial": r.paper_serial, "replaces_serial": r.replaces_serial,
                             "reason": texts.get(r.reason_commitment), "reason_commitment": r.reason_commitment,
                             "entered_by": r.entered_by, "recorded_at": r.recorded_at} for r in c_rows],
        }

    def list_ballots(self, community: str, status: str | None = None, read_texts=None) -> list[dict]:
        self.project()
        b = t.ballots
        cond = [b.c.community == community] + ([b.c.status == status] if status else [])
        with self.engine.connect() as conn:
            rows = list(conn.execute(sa.select(b).where(*cond).order_by(b.c.updated_at.desc())))
        titles = self._texts(*[r.title_commitment for r in rows], read_texts=read_texts)
        return [{"id": r.id, "case": r.case_id, "status": r.status, "title": titles.get(r.title_commitment),
                 "preset": r.preset, "voting_unit": r.voting_unit, "secret": r.secret, "opens_at": r.opens_at,
                 "closes_at": r.closes_at, "roll_size": r.roll_size,
                 "voted": None if r.secret and r.outcome is None else r.voted, "outcome": r.outcome,
                 "publicity_until": r.publicity_until} for r in rows]

    def roll_preview(self, community: str, ballot_id, voting_unit: str, facts: list) -> dict:
        """Who would stand on the ballot's roll if it were frozen now: the opening's own rule
        (build_roll) over the directory as it stands now, for the worker preparing the ballot. The
        roll itself is frozen at the opening, from the directory as it stands then. A roll that
        cannot be built (a co-owned unit without its designated co-owner, nobody in scope) is
        refused with the reason, as configuring and opening would be."""
        ballot = self.ballot(community, ballot_id, copy=False)
        roll = self._roll(voting_unit, facts, clock.now())
        return {"ballot": str(ballot.id), "voting_unit": voting_unit, "roll": [e.to_dict() for e in roll],
                "roll_hash": rules.roll_hash(roll), "preview": True}

    def roll(self, community: str, ballot_id) -> dict:
        ballot = self.ballot(community, ballot_id, copy=False)
        if ballot.opened is None:
            raise Conflict.coded("decisions.voter_roll_frozen_when")
        return {"ballot": str(ballot.id), "roll_hash": ballot.roll_hash, "roll": ballot.opened["roll"]}

    def board(self, community: str, ballot_id, receipt: str | None = None, after: str | None = None,
              limit: int = 1000, read_texts=None) -> dict:
        """The public bulletin board: the receipt of every standing vote, so each voter can find
        theirs; choices and weights once voting has closed (never a running tally). A secret
        ballot lists its receipts only once counted (the list would be a running turnout); until
        then each voter looks up their own receipt."""
        ballot = self.ballot(community, ballot_id, copy=False)
        self.project()
        revealed = ballot.closed_at is not None and ballot.revealed
        listed = ballot.revealed or receipt is not None
        v = t.votes
        cond = [v.c.ballot == str(ballot.id), v.c.current.is_(True)]
        if receipt:
            cond.append(v.c.receipt == receipt)
        if after:
            cond.append(v.c.receipt > after)
        rows, corrected = [], {}
        if listed:
            with self.engine.connect() as conn:
                rows = list(conn.execute(sa.select(v.c.receipt, v.c.choice, v.c.weight, v.c.headcount, v.c.channel)
                                         .where(*cond).order_by(v.c.receipt).limit(limit)))
                c = t.corrections
                corrected = {r.receipt: r.reason_commitment for r in conn.execute(sa.select(
                    c.c.receipt, c.c.reason_commitment).where(c.c.ballot == str(ballot.id),
                                                              c.c.receipt.in_([r.receipt for r in rows])))}
        reasons = self._texts(*corrected.values())
        entries = [{"receipt": r.receipt,
                    **({"choice": r.choice, "weight": r.weight, "headcount": r.headcount, "channel": r.channel}
                       if revealed else {}),
                    **({"correction": {"reason": reasons.get(corrected[r.receipt])}} if r.receipt in corrected else {})}
                   for r in rows]
        return {"ballot": str(ballot.id), "status": ballot.status, "revealed": revealed, "listed": listed,
                "options": self._option_titles(ballot, read_texts) if revealed else [], "entries": entries}

    def my_vote(self, community: str, ballot_id, voter: str) -> dict:
        """The caller's standing vote. On a secret ballot it adds what the record seals, with the
        salts, so the voter can check their VoteCast's seals: their choice, and if a proxy voted for
        them, who (`cast_by`)."""
        ballot = self.ballot(community, ballot_id, copy=False)
        vote = self._load(self.vote_id(ballot, voter), copy=False)
        if vote is None:
            raise NotFound.coded("decisions.vote_yours_recorded_ballot")
        out = {"ballot": str(ballot.id), "receipt": vote.receipt, "choice": vote.choice, "channel": vote.channel,
               "paper_serial": vote.paper_serial, "version": vote.version, "cast_by": vote.cast_by}
        if vote.sealed_choice:
            found = self._sealed_votes([vote.receipt]).get(vote.receipt)
            if found is None:
                raise RuntimeError(f"the sealed part of vote {vote.id} (version {vote.version}) is missing")
            out.update(choice=found.choice, cast_by=found.cast_by, seals={
                "sealed_choice": vote.sealed_choice, "salt": found.salt, "cast_by_seal": vote.cast_by_seal,
                "cast_by_salt": found.cast_by_salt})
        return out

    def needs_of(self, community: str, person: str, roles: list[str], read_texts=None, *,
                 voter_of=None) -> list[dict]:
        """What in this stage waits on the person, for their home page: each open ballot of the
        community that has them on its roll and no vote of theirs yet ("vote", soonest closing
        first), and for a community worker or the party-committee lead each ballot still to be set
        up ("configure": prepared, or back to prepared after a failed opening).

        The read model picks the candidates; only the open ones are loaded, each with the one Vote
        aggregate of (ballot, voter), so the cost follows the number of open ballots, never the
        number of votes. On a secret ballot that aggregate's id is the sealed one only this service
        can derive: the answer says whether *this* person voted, nothing about anyone else.
        `voter_of(ballot)` gives the person's id on a ballot's roll when it is not the person's own
        (one household, one vote: their household); without it, the person.
        """
        self.project()
        b = t.ballots
        now = clock.format(clock.now())
        with self.engine.connect() as conn:
            open_rows = list(conn.execute(sa.select(b.c.id, b.c.title_commitment, b.c.closes_at).where(
                b.c.community == community, b.c.status == OPEN, b.c.closes_at > now)
                .order_by(b.c.closes_at, b.c.id)))
            prepared = list(conn.execute(sa.select(b.c.id, b.c.title_commitment).where(
                b.c.community == community, b.c.status == PREPARED).order_by(b.c.updated_at, b.c.id))) \
                if set(roles or ()) & {ROLE_WORKER, ROLE_LEAD} else []
        to_vote = [r for r in open_rows if self._awaits_vote(community, r.id, person, voter_of)]
        titles = self._texts(*[r.title_commitment for r in (*to_vote, *prepared)], read_texts=read_texts)

        def item(kind: str, row, due: str | None) -> dict:
            return {"kind": kind, "stage": "decisions", "id": row.id, "title": titles.get(row.title_commitment),
                    "due": due, "path": f"ballots/{row.id}"}

        return [*(item("vote", r, r.closes_at) for r in to_vote), *(item("configure", r, None) for r in prepared)]

    def _awaits_vote(self, community: str, ballot_id: str, person: str, voter_of=None) -> bool:
        """The open ballot has the person (or whom they vote as) on its roll, and no vote of theirs."""
        ballot = self._load(uuid.UUID(ballot_id), copy=False)
        if not isinstance(ballot, Ballot) or ballot.community != community or ballot.status != OPEN:
            return False
        voter = voter_of(ballot) if voter_of is not None else person
        if voter not in ballot.roll:
            return False
        return self._load(self.vote_id(ballot, voter), copy=False) is None

    def personal_data(self, community: str, person: str) -> dict:
        """What this stage holds about the person (PIPL art. 45): their standing vote on each
        ballot as `my_vote` shows it to them (on a secret ballot, their own choice and the salts
        of its seals, nothing of anyone else's), and the objections they lodged."""
        self.project()
        B, O = t.ballots, t.objections
        with self.engine.connect() as conn:
            ballots = [r.id for r in conn.execute(sa.select(B.c.id).where(B.c.community == community).order_by(B.c.id))]
            objections = list(conn.execute(sa.select(O).where(O.c.ballot.in_(ballots), O.c.lodged_by == person)
                                           .order_by(O.c.lodged_at))) if ballots else []
        votes = []
        for ballot in ballots:
            try:
                votes.append(self.my_vote(community, ballot, person))
            except NotFound:
                continue
        texts = self.content.get_many(o.text_commitment for o in objections)
        return {"votes": votes, "objections": [
            {"id": o.id, "ballot": o.ballot, "lodged_at": o.lodged_at, "text": texts.get(o.text_commitment),
             "upheld": o.upheld} for o in objections]}


def _configured_options(config: dict | None) -> list[dict]:
    """The options a configuration names: those voted among, and a motion's subject."""
    if not config:
        return []
    return [*(config.get("options") or ()), *([config["motion"]] if config.get("motion") else [])]


def _with_texts(option: dict, texts: dict) -> dict:
    return dict(option, title=texts.get(option.get("title_commitment")),
                description=texts.get(option.get("description_commitment")))


def _with_option_texts(config: dict | None, texts: dict) -> dict | None:
    """The configuration with its options' (and motion's) titles and descriptions joined in."""
    if not config:
        return config
    return dict(config, options=[_with_texts(o, texts) for o in config.get("options") or ()],
                motion=_with_texts(config["motion"], texts) if config.get("motion") else None)


def _adopted_option(ballot: Ballot, texts: dict) -> dict | None:
    """Which option won, by id and title, once a resolution adopted one (a motion: its subject)."""
    if not ballot.result or ballot.result.get("outcome") != "adopted" or not ballot.config:
        return None
    winner = ballot.config.get("motion") or next(
        (o for o in ballot.config.get("options") or () if o["id"] == ballot.result.get("winner")), None)
    return {"id": winner["id"], "title": texts.get(winner.get("title_commitment"))} if winner else None


# ---- the read model, kept from the service's own log ------------------------------------------
def _set(conn, env, **values) -> None:
    conn.execute(sa.update(t.ballots).where(t.ballots.c.id == env["aggregate"]["id"])
                 .values(updated_at=env["occurred_at"], **values))


def _prepared(conn, env, d):
    conn.execute(sa.insert(t.ballots).values(
        id=env["aggregate"]["id"], community=env["community"], case_id=env.get("case"), status="prepared",
        title_commitment=d.get("title_commitment"), voted=0, pending_objections=0, updated_at=env["occurred_at"]))


def _configured(conn, env, d):
    _set(conn, env, status=CONFIGURED, preset=d["rule"]["preset"], voting_unit=d["voting_unit"], secret=d["secret"],
         opens_at=d["opens_at"], closes_at=d["closes_at"])


# A vote is the read model's most frequent event: its statements are built once, with the values
# bound at each execution (building them, and their cache keys, cost more than running them).
_CLOSED_POSITION = sa.select(t.ballots.c.closed_position).where(t.ballots.c.id == sa.bindparam("ballot"))
# A voter's first vote: one more voter unless the ballot's close came first, and whether it did, in
# one statement (the read model's transaction waits for each round trip, and so does decisions).
_FIRST_VOTE = (sa.update(t.ballots).where(t.ballots.c.id == sa.bindparam("ballot"))
               .values(voted=t.ballots.c.voted + sa.case((t.ballots.c.closed_position.is_(None), 1), else_=0))
               .returning(t.ballots.c.closed_position))
# On PostgreSQL a first vote is one statement in all: the ballot's row moved as above, and the vote's
# row inserted with what that found (a data-modifying WITH; SQLite has none, and takes the two).
_VOTE_ROW = ("vote", "version", "ballot", "position", "voter", "receipt", "choice", "weight", "headcount", "channel",
             "paper_serial", "cast_at")
_COUNTED = _FIRST_VOTE.cte("counted")
_AFTER_CLOSE = sa.exists().where(_COUNTED.c.closed_position.is_not(None))
_FIRST_VOTE_ROW = (sa.insert(t.votes).from_select(
    [*_VOTE_ROW, "current", "late"],
    sa.select(*[sa.bindparam(name, type_=t.votes.c[name].type) for name in _VOTE_ROW], ~_AFTER_CLOSE, _AFTER_CLOSE))
    .add_cte(_COUNTED).returning(t.votes.c.late))
_REPLACED = (sa.update(t.votes).where(t.votes.c.vote == sa.bindparam("replaced"), t.votes.c.current.is_(True))
             .values(current=False))
_INSERT_VOTE = sa.insert(t.votes)


# Whether each vote applied in this green thread came after its ballot's close, by position; None
# outside `_lateness`. A vote's command reads its own verdict here rather than the ballot again.
_late: ContextVar[dict | None] = ContextVar("decisions_late", default=None)


def _lateness():
    return collecting(_late, {})


def _vote(conn, env, d):
    vote, version = env["aggregate"]["id"], env["aggregate"]["version"]
    row = dict(vote=vote, version=version, ballot=d["ballot"], position=env["position"], voter=d.get("voter"),
               receipt=d["receipt"], choice=d.get("choice"), weight=d["weight"], headcount=d["headcount"],
               channel=d["channel"], paper_serial=d.get("paper_serial"), cast_at=env["occurred_at"])
    if version == 1 and conn.dialect.name == "postgresql" and not d.get("correction_reason_commitment"):
        _found(env, conn.execute(_FIRST_VOTE_ROW, row).scalar_one())
        return
    if version == 1:  # a voter's first vote
        late = conn.execute(_FIRST_VOTE, {"ballot": d["ballot"]}).scalar() is not None
    else:
        late = conn.execute(_CLOSED_POSITION, {"ballot": d["ballot"]}).scalar() is not None
        if not late:  # a changed vote replaces the standing one
            conn.execute(_REPLACED, {"replaced": vote})
    _found(env, late)
    if d.get("correction_reason_commitment"):
        replaces = conn.execute(sa.select(t.votes.c.paper_serial).where(
            t.votes.c.vote == vote, t.votes.c.version == version - 1)).scalar()
        conn.execute(sa.insert(t.corrections).values(
            vote=vote, version=version, ballot=d["ballot"], receipt=d["receipt"], paper_serial=d.get("paper_serial"),
            replaces_serial=replaces, reason_commitment=d["correction_reason_commitment"],
            entered_by=d.get("entered_by"), recorded_at=env["occurred_at"]))
    # A sealed vote's choice is JSON null here until VotesRevealed opens it.
    conn.execute(_INSERT_VOTE, dict(row, current=not late, late=late))


def _found(env, late: bool) -> None:
    """Tell the vote's command (`_lateness`) whether its vote came after the close."""
    seen = _late.get()
    if seen is not None:
        seen[env["position"]] = late


def _revealed(conn, env, d):
    for r in d["reveals"]:
        conn.execute(sa.update(t.votes).where(t.votes.c.vote == r["vote"], t.votes.c.version == r["version"])
                     .values(choice=r["choice"]))


def _proxy_authorised(conn, env, d):
    p = t.proxies
    values = dict(holder=d["holder"], source=d["source"], paper_serial=d["paper_serial"], active=True,
                  updated_at=env["occurred_at"])
    if env["type"] == "ProxyAuthorised":
        conn.execute(sa.insert(p).values(id=env["aggregate"]["id"], ballot=d["ballot"], principal=d["principal"],
                                         **values))
    else:
        conn.execute(sa.update(p).where(p.c.id == env["aggregate"]["id"]).values(**values))


def _proxy_revoked(conn, env, d):
    conn.execute(sa.update(t.proxies).where(t.proxies.c.id == env["aggregate"]["id"])
                 .values(active=False, updated_at=env["occurred_at"]))


def _objection_lodged(conn, env, d):
    conn.execute(sa.insert(t.objections).values(id=d["objection"], ballot=env["aggregate"]["id"],
                                                lodged_by=env["actor"], lodged_at=env["occurred_at"],
                                                text_commitment=d["text_commitment"]))
    _set(conn, env, pending_objections=t.ballots.c.pending_objections + 1)


def _objection_ruled(conn, env, d):
    conn.execute(sa.update(t.objections).where(t.objections.c.id == d["objection"]).values(
        upheld=d["upheld"], reason_commitment=d["reason_commitment"], ruled_by=env["actor"],
        ruled_at=env["occurred_at"]))
    _set(conn, env, pending_objections=t.ballots.c.pending_objections - 1)


PROJECTORS = {
    "BallotPrepared": _prepared,
    "BallotConfigured": _configured,
    "BallotNotOpened": lambda conn, env, d: _set(conn, env, status="prepared"),
    "BallotOpened": lambda conn, env, d: _set(conn, env, status=OPEN, roll_size=len(d["roll"])),
    "BallotClosed": lambda conn, env, d: _set(conn, env, status=CLOSED, closed_position=env["position"]),
    "ResolutionAdopted": lambda conn, env, d: _set(conn, env, status="adopted", outcome="adopted",
                                                   publicity_until=d["publicity_until"]),
    "ResolutionRejected": lambda conn, env, d: _set(conn, env, status="rejected", outcome="rejected",
                                                    publicity_until=d["publicity_until"]),
    "ObjectionLodged": _objection_lodged,
    "ObjectionRuled": _objection_ruled,
    "ResolutionAnnulled": lambda conn, env, d: _set(conn, env, status="annulled"),
    "BallotAnnulled": lambda conn, env, d: _set(conn, env, status="annulled"),
    "EmergencyDeclared": lambda conn, env, d: _set(conn, env, status="emergency_declared"),
    "ResolutionFinal": lambda conn, env, d: _set(conn, env, status="final", outcome=d["outcome"]),
    "VoteCast": _vote,
    "VoteChanged": _vote,
    "VotesRevealed": _revealed,
    "ProxyAuthorised": _proxy_authorised,
    "ProxyAuthorisedAgain": _proxy_authorised,
    "ProxyRevoked": _proxy_revoked,
}


def project_envelope(conn: sa.Connection, env: dict) -> None:
    """Apply one event of the log to the read model (called by the projection's SqlSink, which
    has locked the tracking row and skipped what is applied already)."""
    projector = PROJECTORS.get(env["type"])
    if projector is not None:
        projector(conn, env, env["data"])
