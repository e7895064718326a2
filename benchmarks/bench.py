r"""How fast is one step of the style-transfer loop? ``python benchmarks/bench.py`` (or ``make bench``).

One **step** is what one L-BFGS closure call (or one Adam step) costs: a VGG
forward pass of the image being optimised, the content and style losses, and
the backward pass to the input pixels. For every image size and device this
script times, **interleaved** (variant A, B, C, A, B, C, ...; a busy machine
slows all of them alike), after warm-up:

``tutorial``
    The loop as most tutorials write it (``baseline.py``): torchvision's full
    ``vgg19().features`` (in-place ReLUs, all 37 modules up to ``pool5``),
    features gathered by a loop over every module, Gram matrices by ``mm``,
    MSE losses, fp32. The weights keep ``requires_grad=True`` (torchvision's
    default), so every backward pass also computes weight gradients nobody
    uses.
``tutorial-frozen``
    The same with ``requires_grad_(False)`` on the weights, as the official
    PyTorch tutorial does. **Every speed-up is a ratio to this one**, the
    stricter of the two baselines.
``ours-fp32``
    The package's loop (``ours.py``: ``stylize``'s step from ``Objective`` and
    ``Recorder``): VGG run only to the deepest layer needed (``relu5_1``),
    style Grams and content targets computed once, relative losses, per-step
    loss row and best image kept on the device; fp32, NCHW, eager.
``channels-last``, ``winograd``, ``bf16``, ``fp16``, ``compile``, ``no-bookkeeping``
    One option each on top of ``ours-fp32`` (``no-bookkeeping`` leaves out the
    Recorder, to price it).
``bf16-nhwc``
    ``bf16`` and ``channels-last`` together (oneDNN's and cuDNN's fast bf16
    convolutions want NHWC).
``defaults``
    ``TransferConfig``'s defaults as ``stylize`` resolves them on that device.
``stylize``
    ``stylize`` itself with its defaults (Adam, one VGG evaluation per step;
    ``result.seconds / result.steps``): checks that the micro-benchmark
    describes the real loop.

All variants use the same random VGG19 weights and images (``workload.py``;
nothing is downloaded) on the same device. Reported per variant: median
seconds per step, steps per second, the ratio to ``tutorial-frozen``, the
analytic convolution FLOPs of the layers that variant actually runs
(``flops.py``) and the TFLOP/s they imply (with the fraction of the GPU's
datasheet peak), peak memory (CUDA: ``max_memory_allocated``; CPU: the
process's peak RSS) and, device-independently, the peak bytes of the tensors
a step creates and what autograd saves for backward (``memory_check.py``).

``--memory-model`` checks ``nst_helpers.memory.MemoryModel`` against such
measurements; ``--compare PNG`` stylises the same pair twice (e.g. plain fp32
vs the fast defaults) and reports the pixel difference (``compare.py``).
See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from baseline import TutorialStep, torchvision_vgg19_features
from compare import compare_stylizations, parse_settings
from flops import gpu_peak_tflops, step_flops
from memory_check import TensorMemory, format_memory, memory_model, peak_memory, reset_peak_memory, saved_for_backward
from nst_helpers import VGGFeatures, fastconv, native_bf16
from nst_helpers.devices import format_bytes
from ours import OURS, PLAIN, OursStep, StylizeRun, default_speed, variant_speed
from workload import CONTENT_LAYERS, LAYERS, STYLE_LAYERS, random_vgg19, smooth_noise

BASELINE = "tutorial-frozen"
VARIANTS = ("tutorial", "tutorial-frozen", "ours-fp32", "channels-last", "winograd", "bf16", "bf16-nhwc", "fp16",
            "compile", "no-bookkeeping", "defaults", "stylize")  # fmt: skip
Log = Callable[[str], object]


def _silent(message: str) -> None:
    pass


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def default_variants(device: torch.device, size: int) -> list[str]:
    """Variants measured by default: fp16 only on CUDA, winograd only on a CPU with NNPACK, bf16 on a
    CPU without native bf16 only at ≤ 128 px (it is ~10x slower there)."""
    names = list(VARIANTS)
    if device.type != "cuda":
        names.remove("fp16")
    if device.type != "cpu" or not fastconv.available():
        names.remove("winograd")
    if device.type == "cpu" and not native_bf16(device) and size > 128:
        names.remove("bf16")
        names.remove("bf16-nhwc")
    return names


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


Runner = TutorialStep | OursStep | StylizeRun


def benchmark_size(
    device: torch.device,
    size: int,
    variants: Sequence[str],
    *,
    repeats: int = 5,
    warmup: int = 2,
    stylize_steps: int = 2,
    tensor_memory: bool = True,
    clock: str = "wall",
    model: VGGFeatures | None = None,
    log: Log = _silent,
) -> list[dict]:
    """Time every variant at ``size`` x ``size`` px on ``device``, interleaved; one result dict per variant.

    ``clock="cpu"`` (CPU device only) counts the process's CPU seconds instead of wall seconds: on a
    machine shared with other jobs that is less noisy, and with one thread (``--threads 1``) it is the
    work done. The ``stylize`` variant is always timed by wall clock (``result.seconds``).
    """
    if clock == "cpu" and device.type != "cpu":
        raise ValueError("clock='cpu' measures CPU seconds; use it with the CPU device only.")
    model = (model if model is not None else random_vgg19()).to(device)
    content, style = smooth_noise(size, 1).to(device), smooth_noise(size, 2).to(device)
    useful = step_flops(model, size, size, LAYERS)
    runners, flops, precision = _runners(model, content, style, device, size, variants, stylize_steps, useful)
    first, times = _time_interleaved(runners, device, size, repeats, warmup, clock, log)
    peaks = _process_peaks(runners, device)
    tensors = _tensor_peaks(runners) if tensor_memory else {}

    base = statistics.median(times[BASELINE]) if times.get(BASELINE) else None
    unfrozen = statistics.median(times["tutorial"]) if times.get("tutorial") else None
    results = []
    for name in variants:
        median = statistics.median(times[name])
        peak_tflops = gpu_peak_tflops(device, precision[name])
        tflops = flops[name] / median / 1e12
        memory, memory_kind = peaks[name]
        results.append(
            {
                "device": str(device),
                "size": size,
                "variant": name,
                "clock": "wall" if name == "stylize" else clock,
                "precision": precision[name],
                "median_s": median,
                "min_s": min(times[name]),
                "steps_per_s": 1.0 / median,
                "speedup": base / median if base else None,
                "speedup_vs_tutorial": unfrozen / median if unfrozen else None,
                "gflop": flops[name] / 1e9,
                "useful_gflop": useful / 1e9,
                "tflops": tflops,
                "peak_tflops": peak_tflops,
                "peak_fraction": tflops / peak_tflops if peak_tflops else None,
                "peak_memory_bytes": memory,
                "memory_kind": memory_kind,
                "tensor_peak_bytes": tensors.get(name, (None, None))[0],
                "saved_for_backward_bytes": tensors.get(name, (None, None))[1],
                "first_call_s": first[name],
                "compile_s": first[name] - median if name == "compile" else None,
                "times_s": times[name],
            }
        )
    return results


def _runners(
    model: VGGFeatures,
    content: torch.Tensor,
    style: torch.Tensor,
    device: torch.device,
    size: int,
    variants: Sequence[str],
    stylize_steps: int,
    useful: int,
) -> tuple[dict[str, Runner], dict[str, int], dict[str, str]]:
    """One runner per variant, with the FLOPs it executes and the precision it computes in."""
    runners: dict[str, Runner] = {}
    flops: dict[str, int] = {}
    precision: dict[str, str] = {}
    for name in variants:
        if name in ("tutorial", "tutorial-frozen"):
            features = torchvision_vgg19_features()
            features.load_state_dict(model.layers.state_dict())
            baseline = TutorialStep(features.to(device), content, style, freeze=name == "tutorial-frozen")
            runners[name], flops[name], precision[name] = baseline, baseline.executed_flops(size, size), "fp32"
        elif name == "stylize":
            runners[name] = StylizeRun(model, content, style, device, stylize_steps)
            flops[name], precision[name] = useful, default_speed(device).precision
        elif name in OURS:
            speed = variant_speed(name, device)
            runners[name] = OursStep(model, content, style, speed, bookkeeping=name != "no-bookkeeping")
            flops[name], precision[name] = useful, speed.precision
        else:
            raise ValueError(f"Unknown variant {name!r}; choose from {VARIANTS}.")
    return runners, flops, precision


def _time_interleaved(
    runners: dict[str, Runner],
    device: torch.device,
    size: int,
    repeats: int,
    warmup: int,
    clock: str,
    log: Log,
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Warm every runner up, then time ``repeats`` rounds in a rotating order: (first call, times) by name."""
    now = time.process_time if clock == "cpu" else time.perf_counter

    def sample(name: str) -> float:
        runner = runners[name]
        if isinstance(runner, StylizeRun):
            return runner.sample()
        _sync(device)
        start = now()
        runner()
        _sync(device)
        return now() - start

    variants = list(runners)
    first: dict[str, float] = {}
    for name in variants:  # warm-up (the first call includes any compilation)
        for i in range(max(warmup, 1)):
            seconds = sample(name)
            if i == 0:
                first[name] = seconds
        log(f"  {device.type} {size}px {name}: warm-up done (first call {first[name]:.2f} s)")
    times: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(repeats):
        shift = r % len(variants)  # rotate the order so no variant always runs right after another
        for name in variants[shift:] + variants[:shift]:
            times[name].append(sample(name))
        log(f"  {device.type} {size}px: round {r + 1}/{repeats} done")
    return first, times


