"""Tests for several styles, masks and colour preservation in a run (nst_helpers.control, the Objective, stylize)."""

import pytest
import torch

from helpers import smooth_image, stripes_image
from nst_helpers import Objective, SettingsError, TransferConfig, stylize
from nst_helpers.control import colour_inputs

SHALLOW = dict(content_layers=["relu2_2"], style_layers={"relu1_1": 0.5, "relu2_1": 0.5})
RUN = dict(steps=6, preview_every=3, device="cpu", **SHALLOW)
YIQ_CHROMA = torch.tensor([[0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]])  # rows I, Q


def _einsum_gram(features):
    batch, channels, height, width = features.shape
    return torch.einsum("bihw,bjhw->bij", features, features) / (channels * height * width)


def test_one_style_blend_equals_the_single_style_run_exactly(vgg19_random):
    content, style = smooth_image(32, 40), stripes_image(36, 36)
    plain = stylize(content, style, model=vgg19_random, **RUN)
    for styles, blend in (([style], None), ([style], (3.0,)), ((style,), (1,))):
        blended = stylize(content, styles, TransferConfig(style_blend=blend), model=vgg19_random, **RUN)
        assert torch.equal(blended.image, plain.image)
        assert blended.history == plain.history


def test_style_targets_are_the_weighted_mix_of_grams(vgg19_random):
    content, first, second = smooth_image(32, 32), stripes_image(40, 28), smooth_image(24, 36, seed=4)
    objective = Objective(vgg19_random, content, [first, second], style_blend=(0.7, 0.3), **SHALLOW)
    with torch.no_grad():
        for name in SHALLOW["style_layers"]:
            a = _einsum_gram(vgg19_random(first, [name])[name])
            b = _einsum_gram(vgg19_random(second, [name])[name])
            assert torch.allclose(objective.style_grams[name], 0.7 * a + 0.3 * b, rtol=1e-5, atol=1e-7)
    equal = Objective(vgg19_random, content, [first, second], style_blend=(2.0, 2.0), **SHALLOW)
    default = Objective(vgg19_random, content, [first, second], **SHALLOW)
    assert all(torch.equal(equal.style_grams[k], default.style_grams[k]) for k in SHALLOW["style_layers"])


@pytest.mark.parametrize(
    "blend, match",
    [
        ((0.5, -0.5), "style_blend\\[1\\] must be a finite number ≥ 0"),
        ((float("nan"), 1.0), "style_blend\\[0\\]"),
        ((float("inf"), 1.0), "style_blend\\[0\\]"),
        ((0, 0.0), "all 0"),
        ("0.7,0.3", "sequence of numbers"),
        ((0.5, 0.3, 0.2), "3 entries but there are 2 style images"),
        ((1.0,), "1 entries but there are 2 style images"),
    ],
)
def test_bad_blend_weights_are_refused(blend, match):
    with pytest.raises(SettingsError, match=match) as caught:
        stylize(smooth_image(), [stripes_image(), smooth_image(seed=3)], style_blend=blend, **RUN)
    assert "\n" not in str(caught.value)


def test_unknown_preserve_colors_and_wrong_number_of_masks_are_refused():
    with pytest.raises(SettingsError, match="preserve_colors must be None, 'luminance' or 'histogram'"):
        TransferConfig(preserve_colors="yuv").validate()
    with pytest.raises(SettingsError, match="style_masks has 1 entries but there are 2 style images"):
        stylize(smooth_image(), [stripes_image(), stripes_image()], style_masks=[torch.ones(48, 64)], **RUN)
    with pytest.raises(SettingsError, match="aspect"):
        stylize(smooth_image(48, 64), stripes_image(), style_masks=[torch.ones(48, 48)], **RUN)
    with pytest.raises(SettingsError, match="every style mask is black"):
        stylize(smooth_image(48, 64), stripes_image(), style_masks=[torch.zeros(48, 64)], **RUN)


def _objective(model, content, style, masks, **kwargs):
    return Objective(
        model, content, style, style_masks=masks, content_layers=[], style_layers={"relu1_1": 1.0}, **kwargs
    )


def test_a_mask_of_ones_gives_the_unmasked_loss(vgg19_random):
    content, style, image = smooth_image(32, 40), stripes_image(30, 30), smooth_image(32, 40, seed=8)
    masked = _objective(vgg19_random, content, style, [torch.ones(1, 1, 32, 40)])
    plain = _objective(vgg19_random, content, style, None)
    assert torch.allclose(masked(image), plain(image), rtol=1e-5)
    deep = dict(content_layers=[], style_layers={"relu1_1": 0.5, "relu3_1": 0.5})
    ones = Objective(vgg19_random, content, [style], style_masks=[torch.ones(1, 1, 32, 40)], **deep)
    assert torch.allclose(ones(image), Objective(vgg19_random, content, style, **deep)(image), rtol=1e-5)


