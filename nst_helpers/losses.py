r"""Losses of Gatys, Ecker & Bethge (2015/2016), as pure functions on tensors.

Notation of the paper: a layer :math:`l` has :math:`N_l` feature maps
(channels) of :math:`M_l` positions each (height × width); :math:`F^l` is the
:math:`N_l \times M_l` matrix of the generated image's features, :math:`P^l`
that of the content image, :math:`A^l` the Gram matrix of the style image.

* Eq. (1), content:  :math:`L_{content} = \tfrac12 \sum_{ij} (F^l_{ij} - P^l_{ij})^2`
* Eq. (3), Gram:     :math:`G^l_{ij} = \sum_k F^l_{ik} F^l_{jk}`
* Eq. (4), one layer's style error:
  :math:`E_l = \frac{1}{4 N_l^2 M_l^2} \sum_{ij} (G^l_{ij} - A^l_{ij})^2`
* Eq. (5), style:    :math:`L_{style} = \sum_l w_l E_l`
* Eq. (7), total:    :math:`L_{total} = \alpha L_{content} + \beta L_{style}`

**The convention used by default here: relative (scale-free) errors.**
The raw sums above depend on the size of the activations, which differs by
about 100× between torchvision's VGG19 (inputs normalised by the ImageNet
std) and the Caffe-convention VGG16 (inputs in 0..255), and on the image
size. That is why style weights in popular tutorials differ by factors of
:math:`10^6`. We instead use each layer's squared error relative to its
target's squared norm:

* content: :math:`\|F^l - P^l\|^2 / \|P^l\|^2`
* style, per layer: :math:`\|G^l - A^l\|^2 / \|A^l\|^2`

Both are 1 when the generated features are zero and 0 at a perfect match,
whatever the network, the input normalisation or the image size, so the
*scale* of a ``style_weight`` is comparable everywhere (the features
themselves still differ between networks). Each is the paper's loss
multiplied by a constant fixed once the targets are known, but the constant
differs per layer: the style term is :math:`\sum_l (w_l / c_l) E_l` with
:math:`c_l \propto \|A^l\|^2`, so besides rescaling :math:`\alpha` and
:math:`\beta` it changes the *effective* layer weights (raw :math:`E_l`
span many orders of magnitude across layers; relative ones are all of
order 1, so :math:`w_l = 1/5` really weighs the layers equally).
``relative=False`` gives the paper's Eq. (1) and Eq. (4) exactly, for
comparison.

Gram matrices are normalised by :math:`N_l M_l` (``normalize=True``), i.e.
:math:`\hat G = G / (N_l M_l)`, so with the paper's Eq. (4),
:math:`E_l = \tfrac14 \sum_{ij} (\hat G_{ij} - \hat A_{ij})^2`. The relative
style error does not depend on this normalisation at all (it cancels).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

__all__ = [
    "gram_matrix",
    "content_loss",
    "layer_style_loss",
    "style_loss",
    "tv_loss",
    "relative_squared_error",
]


class _Gram(torch.autograd.Function):
    r""":math:`G = F F^T` in float32, with a backward pass that stays in the features' layout and dtype.

    Autograd's own backward of ``bmm(F, F^T)`` does two matrix products (one
    per operand); since :math:`G` is symmetric in :math:`F`,
    :math:`\partial L/\partial F = (\bar G + \bar G^T) F` needs one. For
    bf16 features (the bf16 VGG pass) that product runs in bf16, like the
    rest of the network's backward pass; the forward Gram, and with it every
    loss value, stays float32.
    """

    @staticmethod
    def forward(ctx, features: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(features)
        with torch.autocast(device_type=features.device.type, enabled=False):
            matrix, nhwc = _as_matrix(features, _sum_dtype(features))
            return torch.bmm(matrix.transpose(1, 2), matrix) if nhwc else torch.bmm(matrix, matrix.transpose(1, 2))

    @staticmethod
    def backward(ctx, grad_gram: torch.Tensor) -> torch.Tensor:
        (features,) = ctx.saved_tensors
        batch, channels, height, width = features.shape
        # bf16 like the network's own backward; fp16 products could underflow, so those run in fp32.
        dtype = torch.bfloat16 if features.dtype == torch.bfloat16 else _sum_dtype(features)
        symmetric = (grad_gram + grad_gram.transpose(1, 2)).to(dtype)
        with torch.autocast(device_type=features.device.type, enabled=False):
            matrix, nhwc = _as_matrix(features, dtype)
            if nhwc:
                grad = torch.bmm(matrix, symmetric).reshape(batch, height, width, channels).permute(0, 3, 1, 2)
            else:
                grad = torch.bmm(symmetric, matrix).reshape(batch, channels, height, width)
        return grad.to(features.dtype)


def _as_matrix(features: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, bool]:
    """``features`` as a batch of matrices in ``dtype``, without a copy of the layout: ``([B, HW, C], True)``
    for channels-last (NHWC) features, so the gradient goes back as NHWC, else ``([B, C, HW], False)``."""
    batch, channels, height, width = features.shape
    if channels > 1 and features.is_contiguous(memory_format=torch.channels_last):
        return features.permute(0, 2, 3, 1).reshape(batch, height * width, channels).to(dtype), True
    return features.reshape(batch, channels, height * width).to(dtype), False


def _sum_dtype(features: torch.Tensor) -> torch.dtype:
    """float32 for half-precision and float32 features, float64 for float64 ones."""
    return torch.promote_types(features.dtype, torch.float32)


def gram_matrix(features: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    r"""Batched Gram matrix, Eq. (3): ``[B, C, H, W]`` → ``[B, C, C]``.

    :math:`G_{ij} = \sum_k F_{ik} F_{jk}` over the :math:`M = H W` positions,
    divided by :math:`C \cdot H \cdot W` (= :math:`N_l M_l`) when
    ``normalize`` is true, so that the entries are averages and do not grow
    with the image size. Computed in float32 even for half-precision
    features (sums of squares overflow or lose precision in fp16/bf16; float64
    stays float64); the gradient is computed in bf16 for bf16 features (see
    :class:`_Gram`).
    Works for NCHW and channels-last (NHWC) features alike.
    """
    if features.dim() != 4:
        raise ValueError(f"gram_matrix expects [B, C, H, W] features, got shape {list(features.shape)}.")
    batch, channels, height, width = features.shape
    gram = _Gram.apply(features)
    if normalize:
        gram = gram / (channels * height * width)
    return gram


def relative_squared_error(
    value: torch.Tensor, target: torch.Tensor, target_sq_norm: torch.Tensor | None = None
) -> torch.Tensor:
    r""":math:`\|x - t\|^2 / \|t\|^2`, averaged over the batch dimension.

    ``target_sq_norm`` (:math:`\|t\|^2` per batch item) can be precomputed
    once when the target is fixed, as in the optimisation loop.
    """
    value, target = value.float(), target.float()
    dims = tuple(range(1, value.dim()))
    if target_sq_norm is None:
        target_sq_norm = target.square().sum(dim=dims)
    error = (value - target).square().sum(dim=dims)
    return (error / target_sq_norm.clamp_min(torch.finfo(torch.float32).tiny)).mean()


def content_loss(
    features: torch.Tensor, target: torch.Tensor, relative: bool = True, target_sq_norm: torch.Tensor | None = None
) -> torch.Tensor:
    r"""Content loss between features ``F`` and content targets ``P`` (both ``[B, C, H, W]``).

    ``relative=True``: :math:`\|F - P\|^2 / \|P\|^2` (scale-free, see the
    module docstring); ``target_sq_norm`` (:math:`\|P\|^2` per batch item)
    may be precomputed once, as the loop does. ``relative=False``: the
    paper's Eq. (1), :math:`\tfrac12 \sum (F - P)^2`, summed over the batch.
    """
    if features.shape != target.shape:
        raise ValueError(f"content_loss: features {list(features.shape)} vs target {list(target.shape)}.")
    if relative:
        return relative_squared_error(features, target, target_sq_norm)
    return 0.5 * (features.float() - target.float()).square().sum()


def layer_style_loss(
    gram: torch.Tensor, target_gram: torch.Tensor, relative: bool = True, target_sq_norm: torch.Tensor | None = None
) -> torch.Tensor:
    r"""One layer's style error between normalised Gram matrices ``[B, C, C]``.

    ``relative=True``: :math:`\|G - A\|^2 / \|A\|^2` (``target_sq_norm``:
    :math:`\|A\|^2`, may be precomputed). ``relative=False``:
    the paper's Eq. (4) for Grams normalised by :math:`N_l M_l` (as
    :func:`gram_matrix` returns them), :math:`E_l = \tfrac14 \sum (\hat G - \hat A)^2`.
    """
    if gram.shape[-2:] != target_gram.shape[-2:]:
        raise ValueError(f"layer_style_loss: Gram {list(gram.shape)} vs target {list(target_gram.shape)}.")
    if relative:
        return relative_squared_error(gram, target_gram.expand_as(gram), target_sq_norm)
    return 0.25 * (gram.float() - target_gram.float()).square().sum(dim=(-2, -1)).mean()


def style_loss(
    features: Mapping[str, torch.Tensor],
    target_grams: Mapping[str, torch.Tensor],
    layer_weights: Mapping[str, float],
    relative: bool = True,
) -> torch.Tensor:
    r"""Eq. (5): :math:`\sum_l w_l E_l` over the layers in ``layer_weights``.

    ``features`` maps layer name → ``[B, C, H, W]`` features of the image
    being optimised, ``target_grams`` layer name → ``[1, C, C]`` style Grams
    (from :func:`gram_matrix`). The paper uses :math:`w_l = 1/5` on
    ``conv1_1 … conv5_1``.
    """
    total = None
    for name, weight in layer_weights.items():
        term = weight * layer_style_loss(gram_matrix(features[name]), target_grams[name], relative)
        total = term if total is None else total + term
    if total is None:
        raise ValueError("style_loss needs at least one style layer.")
    return total


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    r"""Total-variation loss (squared, anisotropic), a smoothness prior.

    Mean of squared differences between vertical neighbours plus that of
    horizontal neighbours, for an image ``[B, 3, H, W]`` in [0, 1]. Not in
    the paper; Mahendran & Vedaldi (2015) and Johnson et al. (2016) use it
    to suppress high-frequency noise. Independent of the image size.
    """
    image = image.float()
    vertical = (image[..., 1:, :] - image[..., :-1, :]).square().mean()
    horizontal = (image[..., :, 1:] - image[..., :, :-1]).square().mean()
    return vertical + horizontal
