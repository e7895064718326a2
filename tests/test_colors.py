"""Tests for nst_helpers.colors: YIQ, luminance matching and colour histogram matching against direct formulas."""

import pytest
import torch

from helpers import smooth_image, stripes_image
from nst_helpers.colors import (
    color_statistics,
    combine_luminance,
    luminance,
    match_color_histogram,
    match_luminance,
    rgb_to_yiq,
    yiq_to_rgb,
)

# The NTSC YIQ matrix written out here independently of the module.
YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype=torch.float64)


def test_yiq_matches_the_textbook_matrix_and_round_trips():
    image = smooth_image(16, 20, seed=3)
    yiq = rgb_to_yiq(image)
    pixel = image[0, :, 5, 7].double()
    assert torch.allclose(yiq[0, :, 5, 7].double(), YIQ @ pixel, atol=2e-3)  # the textbook rounds to 3 digits
    assert torch.allclose(
        yiq[0, 0].double(), (0.299 * image[0, 0] + 0.587 * image[0, 1] + 0.114 * image[0, 2]).double()
    )
    assert torch.allclose(yiq_to_rgb(yiq), image, atol=1e-6)
    grey = torch.full((1, 3, 4, 4), 0.4)
    assert torch.allclose(rgb_to_yiq(grey)[:, 1:], torch.zeros(1, 2, 4, 4), atol=1e-6)  # grey has no chroma


def test_luminance_is_grey_and_matching_gives_the_contents_mean_and_std():
    content, style = smooth_image(24, 24, seed=1), stripes_image(30, 20) * 0.5 + 0.2
    grey = luminance(content)
    assert grey.shape == content.shape and torch.equal(grey[:, 0], grey[:, 1]) and torch.equal(grey[:, 1], grey[:, 2])
    matched = match_luminance(style, content)[:, 0]
    content_y = 0.299 * content[:, 0] + 0.587 * content[:, 1] + 0.114 * content[:, 2]
    style_y = 0.299 * style[:, 0] + 0.587 * style[:, 1] + 0.114 * style[:, 2]
    expected = (style_y - style_y.mean()) * content_y.std() / style_y.std() + content_y.mean()  # the paper's formula
    assert torch.allclose(matched, expected.clamp(0, 1), atol=1e-5)
    assert matched.mean().item() == pytest.approx(content_y.mean().item(), abs=1e-4)


def test_combine_luminance_keeps_the_contents_chroma_and_stays_in_the_rgb_cube():
    content = smooth_image(32, 32, seed=4)
    styled = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))  # any luminance, even extreme
    out = combine_luminance(styled, content)
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    assert torch.allclose(
        (YIQ[1:].float() @ out[0].reshape(3, -1)), YIQ[1:].float() @ content[0].reshape(3, -1), atol=1e-5
    )
    # Where no clamping was needed, the luminance is the styled image's.
    out_y, styled_y = rgb_to_yiq(out)[0, 0], rgb_to_yiq(styled)[0, 0]
    inside = (yiq_to_rgb(torch.cat([rgb_to_yiq(styled)[:, :1], rgb_to_yiq(content)[:, 1:]], 1)) - 0.5).abs().amax(1)[
        0
    ] < 0.5
    assert inside.any() and torch.allclose(out_y[inside], styled_y[inside], atol=1e-5)


@pytest.mark.parametrize("method", ["sqrt", "cholesky"])
def test_histogram_matching_gives_the_contents_mean_and_covariance(method):
    content = smooth_image(40, 50, seed=2)
    style = smooth_image(36, 36, seed=7) * torch.tensor([0.3, 0.9, 0.5]).view(1, 3, 1, 1)  # full-rank colours
    matched = match_color_histogram(style, content, method=method, clamp=False)
    pixels = matched[0].double().reshape(3, -1)
    target = content[0].double().reshape(3, -1)
    # Independent reference: numpy-style statistics written out here.
    assert torch.allclose(pixels.mean(1), target.mean(1), atol=1e-4)
    assert torch.allclose(torch.cov(pixels, correction=0), torch.cov(target, correction=0), atol=1e-4)
    mean, cov = color_statistics(content)
    assert torch.allclose(cov, torch.cov(target, correction=0))
    assert torch.allclose(mean, target.mean(1))


def test_histogram_methods_differ_but_sqrt_ignores_channel_order():
    content, style = smooth_image(30, 30, seed=5), smooth_image(30, 30, seed=9)
    order = [2, 0, 1]
    sqrt = match_color_histogram(style, content, clamp=False)
    sqrt_permuted = match_color_histogram(style[:, order], content[:, order], clamp=False)
    assert torch.allclose(sqrt_permuted, sqrt[:, order], atol=1e-5)
    cholesky = match_color_histogram(style, content, method="cholesky", clamp=False)
    cholesky_permuted = match_color_histogram(style[:, order], content[:, order], method="cholesky", clamp=False)
    assert not torch.allclose(cholesky_permuted, cholesky[:, order], atol=1e-3)
    clamped = match_color_histogram(style, content)
    assert float(clamped.min()) >= 0 and float(clamped.max()) <= 1
    with pytest.raises(ValueError, match="method"):
        match_color_histogram(style, content, method="pca")
