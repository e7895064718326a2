"""Memory, measured: the tensors a step creates, what autograd saves, the process's peak, and the memory
model of :mod:`nst_helpers.memory` checked against them (``python benchmarks/bench.py --memory-model``)."""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence

import torch
from torch.utils._python_dispatch import TorchDispatchMode  # private, but torch has no public dispatch mode

from nst_helpers import MemoryModel, SpeedOptions, VGGFeatures, native_bf16, stylize
from nst_helpers.devices import format_bytes
from ours import OursStep, default_speed
from workload import LAYERS, random_vgg19, smooth_noise


def _tensors(value) -> Iterator[torch.Tensor]:
    """The tensors in an operator's arguments or results (nested tuples, lists and dicts)."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _tensors(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)


class TensorMemory(TorchDispatchMode):
    """Bytes of the tensors created inside the ``with`` block: live now and at the peak.

    Device-independent (it counts tensor storages as operators return them,
    CPU or GPU alike), so a memory model checked against it on a CPU holds on
    a GPU. Views and in-place results share their input's storage and are not
    counted again; tensors that existed before the block (weights, targets)
    are not counted at all. Library workspaces (cuDNN, oneDNN scratch) are
    invisible to it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, int] = {}  # storage address → bytes
        self.current = 0
        self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {t.untyped_storage().data_ptr() for t in _tensors((args, kwargs))}
        for tensor in _tensors(out):
            storage = tensor.untyped_storage()
            key = storage.data_ptr()
            if key not in inputs and key not in self.live:
                self.live[key] = storage.nbytes()
                self.current += storage.nbytes()
                self.peak = max(self.peak, self.current)
                weakref.finalize(storage, self._free, key)
        return out

    def _free(self, key: int) -> None:
        self.current -= self.live.pop(key, 0)


@contextlib.contextmanager
def saved_for_backward(exclude: Iterable[torch.Tensor] = ()):
    """Count the distinct bytes autograd saves for backward inside the block (excluding ``exclude``).

    Yields a dict whose ``"bytes"`` entry is filled in as tensors are saved.
    """
    skip = {t.untyped_storage().data_ptr() for t in exclude}
    seen: set[int] = set()
    record = {"bytes": 0}

    def pack(tensor):
        key = tensor.untyped_storage().data_ptr()
        if key not in skip and key not in seen:
            seen.add(key)
            record["bytes"] += tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        yield record


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak: CUDA's ``max_memory_allocated``, or the process's peak RSS (Linux)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    elif device.type == "cpu":
        with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # resets VmHWM, the peak resident set size


