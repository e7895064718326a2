import math

import pytest
import torch

from conftest import smooth_image, stripes_image
from nst_helpers import SettingsError, TransferConfig, gram_matrix, stylize
from nst_helpers.transfer import estimate_memory, pick_device

SMALL = dict(steps=12, preview_every=4, device="cpu")


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_loop_lowers_total_loss_random_vgg19(vgg19_random, optimizer):
    content, style = smooth_image(48, 64), stripes_image(40, 40)
    result = stylize(content, style, model=vgg19_random, optimizer=optimizer, init="noise",
                     **{**SMALL, "steps": 30})
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
    result = stylize(smooth_image(), stripes_image(), model=vgg19_random, steps=7, preview_every=3,
                     callback=calls.append, device="cpu")
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
    config = dict(steps=5, optimizer="adam", lr=0.05, style_weight=7.0, content_weight=2.0, init="content",
                  preview_every=5, device="cpu", content_layers=("relu3_1",),
                  style_layers={"relu1_1": 0.5, "relu2_1": 0.5}, precision=precision, winograd=False)
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
        result.image, result.best_image, atol=tolerance / 10)


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
        result = stylize(smooth_image(), stripes_image(), model=vgg19_random, optimizer=optimizer,
                         style_weight=1e300, **SMALL)
    assert result.status == "non_finite"
    assert torch.isfinite(result.image).all() and torch.isfinite(result.best_image).all()


@pytest.mark.parametrize("field, value, match", [
    ("steps", 0, "steps"), ("steps", -5, "steps"), ("size", 0, "size"), ("style_weight", -1.0, "style_weight"),
    ("content_weight", float("nan"), "content_weight"), ("lr", 0.0, "lr"), ("optimizer", "sgd", "optimizer"),
    ("init", "zeros", "init"), ("precision", "fp8", "precision"), ("preview_every", 0, "preview_every"),
])
def test_invalid_settings_are_refused(field, value, match):
    with pytest.raises(SettingsError, match=match):
        TransferConfig(**{field: value}).validate()


def test_unknown_layer_in_config(vgg19_random):
    with pytest.raises(SettingsError, match="Did you mean 'relu4_2'"):
        stylize(smooth_image(), stripes_image(), model=vgg19_random, content_layers=("relu4-2",), **SMALL)


def test_image_too_thin_for_the_deepest_layer(vgg19_random):
    with pytest.raises(SettingsError, match="at least 16 px"):
        stylize(torch.rand(1, 3, 6, 200), stripes_image(), model=vgg19_random, **SMALL)


def test_missing_cuda_is_explained(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SettingsError, match="Change runtime type"):
        pick_device("cuda")
    assert pick_device(None).type in ("cpu", "mps")


def test_memory_estimate_grows_with_pixels_and_refuses_huge(vgg19_random, monkeypatch):
    layers = ["relu1_1", "relu5_1"]
    small, big = estimate_memory(vgg19_random, 256, 256, layers), estimate_memory(vgg19_random, 512, 512, layers)
    assert 3.5 < (big - 80e6) / (small - 80e6) < 4.5
    monkeypatch.setattr("nst_helpers.transfer._free_memory", lambda device: 200 * 2**20)
    with pytest.raises(SettingsError, match=r"Use size=\d+"):
        stylize(torch.rand(1, 3, 1024, 1024), stripes_image(), model=vgg19_random, **SMALL)


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
            first[name] = (from_noise.history["content"][0], from_noise.history["style"][0],
                           from_content.history["style"][0])
        for term in range(3):
            ratio = first["vgg19"][term] / first["vgg16"][term]
            assert 0.1 < ratio < 10, (size, term, first)


@pytest.mark.slow
def test_real_weights_stylise_towards_style(vgg16_shared, shared_images):
    result = stylize(str(shared_images / "tubingen.jpg"), str(shared_images / "starry_night.jpg"),
                     model=vgg16_shared, size=64, steps=40, device="cpu", preview_every=10)
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
        lambda *args: deepest.append("relu4_2"))
    try:
        style_only = stylize(smooth_image(32, 32), stripes_image(32, 32), model=vgg19_random, content_weight=0,
                             init="noise", style_layers={"relu1_1": 1.0}, steps=5, device="cpu")
    finally:
        hook.remove()
    assert not deepest and style_only.completed and max(style_only.history["content"]) == 0
    content_only = stylize(smooth_image(32, 32), stripes_image(32, 32), model=vgg19_random, style_weight=0,
                           init="noise", content_layers=("relu1_2",), style_layers={}, steps=5, device="cpu")
    assert content_only.history["total"][-1] < content_only.history["total"][0]


def test_objective_is_the_weighted_sum_of_the_package_losses(vgg19_random):
    """Objective (what stylize and the benchmark evaluate each step) against the losses module, by hand."""
    from nst_helpers import Objective, content_loss, gram_matrix, layer_style_loss, tv_loss

    content, style, image = smooth_image(32, 48), stripes_image(32, 48), smooth_image(32, 48, seed=7)
    layers = {"relu1_1": 0.5, "relu3_1": 0.25}
    objective = Objective(vgg19_random, content, style, content_layers=["relu3_2"], style_layers=layers,
                          content_weight=2.0, style_weight=30.0, tv_weight=5.0)
    terms = objective(image)
    with torch.no_grad():
        mine = vgg19_random(image, ["relu3_2", *layers])
        target = vgg19_random(content, ["relu3_2"])["relu3_2"]
        grams = {k: gram_matrix(v) for k, v in vgg19_random(style, list(layers)).items()}
    expected = [2.0 * content_loss(mine["relu3_2"], target),
                30.0 * sum(w * layer_style_loss(gram_matrix(mine[k]), grams[k]) for k, w in layers.items()),
                5.0 * tv_loss(image)]
    assert torch.allclose(terms, torch.stack(expected), rtol=1e-5)


@pytest.mark.parametrize("amx, avx512_bf16, expected", [(False, False, False), (True, False, True), (False, True, True)])
def test_native_bf16_on_cpus_follows_amx_and_avx512_bf16(monkeypatch, amx, avx512_bf16, expected):
    from nst_helpers import native_bf16

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    assert native_bf16(torch.device("cpu")) is expected
    assert native_bf16(torch.device("mps")) is False  # MPS: fp32 unless asked (bf16 support varies by macOS)


def test_clamp_between_lbfgs_calls_corrects_the_stored_step():
    """After a clamp, L-BFGS's stored last step t·d must end where the point now is (else: a wrong curvature pair)."""
    from nst_helpers.transfer import _clamp_keeping_lbfgs_consistent

    target = torch.tensor([1.5, -0.5, 0.3, 0.7])  # half of the optimum lies outside [0, 1]
    x = torch.full((4,), 0.5, requires_grad=True)
    optimizer = torch.optim.LBFGS([x], lr=1.0, max_iter=3, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = (x - target).square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    state = optimizer.state[x]
    step_end = x.detach().clone()
    start = step_end - state["t"] * state["d"]  # where the last step began
    _clamp_keeping_lbfgs_consistent(optimizer, x)
    assert x.min() >= 0 and x.max() <= 1 and not torch.equal(x.detach(), step_end)  # the clamp did move it
    assert torch.allclose(start + state["t"] * state["d"], x.detach(), atol=1e-6)
    optimizer.step(closure)  # and L-BFGS carries on from there
    assert torch.isfinite(x).all()
