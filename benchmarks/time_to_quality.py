"""Time to picture: how long until a run's loss is within 2 % of what single-scale 300 steps reaches?

For each size and content/style pair this stylises twice, with the real (offline) VGG weights:

* **single scale**: ``scales="none"``, ``--steps`` L-BFGS steps (default 300) at the final size;
  its last total loss ``L`` sets the bar, ``1.02 · L``;
* **pyramid**: the coarser levels of ``scales="auto"`` with the steps ``"auto"`` gives them, then up
  to ``--final-steps`` steps at the final size (default 200: more than ``"auto"`` gives it, so the
  curve shows where it crosses the bar; a run with fewer final steps follows the same trajectory
  up to its end).

The final-size objective is the same in both runs (same targets), so their losses compare directly.
Every VGG evaluation's wall and CPU time is taken by a forward pre-hook on the network (evaluations
with gradients only: the target computations run without), measured from the call to ``stylize``,
so the pyramid's time includes the targets it recomputes at every level. Reported per run: the
time at which the loss first reaches the bar (time to quality), the time of the whole run, and
for the pyramid its loss and time at the final-size step count ``"auto"`` plans (what a default run
does). The two runs of a pair alternate in order from pair to pair, since the machine may be busy.

    python benchmarks/time_to_quality.py --sizes 256 384 --json benchmarks/time-to-quality-epyc-zen4.json \\
        --side-by-side docs/pyramid_vs_single.jpg
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path

import torch

from bench import machine_info
from nst_helpers import TransferConfig, load_image, load_vgg, resolve_speed, sample_image, save_image, stylize
from nst_helpers.pyramid import FINAL_SHARE, MIN_SIDE, plan_scales

PAIRS = ("tubingen:starry_night", "mount_rainier:great_wave", "chelsea:vangogh_wheat_field")
BAR = 1.02  #: within 2 % of the single-scale run's final loss


class EvaluationClock:
    """Wall and CPU seconds (since ``start``) at the beginning of every VGG evaluation with gradients."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []
        # A closure, not a bound method: stylize may deep-copy the network (a copy for another layout or
        # precision), and a deep copy of a bound method would copy this clock along with it.
        wall, cpu, clock = self.wall, self.cpu, self

        def tick(module, inputs) -> None:
            if torch.is_grad_enabled():
                wall.append(time.perf_counter() - clock.origin[0])
                cpu.append(time.process_time() - clock.origin[1])

        self.handle = model.register_forward_pre_hook(tick)
        self.start()

    def start(self) -> None:
        self.wall.clear()
        self.cpu.clear()
        self.origin = (time.perf_counter(), time.process_time())

    def step_ends(self, end: tuple[float, float]) -> tuple[list[float], list[float]]:
        """When each evaluation's loss was known: the next evaluation's start (the run's end for the last)."""
        return self.wall[1:] + [end[0]], self.cpu[1:] + [end[1]]


def run(model, clock: EvaluationClock, content: str, style: str, config: TransferConfig, snapshots: set[int]) -> dict:
    """One stylisation with its per-step losses and times; images at the run's ``snapshots`` steps."""
    images: dict[int, torch.Tensor] = {}

    def keep(progress) -> None:
        if progress.step in snapshots:
            images[progress.step] = progress.image

    clock.start()
    result = stylize(sample_image(content), sample_image(style), config, model=model, callback=keep)
    end = (time.perf_counter() - clock.origin[0], time.process_time() - clock.origin[1])
    wall, cpu = clock.step_ends(end)
    assert len(wall) == result.steps, (len(wall), result.steps)
    images[result.steps] = result.image
    return {
        "result": result,
        "images": images,
        "total": result.history["total"],
        "wall": wall,
        "cpu": cpu,
        "levels": result.step_scales,
        "wall_total": end[0],
        "cpu_total": end[1],
    }


def first_below(record: dict, bar: float, level: int) -> int | None:
    """The first step (1-based) at ``level`` whose total loss is ≤ ``bar``; None if none is."""
    for index, (total, at) in enumerate(zip(record["total"], record["levels"])):
        if at == level and total <= bar:
            return index + 1
    return None


