import contextlib
import math
import re
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

import nst_helpers.pyramid_run as pyramid_run
import nst_helpers.transfer as transfer_module
from helpers import check_image_tensor, smooth_image, stripes_image
from nst_helpers import (
    ImageLoadError,
    ImageSaveError,
    SettingsError,
    gram_matrix,
    load_image,
    load_vgg,
    save_image,
    stylize,
)
from nst_helpers.__main__ import main

SMALL = dict(steps=12, preview_every=4, device="cpu")


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_loop_lowers_total_loss_random_vgg19(vgg19_random, optimizer):
    content, style = smooth_image(48, 64), stripes_image(40, 40)
    result = stylize(content, style, model=vgg19_random, optimizer=optimizer, init="noise", **{**SMALL, "steps": 30})
    totals = result.history["total"]
    assert result.completed and result.steps == 30 and len(totals) == 30
    assert totals[-1] < 0.5 * totals[0]
    assert result.image.shape == (1, 3, 48, 64)
    assert 0 <= result.image.min() and result.image.max() <= 1


def test_history_terms_add_up_and_best_image_is_lowest(vgg19_random):
    result = stylize(smooth_image(), stripes_image(), model=vgg19_random, tv_weight=1.0, **SMALL)
    h = result.history
    for i in range(result.steps):
        assert math.isclose(h["content"][i] + h["style"][i] + h["tv"][i], h["total"][i], rel_tol=1e-5)
    assert result.best_loss == pytest.approx(min(h["total"]), rel=1e-6)
    assert h["total"][result.best_step - 1] == pytest.approx(result.best_loss, rel=1e-6)
    assert result.best_image.shape == result.image.shape


def test_lbfgs_counts_evaluations_exactly(vgg19_random):
    calls = []
    result = stylize(
        smooth_image(),
        stripes_image(),
        model=vgg19_random,
        steps=7,
        preview_every=3,
        callback=calls.append,
        device="cpu",
    )
    assert result.steps == 7 and len(result.history["total"]) == 7
    seen = [p.step for p in calls]
    # A line search may finish a chunk a step late; the total stays exact.
    assert len(seen) >= 3 and seen == sorted(seen) and seen[0] == 0 and seen[1] >= 3
    assert seen[-1] == 7 and calls[-1].done


@pytest.mark.parametrize("precision, tolerance", [("fp32", 1e-4), ("bf16", 1e-2)])
def test_matches_a_plain_hand_written_adam_loop(vgg19_random, precision, tolerance):
    """Independent reference: the textbook loop in fp32, with einsum Grams and explicit formulas.

    fp32 agrees to rounding; the bf16 VGG pass (the default where the hardware has native bf16) to 1 %.
    """
    content, style = smooth_image(32, 32, seed=1), stripes_image(32, 32)
    config = dict(
        steps=5,
        optimizer="adam",
        lr=0.05,
        style_weight=7.0,
        content_weight=2.0,
        init="content",
        preview_every=5,
        device="cpu",
        content_layers=("relu3_1",),
        style_layers={"relu1_1": 0.5, "relu2_1": 0.5},
        precision=precision,
        winograd=False,
    )
    result = stylize(content, style, model=vgg19_random, **config)

    def grams(image):
        feats = vgg19_random(image, ["relu1_1", "relu2_1"])
        return {k: torch.einsum("bihw,bjhw->bij", v, v) / v[0].numel() for k, v in feats.items()}

    with torch.no_grad():
        target_c = vgg19_random(content, ["relu3_1"])["relu3_1"]
        target_s = grams(style)
    x = content.clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=0.05)
    totals = []
    for _ in range(5):
        opt.zero_grad()
        c = ((vgg19_random(x, ["relu3_1"])["relu3_1"] - target_c) ** 2).sum() / (target_c**2).sum()
        g = grams(x)
        s = sum(0.5 * ((g[k] - target_s[k]) ** 2).sum() / (target_s[k] ** 2).sum() for k in g)
        loss = 2.0 * c + 7.0 * s
        loss.backward()
        totals.append(loss.item())
        opt.step()
        with torch.no_grad():
            x.clamp_(0, 1)
    assert result.history["total"] == pytest.approx(totals, rel=tolerance)
    assert torch.allclose(result.image, x.detach(), atol=tolerance / 10) or torch.allclose(
        result.image, result.best_image, atol=tolerance / 10
    )


