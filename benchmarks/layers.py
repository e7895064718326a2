r"""Where does a CPU step's time go? ``python benchmarks/layers.py`` times it piece by piece.

A step of the loop (``bench.py``) is a VGG forward pass to ``relu5_1``, the
losses, and the backward pass to the pixels. This script times its pieces
one by one, fp32, on the CPU, with the same random VGG19 as ``bench.py``:

* every 3x3 **convolution**, forward and **input gradient** (the weights are
  frozen, so that is all the backward pass computes), each by every
  implementation there is: ``onednn`` (PyTorch's default, NCHW),
  ``onednn-nhwc`` (the same on channels-last tensors) and ``nnpack``
  (Winograd F(6x6, 3x3), what :mod:`nst_helpers.fastconv` calls; the input
  gradient is the convolution with the transposed, flipped kernel);
* the **ReLU** and **max-pool** forward and backward passes;
* the **Gram matrix** (Eq. 3) of each style layer, forward and backward.

Layers of the same shape (``conv3_2``-``conv3_4``) are timed once and
counted as many times as they occur. Implementations of one piece run
**interleaved** (A, B, C, A, B, C, ..., the order rotated every round), so a
busy machine slows them alike; the table gives medians, the fastest in bold,
NNPACK's speed-up over oneDNN, and what :mod:`~nst_helpers.fastconv`
chooses on this CPU. Whole steps are timed too, interleaved: the baseline
(``tutorial-frozen``), ``ours-fp32``, and ``ours-fp32`` with Winograd by each
instruction set's rule in ``fastconv.THRESHOLDS`` (``--steps-only``: just these).

To see what a CPU without AVX-512 would do on one that has it, cap the
instruction sets before Python starts (oneDNN, MKL and PyTorch's own
kernels; NNPACK has AVX2 kernels only anyway)::

    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 python benchmarks/layers.py

See benchmarks/README.md, "Per-layer profile".
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from baseline import TutorialStep, torchvision_vgg19_features
from bench import machine_info
from nst_helpers import SpeedOptions, VGGFeatures, fastconv
from nst_helpers.losses import gram_matrix
from ours import OursStep
from workload import STYLE_LAYERS, random_vgg19, smooth_noise

CONV_IMPLS = ("onednn", "onednn-nhwc", "nnpack")
ISA_VARIABLES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")
Op = Callable[[], object]


def time_interleaved(ops: dict[str, Op], repeats: int, warmup: int, clock: str = "wall") -> dict[str, list[float]]:
    """Seconds of each call of each op, ``repeats`` rounds in a rotating order after ``warmup`` rounds.

    ``clock="cpu"``: the process's CPU seconds instead of wall seconds (with one thread: the work done,
    whatever else the machine runs; with more, it also counts threads waiting for work)."""
    now = time.process_time if clock == "cpu" else time.perf_counter
    names = list(ops)
    for _ in range(warmup):
        for name in names:
            ops[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            start = now()
            ops[name]()
            times[name].append(now() - start)
    return times


def _nhwc(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous(memory_format=torch.channels_last)


def _input_grad(grad: torch.Tensor, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """What autograd's ConvolutionBackward0 computes for a frozen 3x3, padding-1 convolution."""
    one, pad = [1, 1], [1, 1]
    return torch.ops.aten.convolution_backward(grad, x, weight, None, one, pad, one, False, [0, 0], 1,
                                               [True, False, False])[0]  # fmt: skip


def conv_ops(weight: torch.Tensor, bias: torch.Tensor, height: int, width: int) -> dict[str, dict[str, Op]]:
    """Forward and input-gradient ops of one convolution, by implementation (NNPACK only where it runs)."""
    c_out, c_in = weight.shape[:2]
    generator = torch.Generator().manual_seed(c_in * c_out + height)
    x = torch.randn(1, c_in, height, width, generator=generator)
    grad = torch.randn(1, c_out, height, width, generator=generator)
    flipped = weight.transpose(0, 1).flip(2, 3).contiguous()
    x_cl, grad_cl, weight_cl = _nhwc(x), _nhwc(grad), _nhwc(weight)
    forward: dict[str, Op] = {
        "onednn": lambda: F.conv2d(x, weight, bias, padding=1),
        "onednn-nhwc": lambda: F.conv2d(x_cl, weight_cl, bias, padding=1),
    }
    backward: dict[str, Op] = {
        "onednn": lambda: _input_grad(grad, x, weight),
        "onednn-nhwc": lambda: _input_grad(grad_cl, x_cl, weight_cl),
    }
    if fastconv.available():
        forward["nnpack"] = lambda: torch._nnpack_spatial_convolution(x, weight, bias, [1, 1])
        backward["nnpack"] = lambda: torch._nnpack_spatial_convolution(grad, flipped, None, [1, 1])
    return {"forward": forward, "input-grad": backward}


