"""Imported generations: written as they ended, with their times, and a history that says so."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from picture.common import contracts as c
from picture.orchestrator.imports import IMPORTED, history_of, row_values
from picture.orchestrator.views import generation_view

MODEL = c.ModelSpec(
    name="flux-schnell", display_name="FLUX schnell", replicate_id="black-forest-labs/flux-schnell"
)
CREATED = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def request(**changes: object) -> c.ImportGenerationRequest:
    user, generation = uuid.uuid4(), uuid.uuid4()
    base: dict[str, object] = {
        "generation_id": generation,
        "user_id": user,
        "model": MODEL,
        "parameters": c.GenerationParameters(prompt="a fox", width=1024, height=1024, seed=0),
        "status": c.GenerationStatus.COMPLETED,
        "created_at": CREATED,
        "completed_at": CREATED + timedelta(seconds=9),
        "image_id": uuid.uuid4(),
        "stored_objects": (
            c.StoredObject(
                key=f"{user}/{generation}/image.webp",
                role="original",
                content_type="image/webp",
                size=10,
                width=1024,
                height=1024,
                sha256="0" * 64,
            ),
        ),
    }
    return c.ImportGenerationRequest.model_validate({**base, **changes})


class Row:
    def __init__(self, values: dict[str, object]) -> None:
        self.__dict__.update(values)


def test_a_completed_generation_keeps_its_times_and_shows_its_image() -> None:
    req = request()
    values = row_values(req, NOW)
    values["stored_objects"] = [o.model_dump(mode="json") for o in req.stored_objects]
    values["batch_id"] = values["batch_index"] = None
    view = generation_view(Row(values), history_of(req))
    assert (view.status, view.created_at, view.completed_at) == ("completed", CREATED, req.completed_at)
    assert view.image is not None and view.image.id == req.image_id
    assert view.image.content_key == req.stored_objects[0].key
    assert view.queue_position is None and view.eta_seconds is None
    assert [h.status for h in view.history] == ["pending", "completed"]
    assert view.history[-1].reason == IMPORTED


def test_a_stuck_generation_is_failed_with_the_reason_in_its_history() -> None:
    req = request(
        status=c.GenerationStatus.FAILED,
        error_message="left processing",
        image_id=None,
        stored_objects=(),
        completed_at=None,
        reason="it was still processing when the old backend stopped",
    )
    values = row_values(req, NOW)
    assert (values["status"], values["error_message"], values["completed_at"]) == (
        "failed",
        "left processing",
        CREATED,
    )
    assert history_of(req)[-1].reason == f"{IMPORTED}: it was still processing when the old backend stopped"


def test_a_completed_generation_without_its_image_is_refused() -> None:
    with pytest.raises(ValueError, match="with its image"):
        row_values(request(image_id=None), NOW)
