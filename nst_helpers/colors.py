r"""Keeping the photo's colours: the two methods of Gatys, Bethge, Hertzmann & Shechtman (2016), as pure functions.

"Preserving Color in Neural Artistic Style Transfer" (arXiv:1606.05897)
offers two ways to keep the content photo's colours while taking the
painting's brush strokes:

* **Luminance-only transfer.** Stylise only the luminance :math:`Y`: the
  content and the style are both turned into luminance images, the style's
  luminance is first matched to the content's mean and standard deviation,
  :math:`L_S' = \frac{\sigma_C}{\sigma_S}(L_S - \mu_S) + \mu_C`, the
  transfer runs on those grey images, and the output luminance
  :math:`L_T` is recombined with the content's chroma.

  We use **YIQ**, as the paper does. Its luma :math:`Y = 0.299R + 0.587G +
  0.114B` (BT.601) is also YCbCr's, and in both spaces a change of
  :math:`Y` with the chroma fixed moves R, G and B by the same amount
  (the inverse matrices' Y column is (1, 1, 1)), so recombining in YCbCr
  would give the same picture; YIQ keeps the paper's notation.
  Recombining can leave the RGB cube: rather than clip R, G and B (which
  would change the colour), :func:`combine_luminance` clamps :math:`Y` to
  the range in which that pixel's chroma fits, so the chroma stays the
  content's exactly.

* **Colour histogram matching.** Before the transfer, transform the style
  image's colours linearly, :math:`x_{S'} = A (x_S - \mu_S) + \mu_C`, so
  that its mean and covariance become the content's:
  :math:`A \Sigma_S A^T = \Sigma_C`. Many :math:`A` satisfy this; we use
  the **symmetric square root** (the paper's "image analogies" variant),
  :math:`A = \Sigma_C^{1/2} \Sigma_S^{-1/2}`, computed by eigendecomposition.
  The paper gives this one and a Cholesky variant (:math:`A = L_C L_S^{-1}`);
  symmetric square roots treat R, G and B alike, whereas Cholesky's
  triangular factors depend on the order of the channels (reorder them and
  the result changes). Both are available (``method="cholesky"``).

Images are ``[1, 3, H, W]`` RGB in [0, 1], as everywhere in the package.
"""

from __future__ import annotations

from typing import Literal

import torch

__all__ = [
    "RGB_TO_YIQ",
    "rgb_to_yiq",
    "yiq_to_rgb",
    "luminance",
    "match_luminance",
    "combine_luminance",
    "color_statistics",
    "match_color_histogram",
]

#: Rows give Y, I, Q from R, G, B (NTSC/FCC; Y is BT.601 luma).
RGB_TO_YIQ = torch.tensor(
    [
        [0.299, 0.587, 0.114],
        [0.595716, -0.274453, -0.321263],
        [0.211456, -0.522591, 0.311135],
    ],
    dtype=torch.float64,
)
#: The smallest eigenvalue kept when inverting a covariance (a nearly grey style image has one close to 0).
MIN_EIGENVALUE = 1e-8