def other_ops(name: str, channels: int, height: int, width: int) -> dict[str, Op]:
    """The cheap pieces at layer ``name``: ReLU or max-pool forward and backward, the Gram's."""
    generator = torch.Generator().manual_seed(channels + height)
    x = torch.randn(1, channels, height, width, generator=generator)
    if name.startswith("relu"):
        y = F.relu(x)
        grad = torch.randn_like(y)
        ops: dict[str, Op] = {
            "relu forward": lambda: F.relu(x),
            "relu backward": lambda: torch.ops.aten.threshold_backward(grad, y, 0),
        }
        if name in STYLE_LAYERS:
            leaf = y.clone().requires_grad_(True)
            gram = gram_matrix(leaf)
            grad_gram = torch.randn_like(gram)
            ops["gram forward"] = lambda: gram_matrix(y)
            ops["gram backward"] = lambda: torch.autograd.grad(gram, leaf, grad_gram, retain_graph=True)
        return ops
    out, indices = F.max_pool2d_with_indices(x, 2, 2)
    grad = torch.randn_like(out)
    return {
        "pool forward": lambda: F.max_pool2d_with_indices(x, 2, 2),  # what autograd runs
        "pool backward": lambda: torch.ops.aten.max_pool2d_with_indices_backward(grad, x, 2, 2, 0, 1, False, indices),
    }


def layer_shapes(model: VGGFeatures, size: int, deepest: str = "relu5_1") -> list[tuple[str, int, int, int]]:
    """(paper name, input channels, output channels, map side) of every layer up to ``deepest``."""
    shapes, channels, side = [], 3, size
    for name, module in zip(model.names, model.layers):
        if isinstance(module, torch.nn.Conv2d):
            shapes.append((name, module.in_channels, module.out_channels, side))
            channels = module.out_channels
        elif isinstance(module, torch.nn.MaxPool2d):
            shapes.append((name, channels, channels, side))
            side //= 2
        else:
            shapes.append((name, channels, channels, side))
        if name == deepest:
            break
    return shapes


def _row(size: int, names: list[str], piece: str, times: dict[str, list[float]], chosen: str | None) -> dict:
    medians = {impl: statistics.median(t) for impl, t in times.items()}
    row = {"size": size, "layers": names, "count": len(names), "piece": piece, "median_s": medians,
           "best": min(medians, key=medians.__getitem__), "fastconv_chooses": chosen}  # fmt: skip
    if "nnpack" in medians:
        row["nnpack_speedup"] = medians["onednn"] / medians["nnpack"]
    if "onednn-nhwc" in medians:
        row["nhwc_speedup"] = medians["onednn"] / medians["onednn-nhwc"]
    return row


def _fastconv_choice(piece: str, c_in: int, c_out: int, side: int) -> str:
    backward = piece == "input-grad"
    if backward:  # the input gradient is a convolution from the layer's outputs to its inputs
        c_in, c_out = c_out, c_in
    uses = fastconv.available() and fastconv.uses_nnpack(c_in, c_out, side, side, backward=backward)
    return "nnpack" if uses else "onednn"


def profile_size(size: int, repeats: int, warmup: int, clock: str, log: Callable[[str], object]) -> list[dict]:
    """One row per distinct convolution shape and direction, and per cheap piece, at ``size`` px."""
    model = random_vgg19()
    OursStep(model, smooth_noise(size, 1), smooth_noise(size, 2), SpeedOptions())()  # settle the allocator
    weights = {name: module for name, module in zip(model.names, model.layers) if isinstance(module, torch.nn.Conv2d)}
    groups: dict[tuple, list[str]] = {}  # layers of the same kind and shape are timed once
    for name, c_in, c_out, side in layer_shapes(model, size):
        kind = name if name.startswith("pool") or name in STYLE_LAYERS else name[:4]  # "conv" or "relu"
        groups.setdefault((kind, c_in, c_out, side), []).append(name)
    rows = []
    for (kind, c_in, c_out, side), names in groups.items():
        if kind == "conv":
            conv = weights[names[0]]
            pieces = conv_ops(conv.weight.detach(), conv.bias.detach(), side, side)
            for piece, ops in pieces.items():
                times = time_interleaved(ops, repeats, warmup, clock)
                rows.append(_row(size, names, piece, times, _fastconv_choice(piece, c_in, c_out, side)))
                rows[-1]["shape"] = [c_in, c_out, side, side]
        else:
            for piece, op in other_ops(names[0], c_in, side, side).items():
                rows.append(_row(size, names, piece, time_interleaved({"aten": op}, repeats, warmup, clock), None))
                rows[-1]["shape"] = [c_in, c_in, side, side]
        log(f"  {size}px {names[0]}..{names[-1]} done")
    return rows


class _WithRule:
    """A plain fp32 step run inside :func:`~nst_helpers.fastconv.winograd_convolutions` with one rule."""

    def __init__(self, step: OursStep, rule: fastconv.Thresholds) -> None:
        self.step, self.rule = step, rule

    def __call__(self) -> object:
        with fastconv.winograd_convolutions(rule=self.rule):
            return self.step()


