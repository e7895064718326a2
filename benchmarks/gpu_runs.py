"""The GPU check's measurements of whole runs: weights, step and loop timings, host syncs, final losses.

Each function records what it could not do in a ``status`` (``"skipped: time ..."`` when the
:class:`Deadline` says it would not fit, ``"failed: ..."`` when it raised) instead of stopping the
check; an out-of-memory error is handled outside the ``except`` block, so that the failed step's
tensors (kept alive by the traceback) are gone before the cache is emptied.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
import warnings
from collections.abc import Callable

import torch
from torch.profiler import ProfilerActivity, profile

from flops import gpu_peak_tflops, step_flops
from memory_check import peak_memory, reset_peak_memory
from nst_helpers import estimate_memory, load_image, load_vgg, native_bf16, resolve_speed, sample_image, stylize
from nst_helpers.devices import format_bytes, free_memory, is_out_of_memory, native_fp16, release_memory
from ours import PLAIN, OursStep, default_speed
from workload import LAYERS, smooth_noise

#: The variants timed: TransferConfig overrides ("defaults": none, i.e. precision="auto" and the rest).
VARIANTS = {
    "fp32-nchw": {"precision": "fp32", "channels_last": False, "winograd": False},
    "fp32-nhwc": {"precision": "fp32", "channels_last": True, "winograd": False},
    "fp16-nhwc": {"precision": "fp16", "channels_last": True, "winograd": False},
    "bf16-nhwc": {"precision": "bf16", "channels_last": True, "winograd": False},
    "defaults": {},
}


class Deadline:
    """The global time budget: ``fits(seconds)`` says whether an item predicted to take that long fits."""

    def __init__(self, budget_s: float) -> None:
        self.start = time.monotonic()
        self.end = self.start + budget_s

    def left(self) -> float:
        return self.end - time.monotonic()

    def fits(self, predicted_s: float) -> bool:
        return predicted_s < self.left()

    def skip(self, predicted_s: float) -> str:
        return f"skipped: time (predicted {predicted_s:.0f} s, {max(self.left(), 0):.0f} s left)"


def failure(error: BaseException) -> str:
    """A one-line status for an item that raised."""
    if is_out_of_memory(error):
        return "failed: out of memory"
    first = str(error).splitlines()[0][:200] if str(error) else ""
    return f"failed: {type(error).__name__}: {first}"


def within(seconds: float, work: Callable):
    """``work()`` in a daemon thread, given up after ``seconds`` (a download that hangs)."""
    box: dict = {}

    def run() -> None:
        try:
            box["value"] = work()
        except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise TimeoutError(f"gave up after {seconds:.0f} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def load_weights(choice: str, device: torch.device, timeout: float, log: Callable) -> tuple:
    """VGG weights and where they came from: torchvision's VGG19 (downloaded within ``timeout`` s),
    else ``NST_WEIGHTS``, else seeded random VGG19 weights (fine for timings and memory)."""
    tried = []
    if choice in ("auto", "imagenet"):
        try:
            model = within(timeout, lambda: load_vgg("vgg19", "imagenet", "torchvision", device="cpu", cache=False))
            return model.to(device), {"source": "imagenet", "note": "torchvision's ImageNet VGG19"}
        except Exception as error:  # no internet and no cached copy
            if choice == "imagenet":
                raise
            tried.append(f"imagenet: {failure(error)}")
            log(f"VGG19 ImageNet weights unavailable ({tried[-1]})")
    env = os.environ.get("NST_WEIGHTS", "")
    if choice in ("auto", "env") and env not in ("", "imagenet", "random"):
        return load_vgg(device="cpu", cache=False).to(device), {"source": f"NST_WEIGHTS={env}", "tried": tried}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "randomly initialised": the JSON says so
        model = load_vgg("vgg19", "random", "torchvision", device=device)  # = workload.random_vgg19, cached
    note = "random weights: timings and memory are valid, the losses are not those of a real run"
    return model, {"source": "random", "note": note, "tried": tried}


def pictures(size: int, real: bool) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Tübingen x The Starry Night at ``size`` (``NST_DATA_DIR`` or a download), else two smooth noises."""
    if real:
        try:
            content = within(60, lambda: load_image(sample_image("tubingen"), max_size=size))
            style = within(60, lambda: load_image(sample_image("starry_night"), max_size=size))
            return content, style, "samples tubingen x starry_night"
        except Exception:  # offline: smooth noise instead
            pass
    return smooth_noise(size, 1), smooth_noise(size, 2), "smooth noise (workload.smooth_noise, seeds 1 and 2)"


