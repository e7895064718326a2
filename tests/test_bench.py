"""The benchmark (benchmarks/, not part of the package) measures what it says: FLOP counts, an
apples-to-apples baseline, the memory tools, the command line and its JSON format."""

import json
import subprocess
import sys

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

# benchmarks/ is not a package: its scripts import each other by name, as `python benchmarks/bench.py` does;
# pyproject.toml puts the folder on pytest's path.
import bench
from baseline import TutorialStep, torchvision_vgg19_features
from flops import PEAK_TFLOPS, conv_flops, step_flops
from helpers import ROOT, smooth_image, stripes_image
from memory_check import TensorMemory, format_memory, memory_model, saved_for_backward
from nst_helpers import MemoryModel, SpeedOptions, estimate_memory, resolve_speed, stylize
from nst_helpers.vgg import build_features
from ours import OURS, PLAIN, OursStep, variant_speed
from workload import LAYERS

BENCHMARKS = ROOT / "benchmarks"


def stored(name: str) -> dict:
    return json.loads((BENCHMARKS / name).read_text())


@pytest.mark.parametrize("size, gflop", [(128, 24), (256, 95), (512, 379)])
def test_flops_of_vgg19_to_relu5_1_match_the_issue(vgg19_random, size, gflop):
    assert step_flops(vgg19_random, size, size, LAYERS) / 1e9 == pytest.approx(gflop, rel=0.05)


def test_flop_counter_agrees_with_torch_flop_counter(vgg19_random):
    """Independent check: torch's FlopCounterMode on a real forward + backward to the input."""
    x = torch.rand(1, 3, 48, 64, requires_grad=True)
    with FlopCounterMode(display=False) as counter:
        out = vgg19_random(x, ["relu5_1"])["relu5_1"]
        out.sum().backward()
    counted = sum(v for k, v in counter.get_flop_counts()["Global"].items() if "convolution" in str(k))
    assert counted == step_flops(vgg19_random, 48, 64, ["relu5_1"])


def test_baseline_is_torchvisions_vgg19_features_with_in_place_relus():
    theirs, ours = torchvision_vgg19_features(), build_features("vgg19")  # torchvision's layout: test_vgg.py
    assert [type(m) for m in theirs] == [type(m) for m in ours] and len(theirs) == 37
    assert all(m.inplace for m in theirs if isinstance(m, torch.nn.ReLU))
    assert {k: v.shape for k, v in theirs.state_dict().items()} == {k: v.shape for k, v in ours.state_dict().items()}


def test_baseline_flops_count_the_extra_layers_and_weight_gradients(vgg19_random):
    features = torchvision_vgg19_features()
    frozen = TutorialStep(features, smooth_image(32, 32), stripes_image(32, 32), freeze=True)
    modules = list(features)
    assert frozen.executed_flops(128, 128) == conv_flops(modules, 128, 128, input_grad=False) + conv_flops(
        modules[:30], 128, 128, forward=False
    )
    trainable = TutorialStep(torchvision_vgg19_features(), smooth_image(32, 32), stripes_image(32, 32), freeze=False)
    assert (
        trainable.executed_flops(128, 128)
        > frozen.executed_flops(128, 128)
        > step_flops(vgg19_random, 128, 128, LAYERS)
    )


def _pair(vgg19_random):
    features = torchvision_vgg19_features()
    features.load_state_dict(vgg19_random.layers.state_dict())
    content, style = smooth_image(32, 48), stripes_image(32, 48)
    return TutorialStep(features, content, style, freeze=True), OursStep(vgg19_random, content, style, SpeedOptions())


def test_baseline_and_ours_see_the_same_features_and_grams(vgg19_random):
    baseline, ours = _pair(vgg19_random)
    image = smooth_image(32, 48, seed=3)
    theirs = baseline.extract(image)
    mine = vgg19_random(image, LAYERS)
    for name in LAYERS:
        assert torch.allclose(theirs[name], mine[name], rtol=1e-4, atol=1e-5), name
    for name in baseline.style_layers:
        assert torch.allclose(baseline.style_grams[name], ours.objective.style_grams[name][0], rtol=1e-4, atol=1e-7)
    assert torch.allclose(
        baseline.content_targets["relu4_2"], ours.objective.content_targets["relu4_2"], rtol=1e-4, atol=1e-6
    )


def test_baseline_loss_is_mse_of_the_same_features(vgg19_random):
    baseline, ours = _pair(vgg19_random)
    image = smooth_image(32, 48, seed=3)
    content, style = baseline.losses(image)
    mine = vgg19_random(image, LAYERS)
    targets, grams = ours.objective.content_targets, ours.objective.style_grams
    expected_content = torch.nn.functional.mse_loss(mine["relu4_2"], targets["relu4_2"])
    expected_style = sum(
        w * torch.nn.functional.mse_loss(baseline.gram(mine[k]), grams[k][0]) for k, w in baseline.style_layers.items()
    )
    assert content.item() == pytest.approx(expected_content.item(), rel=1e-4)
    assert style.item() == pytest.approx(expected_style.item(), rel=1e-3)