def test_style_and_content_of_different_sizes_and_aspects(vgg19_random):
    result = stylize(smooth_image(40, 72), stripes_image(90, 33), model=vgg19_random, **SMALL)
    assert result.completed and result.image.shape == (1, 3, 40, 72)


def test_init_options_and_seed(vgg19_random):
    content, style = smooth_image(), stripes_image()
    a = stylize(content, style, model=vgg19_random, init="noise", seed=3, steps=2, device="cpu")
    b = stylize(content, style, model=vgg19_random, init="noise", seed=3, steps=2, device="cpu")
    c = stylize(content, style, model=vgg19_random, init="noise", seed=4, steps=2, device="cpu")
    assert torch.equal(a.image, b.image) and not torch.equal(a.image, c.image)
    s = stylize(content, style, model=vgg19_random, init="style", steps=2, device="cpu")
    assert s.history["content"][0] > 0  # starts from the (resized) style image, not the content


def test_interrupt_returns_partial_result(vgg19_random):
    pressed_at = []

    def stop_button(progress):
        if progress.step >= 4 and not progress.done:
            pressed_at.append(progress.step)  # 4, or 5 when a line search finished its chunk a step late
            raise KeyboardInterrupt

    with pytest.warns(RuntimeWarning, match="Interrupted"):
        result = stylize(smooth_image(), stripes_image(), model=vgg19_random, callback=stop_button, **SMALL)
    assert result.status == "interrupted" and result.steps == pressed_at[0] < SMALL["steps"]
    assert len(result.history["total"]) == result.steps and torch.isfinite(result.best_image).all()


def test_callback_can_stop(vgg19_random):
    stopped_at = []

    def enough(progress):
        if progress.step >= 4:
            stopped_at.append(progress.step)  # 4, or 5 when a line search finished its chunk a step late
            return True

    result = stylize(smooth_image(), stripes_image(), model=vgg19_random, callback=enough, **SMALL)
    assert result.status == "stopped" and result.steps == stopped_at[0] < SMALL["steps"]


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_non_finite_loss_stops_and_keeps_best(vgg19_random, optimizer):
    with pytest.warns(RuntimeWarning, match="NaN or infinite"):
        result = stylize(
            smooth_image(), stripes_image(), model=vgg19_random, optimizer=optimizer, style_weight=1e300, **SMALL
        )
    assert result.status == "non_finite"
    assert torch.isfinite(result.image).all() and torch.isfinite(result.best_image).all()


def test_unknown_layer_in_config(vgg19_random):
    with pytest.raises(SettingsError, match="Did you mean 'relu4_2'"):
        stylize(smooth_image(), stripes_image(), model=vgg19_random, content_layers=("relu4-2",), **SMALL)


def test_image_too_thin_for_the_deepest_layer(vgg19_random):
    with pytest.raises(SettingsError, match="at least 16 px"):
        stylize(torch.rand(1, 3, 6, 200), stripes_image(), model=vgg19_random, **SMALL)


def test_stylize_leaves_the_callers_model_where_and_as_it_was(vgg19_random):
    """The model (e.g. the one load_vgg caches) keeps its device, dtype and layout after any run."""
    from nst_helpers.transfer import _on_device

    before = [(p.device, p.dtype, p.is_contiguous()) for p in vgg19_random.parameters()]
    stylize(
        smooth_image(32, 32),
        stripes_image(32, 32),
        model=vgg19_random,
        precision="bf16",
        channels_last=True,
        steps=2,
        device="cpu",
    )
    assert [(p.device, p.dtype, p.is_contiguous()) for p in vgg19_random.parameters()] == before
    assert _on_device(vgg19_random, torch.device("cpu")) is vgg19_random
    elsewhere = _on_device(vgg19_random, torch.device("meta"))  # another device: a copy goes there
    assert elsewhere is not vgg19_random and next(elsewhere.parameters()).device.type == "meta"
    assert [(p.device, p.dtype, p.is_contiguous()) for p in vgg19_random.parameters()] == before