def peak_memory(device: torch.device) -> tuple[int | None, str]:
    """Peak bytes since :func:`reset_peak_memory`, and what kind of peak that is."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device), "cuda_max_allocated"
    if device.type == "cpu":
        with contextlib.suppress(OSError), open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024, "cpu_peak_rss"
    return None, "unavailable"


def memory_model(
    sizes: Sequence[int] = (64, 128, 256),
    precisions: Sequence[str] = ("fp32", "bf16"),
    *,
    run_sizes: Sequence[int] = (64, 128),
    run_steps: int = 70,
    device: str = "cpu",
    log: Callable[[str], object] = lambda message: None,
) -> dict:
    """Measure memory device-independently and check :class:`~nst_helpers.MemoryModel` against it.

    ``steps``: for each size and precision, one step of our loop: the bytes
    autograd saves for backward and the peak bytes of the tensors the step
    creates (:class:`TensorMemory`), against the activation bytes the model
    counts (``peak_ratio`` is the factor a step needs per activation byte).
    ``runs``: whole ``stylize()`` runs (L-BFGS, ``run_steps`` evaluations,
    so its history fills up) at ``run_sizes``: their peak tensor bytes plus
    the weights, against the estimate (``estimate_over_measured`` must stay
    above 1). Then the largest square image that fits a 16 GB T4 by the
    estimate: 16 GB nominal, and what ``stylize`` accepts on a Colab T4
    (~14.6 GiB free after the CUDA context, of which it uses at most 90%).
    bf16 on a CPU without native bf16 is ~10x slower and measured at ≤ 256 px.
    """
    device = torch.device(device)
    model = random_vgg19(device)
    steps = [
        _measure_step(model, size, precision, device, log)
        for precision in precisions
        for size in sizes
        # bf16 on a CPU without native bf16 is emulated and slow: small sizes only
        if precision == "fp32" or device.type != "cpu" or native_bf16(device) or size <= 256
    ]
    runs = [_measure_run(model, size, run_steps, device, log) for size in run_sizes]
    fits = {}
    for label, budget in (("16GB", 16e9), ("colab_T4_accepted", 0.9 * 14.6 * 2**30)):
        for precision in ("fp32", "fp16"):
            fits[f"{label}_{precision}"] = MemoryModel(model, LAYERS, precision).largest_size(2**15, 2**15, budget)
    return {
        "steps": steps,
        "runs": runs,
        "factor_in_use": MemoryModel.FACTOR,
        "image_copies_in_use": MemoryModel.IMAGE_COPIES,
        "weights_bytes": sum(p.numel() * p.element_size() for p in model.parameters()),
        "largest_square_px": fits,
    }


def _measure_step(model: VGGFeatures, size: int, precision: str, device: torch.device, log: Callable) -> dict:
    """One step of our loop: bytes saved for backward and peak tensor bytes, against the activations counted."""
    content, style = smooth_noise(size, 1).to(device), smooth_noise(size, 2).to(device)
    step = OursStep(model, content, style, SpeedOptions(precision=precision))
    step()  # warm-up: lazy initialisation
    frozen = list(model.parameters()) + list(model.buffers())
    with TensorMemory() as tracker, saved_for_backward(exclude=frozen) as saved:
        step()
    elements = MemoryModel(model, LAYERS, precision).activation_elements(size, size)
    act = elements * (2 if precision in ("bf16", "fp16") else 4)  # in the VGG pass's dtype
    log(
        f"  memory step {precision} {size}px: saved {format_bytes(saved['bytes'])}, "
        f"peak {format_bytes(tracker.peak)} = {tracker.peak / act:.2f} x activations"
    )
    return {
        "size": size,
        "precision": precision,
        "activation_bytes": act,
        "saved_bytes": saved["bytes"],
        "peak_tensor_bytes": tracker.peak,
        "saved_ratio": saved["bytes"] / act,
        "peak_ratio": tracker.peak / act,
    }


def _measure_run(model: VGGFeatures, size: int, run_steps: int, device: torch.device, log: Callable) -> dict:
    """A whole ``stylize()`` run: its peak tensor bytes plus the weights, against the estimate."""
    content, style = smooth_noise(size, 1), smooth_noise(size, 2)
    with TensorMemory() as tracker:
        stylize(content, style, model=model, steps=run_steps, device=str(device), check_memory=False)
    measured = tracker.peak + sum(p.numel() * p.element_size() for p in model.parameters())
    estimate = MemoryModel(model, LAYERS, default_speed(device).precision).estimate(size, size)
    log(f"  memory run {size}px: measured {format_bytes(measured)}, estimate {format_bytes(estimate)}")
    return {
        "size": size,
        "optimizer": "lbfgs",
        "steps": run_steps,
        "peak_tensor_bytes": tracker.peak,
        "measured_with_weights_bytes": measured,
        "estimate_bytes": estimate,
        "estimate_over_measured": estimate / measured,
    }


def format_memory(model: dict) -> str:
    """Markdown tables of :func:`memory_model`'s measurements."""
    lines = [
        "| step | size | saved for backward | peak step tensors | activations counted | peak / activations "
        "| marginal (vs previous size) |",
        "|---|---|---|---|---|---|---|",
    ]
    previous: dict = {}
    for r in model["steps"]:
        last, marginal = previous.get(r["precision"]), "-"
        if last is not None:
            grown = r["peak_tensor_bytes"] - last["peak_tensor_bytes"]
            marginal = f"{grown / (r['activation_bytes'] - last['activation_bytes']):.2f}"
        previous[r["precision"]] = r
        lines.append(
            f"| {r['precision']} | {r['size']} | {format_bytes(r['saved_bytes'])} "
            f"| {format_bytes(r['peak_tensor_bytes'])} | {format_bytes(r['activation_bytes'])} "
            f"| {r['peak_ratio']:.2f} | {marginal} |"
        )
    lines += [
        "",
        "| stylize() run | size | measured (tensors + weights) | estimate | estimate / measured |",
        "|---|---|---|---|---|",
    ]
    for r in model["runs"]:
        lines.append(
            f"| {r['optimizer']}, {r['steps']} steps | {r['size']} "
            f"| {format_bytes(r['measured_with_weights_bytes'])} | {format_bytes(r['estimate_bytes'])} "
            f"| {r['estimate_over_measured']:.2f} |"
        )
    fits = ", ".join(f"{k}: {v} px" for k, v in model["largest_square_px"].items())
    lines += [
        "",
        f"MemoryModel.FACTOR = {model['factor_in_use']}, MemoryModel.IMAGE_COPIES = "
        f"{model['image_copies_in_use']}; largest square image by the estimate: {fits}",
    ]
    return "\n".join(lines)