def test_both_steps_give_finite_gradients_of_the_image_shape(vgg19_random):
    baseline, ours = _pair(vgg19_random)
    for step in (baseline, ours):
        loss = step()
        assert torch.isfinite(loss) and loss > 0
        assert step.image.grad.shape == step.image.shape == (1, 3, 32, 48)
        assert torch.isfinite(step.image.grad).all() and step.image.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in baseline.features.parameters())


def test_our_step_matches_stylize_first_loss_and_records_like_it(vgg19_random):
    """The benchmark's step computes (and records, in a Recorder) what stylize's first evaluation does."""
    content, style = smooth_image(32, 48), stripes_image(32, 48)
    ours = OursStep(vgg19_random, content, style, SpeedOptions())
    result = stylize(content, style, model=vgg19_random, steps=1, optimizer="adam", device="cpu", **PLAIN)
    assert ours().item() == pytest.approx(result.history["total"][0], rel=1e-5)
    assert ours.recorder.steps == 1
    assert ours.recorder.history()["style"] == pytest.approx(result.history["style"], rel=1e-5)
    bf16 = stylize(
        content, style, model=vgg19_random, steps=1, optimizer="adam", device="cpu", precision="bf16",
        channels_last=True,
    )  # fmt: skip
    fast = OursStep(vgg19_random, content, style, SpeedOptions(precision="bf16", channels_last=True))
    assert fast().item() == pytest.approx(bf16.history["total"][0], rel=1e-5)
    bare = OursStep(vgg19_random, content, style, SpeedOptions(), bookkeeping=False)
    assert bare().item() == pytest.approx(result.history["total"][0], rel=1e-5) and bare.recorder is None


@pytest.mark.parametrize("native", [False, True])
def test_variants_are_one_option_each_and_defaults_are_stylizes(monkeypatch, native):
    monkeypatch.setattr("nst_helpers.speed.native_bf16", lambda device: native)
    cpu = torch.device("cpu")
    plain = SpeedOptions(**PLAIN)
    assert variant_speed("ours-fp32", cpu) == plain == variant_speed("no-bookkeeping", cpu)
    for name in ("channels-last", "winograd", "bf16", "fp16", "compile"):
        changed = [k for k in PLAIN if getattr(variant_speed(name, cpu), k) != PLAIN[k]]
        assert len(changed) == 1, name
    assert set(OURS) | {"tutorial", "tutorial-frozen", "stylize"} == set(bench.VARIANTS)
    defaults = variant_speed("defaults", cpu)
    assert defaults == resolve_speed(cpu) and defaults.precision == ("bf16" if native else "fp32")


def test_tensor_memory_counts_new_storages_once():
    x = torch.ones(1000)
    with TensorMemory() as tracker:
        y = x * 2  # 4000 bytes
        z = y.view(10, 100)  # a view: nothing new  # noqa: F841
        y.add_(1)  # in place: nothing new
        w = torch.empty(500)  # 2000 more
        del w  # freed
        v = torch.empty(100)  # noqa: F841
    assert tracker.peak == 6000
    assert tracker.current == 4400


def test_saved_for_backward_excludes_frozen_weights(vgg19_random):
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    with saved_for_backward(exclude=list(vgg19_random.parameters()) + list(vgg19_random.buffers())) as saved:
        vgg19_random(x, ["relu1_2"])["relu1_2"].sum()
    # conv1_1's input (the normalised image), relu1_1's output (also conv1_2's input: counted once), relu1_2's
    assert saved["bytes"] == 4 * 32 * 32 * (3 + 64 + 64)


def test_memory_estimate_covers_a_measured_step(vgg19_random):
    content, style = smooth_image(64, 64), stripes_image(64, 64)
    step = OursStep(vgg19_random, content, style, SpeedOptions())
    step()
    with TensorMemory() as tracker:
        step()
    assert estimate_memory(vgg19_random, 64, 64, LAYERS) > tracker.peak
    assert MemoryModel(vgg19_random, LAYERS).largest_size(2**15, 2**15, 16e9) > 1000


def test_memory_model_check_writes_the_stored_format():
    """``bench.py --memory-model`` at a tiny size: the estimate covers a measured stylize() run."""
    report = memory_model([32], ["fp32"], run_sizes=[32], run_steps=3)
    old = stored("cpu-xeon-amx-2cores-memory.json")["memory_model"]
    assert set(report) == set(old)
    for key in ("steps", "runs"):
        assert set(report[key][0]) == set(old[key][0])
    assert report["runs"][0]["estimate_over_measured"] > 1
    assert report["largest_square_px"] == old["largest_square_px"]  # the same model as when it was stored
    assert "MemoryModel.FACTOR = 1.5" in format_memory(report)