@pytest.mark.slow
def test_loss_scale_is_comparable_between_random_vgg19_and_caffe_vgg16(vgg19_random, vgg16_shared, shared_images):
    """The same settings must mean the same for both networks, at 128 and 512 px.

    The paper's raw content loss differs by ~10^6 between these two networks
    (activations ~100x larger with the Caffe convention); the relative terms
    must start within one order of magnitude of each other.
    """
    from nst_helpers import load_image

    for size in (128, 512):
        content = load_image(shared_images / "tubingen.jpg", max_size=size)
        style = load_image(shared_images / "starry_night.jpg", max_size=size)
        first = {}
        for name, model in (("vgg19", vgg19_random), ("vgg16", vgg16_shared)):
            from_noise = stylize(content, style, model=model, init="noise", steps=1, device="cpu")
            from_content = stylize(content, style, model=model, init="content", steps=1, device="cpu")
            first[name] = (
                from_noise.history["content"][0],
                from_noise.history["style"][0],
                from_content.history["style"][0],
            )
        for term in range(3):
            ratio = first["vgg19"][term] / first["vgg16"][term]
            assert 0.1 < ratio < 10, (size, term, first)


@pytest.mark.slow
def test_real_weights_stylise_towards_style(vgg16_shared, shared_images):
    result = stylize(
        str(shared_images / "tubingen.jpg"),
        str(shared_images / "starry_night.jpg"),
        model=vgg16_shared,
        size=64,
        steps=40,
        device="cpu",
        preview_every=10,
    )
    totals = result.history["total"]
    assert result.completed and totals[-1] < 0.5 * totals[0]
    # The style Gram at relu1_1 moved towards the painting's.
    feats = lambda img: gram_matrix(vgg16_shared(img, ["relu1_1"])["relu1_1"])  # noqa: E731
    from nst_helpers import load_image

    content = load_image(shared_images / "tubingen.jpg", max_size=64)
    style = load_image(shared_images / "starry_night.jpg", max_size=64)
    before = (feats(content) - feats(style)).norm()
    after = (feats(result.image) - feats(style)).norm()
    assert after < 0.7 * before


def test_zero_weight_terms_need_no_features(vgg19_random):
    """Reconstructions (paper Fig. 1): a term with weight 0 must not run VGG deeper than needed."""
    deepest = []
    hook = vgg19_random.layers[vgg19_random.index["relu4_2"]].register_forward_hook(
        lambda *args: deepest.append("relu4_2")
    )
    try:
        style_only = stylize(
            smooth_image(32, 32),
            stripes_image(32, 32),
            model=vgg19_random,
            content_weight=0,
            init="noise",
            style_layers={"relu1_1": 1.0},
            steps=5,
            device="cpu",
        )
    finally:
        hook.remove()
    assert not deepest and style_only.completed and max(style_only.history["content"]) == 0
    content_only = stylize(
        smooth_image(32, 32),
        stripes_image(32, 32),
        model=vgg19_random,
        style_weight=0,
        init="noise",
        content_layers=("relu1_2",),
        style_layers={},
        steps=5,
        device="cpu",
    )
    assert content_only.history["total"][-1] < content_only.history["total"][0]


# Shallow layers keep each run fast on two CPU cores; what is tested here does not depend on depth.
SHALLOW = dict(content_layers=("relu2_2",), style_layers={"relu1_1": 0.5, "relu2_1": 0.5})
SMALL_SHALLOW = dict(steps=6, preview_every=3, device="cpu", **SHALLOW)


def test_one_by_one_image_loads_and_stylises(tmp_path, vgg19_random):
    path = tmp_path / "dot.png"
    Image.new("RGB", (1, 1), (200, 100, 50)).save(path)
    tensor = load_image(path, max_size=32)  # scaled up like any other image: a flat colour
    check_image_tensor(tensor, 32, 32)
    assert torch.allclose(tensor, torch.tensor([200, 100, 50]).div(255).view(1, 3, 1, 1).expand_as(tensor), atol=1e-3)
    assert load_image(path, max_size=None).shape == (1, 3, 1, 1)
    result = stylize(path, stripes_image(), model=vgg19_random, size=32, **SMALL_SHALLOW)
    assert result.completed and result.image.shape == (1, 3, 32, 32)