def measure(model, clock, pair: str, size: int, steps: int, final_steps: int, pyramid_first: bool) -> dict:
    content, style = pair.split(":")
    shape = load_image(sample_image(content), max_size=size).shape[-2:]
    auto = plan_scales(*shape, steps, "auto", min_size=16)
    if len(auto) == 1:
        raise SystemExit(f"at {size} px 'auto' runs a single scale (sizes under {2 * MIN_SIDE} px): nothing to compare")
    coarse_steps = tuple(scale.steps for scale in auto[:-1])
    single_config = TransferConfig(size=size, device="cpu", steps=steps, scales="none")
    pyramid_config = replace(single_config, scales="auto", scale_steps=(*coarse_steps, final_steps))
    offset = sum(coarse_steps)
    snapshots = {offset + auto[-1].steps} | {offset + k for k in range(20, final_steps + 1, 20)}
    order = [("pyramid", pyramid_config), ("single", single_config)]
    records = {}
    for name, config in order if pyramid_first else order[::-1]:
        records[name] = run(model, clock, content, style, config, snapshots if name == "pyramid" else {steps})
        print(f"  {size} px {pair} {name}: {records[name]['result'].summary()}", flush=True)
    single, pyramid = records["single"], records["pyramid"]
    final_level = len(auto) - 1
    target = single["total"][-1] * BAR
    hit_single = first_below(single, target, 0)
    hit_pyramid = first_below(pyramid, target, final_level)
    planned = offset + auto[-1].steps  # the step where a default ("auto") run ends
    report = {
        "pair": pair,
        "size": size,
        "shape": list(shape),
        "scales": [[s.height, s.width] for s in auto],
        "auto_steps": [s.steps for s in auto],
        "measured_final_steps": final_steps,
        "order": "pyramid first" if pyramid_first else "single first",
        "single_final_loss": single["total"][-1],
        "bar": target,
        "single": _summary(single, hit_single),
        "pyramid": _summary(pyramid, hit_pyramid),
        "auto_run": {
            "final_loss": pyramid["total"][planned - 1],
            "vs_single": pyramid["total"][planned - 1] / single["total"][-1],
            "wall_s": pyramid["wall"][planned - 1],
            "cpu_s": pyramid["cpu"][planned - 1],
        },
        "curves": {name: {key: records[name][key] for key in ("total", "wall", "cpu", "levels")} for name in records},
    }
    single_wall = single["wall_total"]
    for key in ("wall_s", "cpu_s"):
        report["auto_run"][f"{key}_vs_single_run"] = report["auto_run"][key] / single[f"{key[:-2]}_total"]
    if hit_pyramid is not None:
        report["pyramid"]["to_quality_vs_single_run"] = pyramid["wall"][hit_pyramid - 1] / single_wall
    shown = _snapshot_at_or_after(hit_pyramid, sorted(pyramid["images"]))  # previews come every 20 steps
    report["to_quality_image_step"] = shown
    report["images"] = {
        "single": single["images"][steps],
        "auto": pyramid["images"].get(planned),
        "to_quality": pyramid["images"].get(shown),
    }
    return report


def _snapshot_at_or_after(step: int | None, steps: list[int]) -> int | None:
    if step is None:
        return None
    later = [s for s in steps if s >= step]
    return later[0] if later else None


def _summary(record: dict, hit: int | None) -> dict:
    return {
        "steps": len(record["total"]),
        "final_loss": record["total"][-1],
        "wall_s": record["wall_total"],
        "cpu_s": record["cpu_total"],
        "to_quality_step": hit,
        "to_quality_wall_s": None if hit is None else record["wall"][hit - 1],
        "to_quality_cpu_s": None if hit is None else record["cpu"][hit - 1],
    }


