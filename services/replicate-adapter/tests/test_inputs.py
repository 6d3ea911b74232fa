"""build_input: table-driven, one row per rule and per model of the reference table."""

from __future__ import annotations

from typing import Any

import pytest

from picture.common.contracts import GenerationParameters, ModelSpec
from picture.replicate_adapter.errors import InputError, UnsupportedParameter
from picture.replicate_adapter.inputs import BUILDERS, build_input, nearest_aspect_ratio

from .conftest import SEED, seed_model

FLUX_RATIOS = ("1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21")
NEW_MODEL = ModelSpec(
    name="some-new-model",
    display_name="some-new-model",
    replicate_id="owner/some-new-model",
    default_steps=30,
    default_guidance_scale=7.5,
)


def spec(name: str, **overrides: Any) -> ModelSpec:
    """The catalog's record of ``name`` (the seed), with ``overrides``."""
    if name == NEW_MODEL.name:
        return NEW_MODEL.model_copy(update=overrides)
    return seed_model(name, **overrides)


def params(**overrides: Any) -> GenerationParameters:
    return GenerationParameters(**({"prompt": "a cat", "width": 1024, "height": 1024} | overrides))


WEBP = {"output_format": "webp", "output_quality": 90}


@pytest.mark.parametrize(
    ("model", "given", "expected"),
    [
        pytest.param(
            "flux-schnell",
            {},
            {"prompt": "a cat", "aspect_ratio": "1:1", "num_inference_steps": 4, "num_outputs": 1, **WEBP},
            id="flux-schnell-defaults-no-guidance",
        ),
        pytest.param(
            "flux-schnell",
            {"width": 1344, "height": 768},
            {"aspect_ratio": "16:9"},
            id="flux-schnell-1344x768-16:9",
        ),
        pytest.param(
            "flux-schnell",
            {"width": 768, "height": 1344},
            {"aspect_ratio": "9:16"},
            id="flux-schnell-768x1344-9:16",
        ),
        pytest.param(
            "flux-schnell",
            {"width": 1536, "height": 640},
            {"aspect_ratio": "21:9"},
            id="flux-schnell-1536x640-21:9",
        ),
        # 1152x896 (9:7) is nearer 5:4 than 4:3 in log space (0.028 vs 0.036).
        pytest.param(
            "flux-schnell",
            {"width": 1152, "height": 896},
            {"aspect_ratio": "5:4"},
            id="flux-schnell-1152x896-5:4",
        ),
        pytest.param(
            "flux-schnell",
            {"width": 1216, "height": 832},
            {"aspect_ratio": "3:2"},
            id="flux-schnell-1216x832-3:2",
        ),
        pytest.param("flux-schnell", {"seed": 0}, {"seed": 0}, id="seed-0-honoured"),
        pytest.param("flux-dev", {"guidance_scale": 0.0}, {"guidance": 0.0}, id="guidance-0-honoured"),
        pytest.param(
            "flux-schnell",
            {"steps": 2, "seed": 42},
            {"num_inference_steps": 2, "seed": 42},
            id="explicit-steps-and-seed",
        ),
        pytest.param(
            "flux-dev",
            {"width": 1344, "height": 768},
            {
                "prompt": "a cat",
                "aspect_ratio": "16:9",
                "num_inference_steps": 28,
                "guidance": 3.5,
                "num_outputs": 1,
                **WEBP,
            },
            id="flux-dev-aspect-ratio-and-guidance",
        ),
        pytest.param("flux-krea-dev", {}, {"guidance": 3.0, "width": None}, id="flux-krea-dev"),
        pytest.param(
            "flux-1.1-pro",
            {"width": 1344, "height": 768, "seed": 7},
            {
                "prompt": "a cat",
                "aspect_ratio": "custom",
                "width": 1344,
                "height": 768,
                "safety_tolerance": 2,
                "seed": 7,
                **WEBP,
            },
            id="flux-1.1-pro-custom-size",
        ),
        pytest.param(
            "sdxl",
            {"negative_prompt": "blurry"},
            {
                "prompt": "a cat",
                "width": 1024,
                "height": 1024,
                "num_inference_steps": 30,
                "guidance_scale": 7.5,
                "refine": "expert_ensemble_refiner",
                "high_noise_frac": 0.8,
                "negative_prompt": "blurry",
            },
            id="sdxl-negative-prompt-sent-no-output-format",
        ),
        pytest.param(
            "sdxl-lightning",
            {"guidance_scale": 2.0},
            {
                "prompt": "a cat",
                "width": 1024,
                "height": 1024,
                "num_inference_steps": 4,
                "guidance_scale": 2.0,
                "disable_safety_checker": False,
            },
            id="sdxl-lightning-takes-guidance",
        ),
        pytest.param(
            "ideogram-v3-turbo",
            {"width": 768, "height": 1344},
            {"prompt": "a cat", "aspect_ratio": "9:16", "style_type": "Auto"},
            id="ideogram-style-type-capitalised",
        ),
        pytest.param(
            "imagen-4-fast",
            {},
            {"prompt": "a cat", "aspect_ratio": "1:1", "output_format": "png"},
            id="imagen-no-safety-tolerance",
        ),
        pytest.param(
            "recraft-v3",
            {"width": 1344, "height": 768},
            {"prompt": "a cat", "size": "1820x1024", "style": "realistic_image"},
            id="recraft-v3-nearest-listed-size",
        ),
        pytest.param(
            "recraft-v3-svg",
            {},
            {"prompt": "a cat", "size": "1024x1024", "style": "any"},
            id="recraft-svg-size-not-width",
        ),
        pytest.param(
            "stable-diffusion-3.5",
            {"guidance_scale": 1.0, "width": 1152, "height": 896},
            {"prompt": "a cat", "aspect_ratio": "5:4", "cfg": 1.0, "output_format": "webp"},
            id="sd-3.5-no-steps-no-4:3",
        ),
        pytest.param(
            "seedream-3",
            {},
            {
                "prompt": "a cat",
                "aspect_ratio": "custom",
                "width": 1024,
                "height": 1024,
                "guidance_scale": 2.5,
            },
            id="seedream-3-custom-size",
        ),
        pytest.param(
            "seedream-4",
            {"width": 4096, "height": 2304},
            {"prompt": "a cat", "size": "custom", "width": 4096, "height": 2304, "max_images": 1},
            id="seedream-4-custom-size",
        ),
        pytest.param(
            "qwen-image",
            {"negative_prompt": "text"},
            {
                "prompt": "a cat",
                "aspect_ratio": "1:1",
                "num_inference_steps": 30,
                "guidance": 4.0,
                "go_fast": True,
                "image_size": "optimize_for_quality",
                "enhance_prompt": False,
                "disable_safety_checker": False,
                "negative_prompt": "text",
                **WEBP,
            },
            id="qwen-image",
        ),
        pytest.param(
            "some-new-model",
            {"seed": 0, "guidance_scale": 0.0, "width": 768},
            {
                "prompt": "a cat",
                "width": 768,
                "height": 1024,
                "num_inference_steps": 30,
                "guidance_scale": 0.0,
                "seed": 0,
            },
            id="generic-zeroes-honoured",
        ),
    ],
)
def test_build_input(model: str, given: dict[str, Any], expected: dict[str, Any]) -> None:
    result = build_input(spec(model), params(**given))
    assert {k: result.get(k) for k in expected} == expected
    if "prompt" in expected:  # full expectation: nothing else sent
        assert result == expected