def _process_peaks(runners: dict[str, Runner], device: torch.device) -> dict[str, tuple]:
    """The allocator's (or the process's) peak memory of one call of each runner."""
    peaks: dict[str, tuple] = {}
    for name, runner in runners.items():
        if isinstance(runner, StylizeRun):
            peaks[name] = (None, "not measured")
            continue
        reset_peak_memory(device)
        runner()
        peaks[name] = peak_memory(device)
    return peaks


def _tensor_peaks(runners: dict[str, Runner]) -> dict[str, tuple]:
    """Peak bytes of live tensors and bytes saved for the backward pass, per runner (device-independent)."""
    tensors: dict[str, tuple] = {}
    for name, runner in runners.items():
        if isinstance(runner, StylizeRun) or (isinstance(runner, OursStep) and runner.speed.compile):
            continue  # compiled code runs below the dispatcher the tracker watches
        module = runner.model if isinstance(runner, OursStep) else runner.features
        frozen = list(module.parameters()) + list(module.buffers())
        with TensorMemory() as tracker, saved_for_backward(exclude=frozen) as saved:
            runner()
        tensors[name] = (tracker.peak, saved["bytes"])
    return tensors


def _load_average() -> list | None:
    with contextlib.suppress(OSError, AttributeError):
        return [round(v, 2) for v in os.getloadavg()]
    return None


