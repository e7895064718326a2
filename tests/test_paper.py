"""Tests for nst_helpers.paper: the paper's layer names and ratios, the exact raw-loss translation, and the
three figure functions' runs and layouts (random weights, tiny sizes)."""

import matplotlib.pyplot as plt
import pytest
import torch

from helpers import smooth_image, stripes_image
from nst_helpers import (
    PAPER_RATIOS,
    SettingsError,
    content_loss,
    gram_matrix,
    layer_style_loss,
    paper_figure1,
    paper_figure2,
    paper_figure3,
    paper_layers,
    raw_loss_weights,
    relative_style_weight,
)

TINY = dict(size=32, steps=2, device="cpu", log=False)


def test_layer_names_and_the_ratio_translation():
    assert paper_layers() == ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    assert paper_layers("conv") == ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"]
    with pytest.raises(SettingsError, match="form"):
        paper_layers("pool")
    assert [relative_style_weight(ratio) for ratio in PAPER_RATIOS] == pytest.approx([1000, 100, 10, 1])
    with pytest.raises(SettingsError, match="positive"):
        relative_style_weight(0)


def test_raw_loss_weights_reproduce_the_papers_objective_up_to_one_constant(vgg16_random):
    content, style, alpha_over_beta = smooth_image(48, 48, seed=1), stripes_image(48, 48), 1e-3
    layers = paper_layers()
    weights = raw_loss_weights(vgg16_random, content, style, alpha_over_beta)
    with torch.no_grad():
        photo = vgg16_random(content, ["relu4_2"])["relu4_2"].double()
        painting = {name: value.double() for name, value in vgg16_random(style, layers).items()}

    def paper_objective(features):  # Eq. (1) + Eq. (4)/(5) with raw Gram matrices F F^T, alpha = 1
        content_term = 0.5 * (features["relu4_2"] - photo).square().sum()
        style_term = 0
        for name in layers:
            channels, positions = features[name].shape[1], features[name].shape[-2] * features[name].shape[-1]
            g, a = (f.reshape(channels, positions) for f in (features[name][0], painting[name][0]))
            style_term += 0.2 * ((g @ g.T - a @ a.T).square().sum() / (4 * channels**2 * positions**2))
        return content_term + style_term / alpha_over_beta

    def package_objective(features):
        style_terms = sum(
            weights[name] * layer_style_loss(gram_matrix(features[name]), gram_matrix(painting[name]))
            for name in layers
        )
        return content_loss(features["relu4_2"], photo) + style_terms

    ratios = []
    for seed in (0, 1, 2):
        image = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            features = {k: v.double() for k, v in vgg16_random(image, [*layers, "relu4_2"]).items()}
        ratios.append(float(paper_objective(features) / package_objective(features)))
    assert ratios == pytest.approx([0.5 * float(photo.square().sum())] * 3, rel=1e-6)


def test_figure1_reconstructs_from_one_layer_and_from_growing_style_sets(vgg16_random):
    made = paper_figure1(smooth_image(32, 32), stripes_image(32, 32), model=vgg16_random, form="conv", **TINY)
    layers = paper_layers("conv")
    style_runs = [made.results[key] for key in made.results if key[0] == "style"]
    content_runs = [made.results[key] for key in made.results if key[0] == "content"]
    assert [list(run.config.style_layers) for run in style_runs] == [layers[: i + 1] for i in range(5)]
    assert all(run.config.content_weight == 0 and run.config.init == "noise" for run in style_runs)
    assert [run.config.content_layers for run in content_runs] == [(name,) for name in layers]
    assert all(run.config.style_weight == 0 and run.steps == 2 for run in content_runs)
    assert len(made.images) == 12 and len(made.figure.axes) == 12
    assert made.settings["form"] == "conv" and made.seconds > 0
    plt.close(made.figure)


def test_figure2_paints_one_photo_in_each_style_with_the_paintings_as_insets(vgg16_random):
    styles = (stripes_image(32, 32), stripes_image(32, 32, period=3))
    made = paper_figure2(smooth_image(32, 32), styles, model=vgg16_random, alpha_over_beta=1e-4, **TINY)
    assert list(made.images)[0] == ("A", "photograph") and [key[0] for key in made.results] == ["B", "C"]
    assert all(run.config.style_weight == pytest.approx(100) for run in made.results.values())
    assert len(made.figure.axes) == 3 and [len(axis.child_axes) for axis in made.figure.axes] == [0, 1, 1]
    plt.close(made.figure)


def test_figure3_crosses_style_layer_sets_with_the_papers_ratios(vgg16_random):
    made = paper_figure3(
        smooth_image(32, 32), stripes_image(32, 32), model=vgg16_random, ratios=(1e-4, 1e-2), depth=2, **TINY
    )
    configs = {key: run.config for key, run in made.results.items()}
    assert len(configs) == 4 and len(made.figure.axes) == 4
    assert sorted({tuple(config.style_layers) for config in configs.values()}) == [
        ("relu1_1",),
        ("relu1_1", "relu2_1"),
    ]
    assert sorted(config.style_weight for config in configs.values()) == pytest.approx([1, 1, 100, 100])
    assert all(image.shape == (1, 3, 32, 32) for image in made.images.values())
    plt.close(made.figure)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: relative_style_weight("1e-3"), "positive number"),
        (lambda: relative_style_weight(-1e-3), "positive number"),
        (lambda: paper_figure3(depth=6, size=32, steps=1, log=False), "depth must be 1 to 5"),
        (lambda: paper_figure1(form="pool", size=32, steps=1, log=False), "form must be"),
    ],
)
def test_bad_settings_are_one_line_settings_errors(call, match):
    with pytest.raises(SettingsError, match=match):
        call()  # before any weights are loaded or images read
