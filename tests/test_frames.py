"""Tests for nst_helpers.frames: a bounded, evenly thinned buffer of snapshots for replays."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nst_helpers import Frame, FrameBuffer


def _run(buffer: FrameBuffer, steps: int) -> list[Frame]:
    """Offer every step of a run of ``steps`` evaluations as the Recorder does, then the last image."""
    row = torch.zeros(4)
    for step in range(1, steps + 1):
        if buffer.wants(step):
            buffer.add(step, torch.full((1, 3, 2, 2), step / steps), row + step)
    buffer.add(steps, torch.ones(1, 3, 2, 2), row + steps)  # the final image, offered again at the end
    return buffer.frames()


@settings(max_examples=200, deadline=None)
@given(steps=st.integers(1, 5000), every=st.integers(1, 30), cap=st.integers(2, 60))
def test_frame_count_is_bounded_for_any_run_length_and_spacing_stays_even(steps, every, cap):
    frames = _run(FrameBuffer(every, max_frames=cap), steps)
    kept = [frame.step for frame in frames]
    assert len(kept) <= cap
    assert kept[0] == 1 and kept[-1] == steps and kept == sorted(set(kept))
    inner = kept[1:-1]  # between the first step and the final image: one interval, a multiple of the start one
    gaps = {b - a for a, b in zip(inner, inner[1:])}
    assert len(gaps) <= 1 and all(gap % every == 0 for gap in gaps)
    if steps >= every * cap:  # long runs fill at least half the buffer after thinning
        assert len(kept) >= cap // 2


def test_thinning_drops_every_other_frame_and_doubles_the_interval():
    buffer = FrameBuffer(every=2, max_frames=4)
    for step in (1, 2, 4, 6):
        assert buffer.wants(step)
        buffer.add(step, torch.zeros(1, 3, 2, 2), torch.zeros(4))
    assert not buffer.wants(7) and buffer.wants(8)
    buffer.add(8, torch.zeros(1, 3, 2, 2), torch.zeros(4))  # full: thin to 1, 4, then add 8
    assert [frame.step for frame in buffer.frames()] == [1, 4, 8] and buffer.every == 4
    assert not buffer.wants(10) and buffer.wants(12)


def test_frames_are_shrunk_to_the_side_cap_as_uint8_with_their_losses():
    buffer = FrameBuffer(every=1, max_side=64)
    image = torch.rand(1, 3, 300, 200) * 3 - 1  # out of range on purpose: the frame is clamped
    buffer.add(1, image, torch.tensor([1.0, 2.0, 0.5, 3.5]), scale=2)
    (frame,) = buffer.frames()
    assert frame.image.dtype == torch.uint8 and tuple(frame.image.shape) == (3, 64, 43)
    assert frame.losses == {"content": 1.0, "style": 2.0, "tv": 0.5, "total": 3.5}
    assert frame.scale == 2 and frame.step == 1
    assert frame.as_float().shape == (1, 3, 64, 43) and 0 <= frame.as_float().min() <= frame.as_float().max() <= 1


def test_a_small_frame_is_kept_pixel_for_pixel_and_nan_pixels_do_not_break_it():
    image = torch.rand(1, 3, 5, 7)
    image[0, 0, 0, 0] = float("nan")
    buffer = FrameBuffer(every=1)
    buffer.add(1, image, torch.zeros(4))
    stored = buffer.frames()[0].image
    expected = (torch.nan_to_num(image, nan=0.0)[0] * 255).round().to(torch.uint8)
    assert torch.equal(stored, expected)


def test_a_step_is_kept_once():
    buffer = FrameBuffer(every=1)
    buffer.add(3, torch.zeros(1, 3, 2, 2), torch.zeros(4))
    buffer.add(3, torch.ones(1, 3, 2, 2), torch.zeros(4))
    assert len(buffer) == 1 and not buffer.wants(3) and buffer.frames()[0].image.max() == 0


@pytest.mark.parametrize("arguments", [(0,), (1, 1), (1, 10, 0)])
def test_nonsense_limits_are_refused(arguments):
    with pytest.raises(ValueError, match="need every"):
        FrameBuffer(*arguments)
