r"""The GPU check: one command that measures what matters on a CUDA machine, in under 5 minutes.

``make gpu-check`` or ``bash benchmarks/gpu_check.sh`` (= ``python benchmarks/gpu_check.py``) prints
a table and writes JSON (``--out``, default ``outputs/gpu_check.json``) with:

* the device: name, compute capability, torch / CUDA / cuDNN versions, and which VGG weights were used
  (torchvision's VGG19 if it loads within ``--download-timeout``, else ``NST_WEIGHTS``, else random);
* per size (512 and 1024 px) and variant (fp32 NCHW, fp32 NHWC, fp16 NHWC, bf16 NHWC where the GPU
  computes it natively, and the defaults ``precision="auto"``): ``step_s``, the median of a few steps of
  ``ours.OursStep`` (VGG forward + losses + backward + Recorder, after warm-up), the TFLOP/s it implies
  against the GPU's dense datasheet peak (``flops.py``), and ``loop_s``, seconds per step of
  ``stylize()`` itself (L-BFGS update, fp16 loss scaling and all), with that run's peak memory
  (``max_memory_allocated``) against ``estimate_memory``;
* host syncs per evaluation (``aten::_local_scalar_dense`` under ``torch.profiler``) of whole runs;
* the cost of one preview frame (``LivePreview``, ``WidgetPreview``) of a 384 x 512 picture;
* the final loss of a 200-step 512 px run in plain fp32 and with the defaults.

A global deadline (``--budget``) skips what would not fit with ``"skipped: time"``; an item that fails
(out of memory, a missing library) is recorded as ``"failed: ..."`` and the rest still runs.
``--quick`` uses tiny sizes and few steps (the CPU smoke test in ``tests/test_gpu_check.py``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
import time
from collections.abc import Callable

import torch

from bench import machine_info, write_json
from flops import gpu_peak_tflops
from gpu_preview import preview_cost
from gpu_runs import VARIANTS, Deadline, count_syncs, final_losses, load_weights, time_variant
from nst_helpers import native_bf16, pick_device
from nst_helpers.devices import format_bytes

#: What is measured, in full (on a GPU) and in quick mode (tiny sizes, few steps: the CPU smoke test).
FULL = {
    "sizes": [512, 1024],  # timings: image sizes (px)
    "warmup": 2,  # untimed OursStep calls, then
    "repeats": 5,  # timed ones (their median is step_s)
    "loop_warmup": 2,  # a short stylize() run first (cuDNN autotuning), then
    "loop_steps": 20,  # the stylize() run timed for loop_s and its peak memory
    "sync_size": 256,
    "sync_warmup": 3,
    "sync_steps": 60,  # whole runs profiled for host syncs, one per (optimizer, precision):
    "sync_runs": [["lbfgs", "auto"], ["adam", "auto"], ["lbfgs", "fp16"], ["lbfgs", "fp32"]],
    "preview_size": 512,  # a 384 x 512 picture
    "preview_calls": 6,
    "final_size": 512,
    "steps": 200,  # the final-loss runs
}
QUICK = {
    **FULL,
    "sizes": [16],
    "warmup": 0,
    "repeats": 1,
    "loop_warmup": 0,
    "loop_steps": 2,
    "sync_size": 16,
    "sync_warmup": 1,
    "sync_steps": 6,
    "sync_runs": [["lbfgs", "auto"], ["adam", "auto"]],
    "preview_size": 64,
    "preview_calls": 2,
    "final_size": 16,
    "steps": 4,
}


def _device_info(device: torch.device) -> dict:
    info = {
        "type": device.type,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
    }
    if device.type == "cuda":
        info["name"] = torch.cuda.get_device_name(device)
        info["capability"] = list(torch.cuda.get_device_capability(device))
        info["memory_bytes"] = torch.cuda.get_device_properties(device).total_memory
        tf32 = torch.backends.cudnn.allow_tf32 and info["capability"] >= [8, 0]
        info["fp32_convolutions"] = "tf32 (cudnn.allow_tf32; the fp32 peak is TF32's)" if tf32 else "fp32"
    info["native_bf16"] = native_bf16(device)
    peaks = {p: gpu_peak_tflops(device, p) for p in ("fp32", "fp16", "bf16")}
    info["peak_tflops"] = {p: v if v is not None else "unknown" for p, v in peaks.items()}
    return info


def finite(value):
    """``value`` with every non-finite float replaced by its name ("nan", "inf"): JSON has no NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value


def _num(value, digits: str = ".4f") -> str:
    return "-" if not isinstance(value, (int, float)) or isinstance(value, bool) else format(value, digits)