@pytest.mark.parametrize(
    ("model", "given", "field"),
    [
        pytest.param(
            "flux-schnell", {"negative_prompt": "ugly"}, "negative_prompt", id="negative-prompt-unsupported"
        ),
        pytest.param("imagen-4-fast", {"seed": 0}, "seed", id="seed-0-unsupported"),
        pytest.param("flux-1.1-pro", {"steps": 20}, "steps", id="steps-unsupported"),
        pytest.param("recraft-v3", {"guidance_scale": 0.0}, "guidance_scale", id="guidance-unsupported"),
        pytest.param("flux-schnell", {"guidance_scale": 1.0}, "guidance_scale", id="schnell-no-guidance"),
        pytest.param("stable-diffusion-3.5", {"steps": 20}, "steps", id="sd35-no-steps"),
        pytest.param("recraft-v3-svg", {"seed": 1}, "seed", id="recraft-svg-no-seed"),
    ],
)
def test_unsupported_parameters_are_refused(model: str, given: dict[str, Any], field: str) -> None:
    with pytest.raises(UnsupportedParameter) as info:
        build_input(spec(model), params(**given))
    assert info.value.field == field
    assert field in info.value.message
    assert model in info.value.message


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"steps": 5}, "steps"),  # flux-schnell max_steps 4
        ({"steps": 0}, "steps"),
        ({"width": 4096}, "width"),
        ({"height": 128}, "height"),
        ({"seed": 2**32}, "seed"),
        ({"prompt": "   "}, "prompt"),
    ],
)
def test_out_of_bounds_refused(given: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as info:
        build_input(spec("flux-schnell"), params(**given))
    assert info.value.field == field


def test_empty_negative_prompt_is_not_a_negative_prompt() -> None:
    assert "negative_prompt" not in build_input(spec("flux-schnell"), params(negative_prompt=""))


def test_selection_is_by_exact_name_never_substring() -> None:
    # "flux-schnell-lora" is not flux-schnell: it gets the generic input.
    model = ModelSpec(
        name="flux-schnell-lora",
        display_name="x",
        replicate_id="o/x",
        default_steps=4,
        default_guidance_scale=3.5,
    )
    result = build_input(model, params())
    assert "aspect_ratio" not in result
    assert result["width"] == 1024
    assert result["guidance_scale"] == 3.5


def test_every_catalog_model_has_a_builder() -> None:
    assert set(BUILDERS) == set(SEED)


@pytest.mark.parametrize("name", sorted(SEED))
def test_the_catalog_record_and_the_builder_agree(name: str) -> None:
    """What the record says a model takes is what its builder can send, and a default is
    seeded only for what it takes (a default it cannot take failed every plain request)."""
    record, builder = SEED[name], BUILDERS[name]
    assert record["supports_steps"] == builder.takes_steps
    assert record["supports_guidance"] == builder.takes_guidance
    if record["supports_img2img"]:
        assert builder.img2img is not None
        assert record["supports_strength"] == builder.takes_strength
    if not record["supports_steps"]:
        assert record["default_steps"] is None
    if not record["supports_guidance"]:
        assert record["default_guidance_scale"] is None
    else:
        default = record["default_guidance_scale"]
        assert default is None or record["guidance_min"] <= default <= record["guidance_max"]


def test_guidance_outside_the_models_range_is_refused() -> None:
    with pytest.raises(InputError) as info:
        build_input(spec("sdxl"), params(guidance_scale=0.5))  # SDXL's guidance starts at 1
    assert info.value.field == "guidance_scale"


@pytest.mark.parametrize(
    ("size", "ratio"),
    [
        ((1024, 1024), "1:1"),
        ((1344, 768), "16:9"),
        ((896, 1152), "4:5"),
        ((1152, 1536), "3:4"),
        ((640, 1536), "9:21"),
        ((1000, 10), "21:9"),
        ((10, 1000), "9:21"),
    ],
)
def test_nearest_aspect_ratio(size: tuple[int, int], ratio: str) -> None:
    assert nearest_aspect_ratio(*size, FLUX_RATIOS) == ratio


# ---------------------------------------------------------------------------- image-to-image

DATA_URI = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
SIGNED = "https://media.example.com/objects/u/1.webp?expires=1700000000&sig=abc"
IMG2IMG_MODELS = ("flux-dev", "flux-krea-dev", "sdxl", "seedream-4")


@pytest.mark.parametrize(
    ("model", "given", "expected"),
    [
        pytest.param(
            "flux-dev",
            {"source_image_url": DATA_URI, "strength": 0.25},
            {"image": DATA_URI, "prompt_strength": 0.75},
            id="flux-dev-prompt-strength-inverted",
        ),
        pytest.param(
            "flux-krea-dev",
            {"source_image_url": SIGNED, "strength": 1.0},
            {"image": SIGNED, "prompt_strength": 0.0},
            id="flux-krea-strength-1-keeps-0",
        ),
        pytest.param(
            "flux-dev",
            {"source_image_url": SIGNED},
            {"image": SIGNED, "prompt_strength": None},
            id="flux-dev-no-strength-model-default",
        ),
        pytest.param(
            "sdxl",
            {"source_image_url": DATA_URI, "strength": 0.3},
            {"image": DATA_URI, "prompt_strength": 0.3, "strength": None},
            id="sdxl-prompt-strength-as-is",
        ),
        pytest.param(
            "sdxl",
            {"source_image_url": DATA_URI, "strength": 0.0},
            {"image": DATA_URI, "prompt_strength": 0.0},
            id="sdxl-strength-0-honoured",
        ),
        pytest.param(
            "seedream-4",
            {"source_image_url": DATA_URI, "width": 2048, "height": 2048},
            {"image_input": [DATA_URI], "image": None, "size": "custom"},
            id="seedream-4-image-input-list",
        ),
        pytest.param(
            "flux-dev",
            {},
            {"image": None, "prompt_strength": None},
            id="flux-dev-text-to-image-sends-no-image",
        ),
    ],
)
def test_img2img_mapping(model: str, given: dict[str, Any], expected: dict[str, Any]) -> None:
    result = build_input(spec(model, supports_img2img=True), params(**given))
    assert {k: result.get(k) for k in expected} == expected


@pytest.mark.parametrize("model", sorted(set(BUILDERS) - set(IMG2IMG_MODELS)))
def test_img2img_refused_for_models_without_it(model: str) -> None:
    with pytest.raises(UnsupportedParameter) as info:
        build_input(spec(model, supports_img2img=True), params(source_image_url=DATA_URI))
    assert info.value.field == "source_image_url"


@pytest.mark.parametrize("model", IMG2IMG_MODELS)
def test_img2img_refused_when_the_catalog_says_no(model: str) -> None:
    with pytest.raises(UnsupportedParameter) as info:
        build_input(spec(model, supports_img2img=False), params(source_image_url=DATA_URI))
    assert info.value.field == "source_image_url"


@pytest.mark.parametrize(
    ("model", "given", "field"),
    [
        pytest.param("flux-dev", {"strength": 0.5}, "strength", id="strength-without-source"),
        pytest.param(
            "flux-dev", {"source_image_url": DATA_URI, "strength": 1.5}, "strength", id="strength-above-1"
        ),
        pytest.param(
            "sdxl", {"source_image_url": DATA_URI, "strength": -0.1}, "strength", id="strength-negative"
        ),
        pytest.param(
            "sdxl", {"source_image_url": "http://10.0.0.1/x.png"}, "source_image_url", id="plain-http"
        ),
        pytest.param("sdxl", {"source_image_url": "file:///etc/passwd"}, "source_image_url", id="file-url"),
        pytest.param(
            "sdxl", {"source_image_url": "data:text/html;base64,PGI+"}, "source_image_url", id="not-image"
        ),
    ],
)
def test_img2img_invalid_values_are_refused(model: str, given: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as info:
        build_input(spec(model, supports_img2img=True), params(**given))
    assert info.value.field == field


def test_seedream_4_takes_no_strength() -> None:
    with pytest.raises(UnsupportedParameter) as info:
        build_input(
            spec("seedream-4", supports_img2img=True), params(source_image_url=DATA_URI, strength=0.5)
        )
    assert info.value.field == "strength"


def test_plain_http_sources_only_where_allowed() -> None:
    internal = "http://127.0.0.1:8083/objects/u/uploads/1/image.webp?expires=1&sig=abc"
    with pytest.raises(InputError) as info:
        build_input(spec("flux-dev", supports_img2img=True), params(source_image_url=internal))
    assert info.value.field == "source_image_url"
    result = build_input(
        spec("flux-dev", supports_img2img=True),
        params(source_image_url=internal, strength=0.7),
        allow_http_source=True,
    )
    assert result["image"] == internal
    assert result["prompt_strength"] == pytest.approx(0.3)
