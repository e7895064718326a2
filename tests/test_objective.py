"""Tests for nst_helpers.objective: Eq. (7) against the loss functions and an einsum reference."""

import pytest
import torch

from helpers import smooth_image, stripes_image
from nst_helpers import Objective, SpeedOptions


def test_objective_is_the_weighted_sum_of_the_package_losses(vgg19_random):
    """Objective (what stylize and the benchmark evaluate each step) against the losses module, by hand."""
    from nst_helpers import Objective, content_loss, gram_matrix, layer_style_loss, tv_loss

    content, style, image = smooth_image(32, 48), stripes_image(32, 48), smooth_image(32, 48, seed=7)
    layers = {"relu1_1": 0.5, "relu3_1": 0.25}
    objective = Objective(
        vgg19_random,
        content,
        style,
        content_layers=["relu3_2"],
        style_layers=layers,
        content_weight=2.0,
        style_weight=30.0,
        tv_weight=5.0,
    )
    terms = objective(image)
    with torch.no_grad():
        mine = vgg19_random(image, ["relu3_2", *layers])
        target = vgg19_random(content, ["relu3_2"])["relu3_2"]
        grams = {k: gram_matrix(v) for k, v in vgg19_random(style, list(layers)).items()}
    expected = [
        2.0 * content_loss(mine["relu3_2"], target),
        30.0 * sum(w * layer_style_loss(gram_matrix(mine[k]), grams[k]) for k, w in layers.items()),
        5.0 * tv_loss(image),
    ]
    assert torch.allclose(terms, torch.stack(expected), rtol=1e-5)


def test_objective_against_einsum_formulas_and_keeps_the_model_unchanged(vgg19_random):
    """Independent reference: explicit sums and an einsum Gram, no package loss function."""
    content, style, image = smooth_image(32, 32, seed=2), stripes_image(32, 32), smooth_image(32, 32, seed=5)
    objective = Objective(
        vgg19_random,
        content,
        style,
        content_layers=["relu2_1"],
        style_layers={"relu1_1": 1.0},
        content_weight=1.5,
        style_weight=4.0,
        speed=SpeedOptions(channels_last=True, precision="bf16"),
    )
    assert vgg19_random.compute_dtype == torch.float32  # the bf16 NHWC copy is the objective's own
    terms = objective(image)
    with torch.no_grad():
        p = vgg19_random(content, ["relu2_1"])["relu2_1"]
        f = vgg19_random(image, ["relu2_1", "relu1_1"])
        a = torch.einsum("bihw,bjhw->bij", *[vgg19_random(style, ["relu1_1"])["relu1_1"]] * 2)
        g = torch.einsum("bihw,bjhw->bij", f["relu1_1"], f["relu1_1"])
    content_term = ((f["relu2_1"] - p) ** 2).sum() / (p**2).sum()
    style_term = ((g - a) ** 2).sum() / (a**2).sum()  # the Gram normalisation cancels in the ratio
    assert terms.dtype == torch.float32
    assert terms[0].item() == pytest.approx(1.5 * content_term.item(), rel=2e-2)  # bf16 VGG pass
    assert terms[1].item() == pytest.approx(4.0 * style_term.item(), rel=2e-2)
    assert terms[2].item() == 0
