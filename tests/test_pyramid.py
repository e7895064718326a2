"""Tests for nst_helpers.pyramid and pyramid_run: the plan of a coarse-to-fine run, the images at each level,
the memory estimate per level, and whole runs (targets per level, progress, interrupts at a middle level)."""

import contextlib
import math
import warnings

import pytest
import torch
import torch.nn.functional as F

import nst_helpers.pyramid as pyramid_module
import nst_helpers.transfer as transfer_module
from helpers import check_image_tensor, smooth_image, stripes_image
from nst_helpers import MemoryModel, Objective, SettingsError, TransferConfig, gram_matrix, stylize
from nst_helpers.devices import format_bytes
from nst_helpers.pyramid import (
    MIN_SIDE,
    Scale,
    describe_run,
    level_images,
    memory_plan,
    parse_scales,
    plan_scales,
    scale_sizes,
    split_steps,
    upsample,
)

SHALLOW = dict(content_layers=("relu2_2",), style_layers={"relu1_1": 0.5, "relu2_1": 0.5})
#: Three levels of a 48x64 content: 12x16, 24x32, 48x64 (coarsest first), 4 + 4 + 4 steps.
THREE = dict(SHALLOW, size=64, scales=(16, 32), scale_steps=(4, 4, 4), preview_every=2, device="cpu", precision="fp32")


# --------------------------------------------------------------------------- the plan


@pytest.mark.parametrize(
    "final, expected",
    [
        (512, [128, 256, 512]),
        (384, [192, 384]),
        (256, [128, 256]),
        (255, [255]),
        (64, [64]),
        (1024, [128, 256, 512, 1024]),
        (2048, [128, 256, 512, 1024, 2048]),
        (700, [175, 350, 700]),
    ],
)
def test_auto_halves_down_to_128_to_255_px_and_small_runs_stay_single_scale(final, expected):
    sizes = scale_sizes(final, "auto")
    assert sizes == expected
    assert MIN_SIDE <= sizes[0] < 2 * MIN_SIDE or sizes == [final]


def test_given_sizes_are_the_coarser_levels_and_the_final_size_is_always_last():
    assert scale_sizes(512, (256, 128)) == [128, 256, 512]
    assert scale_sizes(512, (128, 512, 128)) == [128, 512]
    assert scale_sizes(512, "none") == [512]
    with pytest.raises(SettingsError, match=r"scales \[1024\] are larger than the final size 512"):
        scale_sizes(512, (256, 1024))


@pytest.mark.parametrize("steps, levels", [(300, 3), (300, 2), (7, 3), (1000, 5), (3, 3), (300, 1)])
def test_steps_split_gives_the_final_size_its_share_and_the_rest_equally(steps, levels):
    counts = split_steps(steps, levels)
    assert len(counts) == levels and sum(counts) == steps and min(counts) >= 1
    if levels > 1:
        assert counts[-1] == max(1, round(steps * pyramid_module.FINAL_SHARE))
        assert max(counts[:-1]) - min(counts[:-1]) <= 1


def test_plan_keeps_the_aspect_ratio_at_every_level():
    plan = plan_scales(384, 512, 300, "auto")
    assert [(s.height, s.width) for s in plan] == [(96, 128), (192, 256), (384, 512)]
    assert [s.level for s in plan] == [0, 1, 2] and sum(s.steps for s in plan) == 300
    portrait = plan_scales(683, 512, 300, "auto")
    assert [(s.height, s.width) for s in portrait] == [(170, 127), (341, 256), (683, 512)]


def test_plan_leaves_out_levels_too_small_for_the_deepest_layer_or_refuses_given_ones():
    assert [s.size for s in plan_scales(512, 512, 300, "auto", min_size=200)] == [256, 512]
    with pytest.raises(SettingsError, match=r"scales \[64\] are too small.*use 100 px or more"):
        plan_scales(512, 512, 300, (64, 256), min_size=100)


def test_steps_per_level_by_hand_and_too_few_steps():
    plan = plan_scales(256, 256, 999, (64, 128), scale_steps=(10, 20, 30))
    assert [(s.size, s.steps) for s in plan] == [(64, 10), (128, 20), (256, 30)]
    with pytest.raises(SettingsError, match=r"scale_steps has 2 entries but the run has 3 levels \(64, 128, 256 px\)"):
        plan_scales(256, 256, 30, (64, 128), scale_steps=(10, 20))
    assert [s.size for s in plan_scales(512, 512, 2, "auto")] == [256, 512]  # auto: the finest levels only
    with pytest.raises(SettingsError, match="3 scales need at least 3 steps"):
        plan_scales(512, 512, 2, (128, 256))


