"""Prometheus metrics of the adapter (labels: endpoint, outcome, model name; never users or
prompts)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "picture_replicate_requests_total",
    "Calls to the Replicate API, by endpoint (create, get, cancel, list) and outcome "
    "(ok, transient, permanent).",
    ["endpoint", "outcome"],
)
REQUEST_SECONDS = Histogram(
    "picture_replicate_request_seconds",
    "Latency of calls to the Replicate API, by endpoint and model.",
    ["endpoint", "model"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
PREDICTION_SECONDS = Histogram(
    "picture_replicate_prediction_seconds",
    "Replicate's time for a finished prediction, created to completed (its queue, cold boot "
    "and run), by model.",
    ["model"],
    buckets=(0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60, 90, 120, 300),
)
IN_FLIGHT = Gauge(
    "picture_replicate_predictions_in_flight",
    "Predictions this process is following until they finish.",
)
COST = Counter(
    "picture_replicate_cost_usd_total",
    "Cost of succeeded predictions in USD, by model.",
    ["model"],
)
OUTCOMES = Counter(
    "picture_replicate_predictions_total",
    "Predictions that reached a terminal status, by model and status.",
    ["model", "status"],
)
BREAKER_STATE = Gauge(
    "picture_replicate_breaker_state",
    "State of the circuit breaker in front of Replicate: 0 closed, 1 half-open, 2 open.",
)
BREAKER_TRANSITIONS = Counter(
    "picture_replicate_breaker_transitions_total",
    "Circuit breaker state changes, by from and to state (closed, half-open, open).",
    ["from_state", "to_state"],
)
BREAKER_REJECTED = Counter(
    "picture_replicate_breaker_rejected_total",
    "Calls to Replicate the open circuit breaker refused without sending anything.",
)
COMPLETIONS = Counter(
    "picture_replicate_completions_total",
    "Predictions whose terminal status the adapter learned, by source (webhook, poll).",
    ["source"],
)
WEBHOOKS = Counter(
    "picture_replicate_webhooks_total",
    "Verified Replicate webhooks the adapter handled, by outcome (terminal, update, unknown, stale).",
    ["outcome"],
)
TAKEOVERS = Counter(
    "picture_adapter_poll_takeovers_total",
    "Predictions this replica took over polling (their owner's lease ended: it died or stopped).",
)