def test_uncovered_regions_get_no_style_gradient(vgg19_random):
    content, style = smooth_image(32, 40), stripes_image(30, 30)
    image = smooth_image(32, 40, seed=8).requires_grad_(True)
    nowhere = _objective(vgg19_random, content, style, [torch.zeros(1, 1, 32, 40)])
    terms = nowhere(image)
    assert terms[1].item() == 0 and not terms[1].requires_grad  # no path from the image to the style term at all
    left = torch.zeros(1, 1, 32, 40)
    left[..., :20] = 1
    _objective(vgg19_random, content, style, [left])(image).sum().backward()
    # relu1_1 sees 3x3 pixels: pixels two or more columns right of the border get no style gradient at all.
    assert torch.count_nonzero(image.grad[..., 22:]) == 0 and torch.count_nonzero(image.grad[..., :18]) > 0


def test_two_masked_styles_each_match_their_own_gram_in_their_region(vgg19_random):
    content, first, second = smooth_image(32, 40), stripes_image(30, 30), smooth_image(28, 28, seed=6)
    image = smooth_image(32, 40, seed=8)
    top = torch.zeros(1, 1, 32, 40)
    top[..., :16, :] = 1
    objective = _objective(vgg19_random, content, [first, second], [top, 1 - top], style_blend=(0.75, 0.25))
    with torch.no_grad():
        f = vgg19_random(image, ["relu1_1"])["relu1_1"]
        expected = 0.0
        for weight, style, mask in ((0.75, first, top), (0.25, second, 1 - top)):
            a = _einsum_gram(vgg19_random(style, ["relu1_1"])["relu1_1"])
            masked = f * mask
            g = torch.einsum("bihw,bjhw->bij", masked, masked) / (f.shape[1] * mask.sum())
            expected += 10.0 * 2 * weight * ((g - a) ** 2).sum() / (a**2).sum()  # β = 10, the default
    assert objective(image)[1].item() == pytest.approx(float(expected), rel=1e-4)


def test_luminance_transfer_keeps_the_contents_chroma(vgg19_random):
    content, style = smooth_image(32, 40, seed=2), stripes_image(36, 36)
    previews = []
    result = stylize(
        content,
        style,
        model=vgg19_random,
        preserve_colors="luminance",
        callback=lambda p: previews.append(p.image),
        **RUN,
    )
    for image in (result.image, result.best_image, previews[-2]):
        chroma = YIQ_CHROMA @ image[0].reshape(3, -1)
        assert torch.allclose(chroma, YIQ_CHROMA @ content[0].reshape(3, -1), atol=1e-5)
    frames = stylize(content, style, model=vgg19_random, preserve_colors="luminance", record_every=2, **RUN).frames
    assert frames and all(frame.image.dtype == torch.uint8 for frame in frames)
    for frame in frames:  # replay frames too (8-bit: equal to rounding)
        chroma = YIQ_CHROMA @ frame.as_float()[0].reshape(3, -1)
        assert torch.allclose(chroma, YIQ_CHROMA @ content[0].reshape(3, -1), atol=4e-3)
    plain = stylize(content, style, model=vgg19_random, **RUN)
    assert not torch.allclose(
        YIQ_CHROMA @ plain.image[0].reshape(3, -1), YIQ_CHROMA @ content[0].reshape(3, -1), atol=1e-3
    )


def test_colour_inputs_say_what_the_network_sees():
    content, style = smooth_image(20, 20, seed=1), smooth_image(24, 24, seed=5)
    config = TransferConfig(preserve_colors="histogram").validate()
    same_content, (recoloured,) = colour_inputs(config, content, [style])
    assert same_content is content
    pixels, target = recoloured[0].reshape(3, -1).double(), content[0].reshape(3, -1).double()
    assert torch.allclose(pixels.mean(1), target.mean(1), atol=0.02)  # clamped to [0, 1]: close, not exact
    grey, (grey_style,) = colour_inputs(TransferConfig(preserve_colors="luminance").validate(), content, [style])
    assert torch.equal(grey[:, 0], grey[:, 2]) and torch.equal(grey_style[:, 0], grey_style[:, 1])
    assert grey_style.mean().item() == pytest.approx(grey.mean().item(), abs=1e-3)


def test_stylize_in_histogram_mode_gives_the_objective_the_recoloured_style(vgg19_random, monkeypatch):
    import nst_helpers.transfer as transfer_module

    seen = []

    class Spy(Objective):
        def __init__(self, model, content_image, style_images, **kwargs):
            seen.append(style_images)
            super().__init__(model, content_image, style_images, **kwargs)

    monkeypatch.setattr(transfer_module, "Objective", Spy)
    content = smooth_image(32, 32, seed=1) * 0.5 + 0.25  # colours well inside the cube: the clamp does nothing
    style = smooth_image(32, 32, seed=5)
    result = stylize(content, style, model=vgg19_random, preserve_colors="histogram", **RUN)
    assert result.completed and result.config.preserve_colors == "histogram"
    (recoloured,) = seen[0]
    pixels, target = recoloured[0].reshape(3, -1).double(), content[0].reshape(3, -1).double()
    assert torch.allclose(pixels.mean(1), target.mean(1), atol=1e-4)
    assert torch.allclose(torch.cov(pixels, correction=0), torch.cov(target, correction=0), atol=1e-4)