def test_parse_scales_for_the_command_line():
    assert parse_scales("auto") == "auto" and parse_scales(" None ") == "none"
    assert parse_scales("128,256") == (128, 256)
    with pytest.raises(SettingsError, match="--scales takes auto, none or sizes"):
        parse_scales("big")


# --------------------------------------------------------------------------- images at a level


def test_level_images_resize_content_and_masks_to_the_level_and_styles_by_the_same_factor():
    content, style = smooth_image(48, 64), stripes_image(60, 30)
    mask = torch.zeros(1, 1, 48, 64)
    mask[..., :24, :] = 1.0
    scale = Scale(0, 24, 32, 5)
    level_content, (level_style,), (level_mask,) = level_images(scale, content, [style], [mask])
    assert level_content.shape[-2:] == (24, 32) and level_mask.shape[-2:] == (24, 32)
    assert level_style.shape[-2:] == (30, 15)  # half, as the content: the style keeps its size relative to it
    expected = F.interpolate(content, size=(24, 32), mode="bicubic", antialias=True).clamp(0, 1)
    torch.testing.assert_close(level_content, expected)
    assert float(level_mask[..., :12, :].min()) == 1.0 and float(level_mask[..., 12:, :].max()) == 0.0
    same = level_images(Scale(1, 48, 64, 5), content, [style], None)
    assert same[0] is content and same[1][0] is style and same[2] is None


