"""Tests for nst_helpers.replay_widget: the slider scrubs through a recorded run (headless ipywidgets)."""

import pytest

pytest.importorskip("ipywidgets", reason="the replay slider needs ipywidgets (pip install ipywidgets)")

from helpers import fake_replay  # noqa: E402
from nst_helpers import ReplayRenderer, SettingsError  # noqa: E402
from nst_helpers.replay_widget import ReplaySlider  # noqa: E402


def test_slider_shows_frame_i_with_its_step_and_losses():
    result = fake_replay(count=5)
    replay = ReplaySlider(result)
    renderer = ReplayRenderer(result)
    assert replay.slider.max == replay.play.max == 4 and replay.index == 4  # opens on the result
    assert replay.image.value == renderer.png(4)
    for index in (0, 2, 1):
        replay.slider.value = index  # what dragging the slider does
        assert replay.image.value == renderer.png(index)
        assert f"frame {index + 1}/5 · step {result.frames[index].step} ·" in replay.label.value
    assert replay.image.value != renderer.png(0)
    replay.show(-1)
    assert replay.index == 4 and replay.image.value == renderer.png(4)


def test_slider_without_curves_shows_the_picture_alone():
    result = fake_replay(count=3, height=24, width=32)
    replay = ReplaySlider(result, with_losses=False)
    replay.show(0)
    assert replay.image.value == ReplayRenderer(result, with_losses=False).png(0)


def test_slider_of_a_run_without_frames_says_how_to_record_them():
    result = fake_replay()
    result.frames = []
    with pytest.raises(SettingsError, match="record_every"):
        ReplaySlider(result)