def side_by_side(report: dict, path: Path) -> Path:
    """content | single scale | pyramid ("auto" steps) | pyramid at the bar, with CPU seconds in the titles."""
    import matplotlib

    matplotlib.use("Agg")
    from nst_helpers import show_images

    content = load_image(sample_image(report["pair"].split(":")[0]), max_size=report["size"])
    single, pyramid, auto = report["single"], report["pyramid"], report["auto_run"]
    images = [content, report["images"]["single"], report["images"]["auto"]]
    titles = [
        "content",
        f"one size, {single['steps']} steps\nloss {single['final_loss']:.4f}, {single['cpu_s']:.0f} CPU s",
        f"pyramid {'→'.join(str(max(s)) for s in report['scales'])} px, "
        f"steps {'+'.join(map(str, report['auto_steps']))}\nloss {auto['final_loss']:.4f}, {auto['cpu_s']:.0f} CPU s",
    ]
    if report["images"]["to_quality"] is not None and pyramid["to_quality_step"] != sum(report["auto_steps"]):
        images.append(report["images"]["to_quality"])
        titles.append(
            f"pyramid, step {report['to_quality_image_step']} (the 2 % bar\nreached at step "
            f"{pyramid['to_quality_step']}, {pyramid['to_quality_cpu_s']:.0f} CPU s)"
        )
    figure = show_images(images, titles, size=4)
    for axis in figure.axes:
        axis.title.set_fontsize(9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 384])
    parser.add_argument("--pairs", nargs="+", default=list(PAIRS), help="content:style sample names")
    parser.add_argument("--steps", type=int, default=300, help="steps of the single-scale run (and of 'auto')")
    parser.add_argument("--final-steps", type=int, default=200, help="pyramid: steps measured at the final size")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--json", default="benchmarks/time-to-quality.json")
    parser.add_argument("--side-by-side", default=None, help="PNG of the first pair at the largest size")
    parser.add_argument("--save-images", default=None, help="folder for every run's final image (PNG)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_vgg(device="cpu")  # NST_WEIGHTS / NST_VGG / NST_INPUT_NORM: the shared VGG16
    clock = EvaluationClock(model)
    reports = []
    for size in args.sizes:
        for index, pair in enumerate(args.pairs):
            report = measure(model, clock, pair, size, args.steps, args.final_steps, pyramid_first=index % 2 == 0)
            if args.save_images:
                folder = Path(args.save_images)
                for name, image in report["images"].items():
                    if image is not None:
                        save_image(image, folder / f"{size}_{pair.replace(':', '_')}_{name}.png")
            reports.append(report)
            _write(args, reports, model)
    if args.side_by_side:
        first = max((r for r in reports if r["pair"] == args.pairs[0]), key=lambda r: r["size"])
        print(f"wrote {side_by_side(first, Path(args.side_by_side))}")
    print(format_table(reports))
    return 0


def _write(args, reports: list[dict], model) -> None:
    options = " ".join(
        f"--{key.replace('_', '-')} {' '.join(map(str, value)) if isinstance(value, list) else value}"
        for key, value in vars(args).items()
        if value is not None
    )
    info = {
        "command": f"python benchmarks/time_to_quality.py {options}",
        "machine": machine_info([torch.device("cpu")]),
        "weights": {name: os.environ.get(name) for name in ("NST_WEIGHTS", "NST_VGG", "NST_INPUT_NORM")},
        "speed": str(resolve_speed(torch.device("cpu"), "auto", None, None, False)),  # what the defaults run
        "bar": BAR,
        "auto": {"min_side": MIN_SIDE, "final_share": FINAL_SHARE},
        "runs": [compact(report) for report in reports],
    }
    Path(args.json).write_text(to_json(info))


def to_json(info: dict) -> str:
    """``info`` as indented JSON, each curve on one line."""
    curves = {}
    for index, run in enumerate(info["runs"]):
        for name, curve in run["curves"].items():
            for key, values in curve.items():
                curves[f"@{index}.{name}.{key}@"] = json.dumps(values)
                curve[key] = f"@{index}.{name}.{key}@"
    text = json.dumps(info, indent=1)
    for mark, values in curves.items():
        text = text.replace(f'"{mark}"', values)
    return text


def compact(report: dict) -> dict:
    """``report`` without its images, the curves rounded (losses to 5 digits, times to 0.01 s)."""
    plain = {key: value for key, value in report.items() if key not in ("images", "curves")}
    plain["curves"] = {
        name: {
            "total": [float(f"{value:.5g}") for value in curve["total"]],
            "wall": [round(value, 2) for value in curve["wall"]],
            "cpu": [round(value, 2) for value in curve["cpu"]],
            "levels": curve["levels"],
        }
        for name, curve in report["curves"].items()
    }
    return plain


def format_table(reports: list[dict]) -> str:
    """The README's table: CPU seconds (steadier than wall time on a shared machine), wall in brackets."""
    rows = [
        "| size | pair | one size, 300 steps: loss, s | one size to the bar: step, s "
        "| pyramid to the bar: step, s (× the 300 steps) | `auto` pyramid: loss (vs one size), s (× the 300 steps) |",
        "|---|---|---|---|---|---|",
    ]
    for r in reports:
        single, pyramid, auto = r["single"], r["pyramid"], r["auto_run"]
        reached = pyramid["to_quality_cpu_s"] is not None
        hit = (
            f"{pyramid['to_quality_step']}, {pyramid['to_quality_cpu_s']:.0f} s "
            f"({pyramid['to_quality_cpu_s'] / single['cpu_s']:.2f}×)"
            if reached
            else f"not within {pyramid['steps']} steps (loss {pyramid['final_loss']:.4f})"
        )
        rows.append(
            f"| {r['size']} | {r['pair']} "
            f"| {single['final_loss']:.4f}, {single['cpu_s']:.0f} s ({single['wall_s']:.0f}) "
            f"| {single['to_quality_step']}, {single['to_quality_cpu_s']:.0f} s | {hit} "
            f"| {auto['final_loss']:.4f} ({auto['vs_single'] - 1:+.1%}), {auto['cpu_s']:.0f} s "
            f"({auto['cpu_s_vs_single_run']:.2f}×) |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    raise SystemExit(main())