def time_steps(size: int, repeats: int, warmup: int, clock: str) -> dict[str, float]:
    """Median seconds of a whole fp32 step, interleaved: ``bench.py``'s baseline (``tutorial-frozen``) and
    ``ours-fp32``, plain and with Winograd by each instruction set's rule (``fastconv.THRESHOLDS``)."""
    model = random_vgg19()
    content, style = smooth_noise(size, 1), smooth_noise(size, 2)
    features = torchvision_vgg19_features()
    features.load_state_dict(model.layers.state_dict())
    plain = OursStep(model, content, style, SpeedOptions())
    steps: dict[str, Op] = {"tutorial-frozen": TutorialStep(features, content, style, freeze=True), "ours-fp32": plain}
    if fastconv.available():
        for capability, rule in fastconv.THRESHOLDS.items():
            if rule not in [step.rule for step in steps.values() if isinstance(step, _WithRule)]:  # time each once
                steps[f"winograd-{capability.lower()}-rule"] = _WithRule(plain, rule)
    times = time_interleaved(steps, repeats, warmup, clock)
    return {name: statistics.median(t) for name, t in times.items()}


def chosen_total(rows: list[dict]) -> dict[str, float]:
    """Sum of the parts, counted per occurrence: with oneDNN only, with fastconv's choice, with the best each."""
    totals = {"onednn": 0.0, "fastconv": 0.0, "best": 0.0}
    for row in rows:
        medians, count = row["median_s"], row["count"]
        plain = medians.get("onednn", medians.get("aten"))
        totals["onednn"] += count * plain
        totals["fastconv"] += count * medians[row["fastconv_chooses"]] if row["fastconv_chooses"] else count * plain
        totals["best"] += count * min(medians.values())
    return totals


def format_table(rows: list[dict]) -> str:
    """A Markdown table: one row per piece, ms per occurrence by implementation, the fastest in bold."""
    lines = ["| size | layers | × | piece | onednn ms | onednn-nhwc ms | nnpack ms | nnpack vs onednn | fastconv |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for row in rows:
        medians = row["median_s"]
        cells = []
        for impl in CONV_IMPLS:
            value = medians.get(impl, medians.get("aten") if impl == "onednn" else None)
            text = "-" if value is None else f"{1000 * value:.2f}"
            cells.append(f"**{text}**" if impl == row["best"] and len(medians) > 1 else text)
        layers = row["layers"][0] if row["count"] == 1 else f"{row['layers'][0]}–{row['layers'][-1][-1]}"
        speedup = f"{row['nnpack_speedup']:.2f}×" if "nnpack_speedup" in row else "-"
        lines.append(f"| {row['size']} | {layers} | {row['count']} | {row['piece']} | {' | '.join(cells)} | "
                     f"{speedup} | {row['fastconv_chooses'] or '-'} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="square image sizes in px")
    parser.add_argument("--repeats", type=int, default=9, help="timed calls per implementation and piece")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    parser.add_argument("--steps-only", action="store_true", help="only the whole steps, not the parts")
    parser.add_argument("--step-repeats", type=int, default=5, help="timed whole steps per variant (0: none)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="wall or process CPU seconds")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads(N)")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/layers.json"), help="where the report goes")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    log = (lambda m: None) if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    torch.set_grad_enabled(True)
    report = {
        "schema": 1,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": "python " + " ".join(sys.argv),
        "machine": machine_info([torch.device("cpu")]),
        "isa": {
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "limits": {k: os.environ[k] for k in ISA_VARIABLES if k in os.environ},
        },  # fmt: skip
        "fastconv_thresholds": fastconv.thresholds()._asdict(),
        "settings": {
            "repeats": args.repeats,
            "warmup": args.warmup,
            "step_repeats": args.step_repeats,
            "clock": args.clock,
            "threads": torch.get_num_threads(),
        },
        "rows": [],
        "totals": {},
        "steps": {},
    }
    for size in args.sizes:
        if not args.steps_only:
            rows = profile_size(size, args.repeats, args.warmup, args.clock, log)
            report["rows"] += rows
            report["totals"][str(size)] = chosen_total(rows)
        if args.step_repeats:
            report["steps"][str(size)] = time_steps(size, args.step_repeats, 1, args.clock)
    report["machine"]["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    print(format_table(report["rows"]))
    for size in args.sizes:
        totals, steps = report["totals"].get(str(size), {}), report["steps"].get(str(size), {})
        print(f"{size} px, sum of the parts: " + ", ".join(f"{k} {v:.3f} s" for k, v in totals.items())
              + "; whole steps: " + ", ".join(f"{k} {v:.3f} s" for k, v in steps.items()))  # fmt: skip
    print(f"CPU: {report['machine']['cpu']}, {torch.get_num_threads()} threads, capability "
          f"{report['isa']['cpu_capability']} {report['isa']['limits'] or ''}, load "
          f"{report['machine']['load_average']} → {report['machine']['load_average_after']}")  # fmt: skip
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
