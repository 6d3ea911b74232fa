"""The old clients' generate-image answer: old statuses (cancelled is failed "Cancelled by
user"), the old body per outcome, and source images named by URL only when they are ours."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from picture.common import contracts as c
from picture.common.problems import ProblemError
from picture.gateway.routes.compat import (
    OldGenerateImage,
    generation_create,
    old_reply,
    old_status,
    source_image_id,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def view(status: c.GenerationStatus, **changes: object) -> c.GenerationView:
    base = c.GenerationView(
        id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        status=status,
        model="flux-schnell",
        parameters=c.GenerationParameters(prompt="a fox", width=1024, height=1024, seed=0),
        created_at=T0,
    )
    return base.model_copy(update=changes)


def test_cancelled_is_the_old_failed_and_the_rest_keep_their_names() -> None:
    assert old_status(c.GenerationStatus.CANCELLED) == "failed"
    for status in set(c.GenerationStatus) - {c.GenerationStatus.CANCELLED}:
        assert old_status(status) == status.value


def test_a_completed_generation_answers_with_its_image() -> None:
    image = c.ImageView(
        id=uuid.uuid4(),
        generation_id=None,
        user_id=uuid.uuid4(),
        width=1024,
        height=1024,
        format="webp",
        file_size=1234,
        content_key="k/image.webp",
        thumbnail_key="k/thumb.webp",
        created_at=T0,
    )
    done = view(
        c.GenerationStatus.COMPLETED, image=image, total_time_ms=4500, completed_at=T0 + timedelta(seconds=5)
    )
    status, reply = old_reply(done, "https://api.example.org")
    assert status == 200 and reply.success and reply.status == "completed"
    assert reply.image_url == f"https://api.example.org/v1/images/{image.id}/content"
    assert reply.generation_time_seconds == 4.5 and reply.seed == 0


@pytest.mark.parametrize(
    ("state", "message", "error"),
    [
        (c.GenerationStatus.CANCELLED, None, "Cancelled by user"),
        (c.GenerationStatus.FAILED, "the model refused the prompt", "the model refused the prompt"),
    ],
)
def test_failed_and_cancelled_answer_as_the_old_failure(
    state: c.GenerationStatus, message: str | None, error: str
) -> None:
    status, reply = old_reply(view(state, error_message=message), "https://x")
    assert (status, reply.success, reply.status, reply.error) == (400, False, "failed", error)


def test_still_running_answers_202_with_the_old_status() -> None:
    status, reply = old_reply(view(c.GenerationStatus.DOWNLOADING), "https://x")
    assert (status, reply.success, reply.status) == (202, True, "downloading")


def test_source_images_are_named_by_their_id_in_our_urls() -> None:
    image = uuid.uuid4()
    assert source_image_id(None) is None
    assert source_image_id(f"https://api.example.org/v1/images/{image}/content") == image
    with pytest.raises(ProblemError) as refused:
        source_image_id("http://169.254.169.254/latest/meta-data")
    assert refused.value.field == "source_image_url"


def test_fields_a_model_does_not_take_are_dropped_as_the_old_function_did() -> None:
    old = OldGenerateImage(
        prompt="p",
        negative_prompt="blurry",
        num_inference_steps=4,
        guidance_scale=0,
        seed=0,
        source_image_url=f"https://x/v1/images/{uuid.uuid4()}/content",
        strength=0.5,
    )
    schnell = c.ModelSpec(
        name="flux-schnell",
        display_name="F",
        replicate_id="o/f",
        supports_guidance=False,
        supports_seed=False,
    )
    request = generation_create(schnell, old)
    assert (request.steps, request.guidance_scale, request.seed) == (4, None, None)
    assert (request.negative_prompt, request.source_image_id, request.strength) == (None, None, None)
    sdxl = c.ModelSpec(
        name="sdxl",
        display_name="S",
        replicate_id="o/s",
        supports_negative_prompt=True,
        supports_img2img=True,
    )
    request = generation_create(sdxl, old)
    assert (request.guidance_scale, request.seed, request.negative_prompt) == (0, 0, "blurry")
    assert request.source_image_id is not None and request.strength == 0.5
