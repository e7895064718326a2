"""Tests for nst_helpers.config: every invalid setting gets a one-line message, before anything is loaded."""

import pytest

from helpers import smooth_image, stripes_image
from nst_helpers import SettingsError, TransferConfig, stylize

SMALL_SHALLOW = dict(
    steps=6, preview_every=3, device="cpu", content_layers=("relu2_2",), style_layers={"relu1_1": 0.5, "relu2_1": 0.5}
)


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("steps", 0, "steps"),
        ("steps", -5, "steps"),
        ("size", 0, "size"),
        ("style_weight", -1.0, "style_weight"),
        ("content_weight", float("nan"), "content_weight"),
        ("lr", 0.0, "lr"),
        ("optimizer", "sgd", "optimizer"),
        ("init", "zeros", "init"),
        ("precision", "fp8", "precision"),
        ("preview_every", 0, "preview_every"),
    ],
)
def test_invalid_settings_are_refused(field, value, match):
    with pytest.raises(SettingsError, match=match):
        TransferConfig(**{field: value}).validate()


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"size": -64}, "size must be a whole number ≥ 1, got -64"),
        ({"size": 12.5}, "size must be a whole number"),
        ({"style_size": 0}, "style_size must be a whole number ≥ 1"),
        ({"content_weight": -1.0}, "content_weight must be a finite number ≥ 0"),
        ({"tv_weight": -0.5}, "tv_weight must be a finite number ≥ 0"),
        ({"style_weight": float("inf")}, "style_weight must be a finite number"),
        ({"content_weight": 0.0, "style_weight": 0.0}, "nothing to optimise"),
        ({"lr": -1.0}, "lr must be a positive number"),
        ({"lr": "fast"}, "lr must be a positive number"),
        ({"style_layers": {"relu1_1": -1.0}}, "Style layer weight for relu1_1"),
        ({"style_layers": {"relu1_1": "heavy"}}, "Style layer weight for relu1_1"),
        ({"record_every": -1}, "record_every must be a whole number ≥ 0"),
        ({"record_every": 2.5}, "record_every must be a whole number"),
        ({"record_every": True}, "record_every must be a whole number"),
    ],
)
def test_negative_or_zero_steps_weights_and_sizes(overrides, match):
    with pytest.raises(SettingsError, match=match):
        stylize(
            smooth_image(), stripes_image(), model=None, **{**SMALL_SHALLOW, **overrides}
        )  # fails before any weights


def test_validate_returns_a_canonical_copy_and_leaves_the_config_alone():
    config = TransferConfig(content_layers="relu4_2", style_layers=["relu1_1", "relu2_1"])
    checked = config.validate()
    assert checked.content_layers == ("relu4_2",) and checked.style_layers == {"relu1_1": 0.5, "relu2_1": 0.5}
    assert config.content_layers == "relu4_2" and config.style_layers == ["relu1_1", "relu2_1"]


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"scales": "fine"}, "scales must be 'auto', 'none' or a list of sizes in px, got 'fine'"),
        ({"scales": (128, 0)}, "scales must be 'auto', 'none' or a list of sizes in px"),
        ({"scales": (128.5,)}, "scales must be 'auto', 'none' or a list of sizes in px"),
        ({"scales": ()}, "scales must be 'auto', 'none' or a list of sizes in px"),
        ({"scales": (64, 32), "scale_steps": "10,20"}, "scale_steps must be a list of step counts"),
        ({"scales": (64, 32), "scale_steps": (10, 0, 5)}, "scale_steps must be whole numbers ≥ 1"),
        ({"style_scale": 0.0}, "style_scale must be > 0"),
        ({"style_scale": -1.0}, "style_scale must be a finite number ≥ 0"),
        ({"style_scale": float("nan")}, "style_scale must be a finite number"),
        ({"style_scale": 0.5, "style_size": 128}, "not given together with style_size"),
    ],
)
def test_scales_and_style_scale_are_checked_before_anything_loads(overrides, match):
    with pytest.raises(SettingsError, match=match):
        stylize(smooth_image(), stripes_image(), model=None, **{**SMALL_SHALLOW, **overrides})


def test_scales_and_scale_steps_in_canonical_form():
    checked = TransferConfig(scales=[256, 128], scale_steps=[100, 50, 30], steps=7).validate()
    assert checked.scales == (256, 128) and checked.scale_steps == (100, 50, 30)
    assert checked.steps == 180  # the steps per size by hand decide the run's length
    assert TransferConfig().validate().scales == TransferConfig.scales and TransferConfig.style_scale is None