def format_report(report: dict) -> str:
    """The printed summary: the timing table, then syncs, previews and the final losses."""
    d = report["device"]
    lines = [
        f"{d.get('name', d['type'])} (capability {d.get('capability', '-')}), torch {d['torch']}, "
        f"CUDA {d['cuda']}, cuDNN {d['cudnn']}; weights: {report['weights']['source']}",
        "dense datasheet peaks (TFLOP/s): " + ", ".join(f"{k} {v}" for k, v in d["peak_tflops"].items()),
        "",
        "| size | variant | precision | NHWC | step s | loop s/step | TFLOP/s | % peak | peak memory "
        "| estimate | status |",
        "|" + "---|" * 11,
    ]
    for r in report["timings"]:
        share = r.get("peak_fraction")
        lines.append(
            f"| {r['size']} | {r['variant']} | {r['precision']} | {r['channels_last']} | {_num(r.get('step_s'))} "
            f"| {_num(r.get('loop_s'))} | {_num(r.get('tflops'), '.2f')} | {_num(share and 100 * share, '.0f')} "
            f"| {format_bytes(r.get('peak_memory_bytes'))} | {format_bytes(r.get('estimate_bytes'))} | {r['status']} |"
        )
    lines.append("")
    for r in report["syncs"]:
        lines.append(
            f"syncs/evaluation, {r['optimizer']} {r['precision']}: {_num(r.get('per_evaluation'), '.2f')} "
            f"({r['status']})"
        )
    for r in report["preview"]:
        lines.append(
            f"{r['preview']} {r['width']}x{r['height']}: {_num(r.get('frame_ms'), '.0f')} ms/frame "
            f"(first {_num(r.get('first_ms'), '.0f')} ms; {r['status']})"
        )
    f = report["final_loss"]
    for name in ("fp32", "defaults"):
        run = f.get(name, {})
        lines.append(
            f"final loss, {f['steps']} steps at {f['size']} px, {name}: {_num(run.get('final_loss'))} "
            f"in {_num(run.get('seconds'), '.1f')} s ({run.get('status')})"
        )
    return "\n".join(lines)


def run_check(args: argparse.Namespace, log: Callable = lambda message: None) -> dict:
    """Every item in order of importance, each within the deadline; returns the JSON-ready report."""
    cfg = dict(QUICK if args.quick else FULL)
    cfg.update({k: v for k, v in (("sizes", args.sizes), ("steps", args.steps)) if v})
    device = pick_device(args.device)  # CUDA, else MPS, else CPU; a clear error for a missing one
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as stylize does
    deadline = Deadline(args.budget)
    model, weights = load_weights(args.weights, device, args.download_timeout, log)
    report: dict = {
        "schema": 1,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python benchmarks/gpu_check.py", *args.argv]),
        "device": _device_info(device),
        "machine": machine_info([device]),
        "weights": {**weights, "arch": model.arch, "input_norm": model.input_norm},
        "settings": {**cfg, "budget_s": args.budget},
    }
    rates: dict[str, float] = {}
    report["timings"] = []
    for size in cfg["sizes"]:
        for name in VARIANTS:
            log(f"timing {name} at {size} px ({deadline.left():.0f} s left)")
            report["timings"].append(time_variant(model, device, size, name, cfg, deadline, rates))
    log("counting host syncs")
    report["syncs"] = count_syncs(model, device, cfg, deadline, rates)
    log("timing previews")
    report["preview"] = preview_cost(model, device, cfg, deadline)
    log(f"final losses ({cfg['steps']} steps at {cfg['final_size']} px)")
    report["final_loss"] = final_losses(model, device, cfg, deadline, rates, weights["source"] != "random")
    report["elapsed_s"] = time.monotonic() - deadline.start
    return finite(report)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python benchmarks/gpu_check.py", description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--device", help="cuda, cuda:1, cpu, ... (default: cuda when there is one)")
    add("--sizes", type=int, nargs="+", help="image sizes in px (default: 512 1024; --quick: 16)")
    add("--steps", type=int, help="steps of the final-loss runs (default: 200; --quick: 4)")
    add("--out", default="outputs/gpu_check.json", help="where to write the JSON (default: %(default)s)")
    add("--quick", action="store_true", help="tiny sizes and few steps: the CPU smoke test")
    add("--budget", type=float, default=250.0, help="seconds for everything (default: %(default)s)")
    add("--weights", choices=("auto", "imagenet", "env", "random"), default="auto", help="VGG weights (default: auto)")
    add("--download-timeout", type=float, default=90.0, help="seconds for the VGG19 download (default: %(default)s)")
    add("--quiet", action="store_true", help="no progress lines on stderr")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    args.argv = argv
    log = (lambda message: None) if args.quiet else (lambda message: print(message, file=sys.stderr, flush=True))
    report = run_check(args, log)
    print(format_report(report))
    print(f"wrote {write_json(report, args.out)} in {report['elapsed_s']:.0f} s")
    rows = report["timings"] + report["syncs"] + report["preview"]
    rows += [report["final_loss"][name] for name in ("fp32", "defaults")]
    return 1 if any(row["status"].startswith("failed") for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
