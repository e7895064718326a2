"""Tests for nst_helpers.memory: the estimate, the size that fits, the check and the out-of-memory advice."""

import re
import warnings
import weakref

import pytest
import torch

from helpers import smooth_image, stripes_image
from nst_helpers import MemoryModel, SettingsError, estimate_memory, save_image, stylize

SMALL = dict(steps=12, preview_every=4, device="cpu")


def test_memory_estimate_grows_with_pixels_and_refuses_huge(vgg19_random, monkeypatch):
    layers = ["relu1_1", "relu5_1"]
    small, big = estimate_memory(vgg19_random, 256, 256, layers), estimate_memory(vgg19_random, 512, 512, layers)
    assert 3.5 < (big - 80e6) / (small - 80e6) < 4.5
    monkeypatch.setattr("nst_helpers.memory.free_memory", lambda device: 200 * 2**20)
    with pytest.raises(SettingsError, match=r"Use size=\d+"):
        stylize(torch.rand(1, 3, 1024, 1024), stripes_image(), model=vgg19_random, **SMALL)


def test_estimate_counts_every_activation_up_to_the_deepest_layer(vgg19_random):
    """Against a direct count: run VGG with hooks and add up the elements of every module output."""
    counted = []
    last = vgg19_random.index["relu3_1"]
    hooks = [
        module.register_forward_hook(lambda _m, _i, out: counted.append(out.numel()))
        for module in list(vgg19_random.layers)[: last + 1]
    ]
    try:
        with torch.no_grad():
            vgg19_random(torch.rand(1, 3, 48, 64), ["relu3_1"])
    finally:
        for hook in hooks:
            hook.remove()
    assert MemoryModel(vgg19_random, ["relu1_1", "relu3_1"]).activation_elements(48, 64) == sum(counted)


def test_half_precision_counts_three_bytes_per_element_and_the_weight_copy(vgg19_random):
    fp32, bf16 = MemoryModel(vgg19_random, ["relu5_1"], "fp32"), MemoryModel(vgg19_random, ["relu5_1"], "bf16")
    weights = sum(p.numel() for p in vgg19_random.parameters())
    assert bf16.fixed_bytes(64, 64) - fp32.fixed_bytes(64, 64) == 2 * weights
    activations = fp32.activation_elements(256, 256) * MemoryModel.FACTOR
    gap = (fp32.estimate(256, 256) - fp32.fixed_bytes(256, 256)) - (
        bf16.estimate(256, 256) - bf16.fixed_bytes(256, 256)
    )
    assert gap == pytest.approx(activations, rel=1e-6)


def test_largest_size_fits_and_one_step_more_does_not(vgg19_random):
    model = MemoryModel(vgg19_random, ["relu1_1", "relu5_1"])
    budget = model.estimate(300, 400)
    size = model.largest_size(300, 400, budget)
    assert size is not None and size % 16 == 0
    assert model.estimate(round(300 * size / 400), size) <= budget
    bigger = size + 16
    assert model.estimate(round(300 * bigger / 400), bigger) > budget
    assert model.largest_size(300, 400, 10 * 2**20) is None  # less than the weights


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_check_suggests_a_size_that_is_then_accepted(vgg19_random, monkeypatch, precision):
    model = MemoryModel(vgg19_random, ["relu4_2", "relu5_1"], precision)
    free = model.estimate(512, 512) // 2
    monkeypatch.setattr("nst_helpers.memory.free_memory", lambda device: free)
    with pytest.raises(SettingsError, match=r"Use size=(\d+) or smaller") as raised:
        model.check(512, 512, torch.device("cpu"))
    suggested = int(raised.value.args[0].split("Use size=")[1].split()[0])
    assert 16 <= suggested < 512
    model.check(suggested, suggested, torch.device("cpu"))  # accepted


