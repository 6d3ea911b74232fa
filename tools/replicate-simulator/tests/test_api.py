"""HTTP behaviour of the /v1 API: auth, errors, headers, prediction shape, images, markers."""

from __future__ import annotations

import io
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from PIL import Image

from picture.replicate_simulator.server import running_simulator
from picture.replicate_simulator.settings import SimulatorSettings

Waiter = Callable[..., dict[str, Any]]
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def _create(api: httpx.Client, prompt: str, **extra: Any) -> dict[str, Any]:
    """A prediction of a model without a recorded schema (the simulator's generic checks)."""
    response = api.post(
        "/v1/models/acme/sketch/predictions",
        json={"input": {"prompt": prompt, "width": 256, "height": 256, **extra}},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _download(url: str) -> httpx.Response:
    response = httpx.get(url)
    assert response.status_code == 200
    return response


# -- auth ---------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["Bearer", "Token"])
def test_auth_schemes_accepted(sim: SimulatorSettings, scheme: str) -> None:
    response = httpx.get(f"{sim.base_url}/v1/account", headers={"Authorization": f"{scheme} abc"})
    assert response.status_code == 200
    assert response.json() == {"type": "user", "username": "simulator", "name": "Simulator"}


@pytest.mark.parametrize("header", [None, "Bearer", "Basic abc"])
def test_missing_token_is_401_problem(sim: SimulatorSettings, header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    response = httpx.get(f"{sim.base_url}/v1/predictions", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["title"] == "Unauthenticated"
    assert body["status"] == 401
    assert body["detail"] == "You did not pass a valid authentication token"
    assert body["type"]
    assert body["instance"] == "/v1/predictions"


def test_configured_token_rejects_others(fast_settings: Callable[..., SimulatorSettings]) -> None:
    with running_simulator(fast_settings(token="s3cret")) as settings:
        url = f"{settings.base_url}/v1/account"
        assert httpx.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.get(url, headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert httpx.get(url, headers={"Authorization": "Token s3cret"}).status_code == 200


# -- errors -------------------------------------------------------------------------------


def test_unknown_prediction_404(api: httpx.Client) -> None:
    response = api.get("/v1/predictions/nope")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404


@pytest.mark.parametrize(
    "body",
    [
        {"version": "v"},
        {"version": "v", "input": ["prompt"]},
        {"version": "v", "input": {"width": 512}},
        {"version": "v", "input": {"prompt": "x", "num_outputs": 9}},
        {"version": "v", "input": {"prompt": "x", "output_format": "gif"}},
        {"input": {"prompt": "x"}},
    ],
)
def test_invalid_body_422(api: httpx.Client, body: dict[str, Any]) -> None:
    response = api.post("/v1/predictions", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert set(problem) >= {"type", "title", "status", "detail", "instance"}
    assert problem["status"] == 422
    assert api.get("/v1/predictions").json()["results"] == []


# -- prediction object --------------------------------------------------------------------


def test_prediction_shape(api: httpx.Client, wait_terminal: Waiter, sim: SimulatorSettings) -> None:
    created = _create(api, "shape")
    assert re.fullmatch(r"[a-z2-7]{26}", created["id"])
    assert created["status"] == "starting"
    assert created["model"] == "acme/sketch"
    assert created["version"] == "hidden"
    assert created["source"] == "api"
    assert created["data_removed"] is False
    assert created["output"] is None
    assert created["started_at"] is None
    assert ISO.match(created["created_at"])
    get_url = f"{sim.base_url}/v1/predictions/{created['id']}"
    assert created["urls"]["get"] == get_url
    assert created["urls"]["cancel"] == get_url + "/cancel"
    assert "web" in created["urls"]
    assert "stream" not in created["urls"]
    assert "deployment" not in created
    done = wait_terminal(created["id"])
    assert done["status"] == "succeeded"
    assert ISO.match(done["started_at"])
    assert ISO.match(done["completed_at"])
    assert done["metrics"]["predict_time"] > 0
    assert re.search(r"Using seed: \d+", done["logs"])


def test_version_parsing(api: httpx.Client) -> None:
    with_model = api.post(
        "/v1/predictions", json={"version": "acme/thing:abc123", "input": {"prompt": "x"}}
    ).json()
    assert (with_model["model"], with_model["version"]) == ("acme/thing", "abc123")
    bare = api.post("/v1/predictions", json={"version": "abc123", "input": {"prompt": "x"}}).json()
    assert (bare["model"], bare["version"]) == ("unknown/unknown", "abc123")


def test_deployment_prediction(api: httpx.Client) -> None:
    response = api.post("/v1/deployments/acme/prod/predictions", json={"input": {"prompt": "d"}})
    assert response.status_code == 201
    assert response.json()["deployment"] == "acme/prod"


def test_given_seed_is_logged(api: httpx.Client, wait_terminal: Waiter) -> None:
    done = wait_terminal(_create(api, "seeded", seed=1234)["id"])
    assert "Using seed: 1234" in done["logs"]


# -- sync mode and deadlines --------------------------------------------------------------


def test_prefer_wait_returns_terminal(api: httpx.Client) -> None:
    response = api.post(
        "/v1/models/black-forest-labs/flux-schnell/predictions",
        json={"input": {"prompt": "sync", "width": 128, "height": 128}},
        headers={"Prefer": "wait"},
    )
    assert response.status_code == 201
    assert response.headers["preference-applied"] == "wait=60"
    body = response.json()
    assert body["status"] == "succeeded"
    assert len(body["output"]) == 1


def test_prefer_wait_n_times_out(api: httpx.Client) -> None:
    started = time.monotonic()
    response = api.post(
        "/v1/predictions",
        json={"version": "v", "input": {"prompt": "slow [sim:slow=4000]"}},
        headers={"Prefer": "wait=1"},
    )
    elapsed = time.monotonic() - started
    assert response.status_code == 201
    assert response.headers["preference-applied"] == "wait=1"
    assert response.json()["status"] in {"starting", "processing"}
    assert 0.9 <= elapsed < 3


def test_cancel_after_aborts_before_start(
    api: httpx.Client, wait_terminal: Waiter, control: Callable[..., Any]
) -> None:
    control(paused=True)
    created = api.post(
        "/v1/predictions",
        json={"version": "v", "input": {"prompt": "queued"}},
        headers={"Cancel-After": "0.3s"},
    ).json()
    done = wait_terminal(created["id"])
    assert done["status"] == "aborted"
    assert done["started_at"] is None
    assert done["output"] is None


def test_cancel_after_cancels_while_processing(api: httpx.Client, wait_terminal: Waiter) -> None:
    created = api.post(
        "/v1/predictions",
        json={"version": "v", "input": {"prompt": "stuck [sim:hang]"}},
        headers={"Cancel-After": "300ms"},
    ).json()
    done = wait_terminal(created["id"])
    assert done["status"] == "canceled"
    assert done["started_at"] is not None


def test_invalid_cancel_after(api: httpx.Client) -> None:
    response = api.post(
        "/v1/predictions",
        json={"version": "v", "input": {"prompt": "x"}},
        headers={"Cancel-After": "soon"},
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


def test_cancel_endpoint(api: httpx.Client, wait_terminal: Waiter) -> None:
    created = api.post("/v1/predictions", json={"version": "v", "input": {"prompt": "[sim:hang]"}})
    prediction_id = created.json()["id"]
    canceled = api.post(f"/v1/predictions/{prediction_id}/cancel").json()
    assert canceled["status"] == "canceled"
    assert canceled["completed_at"] is not None
    done = wait_terminal(_create(api, "finish")["id"])
    after = api.post(f"/v1/predictions/{done['id']}/cancel").json()
    assert after["status"] == "succeeded"
    assert after["output"] == done["output"]


# -- images -------------------------------------------------------------------------------


def test_same_prompt_and_seed_same_bytes(api: httpx.Client, wait_terminal: Waiter) -> None:
    first = wait_terminal(_create(api, "a tree", seed=7)["id"])
    second = wait_terminal(_create(api, "a tree", seed=7)["id"])
    other = wait_terminal(_create(api, "a tree", seed=8)["id"])
    assert first["output"] != second["output"]  # distinct files ...
    a, b, c = (_download(p["output"][0]).content for p in (first, second, other))
    assert a == b  # ... with identical content
    assert a != c


def test_aspect_ratio_and_formats(api: httpx.Client, wait_terminal: Waiter) -> None:
    response = api.post(
        "/v1/models/black-forest-labs/flux-schnell/predictions",
        json={"input": {"prompt": "wide", "aspect_ratio": "16:9", "output_format": "png"}},
        headers={"Prefer": "wait"},
    )
    output = response.json()["output"]
    download = _download(output[0])
    assert download.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(download.content))
    assert (image.format, image.size) == ("PNG", (1344, 768))
    jpg = wait_terminal(_create(api, "jpeg", output_format="jpg")["id"])
    assert jpg["output"][0].endswith(".jpg")
    assert Image.open(io.BytesIO(_download(jpg["output"][0]).content)).format == "JPEG"


def test_recraft_size_and_imagen_png(api: httpx.Client) -> None:
    recraft = api.post(
        "/v1/models/recraft-ai/recraft-v3/predictions",
        json={"input": {"prompt": "poster", "size": "1365x1024"}},
        headers={"Prefer": "wait"},
    ).json()
    assert isinstance(recraft["output"], str)
    assert Image.open(io.BytesIO(_download(recraft["output"]).content)).size == (1365, 1024)
    imagen = api.post(
        "/v1/models/google/imagen-4-fast/predictions",
        json={"input": {"prompt": "p", "aspect_ratio": "9:16", "output_format": "png"}},
        headers={"Prefer": "wait"},
    ).json()
    image = Image.open(io.BytesIO(_download(imagen["output"]).content))
    assert (image.format, image.size) == ("PNG", (768, 1344))


def test_recraft_svg(api: httpx.Client) -> None:
    body = api.post(
        "/v1/models/recraft-ai/recraft-v3-svg/predictions",
        json={"input": {"prompt": "a <logo> & icon", "size": "1024x1365"}},
        headers={"Prefer": "wait"},
    ).json()
    assert isinstance(body["output"], str)
    assert body["output"].endswith("/out-0.svg")
    download = _download(body["output"])
    assert download.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(download.content)  # noqa: S314 - our own output
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert (root.get("width"), root.get("height")) == ("1024", "1365")
    assert "a <logo> & icon" in "".join(root.itertext())


def test_num_outputs(api: httpx.Client, wait_terminal: Waiter) -> None:
    done = wait_terminal(_create(api, "many", num_outputs=3, seed=1)["id"])
    assert [url.rsplit("/", 1)[1] for url in done["output"]] == [
        "out-0.webp",
        "out-1.webp",
        "out-2.webp",
    ]
    contents = {_download(url).content for url in done["output"]}
    assert len(contents) == 3


# -- failure injection --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "error"),
    [
        ("x [sim:fail]", "Simulated failure: the model raised an error"),
        ("x [sim:nsfw]", "NSFW content detected"),
    ],
)
def test_failure_markers(api: httpx.Client, wait_terminal: Waiter, prompt: str, error: str) -> None:
    done = wait_terminal(_create(api, prompt)["id"])
    assert done["status"] == "failed"
    assert error in done["error"]
    assert done["output"] is None


def test_slow_marker(api: httpx.Client, wait_terminal: Waiter) -> None:
    started = time.monotonic()
    wait_terminal(_create(api, "slow [sim:slow=700]")["id"])
    assert time.monotonic() - started >= 0.65


def test_failure_rate(api: httpx.Client, wait_terminal: Waiter, control: Callable[..., Any]) -> None:
    control(failure_rate=1.0)
    results = [wait_terminal(_create(api, f"p{i}")["id"]) for i in range(3)]
    assert {r["status"] for r in results} == {"failed"}
    assert {r["error"] for r in results} == {"Simulated failure: the model raised an error"}


def test_stream_url_and_events(api: httpx.Client) -> None:
    created = api.post(
        "/v1/predictions", json={"version": "v", "input": {"prompt": "s"}, "stream": True}
    ).json()
    stream_url = created["urls"]["stream"]
    response = api.get(stream_url, headers={"Accept": "text/event-stream"})
    assert response.headers["content-type"].startswith("text/event-stream")
    final = api.get(f"/v1/predictions/{created['id']}").json()
    assert f"event: output\ndata: {final['output'][0]}\n" in response.text
    assert response.text.rstrip().endswith("event: done\ndata: {}")


def test_a_mistyped_top_level_property_is_refused_as_replicate_refuses_it(api: httpx.Client) -> None:
    response = api.post("/v1/models/acme/sketch/predictions", json={"inptu": {"prompt": "x"}})
    assert response.status_code == 422
    body = response.json()
    assert body["title"] == "Input validation failed"
    assert body["invalid_fields"] == [
        {"type": "required", "field": "", "description": "input is required"},
        {
            "type": "additional_property_not_allowed",
            "field": "",
            "description": "Additional property inptu is not allowed",
        },
    ]
