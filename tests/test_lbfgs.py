"""Tests for nst_helpers.lbfgs: the same iterates as torch.optim.LBFGS, without host syncs."""

import copy
import math

import torch
from torch.profiler import ProfilerActivity, profile

from helpers import smooth_image, stripes_image
from nst_helpers import content_loss, gram_matrix, layer_style_loss
from nst_helpers.lbfgs import DeviceLBFGS


def _torch_lbfgs(x, max_iter, history_size):
    """The reference: torch's L-BFGS without line search and with its stopping tests switched off."""
    return torch.optim.LBFGS(
        [x],
        lr=1.0,
        max_iter=max_iter,
        history_size=history_size,
        line_search_fn=None,
        tolerance_grad=-math.inf,
        tolerance_change=-math.inf,
    )


def _iterates(make_optimizer, loss_of, start, calls, max_iter, history_size):
    x = start.clone().requires_grad_(True)
    optimizer = make_optimizer(x, max_iter, history_size)

    def closure():
        optimizer.zero_grad()
        loss = loss_of(x)
        loss.backward()
        return loss

    points = []
    for _ in range(calls):
        optimizer.step(closure)
        points.append(x.detach().clone())
    return points


def _device_lbfgs(x, max_iter, history_size):
    return DeviceLBFGS([x], lr=1.0, max_iter=max_iter, history_size=history_size)


def _quadratic(n=40, seed=0):
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(n, n, generator=generator, dtype=torch.float64)
    a = a @ a.T / n + 0.1 * torch.eye(n, dtype=torch.float64)
    b = torch.randn(n, generator=generator, dtype=torch.float64)
    return lambda x: 0.5 * x @ a @ x - b @ x


def test_same_iterates_as_torch_on_a_quadratic_also_after_the_memory_wraps_around():
    loss_of, start = _quadratic(), torch.zeros(40, dtype=torch.float64)
    # 6 calls x 7 iterations with a memory of 5 pairs: the ring buffer is overwritten many times.
    reference = _iterates(_torch_lbfgs, loss_of, start, calls=6, max_iter=7, history_size=5)
    ours = _iterates(_device_lbfgs, loss_of, start, calls=6, max_iter=7, history_size=5)
    for theirs, mine in zip(reference, ours):
        assert torch.allclose(theirs, mine, rtol=0, atol=1e-12)
    assert (reference[-1] - reference[0]).abs().max() > 1e-3  # it did move


def test_same_iterates_as_torch_on_a_small_style_transfer_problem(vgg19_random):
    """A 48 px run in float64 (in float32, round-off differences are amplified by the non-convex loss)."""
    model = copy.deepcopy(vgg19_random).double()
    content, style = smooth_image(48, 48).double(), stripes_image(48, 48).double()
    with torch.no_grad():
        target = model(content, ["relu4_2"])["relu4_2"]
        grams = {name: gram_matrix(value) for name, value in model(style, ["relu1_1", "relu3_1"]).items()}

    def loss_of(x):
        features = model(x, ["relu4_2", "relu1_1", "relu3_1"])
        style_term = sum(layer_style_loss(gram_matrix(features[name]), gram) for name, gram in grams.items())
        return content_loss(features["relu4_2"], target) + 10 * style_term

    start = smooth_image(48, 48, seed=3).double()
    reference = _iterates(_torch_lbfgs, loss_of, start, calls=3, max_iter=8, history_size=10)
    ours = _iterates(_device_lbfgs, loss_of, start, calls=3, max_iter=8, history_size=10)
    for theirs, mine in zip(reference, ours):  # float64 round-off after 24 iterations: up to 1.1e-9 on a Zen 4 EPYC
        assert torch.allclose(theirs, mine, rtol=0, atol=1e-8), (theirs - mine).abs().max()
    assert (reference[-1] - start).abs().max() > 1e-2  # ... against steps of this size


def test_a_rejected_curvature_pair_is_skipped_as_torch_skips_it():
    """A linear loss has y = 0, so y.s = 0 < 1e-10: no pair is stored and every step is steepest descent."""
    direction = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    loss_of, start = (lambda x: direction @ x), torch.zeros(3, dtype=torch.float64)
    reference = _iterates(_torch_lbfgs, loss_of, start, calls=2, max_iter=4, history_size=3)
    ours = _iterates(_device_lbfgs, loss_of, start, calls=2, max_iter=4, history_size=3)
    for theirs, mine in zip(reference, ours):
        assert torch.allclose(theirs, mine, atol=1e-12)


def _syncs_per_evaluation(make_optimizer) -> float:
    loss_of, start = _quadratic(n=200, seed=1), torch.zeros(200, dtype=torch.float64)
    x = start.clone().requires_grad_(True)
    optimizer = make_optimizer(x, 10, 5)
    evaluations = []

    def closure():
        optimizer.zero_grad()
        loss = loss_of(x)
        loss.backward()
        evaluations.append(1)
        return loss

    optimizer.step(closure)  # fill the memory first: steady state
    evaluations.clear()
    with profile(activities=[ProfilerActivity.CPU]) as trace:
        for _ in range(3):
            optimizer.step(closure)
    syncs = sum(event.count for event in trace.key_averages() if event.key == "aten::_local_scalar_dense")
    return syncs / len(evaluations)


def test_no_host_sync_per_evaluation_while_torch_syncs_many_times():
    """aten::_local_scalar_dense is the op behind .item() / float() / if tensor: on a GPU, a wait for it."""
    assert _syncs_per_evaluation(_device_lbfgs) == 0
    assert _syncs_per_evaluation(_torch_lbfgs) >= 10  # the reference, so that this test can fail
