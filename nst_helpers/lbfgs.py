r"""L-BFGS whose memory, search direction and step rule stay on the device: no host syncs per evaluation.

``torch.optim.LBFGS`` turns tensors into Python numbers many times per
iteration (``alpha=-al[i]`` in its two-loop recursion, the curvature test
``ys > 1e-10``, its stopping tests, the line search's decisions). Each such
read makes the CPU wait for the GPU: ~100 waits per evaluation once its
history is full. On a GPU that finishes a VGG step in milliseconds, that
bookkeeping can cost as much as the network.

:class:`DeviceLBFGS` computes the same iterates as
``torch.optim.LBFGS(line_search_fn=None)`` with its stopping tests switched
off (a run here has a fixed budget of evaluations anyway), without reading
any tensor on the host:

* the curvature pairs :math:`(s_i, y_i)` live in one ring buffer ``[2m, n]``;
  whether a new pair is kept (:math:`y^T s > 10^{-10}`) is decided with
  ``torch.where``, not ``if``;
* the product :math:`H g` uses the compact representation of Byrd, Nocedal
  & Schnabel (1994, Theorem 2.2) instead of the two-loop recursion, with
  :math:`H_0 = \gamma I`, :math:`\gamma = y^T s / y^T y`:

  .. math:: H g = \gamma g + S^T v - \gamma Y^T u,\quad
            u = R^{-1} S g,\quad v = R^{-T}\big((D + \gamma Y Y^T) u - \gamma Y g\big)

  where the rows of :math:`S, Y` are the pairs, :math:`R` is the upper
  triangle (in time order) of :math:`S Y^T` and :math:`D` its diagonal. It
  is the same matrix as the two-loop recursion's, found with two passes over
  the history and two small triangular solves instead of ~4m small kernels;
* the step length is the one L-BFGS uses without a line search: ``lr``,
  and :math:`\min(1, 1/\|g\|_1)\cdot lr` on the very first iteration. This is
  what jcjohnson/neural-style and neural-style-pt use for style transfer.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["DeviceLBFGS"]


class DeviceLBFGS(torch.optim.Optimizer):
    """L-BFGS over one tensor (the image), without line search and without host syncs.

    Same interface as ``torch.optim.LBFGS``: ``step(closure)`` evaluates the
    closure ``max_iter`` times (the first evaluation at the current point),
    moves the point after each, and keeps ``state["d"]`` and ``state["t"]``
    (the last direction and step length) for
    :func:`~nst_helpers.optimizers.clamp_keeping_lbfgs_consistent`. ``max_eval``
    is not used: each iteration costs exactly one evaluation (torch's L-BFGS
    with ``max_eval=max_iter`` stops one move short and evaluates that point
    again at its next call).
    """

    def __init__(self, params, lr: float = 1.0, max_iter: int = 20, history_size: int = 50) -> None:
        super().__init__(params, {"lr": lr, "max_iter": max_iter, "max_eval": max_iter, "history_size": history_size})
        if len(self.param_groups) != 1 or len(self.param_groups[0]["params"]) != 1:
            raise ValueError("DeviceLBFGS optimises exactly one tensor (the image).")

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        group = self.param_groups[0]
        x = group["params"][0]
        state = self.state[x]
        if not state:
            self._init_state(state, x, group["history_size"])
        with torch.enable_grad():
            loss = closure()
        gradient = x.grad.reshape(-1).clone()
        for iteration in range(1, group["max_iter"] + 1):
            state["n_iter"] += 1
            if state["n_iter"] == 1:
                direction = gradient.neg()
                length: float | torch.Tensor = (1.0 / gradient.abs().sum()).clamp(max=1.0) * group["lr"]
            else:
                direction = self._direction(state, gradient)
                length = group["lr"]
            state["d"], state["t"], state["previous_gradient"] = direction, length, gradient
            x.add_(direction.view_as(x) * length)
            if iteration == group["max_iter"]:
                break  # the next call evaluates this point first (as torch.optim.LBFGS does)
            with torch.enable_grad():
                loss = closure()
            gradient = x.grad.reshape(-1).clone()
        return loss

    @staticmethod
    def _init_state(state: dict, x: torch.Tensor, m: int) -> None:
        n, device = x.numel(), x.device
        state["n_iter"] = 0
        state["pairs"] = torch.zeros(2 * m, n, device=device, dtype=x.dtype)  # rows 0..m-1: s, m..2m-1: y
        state["sy"] = torch.zeros(m, m, device=device, dtype=torch.float64)  # s_i . y_j
        state["yy"] = torch.zeros(m, m, device=device, dtype=torch.float64)  # y_i . y_j
        state["age"] = torch.full((m,), -1, device=device, dtype=torch.long)  # -1: empty slot
        state["slot"] = torch.zeros((), device=device, dtype=torch.long)  # where the next pair goes
        state["gamma"] = torch.ones((), device=device, dtype=torch.float64)  # H_0 = gamma * I

    def _direction(self, state: dict, gradient: torch.Tensor) -> torch.Tensor:
        """``-H g`` with the new curvature pair added to the memory if ``y.s > 1e-10``; all on the device."""
        pairs, sy, yy, age, slot = state["pairs"], state["sy"], state["yy"], state["age"], state["slot"]
        m = sy.shape[0]
        s = state["d"] * state["t"]
        y = gradient - state["previous_gradient"]
        # One pass over the memory: every stored s_i and y_i against s, y and g.
        products = (pairs @ torch.stack([s, y, gradient], dim=1)).double()  # [2m, 3]
        ys, yy_new = y.double().dot(s.double()), y.double().dot(y.double())
        keep = ys > 1e-10
        one_hot = (torch.arange(m, device=slot.device) == slot) & keep  # the slot written, if the pair is kept
        rows = torch.stack([slot, slot + m])  # index tensors, not Python ints: no sync
        pairs.index_copy_(0, rows, torch.where(keep, torch.stack([s, y]), pairs.index_select(0, rows)))
        # New row and column of S Y^T and Y Y^T for the slot (its own entry: y.s and y.y).
        new_sy_row = torch.where(one_hot, ys, products[m:, 0])  # s . y_j
        new_sy_col = torch.where(one_hot, ys, products[:m, 1])  # s_i . y
        new_yy = torch.where(one_hot, yy_new, products[m:, 1])
        sy.copy_(torch.where(one_hot[:, None], new_sy_row[None, :], sy))
        sy.copy_(torch.where(one_hot[None, :], new_sy_col[:, None], sy))
        yy.copy_(torch.where(one_hot[:, None], new_yy[None, :], yy))
        yy.copy_(torch.where(one_hot[None, :], new_yy[:, None], yy))
        age.copy_(torch.where(one_hot, state["n_iter"], age))
        slot.copy_(torch.where(keep, (slot + 1) % m, slot))
        gamma = state["gamma"] = torch.where(keep, ys / yy_new, state["gamma"])
        # S g and Y g after the update: the kept pair's products with g replace the slot's old ones.
        sg = torch.where(one_hot, s.double().dot(gradient.double()), products[:m, 2])
        yg = torch.where(one_hot, y.double().dot(gradient.double()), products[m:, 2])
        u, v = self._compact_solve(sy, yy, age, sg, yg, gamma)
        weights = torch.cat([v, -gamma * u]).to(pairs.dtype)
        return -(gamma.to(pairs.dtype) * gradient + weights @ pairs)

    @staticmethod
    def _compact_solve(sy, yy, age, sg, yg, gamma) -> tuple[torch.Tensor, torch.Tensor]:
        """``u = R^{-1} S g`` and ``v = R^{-T}((D + gamma Y Y^T) u - gamma Y g)``, with the memory sorted
        oldest first so that R is upper triangular; empty slots become identity rows (u, v = 0 there)."""
        order = torch.argsort(age)
        filled = age[order] >= 0
        both = filled[:, None] & filled[None, :]
        sorted_sy = sy[order][:, order]
        r = torch.where(both, sorted_sy, 0.0).triu() + torch.diag((~filled).double())
        d = torch.where(filled, torch.diagonal(sorted_sy), 0.0)
        middle = torch.diag(d) + gamma * torch.where(both, yy[order][:, order], 0.0)
        u_sorted = torch.linalg.solve_triangular(r, sg[order][:, None], upper=True)
        rhs = middle @ u_sorted - gamma * yg[order][:, None]
        v_sorted = torch.linalg.solve_triangular(r.T, rhs, upper=False)
        u = torch.zeros_like(sg).scatter_(0, order, u_sorted[:, 0])
        v = torch.zeros_like(sg).scatter_(0, order, v_sorted[:, 0])
        return u, v
