"""The official ``replicate`` client, unchanged, against a running simulator."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image
from replicate.client import Client
from replicate.exceptions import ModelError, ReplicateError

from picture.replicate_simulator.settings import SimulatorSettings


@pytest.fixture
def client(sim: SimulatorSettings) -> Iterator[Client]:
    official = Client(api_token="x", base_url=sim.base_url)
    official.poll_interval = 0.05
    yield official
    official._client.close()  # the client never closes its pooled connections itself


def _image(url: str) -> Image.Image:
    response = httpx.get(url)
    assert response.status_code == 200
    return Image.open(io.BytesIO(response.content))


def test_create_wait_get_with_version(client: Client) -> None:
    prediction = client.predictions.create(
        version="stability-ai/sdxl:7762fd07",
        input={"prompt": "a red fox", "width": 640, "height": 384, "output_format": "png"},
    )
    initial_status: str = prediction.status
    assert initial_status == "starting"
    assert prediction.model == "stability-ai/sdxl"
    assert prediction.version == "7762fd07"
    prediction.wait()
    assert prediction.status == "succeeded"
    assert prediction.metrics is not None
    assert prediction.metrics["predict_time"] > 0
    again = client.predictions.get(prediction.id)
    assert again.output == prediction.output
    assert isinstance(again.output, list)
    assert len(again.output) == 1
    assert again.output[0].endswith("/out-0.png")
    image = _image(again.output[0])
    assert image.format == "PNG"
    assert image.size == (640, 384)


def test_run_official_model(client: Client) -> None:
    output = client.run(
        "black-forest-labs/flux-schnell",
        input={"prompt": "a lighthouse", "aspect_ratio": "16:9", "output_format": "webp"},
    )
    assert isinstance(output, list)
    assert len(output) == 1
    image = _image(output[0])
    assert image.format == "WEBP"
    assert image.size == (1344, 768)


def test_run_single_output_model(client: Client) -> None:
    output = client.run("black-forest-labs/flux-1.1-pro", input={"prompt": "a boat"})
    assert isinstance(output, str)
    assert _image(output).size == (1024, 1024)


def test_run_with_version_reference(client: Client) -> None:
    output: Any = client.run("acme/painter:0123abcd", input={"prompt": "a hill"})
    assert isinstance(output, list)
    assert _image(output[0]).format == "WEBP"


def test_run_failure_raises_model_error(client: Client) -> None:
    with pytest.raises(ModelError) as info:
        client.run("black-forest-labs/flux-schnell", input={"prompt": "boom [sim:fail]"})
    assert info.value.prediction.error == "Simulated failure: the model raised an error"


def test_cancel(client: Client) -> None:
    prediction = client.predictions.create(version="a/b:1", input={"prompt": "x [sim:hang]"})
    prediction.cancel()
    assert prediction.status == "canceled"
    assert client.predictions.get(prediction.id).status == "canceled"
    done = client.predictions.create(version="a/b:1", input={"prompt": "y"})
    done.wait()
    assert client.predictions.cancel(done.id).status == "succeeded"


async def _create_many(base_url: str, count: int) -> set[str]:
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": "Bearer t"}, timeout=30) as api:
        responses = await asyncio.gather(
            *(
                api.post(
                    "/v1/predictions",
                    json={"version": "v", "input": {"prompt": f"p{i}", "width": 64, "height": 64}},
                )
                for i in range(count)
            )
        )
    return {r.json()["id"] for r in responses}


def test_list_paging(client: Client, sim: SimulatorSettings) -> None:
    ids = asyncio.run(_create_many(sim.base_url, 105))
    first = client.predictions.list()
    assert len(first.results) == 100
    assert first.previous is None
    assert first.next is not None
    assert first.next.startswith(sim.base_url + "/v1/predictions?cursor=")
    second = client.predictions.list(first.next)
    assert len(second.results) == 5
    assert second.next is None
    assert second.previous is not None
    listed = [p.id for p in first.results + second.results]
    assert len(listed) == len(set(listed))
    assert set(listed) == ids
    created = [p.created_at or "" for p in first.results + second.results]
    assert created == sorted(created, reverse=True)
    back = client.predictions.list(second.previous)
    assert [p.id for p in back.results] == [p.id for p in first.results]


def test_webhook_secret_and_missing_prediction(client: Client) -> None:
    secret = client.webhooks.default.secret()
    assert secret.key.startswith("whsec_")
    with pytest.raises(ReplicateError) as info:
        client.predictions.get("doesnotexist")
    assert info.value.status == 404


@pytest.mark.parametrize(
    ("model", "given", "detail"),
    [
        (
            "black-forest-labs/flux-schnell",
            {"prompt": "p", "num_inference_steps": 8},
            "- input.num_inference_steps: Must be less than or equal to 4\n",
        ),
        (
            "bytedance/sdxl-lightning-4step:5599ed30703defd1d160a25a63321b4dec97101d98b4674bcc56e41f62f35637",
            {"prompt": "p", "width": 2048, "scheduler": "euler"},
            "- input.width: Must be less than or equal to 1280\n- input.scheduler: scheduler must be one of"
            ' the following: "DDIM", "DPMSolverMultistep", "HeunDiscrete", "KarrasDPM",'
            ' "K_EULER_ANCESTRAL", "K_EULER", "PNDM", "DPM++2MSDE"\n',
        ),
        (
            "ideogram-ai/ideogram-v3-turbo",
            {"prompt": "p", "style_type": "auto"},
            '- input.style_type: style_type must be one of the following: "None", "Auto", "General",'
            ' "Realistic", "Design"\n',
        ),
        ("bytedance/seedream-3", {"guidance_scale": "high"}, None),
    ],
)
def test_invalid_inputs_are_answered_as_replicate_answers_them(
    client: Client, model: str, given: dict[str, Any], detail: str | None
) -> None:
    with pytest.raises(ReplicateError) as raised:
        client.run(model, input=given)
    error = raised.value
    assert (error.status, error.title) == (422, "Input validation failed")
    if detail is not None:
        assert error.detail == detail
    else:  # two errors at once: both listed
        assert error.detail == (
            "- input.prompt: prompt is required\n"
            "- input.guidance_scale: Invalid type. Expected: number, given: string\n"
        )


def test_fields_a_model_does_not_have_are_ignored_and_kept_in_the_input(client: Client) -> None:
    prediction = client.predictions.create(
        model="black-forest-labs/flux-schnell", input={"prompt": "p", "guidance": 3.5, "width": 640}
    )
    prediction.wait()
    assert prediction.status == "succeeded"
    assert prediction.input == {"prompt": "p", "guidance": 3.5, "width": 640}
    assert _image(prediction.output[0]).size == (1024, 1024)  # width is not an input of schnell
