"""Tests for nst_helpers.devices: device choice, native bf16, memory queries, out-of-memory detection."""

import pytest
import torch

from nst_helpers import SettingsError, native_bf16, pick_device
from nst_helpers.devices import format_bytes, free_memory, is_out_of_memory


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