def test_upsample_is_an_antialiased_bicubic_resize_clamped_to_the_picture_range():
    small = smooth_image(12, 16, seed=1)
    big = upsample(small, Scale(1, 24, 32, 1))
    reference = F.interpolate(small, size=(24, 32), mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
    torch.testing.assert_close(big, reference)
    check_image_tensor(big, 24, 32)
    torch.testing.assert_close(F.avg_pool2d(big, 2), small, atol=0.05, rtol=0)  # the same picture, larger


# --------------------------------------------------------------------------- memory per level


def test_memory_plan_lists_each_level_with_the_models_estimate_and_says_whether_the_final_fits(
    vgg19_random, monkeypatch
):
    memory = MemoryModel(vgg19_random, ["relu4_2", "relu5_1"], "fp32")
    plan = plan_scales(768, 1024, 300, "auto")
    monkeypatch.setattr(pyramid_module, "free_memory", lambda device: 64 * 2**30)
    text = memory_plan(memory, plan, torch.device("cpu"))
    assert text.startswith("4 scales: 96x128 px (") and "fits in the 64.00 GiB free on cpu" in text
    for scale in plan:
        assert f"{scale.height}x{scale.width} px ({scale.steps}" in text
        assert format_bytes(memory.estimate(scale.height, scale.width)) in text
    assert memory.estimate(768, 1024) > 3 * memory.estimate(384, 512)  # the peak is the final level's
    final = memory.estimate(768, 1024)
    monkeypatch.setattr(pyramid_module, "free_memory", lambda device: final // 2)
    tight = memory_plan(memory, plan, torch.device("cpu"))
    fits = memory.largest_size(768, 1024, 0.9 * (final // 2))
    assert "does NOT fit" in tight and f"Use size={fits} or smaller" in tight and fits < 1024
    monkeypatch.setattr(pyramid_module, "free_memory", lambda device: None)
    assert "does not say how much is free" in memory_plan(memory, plan, torch.device("cpu"))


# --------------------------------------------------------------------------- whole runs


@contextlib.contextmanager
def recording_objectives(monkeypatch):
    """Every Objective stylize makes, kept (with the shapes of its images) for the test to look at."""
    made = []

    class Recording(Objective):
        def __init__(self, model, content_image, style_image, **kwargs):
            super().__init__(model, content_image, style_image, **kwargs)
            made.append((self, content_image.shape[-2:], [s.shape[-2:] for s in style_image]))

    monkeypatch.setattr(transfer_module, "Objective", Recording)
    yield made


def test_a_three_level_run_recomputes_the_targets_at_every_level(vgg19_random, monkeypatch):
    content, style = smooth_image(48, 64), stripes_image(40, 40)
    with recording_objectives(monkeypatch) as made:
        result = stylize(content, style, model=vgg19_random, **THREE)
    assert [tuple(shape) for _o, shape, _s in made] == [(12, 16), (24, 32), (48, 64)]
    assert [tuple(styles[0]) for _o, _c, styles in made] == [(10, 10), (20, 20), (40, 40)]
    for objective, shape, styles in made:  # independently: VGG of the images resized to the level
        small_content = F.interpolate(content, size=tuple(shape), mode="bicubic", antialias=True).clamp(0, 1)
        small_style = F.interpolate(style, size=tuple(styles[0]), mode="bicubic", antialias=True).clamp(0, 1)
        with torch.no_grad():
            expected_content = vgg19_random(small_content, ["relu2_2"])["relu2_2"]
            expected_gram = gram_matrix(vgg19_random(small_style, ["relu2_1"])["relu2_1"])
        torch.testing.assert_close(objective.content_targets["relu2_2"], expected_content, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(objective.style_grams["relu2_1"], expected_gram, rtol=1e-4, atol=1e-6)
    assert result.completed and result.steps == 12 and len(result.history["total"]) == 12
    assert result.step_scales == [0] * 4 + [1] * 4 + [2] * 4
    assert [(r.level, r.height, r.width, r.steps, r.first_step) for r in result.pyramid] == [
        (0, 12, 16, 4, 1),
        (1, 24, 32, 4, 5),
        (2, 48, 64, 4, 9),
    ]
    assert [r.loss for r in result.pyramid] == [result.history["total"][i] for i in (3, 7, 11)]
    check_image_tensor(result.image, 48, 64)
    check_image_tensor(result.pyramid[0].image, 12, 16)
    assert 9 <= result.best_step <= 12  # the best of the last level: losses of other sizes do not compare
    assert result.best_loss == pytest.approx(min(result.history["total"][8:]))


def test_each_level_starts_from_the_last_one_upsampled_and_the_callback_sees_the_whole_run(vgg19_random):
    seen = []
    result = stylize(smooth_image(48, 64), stripes_image(40, 40), model=vgg19_random, callback=seen.append, **THREE)
    assert [(p.step, p.scale, tuple(p.image.shape[-2:])) for p in seen] == [
        (0, 0, (12, 16)),
        (2, 0, (12, 16)),
        (4, 1, (24, 32)),  # the next level's start
        (6, 1, (24, 32)),
        (8, 2, (48, 64)),
        (10, 2, (48, 64)),
        (12, 2, (48, 64)),
    ]
    assert all(p.steps == 12 and p.scales == 3 for p in seen) and [p.done for p in seen].count(True) == 1
    assert seen[-1].done and torch.equal(seen[-1].image, result.image)
    assert seen[0].note.startswith("3 scales: 12x16 px (4 steps") and all(not p.note for p in seen[1:])
    assert [len(p.history["total"]) for p in seen] == [p.step for p in seen]
    assert [p.elapsed for p in seen] == sorted(p.elapsed for p in seen)
    torch.testing.assert_close(seen[2].image, upsample(result.pyramid[0].image, Scale(1, 24, 32, 4)))
    torch.testing.assert_close(seen[4].image, upsample(result.pyramid[1].image, Scale(2, 48, 64, 4)))


def _interrupt_on_call(model, call):
    calls = {"n": 0}

    def hook(module, inputs, output):
        calls["n"] += 1
        if calls["n"] == call:
            raise KeyboardInterrupt

    return model.register_forward_hook(hook)


def test_interrupt_at_a_middle_level_returns_that_levels_best_image_not_upsampled(vgg19_random):
    # forward calls: 2 targets + 4 steps (level 0), 2 targets (level 1), then level 1's steps: call 10 = its step 2
    handle = _interrupt_on_call(vgg19_random, 10)
    try:
        with pytest.warns(RuntimeWarning, match="Interrupted after 1 of 4 steps"):
            result = stylize(smooth_image(48, 64), stripes_image(40, 40), model=vgg19_random, **THREE)
    finally:
        handle.remove()
    assert result.status == "interrupted" and result.steps == 5 and result.step_scales == [0] * 4 + [1]
    check_image_tensor(result.image, 24, 32)
    check_image_tensor(result.best_image, 24, 32)
    assert result.best_step == 5 and result.best_loss == pytest.approx(result.history["total"][4])
    assert result.message.startswith("The run ended at scale 2 of 3 (24x32 px): Interrupted after 1 of 4 steps")
    assert result.message.endswith("The image is that scale's result, not upsampled to the final 48x64 px.")


def test_interrupt_while_the_next_levels_targets_are_computed_keeps_the_last_level(vgg19_random):
    handle = _interrupt_on_call(vgg19_random, 7)  # level 1's content targets
    try:
        with pytest.warns(RuntimeWarning, match="Interrupted after 4 of 12 steps"):
            result = stylize(smooth_image(48, 64), stripes_image(40, 40), model=vgg19_random, **THREE)
    finally:
        handle.remove()
    assert result.status == "interrupted" and result.steps == 4 and len(result.pyramid) == 1
    check_image_tensor(result.image, 12, 16)
    assert "Interrupted after 4 of 12 steps" in result.message and "scale 1 of 3 (12x16 px)" in result.message


def test_out_of_memory_while_building_a_later_level_keeps_the_last_level(vgg19_random):
    def hook(module, inputs, output):
        if inputs[0].shape[-1] == 64:  # the final level's targets
            raise torch.OutOfMemoryError("CUDA out of memory.")

    handle = vgg19_random.register_forward_hook(hook)
    try:
        with pytest.warns(RuntimeWarning, match="Ran out of memory"):
            result = stylize(smooth_image(48, 64), stripes_image(40, 40), model=vgg19_random, **THREE)
    finally:
        handle.remove()
    assert result.status == "out_of_memory" and result.steps == 8
    assert "Ran out of memory on cpu at 48x64 px after 8 steps" in result.message
    check_image_tensor(result.image, 24, 32)


def test_frames_of_a_pyramid_run_carry_their_level_and_run_on(vgg19_random):
    result = stylize(smooth_image(48, 64), stripes_image(40, 40), model=vgg19_random, record_every=2, **THREE)
    steps = [frame.step for frame in result.frames]
    assert steps == sorted(set(steps)) and steps[0] == 1 and steps[-1] == 12
    for frame in result.frames:
        assert frame.scale == result.step_scales[frame.step - 1]
        assert frame.losses["total"] == pytest.approx(result.history["total"][frame.step - 1])
        assert tuple(frame.image.shape[-2:]) == {0: (12, 16), 1: (24, 32), 2: (48, 64)}[frame.scale]


def test_colours_and_masks_work_at_every_level(vgg19_random):
    mask = torch.zeros(1, 1, 48, 64)
    mask[..., :20, :] = 1.0
    seen = []
    result = stylize(
        smooth_image(48, 64),
        [stripes_image(40, 40), smooth_image(40, 40, seed=3)],
        model=vgg19_random,
        callback=seen.append,
        preserve_colors="luminance",
        style_masks=[mask, 1 - mask],
        **THREE,
    )
    assert result.completed and result.step_scales[-1] == 2
    assert {tuple(p.image.shape[-2:]) for p in seen} == {(12, 16), (24, 32), (48, 64)}
    check_image_tensor(result.image, 48, 64)


def test_auto_runs_small_pictures_at_one_size_exactly_as_none(vgg19_random):
    kwargs = dict(SHALLOW, size=64, steps=6, preview_every=3, device="cpu", precision="fp32")
    auto = stylize(smooth_image(48, 64), stripes_image(40, 40), model=vgg19_random, scales="auto", **kwargs)
    single = stylize(smooth_image(48, 64), stripes_image(40, 40), model=vgg19_random, scales="none", **kwargs)
    assert auto.step_scales == single.step_scales == [0] * 6 and len(auto.pyramid) == 1
    assert auto.history == single.history and torch.equal(auto.image, single.image)


def test_style_scale_sets_the_style_size_relative_to_the_content_at_every_level(vgg19_random, monkeypatch):
    with recording_objectives(monkeypatch) as made, warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        stylize(smooth_image(48, 64), stripes_image(40, 80), model=vgg19_random, style_scale=0.5, **THREE)
    # content 64 px long: the style's longest side is 32 px, then halved with every coarser level
    assert [tuple(styles[0]) for _o, _c, styles in made] == [(4, 8), (8, 16), (16, 32)]
    assert math.isclose(made[-1][2][0][1] / made[-1][1][1], 0.5)


def test_describe_run_plans_a_config_before_any_weights_load(vgg19_random, monkeypatch):
    monkeypatch.setattr(pyramid_module, "free_memory", lambda device: 64 * 2**30)
    config = TransferConfig(size=1024, scales="auto", precision="fp32").validate()
    without_model = describe_run(config, 768, 1024, torch.device("cpu"))
    memory = MemoryModel(vgg19_random, ["relu4_2", *config.style_layers], "fp32")
    assert without_model == memory_plan(memory, plan_scales(768, 1024, 300, "auto"), torch.device("cpu"))
    assert without_model == describe_run(config, 768, 1024, torch.device("cpu"), vgg19_random)
    single = describe_run(TransferConfig(size=1024, precision="fp32").validate(), 768, 1024, torch.device("cpu"))
    assert single.startswith("1 scale: 768x1024 px (300 steps, ")


def test_the_sliders_panel_says_the_plan_when_the_size_changes(monkeypatch):
    pytest.importorskip("ipywidgets", reason="the sliders panel needs ipywidgets")
    from nst_helpers.widgets import StylePanel

    monkeypatch.setattr(pyramid_module, "free_memory", lambda device: 64 * 2**30)
    panel = StylePanel(smooth_image(48, 64), stripes_image(40, 40), size=64, steps=10, device="cpu")
    assert "64 px: 1 scale: 48x64 px (10 steps" in panel.status.value
    panel.config = lambda: TransferConfig(size=512, steps=300, scales="auto", device="cpu", precision="fp32")
    panel.size_slider.value = 512
    assert (
        "512 px: 3 scales: 96x128 px (120 steps" in panel.status.value and "fits in the 64.00 GiB" in panel.status.value
    )
