"""Read models of the actions service.

Two feeds keep them, each exactly once and in order, and they never write the same table:
- the service's own log (plans, tasks, progress, evaluations, closures), by the projection;
- the events consumed from the other stages (proposals, deliberation, decisions), by the
  tracked consumer: `actions_cases` holds where each case stands, for the progress board, and
  `actions_case_decisions` which cases reached a decision or agreement (a plan may open on them).
Evidence files are content-addressed, in `actions_evidence_files` on PostgreSQL and on disk on SQLite;
`actions_evidence` says which community holds which.
"""
from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# Where every case of the community stands, from the other stages' events.
cases = sa.Table(
    "actions_cases", metadata,
    sa.Column("case_id", sa.String(36), primary_key=True),
    sa.Column("community", sa.String(36), index=True, nullable=False),
    sa.Column("stage", sa.String(20), nullable=False),  # draft, proposal, deliberation, decision, action
    sa.Column("ended", sa.String(20)),  # how it ended before the action stage, if it did
    sa.Column("scope", sa.String(20)),
    sa.Column("scope_id", sa.String(36)),
    sa.Column("category", sa.String(40)),
    sa.Column("title_commitment", sa.String(64)),
    sa.Column("proposal", sa.String(36)),
    sa.Column("follow_up_of", sa.String(36)),  # the original case of a follow-up proposal
    sa.Column("opened_at", sa.String(40), nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
    sa.Column("last_type", sa.String(60), nullable=False),
)

# Cases that reached a decision or agreement in another stage: a final adopted resolution, a
# confirmed or declared emergency, a consultation concluded in agreement. Only such a case of the
# community may get a plan opened directly. Kept by its own tracked sink, so a deployment that
# ran before this table existed fills it from the stages' logs.
case_decisions = sa.Table(
    "actions_case_decisions", metadata,
    sa.Column("case_id", sa.String(36), primary_key=True),
    sa.Column("community", sa.String(36), index=True, nullable=False),
    sa.Column("decided_by", sa.String(60), nullable=False),  # the event type that decided it
    sa.Column("outcome", sa.String(20)),
    sa.Column("decided_at", sa.String(40), nullable=False),
)

plans = sa.Table(
    "actions_plans", metadata,
    sa.Column("plan", sa.String(36), primary_key=True),
    sa.Column("community", sa.String(36), index=True, nullable=False),
    sa.Column("case_id", sa.String(36), nullable=False, unique=True),
    sa.Column("basis", sa.String(20), nullable=False),
    sa.Column("basis_commitment", sa.String(64)),
    sa.Column("scope", sa.String(20), nullable=False),
    sa.Column("scope_id", sa.String(36)),
    sa.Column("category", sa.String(40)),
    sa.Column("title_commitment", sa.String(64)),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("round", sa.Integer, nullable=False, default=0),
    sa.Column("opened_at", sa.String(40), nullable=False),
    sa.Column("done_at", sa.String(40)),
    sa.Column("result_commitment", sa.String(64)),
    sa.Column("evaluation_closes_at", sa.String(40), index=True),
    sa.Column("evaluation_denominator", sa.Integer),
    sa.Column("evaluation_threshold", sa.String(20)),
    sa.Column("last_evaluation", sa.JSON),  # the data of the last EvaluationClosed
)

# Where each plan came from (ActionPlanOpened): the ballot whose resolution it carries out, and
# the option adopted (its id and title commitment, as ResolutionFinal named it). A table of its own
# rather than columns of actions_plans, so a state store made before it gains it at start.
plan_origins = sa.Table(
    "actions_plan_origins", metadata,
    sa.Column("plan", sa.String(36), primary_key=True),
    sa.Column("ballot", sa.String(36)),
    sa.Column("consultation", sa.String(36)),
    sa.Column("proposal", sa.String(36)),
    sa.Column("option", sa.JSON),
)

tasks = sa.Table(
    "actions_tasks", metadata,
    sa.Column("task", sa.String(36), primary_key=True),
    sa.Column("plan", sa.String(36), index=True, nullable=False),
    sa.Column("community", sa.String(36), index=True, nullable=False),
    sa.Column("position", sa.BigInteger, nullable=False),  # assignment order
    sa.Column("title_commitment", sa.String(64), nullable=False),
    sa.Column("responsible_party", sa.JSON, nullable=False),
    sa.Column("due_at", sa.String(40), nullable=False),
    sa.Column("budget", sa.String(30)),
    sa.Column("funding_source", sa.String(40)),
    sa.Column("percent", sa.Integer, nullable=False, default=0),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("overdue", sa.Boolean, nullable=False, default=False),
    sa.Column("completed_at", sa.String(40)),
    sa.Index("ix_actions_tasks_due", "status", "overdue", "due_at"),
)

progress = sa.Table(
    "actions_progress", metadata,
    sa.Column("position", sa.BigInteger, primary_key=True),  # the report's position in the log
    sa.Column("plan", sa.String(36), index=True, nullable=False),
    sa.Column("task", sa.String(36), nullable=False),
    sa.Column("percent", sa.Integer, nullable=False),
    sa.Column("note_commitment", sa.String(64)),
    sa.Column("evidence", sa.JSON, nullable=False),
    sa.Column("reporter", sa.String(64), nullable=False),
    sa.Column("reported_at", sa.String(40), nullable=False),
)

# The current rating of each resident in each round (the last within the window counts).
evaluations = sa.Table(
    "actions_evaluations", metadata,
    sa.Column("evaluation", sa.String(36), primary_key=True),  # the aggregate: (plan, round, person)
    sa.Column("plan", sa.String(36), nullable=False),
    sa.Column("round", sa.Integer, nullable=False),
    sa.Column("person", sa.String(36), nullable=False),
    sa.Column("rating", sa.String(30), nullable=False),
    sa.Column("comment_commitment", sa.String(64)),
    sa.Column("given_at", sa.String(40), nullable=False),
    sa.Index("ix_actions_evaluations_plan_round", "plan", "round"),
)

closures = sa.Table(
    "actions_closures", metadata,
    sa.Column("case_id", sa.String(36), primary_key=True),
    sa.Column("community", sa.String(36), index=True, nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("stage", sa.String(20), nullable=False),
    sa.Column("reason_commitment", sa.String(64)),
    sa.Column("closed_at", sa.String(40), nullable=False, index=True),
    sa.Column("merged_into", sa.String(36)),  # the case a merged proposal continues in
    sa.Column("closed_by", sa.String(64)),  # the actor: "system" for a stage's ending, else the lead
    sa.Column("plan", sa.String(36)),
)

evidence = sa.Table(
    "actions_evidence", metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("community", sa.String(36), primary_key=True),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("media_type", sa.String(100), nullable=False),
    sa.Column("uploaded_by", sa.String(64), nullable=False),
    sa.Column("uploaded_at", sa.String(40), nullable=False),
)

# Evidence files themselves, content-addressed, when the service runs on PostgreSQL: every instance
# on every host reads the same bytes (on SQLite they are files in the data folder). Written in the
# transaction that records the file's `actions_evidence` row.
evidence_files = sa.Table(
    "actions_evidence_files", metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("content", sa.LargeBinary, nullable=False),
)
