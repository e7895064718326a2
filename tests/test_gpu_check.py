"""The GPU check (benchmarks/gpu_check.py) on the CPU: quick mode runs every item and writes the JSON it
promises, a spent time budget skips items instead of running over, and an out-of-memory error in one
item is recorded without stopping the rest."""

import json
import math

import pytest
import torch

import gpu_check
import gpu_runs

TIMING_KEYS = ("step_s", "step_min_s", "steps_per_s", "loop_s", "gflop", "tflops", "peak_memory_bytes")


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _numbers(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from _numbers(item)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield value


@pytest.mark.slow  # ~10-20 s of CPU: every item runs once (12 tiny stylize runs, two preview figures)
def test_quick_mode_on_the_cpu_measures_every_item(tmp_path, capsys):
    out = tmp_path / "gpu_check.json"
    argv = ["--quick", "--device", "cpu", "--weights", "random", "--out", str(out), "--quiet"]
    assert gpu_check.main(argv) == 0
    report = json.loads(out.read_text())
    assert {"device", "machine", "weights", "settings", "timings", "syncs", "preview", "final_loss"} <= set(report)
    assert report["device"]["type"] == "cpu" and report["device"]["torch"] == torch.__version__
    assert report["device"]["peak_tflops"] == {"fp32": "unknown", "fp16": "unknown", "bf16": "unknown"}
    assert report["weights"]["source"] == "random" and report["weights"]["arch"] == "vgg19"
    assert all(math.isfinite(number) for number in _numbers(report))

    rows = {row["variant"]: row for row in report["timings"]}
    assert set(rows) == set(gpu_runs.VARIANTS)
    for name, row in rows.items():
        if name == "bf16-nhwc" and row["status"] != "ok":  # only where the CPU computes bf16 natively
            assert row["status"].startswith("skipped: bf16 is not native")
            continue
        assert row["status"] == "ok", (name, row["status"])
        assert all(_positive(row[key]) for key in TIMING_KEYS), row
        assert _positive(row["estimate_bytes"]) and row["peak_tflops"] == "unknown"
    assert rows["fp16-nhwc"]["precision"] == "fp16" and rows["fp32-nchw"]["channels_last"] is False

    assert [(r["optimizer"], r["status"]) for r in report["syncs"]] == [("lbfgs", "ok"), ("adam", "ok")]
    assert all(r["per_evaluation"] >= 0 and r["evaluations"] == r["steps"] for r in report["syncs"])
    for row in report["preview"]:
        assert row["status"] == "ok" and _positive(row["frame_ms"]) and _positive(row["first_ms"]), row
    final = report["final_loss"]
    assert final["fp32"]["precision"] == "fp32" and final["fp32"]["steps_done"] == final["steps"]
    assert all(_positive(final[name]["final_loss"]) for name in ("fp32", "defaults"))
    assert _positive(final["defaults_over_fp32"])

    printed = capsys.readouterr().out
    assert "| 16 | fp32-nchw | fp32 | False |" in printed and f"wrote {out}" in printed


def test_a_spent_budget_skips_every_item_instead_of_running_over(tmp_path):
    out = tmp_path / "gpu_check.json"
    argv = ["--quick", "--device", "cpu", "--weights", "random", "--budget", "0", "--out", str(out), "--quiet"]
    assert gpu_check.main(argv) == 0
    report = json.loads(out.read_text())
    rows = report["timings"] + report["syncs"] + report["preview"]
    rows += [report["final_loss"]["fp32"], report["final_loss"]["defaults"]]
    assert rows and all(row["status"].startswith("skipped: ") for row in rows)
    assert any(row["status"].startswith("skipped: time") for row in rows)


def test_out_of_memory_in_one_variant_is_recorded_and_the_check_goes_on(vgg19_random, monkeypatch):
    class OutOfMemoryStep:
        def __init__(self, *args, **kwargs):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(gpu_runs, "OursStep", OutOfMemoryStep)
    rates: dict = {}
    row = gpu_runs.time_variant(
        vgg19_random, torch.device("cpu"), 32, "fp32-nchw", gpu_check.QUICK, gpu_runs.Deadline(60), rates
    )
    assert row["status"] == "failed: out of memory" and "step_s" not in row and rates == {}


@pytest.mark.parametrize("value, expected", [(float("nan"), "nan"), (float("inf"), "inf"), (1.5, 1.5)])
def test_non_finite_numbers_become_names_in_the_json(value, expected):
    assert gpu_check.finite({"a": [value, {"b": value}]}) == {"a": [expected, {"b": expected}]}


def test_a_variant_slower_than_predicted_keeps_its_step_time_and_skips_its_loop(vgg19_random):
    class OneMoreItem(gpu_runs.Deadline):
        """Room for the first check (before the steps are timed), none for the stylize() run after."""

        def __init__(self) -> None:
            super().__init__(60)
            self.checks = 0

        def fits(self, predicted_s: float) -> bool:
            self.checks += 1
            return self.checks == 1

    row = gpu_runs.time_variant(vgg19_random, torch.device("cpu"), 16, "fp32-nchw", gpu_check.QUICK, OneMoreItem(), {})
    assert row["status"].startswith("ok, loop skipped: time") and _positive(row["step_s"]) and "loop_s" not in row
