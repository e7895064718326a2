import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import nst_helpers.transfer as transfer_module
from helpers import ROOT, image_bytes, smooth_image, stripes_image
from nst_helpers import load_image, save_image
from nst_helpers.__main__ import main


@pytest.fixture
def pair(tmp_path):
    content, style = tmp_path / "content.png", tmp_path / "style.jpg"
    save_image(smooth_image(48, 64), content)
    save_image(stripes_image(40, 40), style)
    return content, style


def test_cli_end_to_end(pair, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NST_WEIGHTS", "random")
    out = tmp_path / "out" / "result.png"
    code = main(
        [
            str(pair[0]),
            str(pair[1]),
            "-o",
            str(out),
            "--size",
            "48",
            "--steps",
            "6",
            "--quiet",
            "--optimizer",
            "adam",
            "--style-weight",
            "5",
            "--init",
            "noise",
            "--seed",
            "1",
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    assert Image.open(out).size == (48, 36)
    assert "wrote" in capsys.readouterr().out
    assert load_image(out, max_size=None).std() > 0.01


def test_cli_bad_input_is_one_line_without_traceback(tmp_path):
    env = {**os.environ, "NST_WEIGHTS": "random", "PYTHONPATH": str(ROOT)}
    missing = subprocess.run(
        [
            sys.executable,
            "-m",
            "nst_helpers",
            str(tmp_path / "nope.jpg"),
            "starry_night",
            "-o",
            str(tmp_path / "x.png"),
            "--size",
            "32",
            "--steps",
            "1",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert missing.returncode == 2
    assert missing.stderr.startswith("error: No such file") and "Traceback" not in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1


def test_cli_refuses_bad_settings(pair, monkeypatch, capsys):
    monkeypatch.setenv("NST_WEIGHTS", "random")
    assert main([str(pair[0]), str(pair[1]), "--steps", "0", "--quiet"]) == 2
    assert "steps must be" in capsys.readouterr().err


def test_cli_unwritable_output_saves_elsewhere(pair, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NST_WEIGHTS", "random")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    code = main(
        [
            str(pair[0]),
            str(pair[1]),
            "-o",
            str(blocker / "out.png"),
            "--size",
            "32",
            "--steps",
            "2",
            "--quiet",
            "--device",
            "cpu",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "Saved it to" in err
    saved = Path(err.split("Saved it to ")[1].split(" instead")[0])
    assert saved.is_file()


def test_cli_lists_samples(capsys):
    assert main(["--list"]) == 0
    assert "starry_night" in capsys.readouterr().out


def test_cli_suggests_the_sample_a_misspelt_name_meant(tmp_path, monkeypatch, capsys):
    from nst_helpers.__main__ import _misspelt_sample

    monkeypatch.chdir(tmp_path)
    assert main(["tubingen", "starry_nite", "-o", "x.png", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "error: No such file or sample image: 'starry_nite'. Did you mean the sample 'starry_night'? "
        "List the samples with: python -m nst_helpers --list\n"
    )
    assert _misspelt_sample("starry_night") is None and _misspelt_sample("starry_night.jpg") is None  # samples
    assert _misspelt_sample("photos/starry_nite.jpg") is None  # a path: the loader's message says more
    assert _misspelt_sample("holiday_photo.jpg") is None  # nothing close
    (tmp_path / "starry_nite").write_bytes(b"")
    assert _misspelt_sample("starry_nite") is None  # an existing file wins


# --------------------------------------------------------------------------- bad input: one line, exit 2


def _write_bad_input(folder, kind: str, server: str) -> str:
    """A bad image of the given kind, as a user would pass it on the command line."""
    path = folder / f"{kind}.jpg"
    if kind == "missing":
        return str(path)
    if kind == "folder":
        return str(folder)
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "html":
        path.write_bytes(b"<!DOCTYPE html><html><body>Gallery</body></html>")
    elif kind == "truncated":
        array = (np.random.default_rng(0).random((32, 48, 3)) * 255).astype(np.uint8)
        path.write_bytes(image_bytes(Image.fromarray(array), "JPEG")[:300])
    elif kind == "bomb":
        path = folder / "bomb.png"
        Image.new("L", (200, 100)).save(path)  # 20,000 px, over twice the limit the test sets
    elif kind == "thin":
        path = folder / "thin.png"
        Image.new("RGB", (4000, 3), (10, 20, 30)).save(path)
    elif kind == "url_404":
        return f"{server}/missing.jpg"
    elif kind == "url_html":
        return f"{server}/page.html"
    elif kind == "misspelt_sample":
        return "starry_nite"
    return str(path)


_CLI_BAD_INPUTS = {
    "missing": r"error: No such file: .*missing\.jpg \(current folder: .*list_samples",
    "folder": "error: .* is a folder; give the path of an image file inside it",
    "empty": r"error: .*empty\.jpg is empty \(0 bytes\); re-download",
    "html": "error: .*html.jpg is a text or HTML file, not an image",
    "truncated": "error: .*truncated.jpg could not be decoded .*truncated or corrupt. Re-download",
    "bomb": "error: .*bomb.png is 0.02 megapixels, more than twice .*PIL.Image.MAX_IMAGE_PIXELS = None",
    "thin": "error: The (content|style) image is 1x64 px after resizing, but the deepest layer needs at least 16 px",
    "url_404": r"error: The server answered HTTP 404 \(Not Found\)",
    "url_html": r"error: .*page.html returned a web page",
    "misspelt_sample": "error: No such file or sample image: 'starry_nite'. Did you mean the sample 'starry_night'",
}


@pytest.mark.parametrize("role", ["content", "style"])
@pytest.mark.parametrize("kind", list(_CLI_BAD_INPUTS))
def test_command_line_bad_image_is_exit_2_and_one_line(
    tmp_path, vgg19_random, local_server, monkeypatch, capsys, kind, role
):
    if kind == "bomb":  # a 200x100 PNG stands in for a real bomb
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5_000)
    monkeypatch.setattr(transfer_module, "load_vgg", lambda **kwargs: vgg19_random)  # no download, no file
    good = tmp_path / "good.png"
    save_image(smooth_image(), good)
    bad = _write_bad_input(tmp_path, kind, local_server)
    pair = [bad, str(good)] if role == "content" else [str(good), bad]
    out = tmp_path / "out.png"
    code = main(pair + ["-o", str(out), "--size", "64", "--steps", "2", "--quiet", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert re.search(_CLI_BAD_INPUTS[kind], err), err


def test_command_line_size_too_large_to_load_is_refused_before_the_weights(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5_000)  # stands in for size=40000 with the real limit
    monkeypatch.setattr(transfer_module, "load_vgg", lambda **kwargs: pytest.fail("weights loaded"))
    save_image(smooth_image(16, 16), tmp_path / "c.png")
    code = main(
        [
            str(tmp_path / "c.png"),
            str(tmp_path / "c.png"),
            "-o",
            str(tmp_path / "out.png"),
            "--size",
            "200",
            "--quiet",
            "--device",
            "cpu",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("error: Enlarging a 16x16 px image to 200x200 px") and "Use a smaller size" in err


def test_bad_sizes_in_the_command_line_are_one_line_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NST_WEIGHTS", "random")
    save_image(smooth_image(), tmp_path / "c.png")
    for flag, value in (("--size", "-5"), ("--steps", "-1"), ("--style-weight", "-3")):
        assert main([str(tmp_path / "c.png"), str(tmp_path / "c.png"), flag, value, "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_interrupt_before_the_run_starts_is_exit_130_with_nothing_written(pair, tmp_path, monkeypatch, capsys):
    """Ctrl-C while the weights load: nothing to save, the shell's interrupt status (documented in __main__)."""

    def interrupted_loading(**kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(transfer_module, "load_vgg", interrupted_loading)
    out = tmp_path / "never.png"
    assert main([str(pair[0]), str(pair[1]), "-o", str(out), "--size", "32", "--quiet", "--device", "cpu"]) == 130
    assert not out.exists()
    assert "interrupted before the optimisation started" in capsys.readouterr().err
    import nst_helpers.__main__ as cli

    assert "130" in cli.__doc__


def test_cli_blends_styles_with_masks_and_keeps_colours(pair, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NST_WEIGHTS", "random")
    second = tmp_path / "second.png"
    save_image(smooth_image(30, 50, seed=4), second)
    top, bottom = tmp_path / "top.png", tmp_path / "bottom.png"
    mask = Image.new("L", (64, 48), 0)
    mask.paste(255, (0, 0, 64, 24))
    mask.save(top)
    Image.eval(mask, lambda value: 255 - value).save(bottom)
    out = tmp_path / "blend.png"
    common = [str(pair[0]), str(pair[1]), str(second), "--size", "48", "--steps", "4", "--quiet", "--device", "cpu"]
    options = ["--style-blend", "0.7,0.3", "--style-masks", f"{top},{bottom}", "--preserve-colors", "luminance"]
    assert main([*common, "-o", str(out), *options]) == 0
    assert Image.open(out).size == (48, 36) and "wrote" in capsys.readouterr().out
    monkeypatch.chdir(tmp_path)
    assert main([*common, "--preserve-colors", "histogram"]) == 0  # default name joins the styles
    assert (tmp_path / "outputs" / "content_style+second.png").is_file()


@pytest.mark.parametrize(
    "options, message",
    [
        (["--style-blend", "0.7"], "error: style_blend has 1 entries but there are 2 style images"),
        (["--style-blend", "0.7,x"], "error: --style-blend takes numbers separated by commas"),
        (["--style-blend", "0,0"], "error: style_blend weights are all 0"),
        (["--style-blend", "1,-1"], "error: style_blend[1] must be a finite number ≥ 0"),
        (["--style-masks", "MASK"], "error: style_masks has 1 entries but there are 2 style images"),
        (["--style-masks", "COLOUR,MASK"], "error: style mask #1 ("),
        (["--style-masks", "SQUARE,MASK"], "aspect 1.00) but the content image is 64x48"),
    ],
)
def test_cli_bad_blends_and_masks_are_one_line_errors(pair, tmp_path, monkeypatch, capsys, options, message):
    monkeypatch.setenv("NST_WEIGHTS", "random")
    files = {"MASK": tmp_path / "mask.png", "COLOUR": tmp_path / "colour.png", "SQUARE": tmp_path / "square.png"}
    Image.new("L", (64, 48), 255).save(files["MASK"])
    Image.new("RGB", (64, 48), (200, 30, 30)).save(files["COLOUR"])
    Image.new("L", (48, 48), 255).save(files["SQUARE"])
    for name, path in files.items():
        options = [option.replace(name, str(path)) for option in options]
    args = [str(pair[0]), str(pair[1]), str(pair[1]), "--size", "64", "--steps", "1", "--quiet", "--device", "cpu"]
    assert main([*args, *options]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cli_refuses_an_unknown_preserve_colors_value(pair, capsys):
    with pytest.raises(SystemExit) as stopped:
        main([str(pair[0]), str(pair[1]), "--preserve-colors", "yuv"])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and "invalid choice: 'yuv'" in err and "Traceback" not in err


def test_cli_writes_an_animation_of_the_run(pair, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NST_WEIGHTS", "random")
    out, gif = tmp_path / "result.png", tmp_path / "replay" / "run.gif"
    args = [str(pair[0]), str(pair[1]), "-o", str(out), "--size", "32", "--steps", "6", "--quiet", "--device", "cpu"]
    assert main([*args, "--animation", str(gif), "--record-every", "2"]) == 0
    with Image.open(gif) as replay:
        assert replay.n_frames == 4  # steps 1, 2, 4, 6
    assert f"wrote {gif} (4 frames)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("name", "extra", "match"),
    [("run.webm", [], "gif or .mp4"), ("run.mp4", [], "needs ffmpeg"), ("run.gif", ["--record-every", "0"], "≥ 1")],
)
def test_cli_refuses_an_animation_it_cannot_write_before_running(
    pair, tmp_path, monkeypatch, capsys, name, extra, match
):
    from matplotlib import animation

    monkeypatch.setattr(animation.writers, "is_available", lambda writer: False)
    monkeypatch.setattr(transfer_module, "Objective", None)  # the run must not start
    out = tmp_path / "out.png"
    code = main([str(pair[0]), str(pair[1]), "-o", str(out), "--animation", str(tmp_path / name), *extra])
    error = capsys.readouterr().err
    assert code == 2 and error.startswith("error: ") and match in error and len(error.strip().splitlines()) == 1


def test_cli_paints_coarse_to_fine_and_says_the_plan_before_running(pair, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NST_WEIGHTS", "random")
    out = tmp_path / "pyramid.png"
    args = [str(pair[0]), str(pair[1]), "-o", str(out), "--size", "64", "--device", "cpu", "--precision", "fp32"]
    assert main([*args, "--scales", "32", "--scale-steps", "2,2", "--style-scale", "0.5"]) == 0
    captured = capsys.readouterr()
    assert "2 scales: 24x32 px (2 steps, " in captured.err and "→ 48x64 px (2, " in captured.err
    assert "peak memory (fp32, estimated)" in captured.err and "4 steps in" in captured.out
    assert Image.open(out).size == (64, 48)


@pytest.mark.parametrize(
    "options, message",
    [
        (["--scales", "big"], "error: --scales takes auto, none or sizes in px joined by commas"),
        (["--scales", "32", "--scale-steps", "2,x"], "error: --scale-steps takes whole numbers separated by commas"),
        (["--scales", "128"], "error: scales [128] are larger than the final size 64 px"),
        (["--scales", "32", "--scale-steps", "2"], "error: scale_steps has 1 entries but the run has 2 levels"),
        (["--style-scale", "0"], "error: style_scale must be > 0"),
    ],
)
def test_cli_bad_scales_are_one_line_errors(pair, monkeypatch, capsys, options, message):
    monkeypatch.setenv("NST_WEIGHTS", "random")
    args = [str(pair[0]), str(pair[1]), "--size", "64", "--steps", "2", "--quiet", "--device", "cpu"]
    assert main([*args, *options]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