def test_very_thin_image_loads_sensibly_and_stylize_explains_the_16_px_minimum(tmp_path, vgg19_random):
    path = tmp_path / "thin.png"
    Image.new("RGB", (4000, 3), (10, 20, 30)).save(path)
    assert load_image(path, max_size=None).shape == (1, 3, 3, 4000)
    assert load_image(path, max_size=512).shape == (1, 3, 1, 512)  # aspect ratio kept, at least 1 px
    with pytest.raises(SettingsError, match=r"content image is 1x512 px.*needs at least 16 px.*crop it"):
        stylize(path, stripes_image(), model=vgg19_random, size=512, steps=2, device="cpu")  # deepest: relu5_1
    strip = tmp_path / "strip.png"
    Image.new("RGB", (200, 10), (10, 20, 30)).save(strip)  # at size=64: 3x64 px; 16 px needs size >= 342
    with pytest.raises(SettingsError, match=r"content image is 3x64 px.*use size=342 or more"):
        stylize(strip, stripes_image(), model=vgg19_random, size=64, steps=2, device="cpu")
    assert stylize(strip, stripes_image(), model=vgg19_random, size=342, steps=1, device="cpu").completed


def test_unknown_style_layer_lists_valid_names_and_suggests_closest(vgg19_random):
    match = r"Unknown layer 'relu_5_1'.*Did you mean 'relu5_1'\?.*Valid names: conv1_1"
    with pytest.raises(SettingsError, match=match):
        stylize(
            smooth_image(), stripes_image(), model=vgg19_random, **{**SMALL_SHALLOW, "style_layers": {"relu_5_1": 1.0}}
        )


