"""Tests for nst_helpers.recorder: loss rows, best image and non-finite steps, kept on the device."""

import math

import torch

from nst_helpers import Recorder


def test_records_rows_totals_and_the_best_image():
    start = torch.zeros(1, 3, 4, 4)
    recorder = Recorder(start)
    images = [torch.full_like(start, value) for value in (0.1, 0.2, 0.3)]
    for terms, image in zip(([1.0, 2.0, 0.0], [0.5, 0.5, 0.25], [1.0, 1.0, 1.0]), images):
        total = recorder.record(torch.tensor(terms), image)
        assert total.item() == sum(terms)
    assert recorder.steps == 3
    assert recorder.history() == {
        "content": [1.0, 0.5, 1.0],
        "style": [2.0, 0.5, 1.0],
        "tv": [0.0, 0.25, 1.0],
        "total": [3.0, 1.25, 3.0],
    }
    assert int(recorder.best_step) == 2 and float(recorder.best_loss) == 1.25
    assert torch.equal(recorder.best_image, images[1]) and torch.equal(recorder.last_image, images[2])
    assert recorder.latest() == {"content": 1.0, "style": 1.0, "tv": 1.0, "total": 3.0}
    assert start.eq(0).all()  # the start image is copied, not written to


def test_non_finite_steps_are_found_and_never_best():
    recorder = Recorder(torch.zeros(1, 3, 2, 2))
    assert recorder.last_total_is_finite() and recorder.first_non_finite_step() is None
    assert recorder.history()["total"] == [] and recorder.latest() == {}
    recorder.record(torch.tensor([1.0, 1.0, 0.0]), torch.ones(1, 3, 2, 2))
    recorder.record(torch.tensor([math.nan, 1.0, 0.0]), torch.full((1, 3, 2, 2), 5.0))
    recorder.record(torch.tensor([math.inf, 1.0, 0.0]), torch.full((1, 3, 2, 2), 7.0))
    assert not recorder.last_total_is_finite() and recorder.first_non_finite_step() == 2
    assert int(recorder.best_step) == 1 and recorder.best_image.eq(1).all()


def test_frames_are_taken_only_at_the_steps_the_buffer_wants_and_replay_ends_with_the_last_image():
    from nst_helpers import FrameBuffer

    recorder = Recorder(torch.zeros(1, 3, 2, 2), FrameBuffer(every=2))
    for step in range(1, 6):
        recorder.record(torch.tensor([0.0, float(step), 0.0]), torch.full((1, 3, 2, 2), step / 10))
    frames = recorder.replay()
    assert [frame.step for frame in frames] == [1, 2, 4, 5]
    assert [frame.losses["style"] for frame in frames] == [1.0, 2.0, 4.0, 5.0]
    assert [int(frame.image[0, 0, 0]) for frame in frames] == [26, 51, 102, 128]  # round(255 * step / 10)
    assert Recorder(torch.zeros(1, 3, 2, 2)).replay() == []


def test_replay_leaves_out_a_last_image_whose_loss_is_not_finite():
    from nst_helpers import FrameBuffer

    recorder = Recorder(torch.zeros(1, 3, 2, 2), FrameBuffer(every=5))
    recorder.record(torch.tensor([1.0, 1.0, 0.0]), torch.ones(1, 3, 2, 2))
    recorder.record(torch.tensor([math.nan, 1.0, 0.0]), torch.full((1, 3, 2, 2), math.nan))
    assert [frame.step for frame in recorder.replay()] == [1]