def _apply(matrix: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """``matrix`` [3, 3] applied to the colour of every pixel of ``image`` [B, 3, H, W]."""
    return torch.einsum("ij,bjhw->bihw", matrix.to(image.device, image.dtype), image)


def rgb_to_yiq(image: torch.Tensor) -> torch.Tensor:
    """RGB ``[B, 3, H, W]`` → YIQ (channel 0: luminance Y in [0, 1]; 1, 2: chroma I, Q)."""
    return _apply(RGB_TO_YIQ, image)


def yiq_to_rgb(image: torch.Tensor) -> torch.Tensor:
    """YIQ ``[B, 3, H, W]`` → RGB (not clamped: a YIQ triple may lie outside the RGB cube)."""
    return _apply(torch.linalg.inv(RGB_TO_YIQ), image)


def luminance(image: torch.Tensor) -> torch.Tensor:
    """The luminance Y of an RGB image as a grey RGB image ``[B, 3, H, W]`` (R = G = B = Y), for VGG."""
    return rgb_to_yiq(image)[:, :1].expand(-1, 3, -1, -1).contiguous()


def match_luminance(style: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    r"""The style's luminance matched to the content's: :math:`\frac{\sigma_C}{\sigma_S}(L_S - \mu_S) + \mu_C`.

    Returned as a grey RGB image, clamped to [0, 1]. The paper does this so
    that the style's overall brightness and contrast do not override the
    content's.
    """
    style_y, content_y = rgb_to_yiq(style)[:, :1], rgb_to_yiq(content)[:, :1]
    scale = content_y.std() / style_y.std().clamp_min(1e-6)
    matched = (style_y - style_y.mean()) * scale + content_y.mean()
    return matched.clamp(0, 1).expand(-1, 3, -1, -1).contiguous()


def combine_luminance(styled: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The luminance of ``styled`` with the chroma (I, Q) of ``content``, as RGB in [0, 1].

    ``styled`` may be any RGB image of the content's size (its Y is used).
    Y is clamped per pixel to the interval in which RGB = Y·(1, 1, 1) + chroma
    stays in [0, 1] (non-empty, since the content pixel itself lies in it), so
    the result's I and Q equal the content's up to float rounding.
    """
    content_yiq = rgb_to_yiq(content)
    chroma_only = yiq_to_rgb(torch.cat([torch.zeros_like(content_yiq[:, :1]), content_yiq[:, 1:]], dim=1))
    low = (-chroma_only).amax(dim=1, keepdim=True)  # RGB = Y + chroma_only ≥ 0 for every channel
    high = (1 - chroma_only).amin(dim=1, keepdim=True)  # ... ≤ 1 for every channel
    styled_y = rgb_to_yiq(styled)[:, :1]
    y = torch.maximum(torch.minimum(styled_y, high), low)
    return (y + chroma_only).clamp(0, 1)  # the clamp only removes float rounding


def color_statistics(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Mean colour :math:`\mu` [3] and colour covariance :math:`\Sigma` [3, 3] over all pixels (float64).

    :math:`\Sigma = \frac1M \sum_k (x_k - \mu)(x_k - \mu)^T` over the
    :math:`M` pixels (population covariance).
    """
    pixels = image.detach().double().movedim(-3, 0).reshape(3, -1)  # [1, 3, H, W] or [3, H, W] → [3, M]
    mean = pixels.mean(dim=1)
    centred = pixels - mean[:, None]
    return mean, centred @ centred.T / pixels.shape[1]


def _symmetric_power(matrix: torch.Tensor, power: float) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(matrix)
    return vectors @ torch.diag(values.clamp_min(MIN_EIGENVALUE) ** power) @ vectors.T


def match_color_histogram(
    style: torch.Tensor,
    content: torch.Tensor,
    method: Literal["sqrt", "cholesky"] = "sqrt",
    clamp: bool = True,
) -> torch.Tensor:
    r"""The style image with its colours moved to the content's mean and covariance.

    :math:`x_{S'} = A (x_S - \mu_S) + \mu_C` for every pixel, with
    :math:`A = \Sigma_C^{1/2} \Sigma_S^{-1/2}` (``method="sqrt"``, the
    default) or :math:`A = L_C L_S^{-1}` where :math:`\Sigma = L L^T`
    (``method="cholesky"``); both give :math:`A \Sigma_S A^T = \Sigma_C`.
    With ``clamp=False`` the result is exact (it may leave [0, 1]); with
    ``clamp=True`` (what :func:`~nst_helpers.stylize` uses) it is clamped to
    [0, 1], which moves the statistics slightly where the content's colours
    are extreme.
    """
    style_mean, style_cov = color_statistics(style)
    content_mean, content_cov = color_statistics(content)
    if method == "sqrt":
        transform = _symmetric_power(content_cov, 0.5) @ _symmetric_power(style_cov, -0.5)
    elif method == "cholesky":
        eye = torch.eye(3, dtype=torch.float64) * MIN_EIGENVALUE
        transform = torch.linalg.cholesky(content_cov + eye) @ torch.linalg.inv(torch.linalg.cholesky(style_cov + eye))
    else:
        raise ValueError(f"method must be 'sqrt' or 'cholesky', got {method!r}.")
    centred = style.double() - style_mean.to(style.device)[None, :, None, None]
    matched = _apply(transform, centred) + content_mean.to(style.device)[None, :, None, None]
    matched = matched.to(style.dtype)
    return matched.clamp(0, 1) if clamp else matched
