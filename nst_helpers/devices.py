"""Devices: which one to run on, what it computes natively, and how much memory it has free.

Everything here asks the machine a question (is there a GPU, does it have
native bf16, how many bytes are free, was that error an out-of-memory); the
decisions built on the answers live in :mod:`nst_helpers.speed` (precision
and layout) and :mod:`nst_helpers.memory` (will a size fit).
"""

from __future__ import annotations

import gc

import torch

from .errors import SettingsError

__all__ = [
    "pick_device",
    "native_bf16",
    "native_fp16",
    "available_memory",
    "free_memory",
    "release_memory",
    "is_out_of_memory",
    "format_bytes",
]


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The requested device, or CUDA → MPS → CPU, whichever is available first."""
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError):
        raise SettingsError(f"Unknown device {device!r}; use 'cpu', 'cuda', 'cuda:0' or 'mps'.") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise SettingsError(
            "CUDA was requested but no CUDA GPU is available. In Colab: Runtime → Change runtime type → "
            "GPU. Otherwise use the CPU: device='cpu' (--device cpu on the command line), and a smaller size."
        )
    if chosen.type == "cuda" and chosen.index is not None and chosen.index >= torch.cuda.device_count():
        raise SettingsError(f"{chosen} does not exist; this machine has {torch.cuda.device_count()} GPU(s).")
    if chosen.type == "mps" and not _mps_available():
        raise SettingsError("MPS (Apple GPU) was requested but is not available; use device='cpu' (--device cpu).")
    return chosen


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 natively: CUDA compute capability 8.0+ (Ampere and newer), or a
    CPU with AMX or AVX-512 BF16 (Intel Sapphire Rapids and newer, AMD Zen 4 and newer) whose bf16
    instructions oneDNN, which runs the convolutions, may use. ``ONEDNN_MAX_CPU_ISA=AVX2`` (set to
    mimic an older CPU, or by a cluster's defaults) forbids them: bf16 would then be emulated, ~35x
    slower than fp32 on a Zen 4 (23.8 vs 0.69 s per 256 px step)."""
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device) >= (8, 0)
    if device.type == "cpu":
        checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
        has = any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)
        return has and _onednn_bf16()
    return False


def _onednn_bf16() -> bool:
    """Whether oneDNN may run bf16 kernels here (False under ``ONEDNN_MAX_CPU_ISA=AVX2``)."""
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return True if check is None else bool(check())


def native_fp16(device: torch.device) -> bool:
    """Whether ``device`` computes fp16 fast: CUDA compute capability 7.0+ (tensor cores: V100, T4 and
    newer), Apple GPUs (MPS), or a CPU with AMX-FP16 (Intel Granite Rapids). Elsewhere fp16 runs, but
    emulated and far slower than fp32 (on 2 Zen 3 cores one 3x3 convolution takes 15-40x longer)."""
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device) >= (7, 0)
    if device.type == "mps":
        return True
    if device.type == "cpu":
        return bool(getattr(torch.cpu, "_is_amx_fp16_supported", lambda: False)())
    return False


def available_memory() -> int | None:
    """Bytes of RAM available now (Linux's MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def free_memory(device: torch.device) -> int | None:
    """Bytes a new allocation can still get on ``device`` (CUDA: free plus cached by PyTorch; MPS: Metal's
    recommended working set minus the tensors allocated, at most the RAM available where known; CPU: RAM
    available), or None where the device does not say."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    if device.type == "mps":
        return _mps_free_memory()
    if device.type == "cpu":
        return available_memory()
    return None


def _mps_free_memory() -> int | None:
    """Apple GPUs share the RAM: Metal recommends a working set (``recommended_max_memory``, ~2/3-3/4 of
    the RAM); what PyTorch's MPS allocator holds beyond its live tensors (``driver_allocated_memory`` -
    ``current_allocated_memory``) is a cache it reuses, so it counts as free, like CUDA's reserved bytes."""
    mps = getattr(torch, "mps", None)
    recommended = getattr(mps, "recommended_max_memory", None)
    allocated = getattr(mps, "current_allocated_memory", None)
    if recommended is None or allocated is None:
        return None  # torch older than 2.5 does not say
    free = max(0, int(recommended()) - int(allocated()))
    ram = available_memory()  # the rest of the machine uses the same RAM
    return free if ram is None else min(free, ram)


def release_memory(device: torch.device) -> None:
    """Collect unreachable tensors and hand cached GPU memory (CUDA or MPS) back to the driver."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        mps = getattr(torch, "mps", None)
        if mps is not None and hasattr(mps, "empty_cache"):
            mps.empty_cache()


def _out_of_memory_types() -> tuple[type, ...]:
    types = [getattr(torch, "OutOfMemoryError", None), getattr(torch.cuda, "OutOfMemoryError", None)]
    return tuple(t for t in types if t is not None)


def is_out_of_memory(error: BaseException) -> bool:
    """CUDA raises OutOfMemoryError; the CPU and MPS allocators raise a plain RuntimeError."""
    if isinstance(error, _out_of_memory_types()):
        return True
    text = str(error)
    markers = ("out of memory", "can't allocate memory", "not enough memory")
    return isinstance(error, RuntimeError) and any(marker in text for marker in markers)


def format_bytes(count: int | float | None) -> str:
    """``count`` bytes in binary units, for messages and tables: ``"512 bytes"``, ``"3.4 MiB"``, ``"1.50 GiB"``."""
    if count is None:
        return "-"
    if count < 1024:
        return f"{int(count)} bytes"
    if count < 2**20:
        return f"{count / 2**10:.1f} KiB"
    if count < 2**30:
        return f"{count / 2**20:.1f} MiB"
    return f"{count / 2**30:.2f} GiB"