@pytest.mark.parametrize(
    "device, capability, native_cpu_bf16, precision, advice",
    [
        ("cuda", (7, 5), False, "fp32", "fp16"),  # T4: fp16 tensor cores, bf16 emulated
        ("cuda", (7, 0), False, "fp32", "fp16"),  # V100
        ("cuda", (8, 0), False, "fp32", "bf16"),  # A100
        ("cuda", (6, 1), False, "fp32", None),  # no tensor cores: no half precision to suggest
        ("cuda", (8, 0), False, "bf16", None),  # already in half precision
        ("cuda", (7, 5), False, "fp16", None),  # T4 in fp16 already
        ("cpu", None, False, "fp32", None),  # this CPU: bf16 and fp16 emulated, never suggested
        ("cpu", None, True, "fp32", "bf16"),  # AMX / AVX-512 BF16
        ("mps", None, False, "fp32", "fp16"),  # Apple GPUs compute fp16 natively
    ],
)
def test_out_of_memory_advice_fits_the_device(
    vgg19_random, monkeypatch, device, capability, native_cpu_bf16, precision, advice
):
    model = MemoryModel(vgg19_random, ["relu5_1"], precision)
    monkeypatch.setattr("nst_helpers.memory.free_memory", lambda device: 0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        monkeypatch.setattr(torch.cpu, name, lambda: native_cpu_bf16, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_fp16_supported", lambda: False, raising=False)
    message = model.out_of_memory_message(512, 512, torch.device(device), 7)
    assert (
        f"Ran out of memory on {device} at 512x512 px after 7 steps" in message and "try size=384 or smaller" in message
    )
    if advice is None:
        assert "precision=" not in message
    else:
        assert f"or precision='{advice}'" in message and message.count("precision=") == 1
    assert "scales='auto'" in message  # the coarse-to-fine pyramid, and that it does not lower the peak


@pytest.mark.parametrize("call", [2, 5], ids=["style_targets", "step_3"])
def test_the_failed_steps_tensors_are_freed_before_free_memory_is_measured(vgg19_random, monkeypatch, call):
    """The exception's traceback holds the failed step's tensors; measuring before dropping it under-counts."""
    failed: dict = {}
    alive_when_measured: list = []

    def free(device):
        if "features" in failed:
            alive_when_measured.append(failed["features"]() is not None)
        return 2**30

    def hook(module, inputs, output):
        failed["calls"] = failed.get("calls", 0) + 1
        if failed["calls"] == call:
            failed["features"] = weakref.ref(next(iter(output.values())))
            raise torch.OutOfMemoryError("CUDA out of memory.")

    monkeypatch.setattr("nst_helpers.memory.free_memory", free)
    handle = vgg19_random.register_forward_hook(hook)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the mid-run case warns (tested in test_transfer)
            try:
                stylize(smooth_image(), stripes_image(), model=vgg19_random, **SMALL)
            except SettingsError as error:
                assert "Ran out of memory" in str(error)
    finally:
        handle.remove()
    assert alive_when_measured and not any(alive_when_measured), alive_when_measured


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_size_too_large_for_free_memory_suggests_a_size_that_fits(tmp_path, vgg19_random, monkeypatch, precision):
    free = 300 * 2**20
    monkeypatch.setattr("nst_helpers.memory.free_memory", lambda device: free)
    path = tmp_path / "big.png"
    save_image(smooth_image(768, 1024), path)
    with pytest.raises(SettingsError, match=r"A 768x1024 image needs about .* GiB on cpu, but only 300.0 MiB") as info:
        stylize(
            path, stripes_image(), model=vgg19_random, size=1024, steps=2, device="cpu", precision=precision
        )  # default layers
    suggested = int(re.search(r"Use size=(\d+) or smaller", str(info.value)).group(1))
    assert 16 <= suggested < 1024 and suggested % 16 == 0
    layers = ["relu4_2", "relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    height = round(768 * suggested / 1024)
    assert estimate_memory(vgg19_random, height, suggested, layers, precision) <= 0.9 * free  # the advice fits
    assert estimate_memory(vgg19_random, height + 12, suggested + 16, layers, precision) > 0.9 * free  # the largest
    MemoryModel(vgg19_random, layers, precision).check(height, suggested, torch.device("cpu"))  # accepted


def test_memory_too_small_for_any_size_says_so(vgg19_random, monkeypatch):
    monkeypatch.setattr("nst_helpers.memory.free_memory", lambda device: 40 * 2**20)  # less than the weights
    with pytest.raises(SettingsError, match="Not even a small image fits .* check_memory=False"):
        stylize(smooth_image(64, 64), stripes_image(), model=vgg19_random, steps=2, device="cpu")
