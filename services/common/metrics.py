"""Prometheus metrics shared by every service (one registry per process)."""
from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

EVENTS_PUBLISHED = Counter("consult_events_published", "Integration events published by the outbox relay", ["source", "type"])
EVENTS_CONSUMED = Counter(
    "consult_events_consumed", "Integration events applied by a tracked consumer", ["consumer", "source", "type"]
)
DUPLICATES = Counter("consult_events_duplicate", "Messages ignored as already processed", ["consumer", "source"])
GAPS_FILLED = Counter("consult_gaps_filled", "Times a consumer pulled missing positions from the source log", ["consumer", "source"])
CONSUMER_LAG = Gauge("consult_consumer_lag", "Source head position minus tracked position", ["consumer", "source"])
OUTBOX_LAG = Gauge("consult_outbox_lag", "Source head position minus last published position", ["source"])
PARKED = Gauge("consult_parked_messages", "Messages parked in the dead-letter queue (stream held)", ["consumer", "source"])
REJECTED = Counter("consult_rejected_messages", "Messages that are no event of the source's log (undecodable, or "
                   "not what the log records at their position): set aside, the stream goes on", ["consumer", "source"])
MESSAGES_CHECKED = Counter("consult_messages_checked", "Messages a consumer took as its source's log entry: "
                           "by the relay's voucher (voucher.py), or by reading the source's log", ["consumer", "source", "by"])
TRANSIENT_WAITS = Counter("consult_handler_transient_failures", "Handler failures classified transient: retried "
                          "with back-off, never parked", ["consumer", "source"])
PROJECTED_AHEAD = Counter("consult_projected_with_save", "Saves whose events were applied to the service's own read "
                          "model in the save (applied) or, another writer having moved the log, by the catch-up "
                          "after it (caught_up)", ["source", "outcome"])
HANDLER_SECONDS = Histogram("consult_handler_seconds", "Time to apply one event, or one batch of events in one "
                            "transaction (consult_consumer_batch_events)", ["consumer", "source"])
BATCH_EVENTS = Histogram("consult_consumer_batch_events", "Events a consumer applied as one batch (messages that "
                         "arrived together, or a catch-up from the log)", ["consumer", "source"],
                         buckets=(2, 5, 10, 20, 50, 100))
HANDLER_FAILURES = Counter("consult_handler_failures", "Handler exceptions (before retry)", ["consumer", "source"])
HTTP_REQUESTS = Counter("consult_http_requests", "HTTP requests", ["service", "route", "method", "status"])
HTTP_SECONDS = Histogram("consult_http_request_seconds", "HTTP request latency", ["service", "route"])
STAGE_TRANSITIONS = Counter("consult_stage_transitions", "Stage transitions", ["service", "community", "stage"])
AUDIT_TREE_SIZE = Gauge("consult_audit_tree_size", "Entries in a community's audit log", ["community"])
AUDIT_CHECKPOINT_AGE = Gauge("consult_audit_checkpoint_age_seconds", "Age of the latest checkpoint", ["community"])
RPC_NOT_RUNNING = Counter("consult_rpc_not_running", "Calls answered at once because no instance of the called "
                          "service (by its name on the broker: c2-proposals) was consuming its RPC queue", ["service"])
SIGN_INS = Counter("consult_gateway_sign_ins", "Bearer tokens the gateway accepted, by how: signed (checked in the "
                   "gateway, services/common/signed_token.py), cached (the directory's answer kept) or directory "
                   "(asked over RPC; a refusal is counted here too)", ["how"])
AUDIT_CELL_FORKS = Counter("consult_audit_cell_forks", "Heads of a cell the platform log spanning cells "
                           "refused: not signed by a trusted key, or not extending the head witnessed", ["cell"])


def exposition() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST
