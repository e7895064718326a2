"""Tests for nst_helpers.speed: what the speed settings resolve to on each kind of device."""

import pytest
import torch

from nst_helpers import SpeedOptions, resolve_speed


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
    assert resolve_speed(cpu, "fp16").dtype == torch.float16 and not resolve_speed(cpu, "fp16").winograd


def test_cuda_gets_channels_last_and_bf16_from_compute_capability_8(monkeypatch):
    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0))
    assert resolve_speed(cuda) == SpeedOptions(channels_last=True, precision="bf16")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))  # a T4
    assert resolve_speed(cuda) == SpeedOptions(channels_last=True, precision="fp32")