def machine_info(devices: Sequence[torch.device]) -> dict:
    """Where the numbers come from: CPU model, cores, threads, GPU, versions, load."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info = {
        "cpu": cpu,
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "native_bf16_cpu": native_bf16(torch.device("cpu")),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gpus": [],
        "load_average": _load_average(),
    }
    for device in devices:
        if device.type == "cuda":
            props = torch.cuda.get_device_properties(device)
            info["gpus"].append(
                {
                    "device": str(device),
                    "name": props.name,
                    "memory_bytes": props.total_memory,
                    "capability": list(torch.cuda.get_device_capability(device)),
                    "cudnn": torch.backends.cudnn.version(),
                }
            )
    return info


def run_benchmark(
    devices: Sequence[str] | None = None,
    sizes: Sequence[int] | None = None,
    variants: Sequence[str] | None = None,
    *,
    repeats: int = 5,
    warmup: int = 2,
    stylize_steps: int = 2,
    tensor_memory: bool = True,
    clock: str = "wall",
    command: str | None = None,
    log: Log = _silent,
) -> dict:
    """Benchmark every variant at every size on every device; returns the JSON-ready report.

    ``devices`` default: CPU, plus CUDA when present. ``sizes`` default:
    128, 256, 512 (and 1024 on a GPU). ``variants`` default: :func:`default_variants`.
    """
    if devices is None:
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    chosen = [torch.device(d) for d in devices]
    report = {
        "schema": 1,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "machine": machine_info(chosen),
        "settings": {
            "arch": "vgg19",
            "weights": "random (load_vgg seed 0; same weights in every variant)",
            "repeats": repeats,
            "warmup": warmup,
            "stylize_steps": stylize_steps,
            "clock": clock,
            "content_layers": list(CONTENT_LAYERS),
            "style_layers": list(STYLE_LAYERS),
            "baseline": BASELINE,
        },
        "results": [],
    }
    for device in chosen:
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # as stylize does
        device_sizes = list(sizes) if sizes else [128, 256, 512] + ([1024] if device.type == "cuda" else [])
        for size in device_sizes:
            names = list(variants or default_variants(device, size))
            log(f"{device} {size}px: {', '.join(names)}")
            report["results"] += benchmark_size(
                device, size, names, repeats=repeats, warmup=warmup, stylize_steps=stylize_steps,
                tensor_memory=tensor_memory, clock=clock, log=log,
            )  # fmt: skip
    report["machine"]["load_average_after"] = _load_average()
    return report


def format_table(results: Sequence[dict]) -> str:
    """A Markdown table: one row per device, size and variant."""
    header = (
        "| device | size | variant | s/step (median) | steps/s | × tutorial-frozen | × tutorial "
        "| GFLOP | TFLOP/s | % peak | peak memory | step tensors | compile s |"
    )
    lines = [header, "|" + "|".join(["---"] * 13) + "|"]
    for r in results:
        speedup = "-" if r["speedup"] is None else f"{r['speedup']:.2f}×"
        vs_tutorial = "-" if r["speedup_vs_tutorial"] is None else f"{r['speedup_vs_tutorial']:.2f}×"
        peak = "-" if r["peak_fraction"] is None else f"{100 * r['peak_fraction']:.0f}%"
        compiled = "-" if r["compile_s"] is None else f"{r['compile_s']:.0f}"
        lines.append(
            f"| {r['device']} | {r['size']} | {r['variant']} | {r['median_s']:.4f} | {r['steps_per_s']:.2f} "
            f"| {speedup} | {vs_tutorial} | {r['gflop']:.1f} | {r['tflops']:.3f} | {peak} "
            f"| {format_bytes(r['peak_memory_bytes'])} | {format_bytes(r['tensor_peak_bytes'])} | {compiled} |"
        )
    return "\n".join(lines)


def write_json(report: dict, path: str | os.PathLike) -> Path:
    """Write ``report`` as indented JSON (parent folders created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, allow_nan=False, default=str) + "\n")
    return path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/bench.py",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--sizes", type=int, nargs="+", help="image sizes in px (default: 128 256 512, +1024 on GPU)")
    add("--devices", nargs="+", help="devices (default: cpu, and cuda when available)")
    add("--variants", nargs="+", choices=VARIANTS, help="variants (default: all that apply)")
    add("--repeats", type=int, default=5, help="timed steps per variant (default: %(default)s)")
    add("--warmup", type=int, default=2, help="untimed steps first (default: %(default)s)")
    add("--stylize-steps", type=int, default=2, help="Adam steps per stylize() sample")
    add("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    add(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall seconds, or the process's CPU seconds (CPU device; steadier on a busy machine)",
    )
    add("--no-tensor-memory", action="store_true", help="skip the tensor-memory pass")
    add("--memory-model", action="store_true", help="also check the memory model (64-256 px)")
    add("--no-timing", action="store_true", help="skip the timings (e.g. with --memory-model)")
    add(
        "--memory-sizes",
        type=int,
        nargs="+",
        default=[64, 128, 256],
        help="sizes of the memory model's single steps (default: %(default)s)",
    )
    add(
        "--memory-run-sizes",
        type=int,
        nargs="+",
        default=[64, 128],
        help="sizes of its whole stylize() runs (default: %(default)s)",
    )
    add("--compare", metavar="PNG", help="only run the visual check and write this PNG")
    add(
        "--compare-a",
        default=",".join(f"{k}={v}".lower() for k, v in PLAIN.items()),
        help="TransferConfig overrides of run A (default: %(default)s)",
    )
    add("--compare-b", default="", help="overrides of run B (default: the defaults)")
    add("--compare-size", type=int, default=256)
    add("--compare-steps", type=int, default=60)
    add("--compare-pair", nargs=2, default=["tubingen", "starry_night"], metavar=("CONTENT", "STYLE"))
    add("--json", default="benchmarks/results.json", help="where to write JSON (default: %(default)s)")
    add("--quiet", action="store_true", help="no progress lines on stderr")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    log = _silent if args.quiet else _to_stderr
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.compare:
        compared = compare_stylizations(
            *args.compare_pair, size=args.compare_size, steps=args.compare_steps, a=parse_settings(args.compare_a),
            b=parse_settings(args.compare_b), output=args.compare, device=(args.devices or ["cpu"])[0], log=log,
        )  # fmt: skip
        report = {"compare": compared, "machine": machine_info([])}
        print(json.dumps(compared, indent=2))
    else:
        if args.no_timing:
            report = {"machine": machine_info([]), "results": []}
        else:
            report = run_benchmark(
                args.devices, args.sizes, args.variants, repeats=args.repeats, warmup=args.warmup,
                stylize_steps=args.stylize_steps, tensor_memory=not args.no_tensor_memory, clock=args.clock,
                command=" ".join(["python benchmarks/bench.py", *argv]), log=log,
            )  # fmt: skip
        if args.memory_model:
            report["memory_model"] = memory_model(args.memory_sizes, run_sizes=args.memory_run_sizes, log=log)
        machine = report["machine"]
        gpus = ", ".join(g["name"] for g in machine["gpus"]) or "none"
        print(
            f"CPU: {machine['cpu']} ({machine['cpu_cores']} cores, torch threads {machine['torch_threads']}); "
            f"GPU: {gpus}; torch {machine['torch']}"
        )
        if report["results"]:
            print(format_table(report["results"]))
        if "memory_model" in report:
            print(format_memory(report["memory_model"]))
    print(f"wrote {write_json(report, args.json)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
