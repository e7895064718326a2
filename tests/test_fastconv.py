"""Winograd (NNPACK) CPU convolutions: same values and input gradients as F.conv2d, and safe fallbacks."""

import pytest
import torch
import torch.nn.functional as F

from helpers import smooth_image, stripes_image
from nst_helpers import fastconv, stylize

needs_nnpack = pytest.mark.skipif(not fastconv.available(), reason="NNPACK is not available in this PyTorch")


def _conv_and_grad(x, weight, bias, grad_out, winograd, rule=None):
    x = x.clone().requires_grad_(True)
    with fastconv.winograd_convolutions(winograd, rule=rule):
        out = F.conv2d(x, weight, bias, padding=1)
    out.backward(grad_out)
    return out.detach(), x.grad


ALL = fastconv.Thresholds(1, 1, 1)  # every convolution to NNPACK, both directions
FORWARD_ONLY = fastconv.Thresholds(1, 10**9, 1)
BACKWARD_ONLY = fastconv.Thresholds(10**9, 1, 1)


@needs_nnpack
@pytest.mark.parametrize("rule", [ALL, FORWARD_ONLY, BACKWARD_ONLY], ids=["both", "forward", "backward"])
@pytest.mark.parametrize("c_in, c_out, size", [(3, 64, 64), (64, 3, 32), (64, 32, 64), (16, 16, 72), (16, 16, 8)])
def test_values_and_input_gradient_match_conv2d(c_in, c_out, size, rule):
    generator = torch.Generator().manual_seed(c_in + c_out)
    x = torch.randn(1, c_in, size, size + 8, generator=generator)
    weight = torch.randn(c_out, c_in, 3, 3, generator=generator) / (3 * c_in**0.5)
    bias = torch.randn(c_out, generator=generator)
    grad_out = torch.randn(1, c_out, size, size + 8, generator=generator)
    out_ref, grad_ref = _conv_and_grad(x, weight, bias, grad_out, winograd=False)
    out, grad = _conv_and_grad(x, weight, bias, grad_out, winograd=True, rule=rule)
    assert (out - out_ref).abs().max() <= 1e-4 * out_ref.abs().max()
    assert (grad - grad_ref).abs().max() <= 1e-4 * grad_ref.abs().max()


def _nnpack_calls(monkeypatch) -> list:
    calls: list = []
    original = torch._nnpack_spatial_convolution
    monkeypatch.setattr(
        torch, "_nnpack_spatial_convolution", lambda *a: calls.append(tuple(a[0].shape)) or original(*a)
    )
    return calls


@needs_nnpack
def test_big_maps_use_nnpack_and_small_ones_do_not(monkeypatch):
    calls = _nnpack_calls(monkeypatch)
    weight = torch.randn(32, 16, 3, 3)
    rule = fastconv.Thresholds(64 * 64, 64 * 64)
    for size in (64, 40):  # 64x64: NNPACK; 40x40: oneDNN
        x = torch.randn(1, 16, size, size, requires_grad=True)
        with fastconv.winograd_convolutions(rule=rule):
            F.conv2d(x, weight, None, padding=1).sum().backward()
    assert calls == [(1, 16, 64, 64), (1, 32, 64, 64)]  # forward, then the input gradient


@needs_nnpack
@pytest.mark.parametrize("rule, expected", [(FORWARD_ONLY, [(1, 16, 24, 24)]), (BACKWARD_ONLY, [(1, 32, 24, 24)])])
def test_each_direction_follows_its_own_threshold(monkeypatch, rule, expected):
    calls = _nnpack_calls(monkeypatch)
    x = torch.randn(1, 16, 24, 24, requires_grad=True)
    with fastconv.winograd_convolutions(rule=rule):
        out = F.conv2d(x, torch.randn(32, 16, 3, 3), None, padding=1)
    out.sum().backward()
    assert calls == expected and out.grad_fn.name().startswith("WinogradConv2d")


