"""Tests for nst_helpers.optimizers: chunks of evaluations, the clamp and its L-BFGS correction."""

import pytest
import torch

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
    assert isinstance(optimizer, torch.optim.LBFGS if name == "lbfgs" else torch.optim.Adam)
