"""Tests for nst_helpers.optimizers: chunks of evaluations, the clamp and its L-BFGS correction."""

import pytest
import torch

from nst_helpers.lbfgs import DeviceLBFGS
from nst_helpers.optimizers import BudgetSpent, clamp_keeping_lbfgs_consistent, make_optimizer, run_chunk


def test_clamp_between_lbfgs_calls_corrects_the_stored_step():
    """After a clamp, L-BFGS's stored last step t·d must end where the point now is (else: a wrong curvature pair)."""
    target = torch.tensor([1.5, -0.5, 0.3, 0.7])  # half of the optimum lies outside [0, 1]
    x = torch.full((4,), 0.5, requires_grad=True)
    optimizer = torch.optim.LBFGS([x], lr=1.0, max_iter=3, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = (x - target).square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    state = optimizer.state[x]
    step_end = x.detach().clone()
    start = step_end - state["t"] * state["d"]  # where the last step began
    clamp_keeping_lbfgs_consistent(optimizer, x)
    assert x.min() >= 0 and x.max() <= 1 and not torch.equal(x.detach(), step_end)  # the clamp did move it
    assert torch.allclose(start + state["t"] * state["d"], x.detach(), atol=1e-6)
    optimizer.step(closure)  # and L-BFGS carries on from there
    assert torch.isfinite(x).all()


@pytest.mark.parametrize("name", ["lbfgs", "adam"])
def test_a_chunk_spends_at_most_its_evaluations_and_leaves_pixels_in_range(name):
    target = torch.tensor([1.5, -0.5, 0.3, 0.7])
    x = torch.full((4,), 0.5, requires_grad=True)
    optimizer = make_optimizer(name, x, lr=0.5 if name == "adam" else 1.0, chunk=5)
    evaluations = []

    def evaluate():
        if len(evaluations) >= 5:
            raise BudgetSpent
        optimizer.zero_grad()
        loss = (x - target).square().sum()
        loss.backward()
        evaluations.append(loss.item())
        return loss

    run_chunk(optimizer, evaluate, x, 5)
    assert 1 <= len(evaluations) <= 5 and evaluations[-1] < evaluations[0]
    assert x.min() >= 0 and x.max() <= 1
    assert isinstance(optimizer, DeviceLBFGS if name == "lbfgs" else torch.optim.Adam)


@pytest.mark.parametrize("name, most", [("lbfgs", 0.5), ("adam", 1.5)])
def test_the_loop_reads_almost_nothing_back_from_the_device(vgg19_random, name, most):
    """Host syncs (aten::_local_scalar_dense: .item(), float(t), if t) per evaluation of a whole stylize run.

    Before nst_helpers.lbfgs, torch.optim.LBFGS with its line search made 58.7 per evaluation here. What is
    left: the loss rows read at preview points, and Adam's step counter on the CPU (on CUDA it is capturable).
    """
    from torch.profiler import ProfilerActivity, profile

    from helpers import smooth_image, stripes_image
    from nst_helpers import stylize

    content, style = smooth_image(32, 32), stripes_image(32, 32)
    settings = dict(model=vgg19_random, optimizer=name, device="cpu", preview_every=20)
    stylize(content, style, steps=3, **settings)  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as trace:
        result = stylize(content, style, steps=60, **settings)
    syncs = sum(event.count for event in trace.key_averages() if event.key == "aten::_local_scalar_dense")
    assert result.steps == 60 and syncs / result.steps <= most, syncs