def emulated(device: torch.device, precision: str, size: int) -> str | None:
    """Why not to run ``precision`` on ``device`` at ``size`` px: bf16 only where native; fp16 where
    emulated only at <= 64 px (the CPU smoke test: 10-100x slower than fp32)."""
    if precision == "bf16" and not native_bf16(device):
        return "skipped: bf16 is not native on this device (emulated, slow)"
    if precision == "fp16" and not native_fp16(device) and size > 64:
        return "skipped: fp16 is not native on this device (emulated, slow; run only at <= 64 px)"
    return None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _per_px(rates: dict[str, float], name: str) -> float:
    """Seconds per step and pixel measured so far for ``name`` (else the slowest variant; 0 before any)."""
    return rates.get(name) or max(rates.values(), default=0.0)


def time_variant(model, device: torch.device, size: int, name: str, cfg: dict, deadline: Deadline, rates) -> dict:
    """One row of the table at ``size`` px: ``step_s`` (median of ``OursStep`` calls after warm-up) and
    its TFLOP/s, ``loop_s`` (seconds per step of ``stylize()`` itself) and that run's peak memory
    against ``estimate_memory``."""
    overrides = VARIANTS[name]
    if overrides:
        speed = resolve_speed(device, overrides["precision"], overrides["channels_last"], False)
    else:
        speed = default_speed(device)
    row: dict = {"size": size, "variant": name, "precision": speed.precision, "channels_last": speed.channels_last}
    if emulated(device, speed.precision, size):
        return {**row, "status": emulated(device, speed.precision, size)}
    calls = cfg["warmup"] + cfg["repeats"] + cfg["loop_warmup"] + cfg["loop_steps"]
    predicted = 1.5 * _per_px(rates, name) * size * size * calls + 2.0
    if not deadline.fits(predicted):
        return {**row, "status": deadline.skip(predicted)}
    row["estimate_bytes"] = estimate = estimate_memory(model, size, size, LAYERS, speed.precision)
    free = free_memory(device) if device.type == "cuda" else None
    if free is not None and estimate > 0.9 * free:
        return {**row, "status": f"skipped: memory (estimate {format_bytes(estimate)}, {format_bytes(free)} free)"}
    content, style = smooth_noise(size, 1), smooth_noise(size, 2)
    step, times, status = None, [], "ok"
    try:
        step = OursStep(model, content.to(device), style.to(device), speed)
        for i in range(cfg["warmup"] + cfg["repeats"]):
            _sync(device)
            start = time.perf_counter()
            step()
            _sync(device)
            if i >= cfg["warmup"]:
                times.append(time.perf_counter() - start)
        step = None
        release_memory(device)
        run = {**overrides, "model": model, "device": str(device), "check_memory": False}
        predicted = 1.5 * statistics.median(times) * (cfg["loop_warmup"] + cfg["loop_steps"]) + 1.0
        if not deadline.fits(predicted):  # now that this variant's step is timed: does its loop fit?
            status = "ok, loop " + deadline.skip(predicted)
        else:
            if cfg["loop_warmup"]:  # cuDNN autotuning of this layout and dtype, outside the timed run
                stylize(content, style, steps=cfg["loop_warmup"], **run)
            reset_peak_memory(device)
            result = stylize(content, style, steps=cfg["loop_steps"], **run)
            peak, kind = peak_memory(device)
            if not result.completed:  # stylize keeps out-of-memory and non-finite losses in its result
                status = f"failed: stylize() ended {result.status}: {result.message}"
    except Exception as error:
        status = failure(error)
    step = None
    release_memory(device)  # after the except block: the traceback's tensors are gone
    if not status.startswith("ok"):
        return {**row, "status": status}
    median = statistics.median(times)
    rates[name] = median / (size * size)
    flops = step_flops(model, size, size, LAYERS)
    peak_tflops = gpu_peak_tflops(device, speed.precision)
    tflops = flops / median / 1e12
    row.update(status=status, step_s=median, step_min_s=min(times), steps_per_s=1.0 / median, gflop=flops / 1e9)
    row["tflops"] = tflops
    row["peak_tflops"] = peak_tflops if peak_tflops is not None else "unknown"
    row["peak_fraction"] = tflops / peak_tflops if peak_tflops else None
    if status == "ok":  # the stylize() run too
        row.update(loop_s=result.seconds / max(result.steps, 1), loop_steps=result.steps)
        row.update(peak_memory_bytes=peak, memory_kind=kind)
        row["estimate_over_peak"] = estimate / peak if peak and kind == "cuda_max_allocated" else None
    return row


