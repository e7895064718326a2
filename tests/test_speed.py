"""Tests for nst_helpers.speed: what the speed settings resolve to on each kind of device."""

import warnings

import pytest
import torch

from nst_helpers import SpeedOptions, resolve_speed
from nst_helpers.speed import auto_precision, fast_half


@pytest.mark.parametrize(
    "native, nnpack, expected",
    [
        (True, True, SpeedOptions(channels_last=True, precision="bf16", winograd=False)),
        (False, True, SpeedOptions(channels_last=False, precision="fp32", winograd=True)),
        (False, False, SpeedOptions(channels_last=False, precision="fp32", winograd=False)),
    ],
)
def test_auto_on_cpus_follows_native_bf16_and_nnpack(monkeypatch, native, nnpack, expected):
    monkeypatch.setattr("nst_helpers.speed.native_bf16", lambda device: native)
    monkeypatch.setattr("nst_helpers.fastconv.available", lambda: nnpack)
    assert resolve_speed(torch.device("cpu")) == expected


def test_explicit_settings_win_and_compile_excludes_winograd(monkeypatch):
    monkeypatch.setattr("nst_helpers.fastconv.available", lambda: True)
    cpu = torch.device("cpu")
    assert resolve_speed(cpu, "fp32", channels_last=True, winograd=False) == SpeedOptions(True, "fp32", False)
    assert resolve_speed(cpu, "fp32", winograd=True, compile=True) == SpeedOptions(False, "fp32", False, True)
    with pytest.warns(UserWarning, match="emulated"):  # no native fp16 on this CPU (monkeypatched where it has)
        monkeypatch.setattr("nst_helpers.speed.native_fp16", lambda device: False)
        assert resolve_speed(cpu, "fp16").dtype == torch.float16 and not resolve_speed(cpu, "fp16").winograd


@pytest.mark.parametrize(
    "capability, expected",
    [
        ((9, 0), SpeedOptions(channels_last=True, precision="bf16")),  # H100
        ((8, 0), SpeedOptions(channels_last=True, precision="bf16")),  # A100
        ((7, 5), SpeedOptions(channels_last=True, precision="fp16", loss_scaling=True)),  # T4
        ((7, 0), SpeedOptions(channels_last=True, precision="fp16", loss_scaling=True)),  # V100
        ((6, 1), SpeedOptions(channels_last=True, precision="fp32")),  # P4, GTX 10xx: no tensor cores
    ],
)
def test_auto_on_cuda_follows_the_compute_capability(monkeypatch, capability, expected):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "auto" never warns
        assert resolve_speed(torch.device("cuda")) == expected
    assert auto_precision(torch.device("cuda")) == expected.precision


def test_auto_on_mps_is_fp32_and_fp16_is_offered_with_loss_scaling(monkeypatch):
    mps = torch.device("mps")
    assert resolve_speed(mps) == SpeedOptions(channels_last=False, precision="fp32")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # fp16 is native on Apple GPUs: no warning
        assert resolve_speed(mps, "fp16") == SpeedOptions(precision="fp16", loss_scaling=True)
    assert fast_half(mps) == "fp16"


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_half_precision_where_it_is_emulated_runs_with_a_warning(monkeypatch, precision):
    monkeypatch.setattr("nst_helpers.speed.native_bf16", lambda device: False)
    monkeypatch.setattr("nst_helpers.speed.native_fp16", lambda device: False)
    with pytest.warns(UserWarning, match=rf"precision='{precision}' is emulated on cpu here: it runs, but much slower"):
        speed = resolve_speed(torch.device("cpu"), precision)
    assert speed.precision == precision and speed.loss_scaling == (precision == "fp16")
    assert fast_half(torch.device("cpu")) is None


def test_native_half_precision_runs_without_a_warning(monkeypatch):
    monkeypatch.setattr("nst_helpers.speed.native_bf16", lambda device: True)
    monkeypatch.setattr("nst_helpers.speed.native_fp16", lambda device: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_speed(torch.device("cpu"), "bf16").precision == "bf16"
        assert resolve_speed(torch.device("cpu"), "fp16").loss_scaling
    assert fast_half(torch.device("cpu")) == "bf16"  # bf16 first: no loss scaling needed
