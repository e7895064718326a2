"""Tests for nst_helpers.animation: a replay's pictures, the GIF (always) and the MP4 (with ffmpeg)."""

import shutil
import subprocess

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import fake_replay
from nst_helpers import Frame, ReplayRenderer, SettingsError, save_animation

HAS_FFMPEG = shutil.which("ffmpeg") is not None


def _gif_frames(path):
    with Image.open(path) as gif:
        pictures = []
        for index in range(gif.n_frames):
            gif.seek(index)
            pictures.append(np.asarray(gif.convert("RGB")))
    return pictures


def test_gif_has_one_picture_per_recorded_frame_at_the_frame_size(tmp_path):
    result = fake_replay(count=7, height=24, width=32)
    path = save_animation(result, tmp_path / "sub" / "run.gif", fps=5, with_losses=False)
    pictures = _gif_frames(path)
    assert len(pictures) == 7
    assert all(picture.shape == (24, 32, 3) for picture in pictures)
    for index, picture in enumerate(pictures):  # frame i is the i-th recorded picture, in order
        assert abs(float(picture[..., 0].mean()) - 40 * index) < 3 and abs(float(picture[..., 2].mean()) - 200) < 3
    with Image.open(path) as gif:
        assert gif.info["duration"] == 200 and gif.info.get("loop") == 0


def test_gif_with_the_loss_curve_is_taller_and_every_frame_has_the_same_size(tmp_path):
    result = fake_replay(count=5, height=24, width=32)
    expected = ReplayRenderer(result).rgb(0).shape
    pictures = _gif_frames(save_animation(result, tmp_path / "run.gif"))
    assert len(pictures) == 5 and {picture.shape for picture in pictures} == {expected}
    assert expected[0] > expected[1] > 32  # curves below the (enlarged) picture


def test_the_marker_moves_with_the_frame():
    renderer = ReplayRenderer(fake_replay(count=4))
    curves = [renderer.rgb(index)[-180:] for index in range(4)]  # the bottom: the loss axes
    assert all(not np.array_equal(curves[0], other) for other in curves[1:])
    assert np.array_equal(renderer.rgb(2), renderer.rgb(2))  # drawing is repeatable
    assert renderer.title(2).startswith(f"step {renderer.frames[2].step}/30")


def test_frames_of_several_pyramid_levels_are_shown_at_the_last_size():
    result = fake_replay(count=3, height=24, width=32)
    result.frames[0] = Frame(1, torch.zeros(3, 12, 16, dtype=torch.uint8), result.frames[0].losses, scale=0)
    result.frames[1].scale = result.frames[2].scale = 1
    renderer = ReplayRenderer(result, with_losses=False)
    assert renderer.picture(0).shape == (24, 32, 3)
    assert "level 0" in renderer.title(0) and "level 1" in renderer.title(2)


def test_a_result_without_frames_says_how_to_record_them(tmp_path):
    result = fake_replay()
    result.frames = []
    with pytest.raises(SettingsError, match="record_every"):
        save_animation(result, tmp_path / "run.gif")


@pytest.mark.parametrize(("name", "fps", "match"), [("run.avi", 10, "gif or .mp4"), ("run", 10, "without suffix"),
                                                    ("run.gif", 0, "fps"), ("run.gif", True, "fps")])  # fmt: skip
def test_bad_paths_and_rates_are_refused(tmp_path, name, fps, match):
    with pytest.raises(SettingsError, match=match):
        save_animation(fake_replay(), tmp_path / name, fps=fps)


def test_mp4_without_ffmpeg_says_what_to_install(tmp_path, monkeypatch):
    from matplotlib import animation

    monkeypatch.setattr(animation.writers, "is_available", lambda name: False)
    with pytest.raises(SettingsError, match=r"needs ffmpeg.*apt-get install ffmpeg.*\.gif"):
        save_animation(fake_replay(), tmp_path / "run.mp4")
    assert not (tmp_path / "run.mp4").exists()


@pytest.mark.skipif(not HAS_FFMPEG, reason="ffmpeg is not installed (apt-get install ffmpeg): the MP4 path needs it")
def test_mp4_is_written_with_even_sides(tmp_path):
    result = fake_replay(count=4, height=25, width=33)  # odd sides: padded for H.264
    path = save_animation(result, tmp_path / "run.mp4", fps=4, with_losses=False)
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries",
         "stream=width,height,nb_read_frames", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    width, height, frames = (int(value) for value in probe.split(","))
    assert (width, height) == (34, 26)
    assert frames == 3 + 4  # the last frame held for a second (fps frames)
