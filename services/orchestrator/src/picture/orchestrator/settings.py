"""Orchestrator settings."""

from __future__ import annotations

from pydantic import Field

from picture.common.settings import ServiceSettings


class OrchestratorSettings(ServiceSettings):
    http_port: int = 8081
    # Transient failures are retried this many times, waiting these delays (the last repeats).
    max_retries: int = Field(default=3, ge=0, le=10)
    retry_delays_seconds: tuple[float, ...] = (5.0, 10.0, 30.0)
    # Outbox relay: how many rows per round, and the idle poll interval.
    outbox_batch_size: int = Field(default=200, ge=1, le=5000)
    outbox_idle_seconds: float = Field(default=0.5, gt=0)
    # Scheduling: generations in flight (dispatched, not terminal) per user and in total.
    per_user_concurrency: int = Field(default=3, ge=1, le=100)
    global_concurrency: int = Field(default=20, ge=1, le=10000)
    scheduler_idle_seconds: float = Field(default=1.0, gt=0)
    # Deadlines: not started within start_deadline -> failed; not finished within total_timeout.
    start_deadline_seconds: float = Field(default=900.0, gt=0)
    total_timeout_seconds: float = Field(default=1800.0, gt=0)
    # Sweeper: a generation without progress for this long in its state is resumed.
    sweep_interval_seconds: float = Field(default=10.0, gt=0)
    stuck_dispatched_seconds: float = Field(default=60.0, gt=0)
    stuck_processing_seconds: float = Field(default=300.0, gt=0)
    # Downloading: never sooner than media's download budget (ingest_download_budget_seconds)
    # plus this margin (processing and storing the image); a shorter limit is raised to it.
    stuck_downloading_seconds: float | None = Field(default=None, gt=0)
    stuck_downloading_margin_seconds: float = Field(default=30.0, ge=0)
    # Dedup cache: an identical seeded request by the same user within this window reuses the image.
    dedup_window_seconds: float = Field(default=3600.0, ge=0)
    # Retention: history entries of ended generations older than this are deleted (the last
    # one, how it ended, stays); 0 keeps them. Failed generations: the shared
    # failed_generation_retention_days; the interval and batch: retention_*.
    status_history_retention_days: float = Field(default=90.0, ge=0)

    @property
    def downloading_limit_seconds(self) -> float:
        """How long a generation may stay downloading before the sweeper resumes it: past
        the time media may still be retrying the download."""
        floor = self.ingest_download_budget_seconds + self.stuck_downloading_margin_seconds
        return max(self.stuck_downloading_seconds or floor, floor)
