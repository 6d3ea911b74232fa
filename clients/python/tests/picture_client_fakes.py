"""Bodies the fake gateway answers with (shapes of the generated models)."""

from __future__ import annotations

from typing import Any

GENERATION_ID = "0190f0a0-0000-7000-8000-000000000001"


def generation_json(status: str, *, queue_position: int | None = None) -> dict[str, Any]:
    base = f"http://picture.test/v1/generations/{GENERATION_ID}"
    completed = status == "completed"
    return {
        "id": GENERATION_ID,
        "status": status,
        "model": "flux-schnell",
        "prompt": "a cat",
        "negative_prompt": None,
        "width": 512,
        "height": 512,
        "steps": None,
        "guidance_scale": None,
        "seed": 7,
        "error_message": None,
        "retry_count": 0,
        "created_at": "2026-11-29T12:00:00Z",
        "started_at": None,
        "completed_at": "2026-11-29T12:00:05Z" if completed else None,
        "timings": {"queue_time_ms": None, "processing_time_ms": None, "total_time_ms": None},
        "image": {
            "id": "0190f0a0-0000-7000-8000-0000000000aa",
            "url": "http://picture.test/v1/images/0190f0a0-0000-7000-8000-0000000000aa/content",
            "thumbnail_url": None,
            "width": 512,
            "height": 512,
            "format": "webp",
            "file_size": 10,
        }
        if completed
        else None,
        "history": [],
        "links": {"self": base, "events": f"{base}/events", "cancel": f"{base}/cancel"},
        "queue_position": queue_position,
        "eta_seconds": None,
        "batch_id": None,
    }