def test_rules_per_instruction_set_and_thread_count(monkeypatch):
    """AVX2 CPUs running one thread send the 32x32 maps of the conv4 block at 256 px to NNPACK; with more
    threads, and on AVX-512 CPUs, they stay with oneDNN. The input gradient of conv1_1 (64 → 3 channels)
    stays with oneDNN everywhere."""
    assert fastconv.thresholds("AVX2", threads=1) == fastconv.THRESHOLDS["AVX2-1THREAD"] == (1024, 1024, 16)
    assert fastconv.thresholds("avx2", threads=2) == fastconv.THRESHOLDS["AVX2"] == (4096, 4096, 16)
    assert fastconv.thresholds("avx512", threads=1) == fastconv.THRESHOLDS["AVX512"]
    assert fastconv.thresholds("SOMETHING ELSE") == fastconv.DEFAULT_THRESHOLDS
    for capability, threads, nnpack in (("AVX2", 1, True), ("AVX2", 2, False), ("AVX512", 1, False)):
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda c=capability: c)
        monkeypatch.setattr(torch, "get_num_threads", lambda t=threads: t)
        assert fastconv.uses_nnpack(512, 512, 32, 32) is nnpack
        assert fastconv.uses_nnpack(512, 512, 32, 32, backward=True) is nnpack
        assert fastconv.uses_nnpack(64, 64, 128, 128) and not fastconv.uses_nnpack(512, 512, 8, 8)
        assert not fastconv.uses_nnpack(64, 3, 256, 256, backward=True)


@needs_nnpack
def test_vgg_features_and_pixel_gradient_match_plain_fp32(vgg19_random):
    """The whole network, every convolution through NNPACK: relu5_1 and the gradient to the pixels agree
    with oneDNN's to round-off (Winograd's transforms: ~1e-5 relative per layer)."""
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    results = []
    for winograd in (False, True):
        x = image.clone().requires_grad_(True)
        with fastconv.winograd_convolutions(winograd, rule=ALL):
            features = vgg19_random(x, ["relu3_1", "relu5_1"])
        (features["relu3_1"].square().mean() + features["relu5_1"].square().mean()).backward()
        results.append((features["relu5_1"].detach(), x.grad))
    (ref, ref_grad), (out, grad) = results
    assert (out - ref).abs().max() <= 1e-4 * ref.abs().max()  # measured: 3e-6
    assert (grad - ref_grad).abs().max() <= 1e-4 * ref_grad.abs().max()  # measured: 9e-6


def test_anything_else_runs_the_ordinary_convolution():
    x = torch.randn(1, 8, 40, 40, requires_grad=True)
    trainable = torch.randn(16, 8, 3, 3, requires_grad=True)
    frozen = torch.randn(16, 8, 3, 3)
    with fastconv.winograd_convolutions():
        strided = F.conv2d(x, frozen, None, stride=2, padding=1)
        five = F.conv2d(x, torch.randn(16, 8, 5, 5), None, padding=2)
        learnt = F.conv2d(x, trainable, None, padding=1)
    assert strided.grad_fn.name() == five.grad_fn.name() == "ConvolutionBackward0"
    learnt.sum().backward()  # weight gradients still work: the ordinary path was used
    assert trainable.grad is not None and learnt.grad_fn.name() == "ConvolutionBackward0"


def test_disabled_or_unavailable_changes_nothing(monkeypatch):
    x = torch.randn(1, 8, 40, 40, requires_grad=True)
    weight = torch.randn(16, 8, 3, 3)
    with fastconv.winograd_convolutions(enabled=False):
        assert F.conv2d(x, weight, None, padding=1).grad_fn.name() == "ConvolutionBackward0"
    monkeypatch.setitem(fastconv._state, "ok", False)
    with fastconv.winograd_convolutions():
        assert F.conv2d(x, weight, None, padding=1).grad_fn.name() == "ConvolutionBackward0"


@needs_nnpack
def test_an_nnpack_failure_falls_back_for_good(monkeypatch):
    def broken(*args):
        raise RuntimeError("NNPACK SpatialConvolution_updateOutput failed")

    monkeypatch.setattr(torch, "_nnpack_spatial_convolution", broken)
    monkeypatch.setitem(fastconv._state, "ok", True)
    x, weight = torch.randn(1, 16, 64, 64), torch.randn(32, 16, 3, 3)
    with fastconv.winograd_convolutions():
        out = F.conv2d(x, weight, None, padding=1)
    assert torch.allclose(out, F.conv2d(x, weight, None, padding=1))
    assert fastconv._state["ok"] is False


@needs_nnpack
def test_stylize_with_and_without_winograd_agree(vgg19_random):
    content, style = smooth_image(96, 96), stripes_image(96, 96)
    common = dict(model=vgg19_random, steps=4, optimizer="adam", device="cpu")
    fast = stylize(content, style, winograd=True, **common)
    plain = stylize(content, style, winograd=False, **common)
    assert fast.history["total"] == pytest.approx(plain.history["total"], rel=1e-4)
    # Adam moves every pixel by ~lr whatever its gradient's size, so a near-zero gradient component can
    # flip sign between the two; compare the average instead of the largest pixel difference.
    assert (fast.image - plain.image).abs().mean() < 1e-3
