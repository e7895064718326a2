import pytest
import torch

from nst_helpers.losses import content_loss, gram_matrix, layer_style_loss, relative_squared_error, style_loss, tv_loss


def test_gram_matches_einsum_batched():
    features = torch.randn(3, 5, 7, 6, dtype=torch.float64)
    expected = torch.einsum("bihw,bjhw->bij", features, features)
    assert torch.allclose(gram_matrix(features, normalize=False).double(), expected, rtol=1e-5)
    assert torch.allclose(gram_matrix(features).double(), expected / (5 * 7 * 6), rtol=1e-5)
    assert gram_matrix(features).shape == (3, 5, 5)


def test_normalised_gram_is_independent_of_image_size():
    # Tiling a feature map 2x2 quadruples M and every sum, so the normalised Gram is unchanged.
    features = torch.randn(1, 4, 5, 6)
    tiled = features.repeat(1, 1, 2, 2)
    assert torch.allclose(gram_matrix(tiled), gram_matrix(features), atol=1e-6)
    assert not torch.allclose(gram_matrix(tiled, normalize=False), gram_matrix(features, normalize=False))


def test_gram_is_computed_in_float32_for_half_inputs():
    features = (torch.randn(1, 8, 16, 16) * 50).half()
    gram = gram_matrix(features, normalize=False)
    assert gram.dtype == torch.float32
    assert torch.isfinite(gram).all()  # fp16 sums of squares would overflow (max 65504)


def test_gram_rejects_wrong_rank():
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        gram_matrix(torch.randn(4, 5, 6))


def test_content_loss_paper_eq1_and_relative_form():
    features, target = torch.randn(1, 3, 4, 5), torch.randn(1, 3, 4, 5)
    assert torch.isclose(content_loss(features, target, relative=False), 0.5 * ((features - target) ** 2).sum())
    expected = ((features - target) ** 2).sum() / (target**2).sum()
    assert torch.isclose(content_loss(features, target), expected)
    assert content_loss(target, target) == 0
    assert torch.isclose(content_loss(torch.zeros_like(target), target), torch.tensor(1.0))


def test_style_layer_loss_matches_paper_eq4():
    n, h, w = 6, 5, 4
    m = h * w
    f, s = torch.randn(1, n, h, w, dtype=torch.float64), torch.randn(1, n, h, w, dtype=torch.float64)
    raw_g = torch.einsum("bik,bjk->bij", f.flatten(2), f.flatten(2))
    raw_a = torch.einsum("bik,bjk->bij", s.flatten(2), s.flatten(2))
    paper = ((raw_g - raw_a) ** 2).sum() / (4 * n**2 * m**2)
    ours = layer_style_loss(gram_matrix(f), gram_matrix(s), relative=False)
    assert torch.isclose(ours.double(), paper, rtol=1e-5)
    relative = layer_style_loss(gram_matrix(f), gram_matrix(s))
    assert torch.isclose(relative.double(), ((raw_g - raw_a) ** 2).sum() / (raw_a**2).sum(), rtol=1e-5)


def test_relative_losses_are_scale_free():
    # Activations 100x larger (the Caffe convention) must not change the relative losses.
    f, p = torch.rand(1, 8, 6, 6), torch.rand(1, 8, 6, 6)
    assert torch.isclose(content_loss(100 * f, 100 * p), content_loss(f, p), rtol=1e-5)
    ratio = layer_style_loss(gram_matrix(100 * f), gram_matrix(100 * p)) / layer_style_loss(
        gram_matrix(f), gram_matrix(p)
    )
    assert torch.isclose(ratio, torch.tensor(1.0), rtol=1e-4)
    # ...while the paper's raw forms grow with the scale: 100^2 for content, 100^4 for style.
    raw_ratio = content_loss(100 * f, 100 * p, relative=False) / content_loss(f, p, relative=False)
    assert torch.isclose(raw_ratio, torch.tensor(1e4), rtol=1e-3)