def test_cuda_requested_without_cuda_gives_guidance_before_loading_anything(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(transfer_module, "load_vgg", lambda **kwargs: pytest.fail("weights loaded"))
    with pytest.raises(SettingsError, match=r"no CUDA GPU is available.*Change runtime type.*device='cpu'"):
        stylize(smooth_image(), stripes_image(), device="cuda", steps=2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (mixes CUDA and CPU tensors and models)")
def test_mismatched_devices_are_reconciled():
    """Images and model on different devices: everything goes to config.device; the result is on the CPU."""
    model = load_vgg(arch="vgg19", weights="random", device="cuda", cache=False)
    content_gpu, style_cpu = smooth_image().cuda(), stripes_image()
    on_cpu = stylize(content_gpu, style_cpu, model=model, **SMALL_SHALLOW)  # model on CUDA, device="cpu"
    assert on_cpu.completed and on_cpu.device == "cpu" and on_cpu.image.device.type == "cpu"
    model = load_vgg(arch="vgg19", weights="random", device="cpu", cache=False)
    on_gpu = stylize(
        smooth_image(), stripes_image().cuda().requires_grad_(True), model=model, **{**SMALL_SHALLOW, "device": "cuda"}
    )  # model on the CPU, images mixed, device="cuda"
    assert on_gpu.completed and on_gpu.device.startswith("cuda") and on_gpu.image.device.type == "cpu"
    assert on_gpu.history["total"] == pytest.approx(on_cpu.history["total"], rel=1e-2)


_LAYOUTS = {
    "requires_grad": lambda image: image.clone().requires_grad_(True),
    "transposed_view": lambda image: image.transpose(2, 3).contiguous().transpose(2, 3),
    "channels_last": lambda image: image.contiguous(memory_format=torch.channels_last),
    "flipped_view": lambda image: image.flip(-1).flip(-1),
    "float64": lambda image: image.double(),
    "float16": lambda image: image.half(),
    "uint8_0_to_255": lambda image: image.mul(255).round().to(torch.uint8),
    "chw_without_batch": lambda image: image[0],
}


@pytest.mark.parametrize("layout", list(_LAYOUTS))
def test_cpu_tensors_with_grad_views_and_other_dtypes(vgg19_random, layout, optimizer="lbfgs"):
    content, style, fast = smooth_image(24, 32), stripes_image(24, 24), {**SMALL_SHALLOW, "steps": 3}
    given, given_style = _LAYOUTS[layout](content), _LAYOUTS[layout](style)
    # Reference: the same values as plain contiguous float32 (uint8 means 0..255, so divide by 255).
    as_float = (lambda t: t.float() / 255) if layout == "uint8_0_to_255" else (lambda t: t.detach().float())
    expected = stylize(
        as_float(given).contiguous(),
        as_float(given_style).contiguous(),
        model=vgg19_random,
        optimizer=optimizer,
        **fast,
    )
    result = stylize(given, given_style, model=vgg19_random, optimizer=optimizer, **fast)
    assert result.completed and result.image.shape == (1, 3, 24, 32) and result.image.dtype == torch.float32
    assert result.history["total"] == pytest.approx(expected.history["total"], rel=1e-3, abs=1e-6)
    if layout == "requires_grad":
        assert given.grad is None  # the caller's tensor is not touched


@pytest.mark.parametrize(
    "tensor, match",
    [
        (torch.randint(0, 255, (1, 3, 16, 16)), "dtype torch.int64 is ambiguous.*tensor.float\\(\\) / 255"),
        (torch.full((1, 3, 16, 16), float("nan")), "NaN or infinite"),
        (torch.rand(1, 4, 16, 16), r"must be \[3, H, W\] or \[1, 3, H, W\]"),
        (torch.rand(2, 3, 16, 16), r"got \[2, 3, 16, 16\]"),
        (torch.rand(1, 3, 0, 16), "H, W ≥ 1"),
    ],
)
def test_unusable_image_tensors_are_refused(vgg19_random, tensor, match):
    with pytest.raises(ImageLoadError, match=match):
        stylize(tensor, stripes_image(), model=vgg19_random, **SMALL_SHALLOW)


@pytest.mark.parametrize("init", ["content", "style", "noise"])
def test_style_and_content_files_of_different_sizes_and_aspect_ratios(tmp_path, vgg19_random, init):
    save_image(smooth_image(90, 30), tmp_path / "portrait.png")
    save_image(stripes_image(20, 120), tmp_path / "panorama.png")
    result = stylize(
        tmp_path / "portrait.png",
        tmp_path / "panorama.png",
        model=vgg19_random,
        size=64,
        style_size=96,
        init=init,
        **SMALL_SHALLOW,
    )
    assert result.completed and result.image.shape == (1, 3, 64, 21)


@contextlib.contextmanager
def on_forward_call(model, call: int, action):
    """Run ``action(output)`` on the ``call``-th forward of ``model`` (1 and 2 compute the targets, 3 is step 1)."""
    calls = {"n": 0}

    def hook(module, inputs, output):
        calls["n"] += 1
        if calls["n"] == call:
            return action(output)
        return None

    handle = model.register_forward_hook(hook)
    try:
        yield calls
    finally:
        handle.remove()


def _raise(error):
    def action(output):
        raise error() if isinstance(error, type) else error

    return action


def _allocate_too_much(output):
    return torch.empty(2**60, dtype=torch.uint8)  # a real CPU allocation failure (RuntimeError, not OOM type)


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_keyboard_interrupt_inside_the_vgg_forward_mid_run(vgg19_random, optimizer):
    with on_forward_call(vgg19_random, 6, _raise(KeyboardInterrupt)):
        with pytest.warns(RuntimeWarning, match="Interrupted after 3 of 6 steps; returning the best image"):
            result = stylize(smooth_image(), stripes_image(), model=vgg19_random, optimizer=optimizer, **SMALL_SHALLOW)
    assert result.status == "interrupted" and result.steps == 3 and len(result.history["total"]) == 3
    assert 1 <= result.best_step <= 3 and result.best_loss == pytest.approx(min(result.history["total"]))
    check_image_tensor(result.best_image, 48, 64)
    check_image_tensor(result.image, 48, 64)


def test_keyboard_interrupt_before_the_loop_propagates_with_nothing_to_lose(vgg19_random):
    with on_forward_call(vgg19_random, 1, _raise(KeyboardInterrupt)):
        with pytest.raises(KeyboardInterrupt):
            stylize(smooth_image(), stripes_image(), model=vgg19_random, **SMALL_SHALLOW)


def test_command_line_interrupted_mid_run_still_writes_the_image(tmp_path, vgg19_random, monkeypatch, capsys):
    monkeypatch.setattr(transfer_module, "load_vgg", lambda **kwargs: vgg19_random)
    save_image(smooth_image(), tmp_path / "c.png")
    save_image(stripes_image(), tmp_path / "s.png")
    with on_forward_call(vgg19_random, 5, _raise(KeyboardInterrupt)):
        code = main(
            [
                str(tmp_path / "c.png"),
                str(tmp_path / "s.png"),
                "-o",
                str(tmp_path / "out.png"),
                "--size",
                "48",
                "--steps",
                "6",
                "--quiet",
                "--device",
                "cpu",
            ]
        )
    captured = capsys.readouterr()
    assert code == 1 and "warning: Interrupted after 2 of 6 steps" in captured.err and "Traceback" not in captured.err
    assert (tmp_path / "out.png").is_file() and "interrupted: 2 steps" in captured.out


def _make_nan(output):
    return {name: value * float("nan") for name, value in output.items()}


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_nan_loss_mid_run_stops_with_the_best_image_before_it(vgg19_random, optimizer):
    with on_forward_call(vgg19_random, 5, _make_nan):  # call 5 = step 3
        with pytest.warns(RuntimeWarning, match=r"NaN or infinite at step 3; stopped and kept the best image"):
            result = stylize(
                smooth_image(),
                stripes_image(),
                model=vgg19_random,
                optimizer=optimizer,
                **{**SMALL_SHALLOW, "preview_every": 4},
            )
    totals = result.history["total"]
    assert result.status == "non_finite" and np.isnan(totals[2]) and np.isfinite(totals[:2]).all()
    assert result.best_step in (1, 2) and result.best_loss == pytest.approx(min(totals[:2]))
    assert torch.equal(result.image, result.best_image)
    check_image_tensor(result.image, 48, 64)


def _spy_on_release(monkeypatch) -> list:
    """Record the devices release_memory frees memory on (gc + torch.cuda.empty_cache): in the loop (transfer.py)
    or while a pyramid level is built (pyramid_run.py)."""
    released, release = [], transfer_module.release_memory
    for module in (transfer_module, pyramid_run):
        monkeypatch.setattr(module, "release_memory", lambda device: (released.append(device), release(device))[1])
    return released


@pytest.mark.parametrize("call", [1, 2], ids=["content_targets", "style_targets"])
def test_out_of_memory_before_the_loop_is_a_settings_error_suggesting_a_size(vgg19_random, call, monkeypatch):
    released = _spy_on_release(monkeypatch)
    oom = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    with on_forward_call(vgg19_random, call, _raise(oom)):
        with pytest.raises(SettingsError, match=r"Ran out of memory on cpu at 48x64 px\. Memory was released") as info:
            stylize(smooth_image(), stripes_image(), model=vgg19_random, **SMALL_SHALLOW)
    assert torch.cuda.OutOfMemoryError is torch.OutOfMemoryError
    assert int(re.search(r"try size=(\d+) or smaller", str(info.value)).group(1)) < 64
    assert released == [torch.device("cpu")]


@pytest.mark.parametrize(
    "action",
    [_raise(torch.OutOfMemoryError("CUDA out of memory.")), _allocate_too_much],
    ids=["cuda_oom_simulated", "real_cpu_allocation_failure"],
)
@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_out_of_memory_mid_run_keeps_the_best_image(vgg19_random, action, optimizer, monkeypatch):
    released = _spy_on_release(monkeypatch)
    with on_forward_call(vgg19_random, 5, action):
        with pytest.warns(RuntimeWarning, match=r"Ran out of memory on cpu at 48x64 px after 2 steps"):
            result = stylize(smooth_image(), stripes_image(), model=vgg19_random, optimizer=optimizer, **SMALL_SHALLOW)
    assert result.status == "out_of_memory" and result.steps == 2 and len(result.history["total"]) == 2
    assert int(re.search(r"try size=(\d+) or smaller", result.message).group(1)) < 64
    check_image_tensor(result.best_image, 48, 64)
    assert result.best_loss == pytest.approx(min(result.history["total"]))
    assert released == [torch.device("cpu")]


def test_absurd_adam_learning_rate_is_refused_or_stops_cleanly(vgg19_random):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            result = stylize(
                smooth_image(), stripes_image(), model=vgg19_random, optimizer="adam", lr=1e38, **SMALL_SHALLOW
            )
    except SettingsError as error:
        assert "lr" in str(error)
        return
    assert result.status == "non_finite" and "Lower the learning rate" in result.message
    assert bool(torch.isfinite(result.image).all())


def test_other_runtime_errors_are_not_mistaken_for_out_of_memory(vgg19_random):
    with on_forward_call(vgg19_random, 4, _raise(RuntimeError("some other bug"))):
        with pytest.raises(RuntimeError, match="some other bug"):
            stylize(smooth_image(), stripes_image(), model=vgg19_random, **SMALL_SHALLOW)


def test_result_saved_to_an_unwritable_path_stays_in_memory(tmp_path, vgg19_random):
    result = stylize(smooth_image(), stripes_image(), model=vgg19_random, **SMALL_SHALLOW)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    before = result.image.clone()
    with pytest.raises(ImageSaveError, match="a_file is a file, not a folder. The image is still in memory"):
        result.save(blocker / "out.png")
    assert torch.equal(result.image, before)
    assert result.save(tmp_path / "elsewhere.png").is_file()


def test_record_every_keeps_frames_with_their_step_and_loss_ending_with_the_result(vgg19_random):
    result = stylize(smooth_image(), stripes_image(), model=vgg19_random, record_every=4, **{**SMALL, "steps": 14})
    assert [frame.step for frame in result.frames] == [1, 4, 8, 12, 14]
    for frame in result.frames:
        assert frame.losses["total"] == pytest.approx(result.history["total"][frame.step - 1])
        assert frame.image.dtype == torch.uint8 and frame.image.shape == (3, 48, 64) and frame.scale == 0
    assert torch.equal(result.frames[-1].image, (result.image[0] * 255).round().to(torch.uint8))
    assert torch.equal(result.frames[0].image, (smooth_image()[0] * 255).round().to(torch.uint8))  # the start
    assert stylize(smooth_image(), stripes_image(), model=vgg19_random, **SMALL).frames == []  # off by default


def test_frames_stay_bounded_in_a_long_run(vgg19_random, monkeypatch):
    monkeypatch.setattr(transfer_module.FrameBuffer.__init__, "__defaults__", (6, 512))  # max_frames 6
    result = stylize(smooth_image(32, 32), stripes_image(32, 32), model=vgg19_random, optimizer="adam",
                     record_every=1, **{**SMALL, "steps": 40})  # fmt: skip
    steps = [frame.step for frame in result.frames]
    assert len(steps) <= 6 and steps[0] == 1 and steps[-1] == 40


def test_style_scale_is_the_style_size_relative_to_the_content(tmp_path, vgg19_random, monkeypatch):
    content, style = tmp_path / "content.png", tmp_path / "style.png"
    save_image(smooth_image(48, 64), content)
    save_image(stripes_image(90, 60), style)
    made = []

    class Recording(transfer_module.Objective):
        def __init__(self, model, content_image, style_image, **kwargs):
            super().__init__(model, content_image, style_image, **kwargs)
            made.append((tuple(style_image[0].shape[-2:]), self.style_grams))

    monkeypatch.setattr(transfer_module, "Objective", Recording)
    common = dict(model=vgg19_random, **{**SMALL_SHALLOW, "steps": 1, "precision": "fp32"})
    stylize(str(content), str(style), size=64, style_scale=0.5, **common)
    stylize(str(content), str(style), size=64, style_size=32, **common)  # the same, said in pixels
    stylize(str(content), str(style), size=64, style_scale=2.0, **common)
    stylize(str(content), stripes_image(90, 60), size=64, style_scale=2.0, **common)  # tensors are resized too
    assert [shape for shape, _grams in made] == [(32, 21), (32, 21), (128, 85), (128, 85)]
    for name, gram in made[0][1].items():
        torch.testing.assert_close(gram, made[1][1][name])
    # larger strokes: the stripes' period grows with the style image, so the Grams differ
    assert not torch.allclose(made[0][1]["relu1_1"], made[2][1]["relu1_1"], rtol=0.05)
