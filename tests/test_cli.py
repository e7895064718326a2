import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from conftest import ROOT, smooth_image, stripes_image
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
    code = main([str(pair[0]), str(pair[1]), "-o", str(out), "--size", "48", "--steps", "6", "--quiet",
                 "--optimizer", "adam", "--style-weight", "5", "--init", "noise", "--seed", "1", "--device", "cpu"])
    assert code == 0
    assert Image.open(out).size == (48, 36)
    assert "wrote" in capsys.readouterr().out
    assert load_image(out, max_size=None).std() > 0.01


def test_cli_bad_input_is_one_line_without_traceback(tmp_path):
    env = {**os.environ, "NST_WEIGHTS": "random", "PYTHONPATH": str(ROOT)}
    missing = subprocess.run([sys.executable, "-m", "nst_helpers", str(tmp_path / "nope.jpg"), "starry_night",
                              "-o", str(tmp_path / "x.png"), "--size", "32", "--steps", "1"],
                             capture_output=True, text=True, env=env, timeout=120)
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
    code = main([str(pair[0]), str(pair[1]), "-o", str(blocker / "out.png"), "--size", "32", "--steps", "2",
                 "--quiet", "--device", "cpu"])
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
    assert err == ("error: No such file or sample image: 'starry_nite'. Did you mean the sample 'starry_night'? "
                   "List the samples with: python -m nst_helpers --list\n")
    assert _misspelt_sample("starry_night") is None and _misspelt_sample("starry_night.jpg") is None  # samples
    assert _misspelt_sample("photos/starry_nite.jpg") is None  # a path: the loader's message says more
    assert _misspelt_sample("holiday_photo.jpg") is None  # nothing close
    (tmp_path / "starry_nite").write_bytes(b"")
    assert _misspelt_sample("starry_nite") is None  # an existing file wins