def test_peak_table_has_the_common_gpus():
    assert PEAK_TFLOPS["T4"]["fp16"] == 65.0 and PEAK_TFLOPS["A100"]["bf16"] == 312.0
    assert PEAK_TFLOPS["H100 SXM"]["bf16"] == 989.0 and PEAK_TFLOPS["L4"]["bf16"] == 121.0


def test_cli_writes_json_and_a_table(tmp_path, capsys):
    out = tmp_path / "bench.json"
    args = ["--sizes", "32", "--repeats", "1", "--warmup", "1", "--quiet", "--json", str(out)]
    code = bench.main(args + ["--variants", "tutorial", "tutorial-frozen", "ours-fp32", "defaults"])
    assert code == 0
    report = json.loads(out.read_text())
    old = stored("cpu-xeon-amx-2cores.json")
    assert set(report) == set(old) and set(report["machine"]) == set(old["machine"])
    assert set(report["settings"]) == set(old["settings"]) and report["command"].startswith("python benchmarks/")
    assert report["machine"]["torch_threads"] >= 1 and report["settings"]["baseline"] == "tutorial-frozen"
    rows = {r["variant"]: r for r in report["results"]}
    assert set(rows) == {"tutorial", "tutorial-frozen", "ours-fp32", "defaults"}
    for row in rows.values():
        assert set(row) == set(old["results"][0])
        assert row["size"] == 32 and row["median_s"] > 0 and len(row["times_s"]) == 1
    assert rows["tutorial-frozen"]["speedup"] == 1.0
    assert rows["tutorial"]["gflop"] > rows["tutorial-frozen"]["gflop"] > rows["ours-fp32"]["gflop"]
    printed = capsys.readouterr().out
    assert "| cpu | 32 | ours-fp32 |" in printed and "wrote" in printed
    assert bench.format_table(report["results"]).count("\n") == 5


def test_runs_as_a_script():
    """``python benchmarks/bench.py`` finds its sibling modules without any installation."""
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench.py"), "--help"], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert "--memory-model" in done.stdout and "--compare" in done.stdout


def test_layer_profile_times_implementations_that_compute_the_same_thing():
    """benchmarks/layers.py compares oneDNN NCHW, oneDNN NHWC and NNPACK: they must agree, forward and input
    gradient (NNPACK's is a convolution with the transposed, flipped kernel), or the table compares nothing."""
    import layers

    torch.manual_seed(0)
    weight, bias = torch.randn(16, 8, 3, 3) * 0.1, torch.randn(16)
    x = torch.randn(1, 8, 12, 12, requires_grad=True)
    out = torch.nn.functional.conv2d(x, weight, bias, padding=1)
    grad = torch.randn_like(out)
    (reference,) = torch.autograd.grad(out, x, grad)
    assert torch.allclose(layers._input_grad(grad, x.detach(), weight), reference, atol=1e-5)
    for piece, ops in layers.conv_ops(weight, bias, 12, 12).items():
        results = {impl: op() for impl, op in ops.items()}
        assert set(results) >= {"onednn", "onednn-nhwc"}
        for impl, value in results.items():
            assert torch.allclose(value, results["onednn"], atol=1e-4), (piece, impl)


def test_layer_profile_writes_a_row_per_shape_and_direction(tmp_path, capsys):
    import layers

    out = tmp_path / "layers.json"
    report = layers.main(["--sizes", "32", "--repeats", "1", "--warmup", "0", "--step-repeats", "1", "--quiet",
                          "--json", str(out)])  # fmt: skip
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    rows = report["rows"]
    convs = [r for r in rows if r["piece"] in ("forward", "input-grad")]
    # VGG19 up to relu5_1: 13 convolutions in 7 distinct shapes (conv3_2..4 alike, conv4_2..4 alike, ...)
    assert sum(r["count"] for r in convs if r["piece"] == "forward") == 13
    assert {r["piece"] for r in convs} == {"forward", "input-grad"}
    assert sum(r["count"] for r in rows if r["piece"] == "pool forward") == 4
    assert {r["layers"][0] for r in rows if r["piece"] == "gram forward"} == set(layers.STYLE_LAYERS)
    for row in rows:
        assert row["best"] in row["median_s"] and all(t > 0 for t in row["median_s"].values())
    totals = report["totals"]["32"]
    assert totals["best"] <= min(totals["onednn"], totals["fastconv"])
    assert {"tutorial-frozen", "ours-fp32"} <= set(report["steps"]["32"])
    assert "32 px, sum of the parts" in capsys.readouterr().out
