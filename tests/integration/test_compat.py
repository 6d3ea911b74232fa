"""The old clients' ``generate-image`` through the real system: the old body in, the old answer
out once the generation is finished (the new pipeline behind it), a replay of the same
``generation_id`` answers the same generation, refusals keep the old body with a proper status,
the endpoint is deprecated in the OpenAPI document and counted in the metrics."""

from __future__ import annotations

import uuid

import httpx
from prometheus_client.parser import text_string_to_metric_families

from picture.devstack.stack import Stack

OLD_BODY = {
    "prompt": "an old client's lighthouse",
    "model_id": "black-forest-labs/flux-dev",
    "model_version": None,
    "width": 1024,
    "height": 1024,
    "num_inference_steps": 4,
    "guidance_scale": 0,
    "seed": 0,
    "source_image_url": None,
    "strength": None,
    "user_id": "ignored, as the old function did",
}
PATH = "/functions/v1/generate-image"


def compat_calls(metrics: str) -> dict[str, float]:
    families = {f.name: f for f in text_string_to_metric_families(metrics)}
    family = families["picture_gateway_compat_requests"]
    return {s.labels["outcome"]: s.value for s in family.samples if s.name.endswith("_total")}


async def test_the_old_body_gets_the_old_answer_from_the_new_pipeline(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    before = compat_calls((await api.get("/metrics")).text)
    generation_id = str(uuid.uuid4())
    response = await api.post(PATH, json={**OLD_BODY, "generation_id": generation_id})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["success"], body["status"], body["generation_id"]) == (True, "completed", generation_id)
    assert (body["model"], body["seed"]) == ("flux-dev", 0)  # seed 0 is a seed
    assert body["image_url"] == body["image"]["url"] and body["image"]["format"] == "webp"
    assert response.headers["Deprecation"] == "true"
    image = await api.get(body["image_url"], follow_redirects=True)
    assert image.status_code == 200 and image.content[:4] == b"RIFF"

    new_view = (await api.get(f"/v1/generations/{generation_id}")).json()
    assert (new_view["seed"], new_view["guidance_scale"], new_view["steps"]) == (0, 0.0, 4)
    # A model that does not take a guidance scale: dropped, as the old function did.
    schnell = await api.post(PATH, json={**OLD_BODY, "model_id": "black-forest-labs/flux-schnell"})
    assert schnell.status_code == 200, schnell.text
    dropped = (await api.get(f"/v1/generations/{schnell.json()['generation_id']}")).json()
    assert (dropped["model"], dropped["guidance_scale"], dropped["seed"]) == ("flux-schnell", None, 0)

    replay = await api.post(PATH, json={**OLD_BODY, "generation_id": generation_id})
    assert replay.status_code == 200 and replay.json()["image"]["id"] == body["image"]["id"]

    unknown = await api.post(PATH, json={**OLD_BODY, "model_id": "flux"})  # no substring matching
    assert unknown.status_code == 422
    assert unknown.json() == {
        "success": False,
        "error": "unknown model 'flux'; see GET /v1/models",
        "generation_id": None,
        "status": None,
        "image_url": None,
        "image": None,
        "model": None,
        "seed": None,
        "generation_time_seconds": None,
    }
    ssrf = await api.post(PATH, json={**OLD_BODY, "source_image_url": "http://169.254.169.254/latest"})
    assert ssrf.status_code == 422 and "your images" in ssrf.json()["error"]

    after = compat_calls((await api.get("/metrics")).text)
    assert after.get("completed", 0) - before.get("completed", 0) == 3
    assert after.get("refused", 0) - before.get("refused", 0) == 2

    operation = httpx.get(f"{stack.gateway_url}/openapi.json").json()["paths"][PATH]["post"]
    assert operation["deprecated"] is True
