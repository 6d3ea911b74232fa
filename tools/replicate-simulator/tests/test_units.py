"""Pure helpers: header parsing, settings validation, catalog rules."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from picture.replicate_simulator.catalog import build_spec, parse_markers
from picture.replicate_simulator.errors import ProblemError
from picture.replicate_simulator.headers import parse_duration, parse_prefer_wait
from picture.replicate_simulator.settings import SimulatorSettings


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("1m", 60), ("1h30m", 5400), ("500ms", 0.5), ("45", 45), ("2.5", 2.5)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "1x", "m1", "0", "-5", "1m soon"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ProblemError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("header", "wait"),
    [
        (None, None),
        ("", None),
        ("wait", 60),
        ("wait=5", 5),
        ("wait=0", 1),
        ("wait=600", 60),
        ("respond-async, wait=10", 10),
        ("return=minimal", None),
    ],
)
def test_parse_prefer(header: str | None, wait: int | None) -> None:
    assert parse_prefer_wait(header) == wait


def test_settings_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PICTURE_SIMULATOR_PORT", "9999")
    monkeypatch.setenv("PICTURE_SIMULATOR_TOKEN", "tok")
    monkeypatch.setenv("PICTURE_SIMULATOR_FAILURE_RATE", "0.5")
    settings = SimulatorSettings()
    assert (settings.port, settings.token, settings.failure_rate) == (9999, "tok", 0.5)
    assert settings.base_url == "http://127.0.0.1:9999"
    assert settings.webhook_secret.startswith("whsec_")
    assert SimulatorSettings(public_url="https://sim.example/").base_url == "https://sim.example"
    with pytest.raises(ValidationError):
        SimulatorSettings(webhook_secret="nope")


def test_markers() -> None:
    markers = parse_markers("a [sim:slow=250] [sim:hang] [sim:nsfw]")
    assert (markers.slow_ms, markers.hang, markers.nsfw, markers.fail) == (250, True, True, False)
    assert parse_markers("plain") == parse_markers("")


@pytest.mark.parametrize(
    ("model", "inp", "size", "fmt", "single"),
    [
        ("black-forest-labs/flux-schnell", {"aspect_ratio": "21:9"}, (1536, 640), "webp", False),
        ("black-forest-labs/flux-schnell", {"aspect_ratio": "4:5"}, (896, 1088), "webp", False),
        ("stability-ai/sdxl", {"width": 4096, "height": 10}, (4096, 10), "png", False),
        ("black-forest-labs/flux-dev", {"width": 640, "aspect_ratio": "9:16"}, (768, 1344), "webp", False),
        (
            "black-forest-labs/flux-1.1-pro",
            {"aspect_ratio": "custom", "width": 640},
            (640, 1024),
            "webp",
            True,
        ),
        ("bytedance/seedream-3", {}, (1344, 768), "jpg", True),
        (
            "bytedance/seedream-4",
            {"size": "custom", "width": 4096, "height": 2304},
            (4096, 2304),
            "jpg",
            False,
        ),
        ("recraft-ai/recraft-v3", {"size": "1024x1707"}, (1024, 1707), "webp", True),
        ("google/imagen-4-fast", {"output_format": "png"}, (1024, 1024), "png", True),
        ("recraft-ai/recraft-v3-svg", {"width": 512}, (1024, 1024), "svg", True),
        ("a/b", {"output_format": "svg"}, (1024, 1024), "svg", False),
        ("a/b", {"output_format": "jpeg"}, (1024, 1024), "jpg", False),
    ],
)
def test_build_spec(
    model: str, inp: dict[str, object], size: tuple[int, int], fmt: str, single: bool
) -> None:
    spec = build_spec(model, {"prompt": "p", **inp}, random.Random(1))
    assert (spec.width, spec.height, spec.fmt, spec.single_output) == (*size, fmt, single)
    assert all(64 <= side <= 2048 for side in spec.draw_size)


def test_single_output_models_ignore_num_outputs() -> None:
    spec = build_spec("black-forest-labs/flux-1.1-pro", {"prompt": "p", "num_outputs": 3}, random.Random())
    assert spec.num_outputs == 1
