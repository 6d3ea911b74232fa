"""The orchestrator's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

GENERATIONS_FINISHED = Counter(
    "picture_generations_finished_total",
    "Generations that reached a terminal state, by model and outcome.",
    ["model", "outcome"],
)
GENERATION_DURATION = Histogram(
    "picture_generation_duration_seconds",
    "End-to-end generation time (accepted to terminal), by model and outcome.",
    ["model", "outcome"],
    buckets=(0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600),
)
GENERATION_QUEUE_WAIT = Histogram(
    "picture_generation_queue_wait_seconds",
    "Time from acceptance until the prediction started, by model.",
    ["model"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
)
GENERATION_RETRIES = Counter(
    "picture_generation_retries_total", "Retries scheduled, by model and stage.", ["model", "stage"]
)
DEDUP_HITS = Counter(
    "picture_generation_dedup_hits_total",
    "Generations answered with the stored image of an identical recent request, by model.",
    ["model"],
)
GENERATIONS_CANCELLED = Counter(
    "picture_generations_cancelled_total", "Generations cancelled by their user, by model.", ["model"]
)

DISPATCHED = Counter("picture_scheduler_dispatched_total", "Generations granted a dispatch slot.")
WAITING = Gauge("picture_scheduler_waiting", "Queued generations waiting for a slot (sampled).")
IN_FLIGHT = Gauge("picture_scheduler_in_flight", "Generations holding a slot (sampled).")
GENERATIONS_ACTIVE = Gauge(
    "picture_generations_active", "Generations not yet terminal, by status (sampled).", ["status"]
)
SWEPT = Counter(
    "picture_sweeper_actions_total", "Sweeper actions, by action (resume_*, deadline, timeout).", ["action"]
)
