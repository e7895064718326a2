"""Tests for nst_helpers.devices: device choice, native bf16/fp16, memory queries, out-of-memory detection."""

import os
import subprocess
import sys

import pytest
import torch

from nst_helpers import SettingsError, devices, native_bf16, pick_device
from nst_helpers.devices import format_bytes, free_memory, is_out_of_memory, native_fp16, release_memory


def test_missing_cuda_is_explained(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SettingsError, match="Change runtime type"):
        pick_device("cuda")
    assert pick_device(None).type in ("cpu", "mps")


@pytest.mark.parametrize(
    "amx, avx512_bf16, expected", [(False, False, False), (True, False, True), (False, True, True)]
)
def test_native_bf16_on_cpus_follows_amx_and_avx512_bf16(monkeypatch, amx, avx512_bf16, expected):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    assert native_bf16(torch.device("cpu")) is expected
    assert native_bf16(torch.device("mps")) is False  # MPS: fp32 unless asked (bf16 support varies by macOS)


def test_native_bf16_needs_onednn_to_be_allowed_bf16(monkeypatch):
    """A CPU with AVX-512 BF16 but oneDNN capped to AVX2 (ONEDNN_MAX_CPU_ISA) emulates bf16: not native."""
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    monkeypatch.setattr(devices, "_onednn_bf16", lambda: False)
    assert native_bf16(torch.device("cpu")) is False
    monkeypatch.setattr(devices, "_onednn_bf16", lambda: True)
    assert native_bf16(torch.device("cpu")) is True


def test_onednn_isa_cap_turns_native_bf16_off_in_a_fresh_process():
    code = "import torch; from nst_helpers import native_bf16; print(native_bf16(torch.device('cpu')))"
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize(
    "capability, bf16, fp16",
    [((9, 0), True, True), ((8, 6), True, True), ((7, 5), False, True), ((6, 1), False, False)],
)
def test_native_half_precision_on_cuda_follows_the_compute_capability(monkeypatch, capability, bf16, fp16):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert native_bf16(torch.device("cuda")) is bf16 and native_fp16(torch.device("cuda")) is fp16


@pytest.mark.parametrize("amx_fp16", [False, True])
def test_native_fp16_on_cpus_follows_amx_fp16_and_is_native_on_apple_gpus(monkeypatch, amx_fp16):
    monkeypatch.setattr(torch.cpu, "_is_amx_fp16_supported", lambda: amx_fp16, raising=False)
    assert native_fp16(torch.device("cpu")) is amx_fp16
    assert native_fp16(torch.device("mps")) is True and native_fp16(torch.device("meta")) is False


def _fake_mps(monkeypatch, recommended: int, allocated: int, driver: int) -> list:
    """torch.mps's memory queries answering as a Mac with these numbers would; returns the empty_cache calls."""
    emptied: list = []
    monkeypatch.setattr(torch.mps, "recommended_max_memory", lambda: recommended, raising=False)
    monkeypatch.setattr(torch.mps, "current_allocated_memory", lambda: allocated, raising=False)
    monkeypatch.setattr(torch.mps, "driver_allocated_memory", lambda: driver, raising=False)
    monkeypatch.setattr(torch.mps, "empty_cache", lambda: emptied.append(True), raising=False)
    return emptied


def test_mps_free_memory_is_the_recommended_working_set_minus_live_tensors(monkeypatch):
    gib = 2**30
    _fake_mps(monkeypatch, recommended=12 * gib, allocated=3 * gib, driver=5 * gib)  # 2 GiB cached: reusable
    monkeypatch.setattr(devices, "available_memory", lambda: None)  # macOS: no /proc/meminfo
    assert free_memory(torch.device("mps")) == 9 * gib
    monkeypatch.setattr(devices, "available_memory", lambda: 4 * gib)  # the rest of the Mac uses the same RAM
    assert free_memory(torch.device("mps")) == 4 * gib
    monkeypatch.delattr(torch.mps, "recommended_max_memory")  # an older torch: unknown, no check
    assert free_memory(torch.device("mps")) is None


def test_release_memory_empties_the_mps_cache_and_not_on_the_cpu(monkeypatch):
    emptied = _fake_mps(monkeypatch, recommended=0, allocated=0, driver=0)
    release_memory(torch.device("cpu"))
    assert emptied == []
    release_memory(torch.device("mps"))
    assert emptied == [True]


def test_unknown_device_names_the_valid_ones():
    with pytest.raises(SettingsError, match="use 'cpu', 'cuda'"):
        pick_device("gpu0")


def test_free_memory_on_the_cpu_is_the_available_ram():
    free = free_memory(torch.device("cpu"))
    assert free is None or 0 < free < 2**50
    assert free_memory(torch.device("meta")) is None


@pytest.mark.parametrize(
    "error, expected",
    [
        (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
        (RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1234 bytes"), True),
        (RuntimeError("MPS backend out of memory"), True),
        (RuntimeError("mat1 and mat2 shapes cannot be multiplied"), False),
        (ValueError("out of memory"), False),
    ],
)
def test_out_of_memory_is_recognised_on_every_backend(error, expected):
    assert is_out_of_memory(error) is expected


@pytest.mark.parametrize(
    "count, text",
    [
        (None, "-"),
        (0, "0 bytes"),
        (1023, "1023 bytes"),
        (1536, "1.5 KiB"),
        (5 * 2**20, "5.0 MiB"),
        (3 * 2**30 // 2, "1.50 GiB"),
    ],
)
def test_format_bytes_uses_binary_units(count, text):
    assert format_bytes(count) == text
