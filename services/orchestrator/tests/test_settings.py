"""The sweeper's "downloading" limit follows media's download budget: it never resumes a
download media may still be retrying."""

from __future__ import annotations

import pytest

from picture.orchestrator.settings import OrchestratorSettings


def test_the_downloading_limit_defaults_to_the_budget_plus_the_margin() -> None:
    settings = OrchestratorSettings(ingest_download_budget_seconds=90, stuck_downloading_margin_seconds=30)
    assert settings.downloading_limit_seconds == 120


@pytest.mark.parametrize(("configured", "effective"), [(2, 120), (119, 120), (300, 300)])
def test_a_shorter_limit_is_raised_to_the_budget_plus_the_margin(configured: float, effective: float) -> None:
    settings = OrchestratorSettings(
        ingest_download_budget_seconds=90,
        stuck_downloading_margin_seconds=30,
        stuck_downloading_seconds=configured,
    )
    assert settings.downloading_limit_seconds == effective


def test_the_budget_is_read_from_the_environment_media_reads_it_from(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PICTURE_INGEST_DOWNLOAD_BUDGET_SECONDS", "10")
    monkeypatch.setenv("PICTURE_STUCK_DOWNLOADING_SECONDS", "2")
    assert OrchestratorSettings().downloading_limit_seconds == 40