def count_syncs(model, device: torch.device, cfg: dict, deadline: Deadline, rates) -> list[dict]:
    """Host syncs (``aten::_local_scalar_dense``: ``.item()``, ``float(t)``, ``if t``) per evaluation of
    whole ``stylize`` runs, profiled after a warm-up run, one row per (optimizer, precision)."""
    size, steps = cfg["sync_size"], cfg["sync_steps"]
    content, style = smooth_noise(size, 1), smooth_noise(size, 2)
    rows = []
    for optimizer, precision in cfg["sync_runs"]:
        row: dict = {"optimizer": optimizer, "precision": precision, "size": size, "steps": steps}
        row["resolved"] = resolved = resolve_speed(device, precision).precision
        if emulated(device, resolved, size):
            rows.append({**row, "status": emulated(device, resolved, size)})
            continue
        predicted = 3.0 * _per_px(rates, "fp32-nchw") * size * size * (steps + cfg["sync_warmup"]) + 2.0
        if not deadline.fits(predicted):
            rows.append({**row, "status": deadline.skip(predicted)})
            continue
        run = {"model": model, "device": str(device), "optimizer": optimizer, "precision": precision}
        try:
            stylize(content, style, steps=cfg["sync_warmup"], **run)
            with profile(activities=[ProfilerActivity.CPU]) as trace:
                result = stylize(content, style, steps=steps, **run)
        except Exception as error:
            rows.append({**row, "status": failure(error)})
            continue
        if not result.completed:
            rows.append({**row, "status": f"failed: stylize() ended {result.status}: {result.message}"})
            continue
        syncs = sum(event.count for event in trace.key_averages() if event.key == "aten::_local_scalar_dense")
        per = syncs / max(result.steps, 1)
        rows.append({**row, "status": "ok", "syncs": syncs, "evaluations": result.steps, "per_evaluation": per})
    release_memory(device)
    return rows


def final_losses(model, device: torch.device, cfg: dict, deadline: Deadline, rates, real: bool) -> dict:
    """Final loss of a ``steps``-step run at ``final_size`` px in plain fp32 (NCHW, eager) and with the
    defaults, from the same start (the content image)."""
    size, steps = cfg["final_size"], cfg["steps"]
    if not deadline.fits(5.0):
        skipped = {"status": deadline.skip(5.0)}
        return {"size": size, "steps": steps, "fp32": skipped, "defaults": dict(skipped)}
    content, style, images = pictures(size, real)
    runs: dict = {"size": size, "steps": steps, "images": images, "content_shape": list(content.shape)}
    for name, overrides in (("fp32", PLAIN), ("defaults", {})):
        pixels = content.shape[-2] * content.shape[-1]
        predicted = 2.0 * _per_px(rates, "fp32-nchw" if name == "fp32" else "defaults") * pixels * steps + 3.0
        if not deadline.fits(predicted):
            runs[name] = {"status": deadline.skip(predicted)}
            continue
        try:
            result = stylize(content, style, model=model, device=str(device), steps=steps, **overrides)
        except Exception as error:
            runs[name] = {"status": failure(error)}
            continue
        finally:
            release_memory(device)
        if not result.completed:
            runs[name] = {"status": f"failed: stylize() ended {result.status}: {result.message}"}
            continue
        runs[name] = {
            "status": "ok",
            "final_loss": result.history["total"][-1],
            "best_loss": result.best_loss,
            "seconds": result.seconds,
            "steps_done": result.steps,
            "precision": resolve_speed(device, overrides.get("precision", "auto")).precision,
        }
    if "final_loss" in runs["fp32"] and "final_loss" in runs["defaults"]:
        runs["defaults_over_fp32"] = runs["defaults"]["final_loss"] / runs["fp32"]["final_loss"]
    return runs