def test_style_loss_is_weighted_sum_over_layers():
    features = {"a": torch.randn(1, 3, 4, 4), "b": torch.randn(1, 5, 2, 2)}
    targets = {k: gram_matrix(torch.randn_like(v)) for k, v in features.items()}
    weights = {"a": 0.3, "b": 2.0}
    expected = sum(w * layer_style_loss(gram_matrix(features[k]), targets[k]) for k, w in weights.items())
    assert torch.isclose(style_loss(features, targets, weights), expected)
    with pytest.raises(ValueError):
        style_loss(features, targets, {})


def test_relative_error_with_precomputed_norm_and_batch_mean():
    value, target = torch.randn(2, 3, 3), torch.randn(1, 3, 3).expand(2, 3, 3)
    norms = target.square().sum(dim=(1, 2))
    per_item = ((value - target) ** 2).sum(dim=(1, 2)) / norms
    assert torch.isclose(relative_squared_error(value, target, norms), per_item.mean())


def test_tv_loss_analytic_values():
    assert tv_loss(torch.full((1, 3, 5, 5), 0.7)) == 0
    # Vertical stripes alternating 0/1: every horizontal difference is 1, every vertical one 0.
    stripes = (torch.arange(6) % 2).float().view(1, 1, 1, 6).expand(1, 3, 4, 6)
    assert torch.isclose(tv_loss(stripes), torch.tensor(1.0))
    # Doubling the resolution of a smooth ramp halves the differences: TV drops 4x, no size blow-up.
    ramp = torch.linspace(0, 1, 9).view(1, 1, 1, 9).expand(1, 3, 9, 9)
    ramp2 = torch.linspace(0, 1, 17).view(1, 1, 1, 17).expand(1, 3, 17, 17)
    assert torch.isclose(tv_loss(ramp) / tv_loss(ramp2), torch.tensor(4.0), rtol=1e-4)


@pytest.mark.parametrize("channels_last", [False, True])
def test_gram_gradient_matches_autograd_of_einsum(channels_last):
    """The hand-written backward (one product, (Ḡ + Ḡᵀ) F) against autograd through an einsum, in float64."""
    torch.manual_seed(3)
    features = torch.randn(2, 6, 5, 7, dtype=torch.float64)
    if channels_last:
        features = features.contiguous(memory_format=torch.channels_last)
    weights = torch.randn(2, 6, 6, dtype=torch.float64)  # an arbitrary, non-symmetric upstream gradient
    mine = features.clone().requires_grad_(True)
    (gram_matrix(mine) * weights).sum().backward()
    reference = features.clone().requires_grad_(True)
    (torch.einsum("bihw,bjhw->bij", reference, reference) / (6 * 5 * 7) * weights).sum().backward()
    assert torch.allclose(mine.grad.double(), reference.grad, rtol=1e-5, atol=1e-7)
    assert mine.grad.is_contiguous(memory_format=torch.channels_last) == channels_last  # layout kept
    assert torch.autograd.gradcheck(lambda f: gram_matrix(f), (features.clone().requires_grad_(True),))


def test_gram_of_bf16_features_is_float32_with_a_bf16_gradient():
    torch.manual_seed(4)
    features = torch.randn(1, 8, 16, 16)
    low = features.bfloat16().contiguous(memory_format=torch.channels_last).requires_grad_(True)
    gram = gram_matrix(low)
    assert gram.dtype == torch.float32
    assert torch.allclose(gram, gram_matrix(low.detach().float()), rtol=1e-6, atol=1e-7)  # fp32 sums of bf16 values
    gram.square().sum().backward()
    exact = features.bfloat16().float().requires_grad_(True)
    gram_matrix(exact).square().sum().backward()
    assert low.grad.dtype == torch.bfloat16
    assert (low.grad.float() - exact.grad).norm() <= 0.02 * exact.grad.norm()
