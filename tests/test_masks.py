"""Tests for nst_helpers.masks: loading and checking masks, per-layer resizing, the masked Gram, simple masks."""

import pytest
import torch
from PIL import Image

from helpers import image_bytes, smooth_image
from nst_helpers import SettingsError
from nst_helpers.losses import gram_matrix
from nst_helpers.masks import (
    brightness_masks,
    layer_mask,
    load_mask,
    masked_gram_matrix,
    otsu_threshold,
    split_masks,
)


def test_load_mask_from_greyscale_files_pil_images_and_tensors(tmp_path):
    grey = Image.new("L", (40, 30), 0)
    grey.paste(255, (0, 0, 40, 15))  # top half white
    path = tmp_path / "mask.png"
    grey.save(path)
    for source in (path, str(path), grey, image_bytes(grey), grey.convert("RGB")):
        mask = load_mask(source, (30, 40))
        assert mask.shape == (1, 1, 30, 40) and mask.dtype == torch.float32
        assert mask[0, 0, :15].min() == 1 and mask[0, 0, 15:].max() == 0
    resized = load_mask(path, (60, 80))  # same aspect ratio, twice the size: resized
    assert resized.shape == (1, 1, 60, 80) and resized.mean().item() == pytest.approx(0.5, abs=0.02)
    for tensor in (torch.ones(30, 40), torch.ones(1, 30, 40), torch.ones(1, 1, 30, 40, dtype=torch.bool)):
        assert torch.equal(load_mask(tensor, (30, 40)), torch.ones(1, 1, 30, 40))


@pytest.mark.parametrize(
    "source, match",
    [
        (Image.new("RGB", (40, 30), (255, 0, 0)), "colour image; a mask must be greyscale"),
        (Image.new("L", (40, 40)), "aspect 1.00.*aspect 1.33"),
        (torch.rand(2, 2, 30, 40), "a mask must be"),
        (torch.full((30, 40), 2.0), "values must lie in"),
        (torch.zeros(30, 40, dtype=torch.int64), "float in"),
    ],
)
def test_bad_masks_are_refused_in_one_line(source, match):
    with pytest.raises(SettingsError, match=match) as caught:
        load_mask(source, (30, 40), index=1)
    assert "\n" not in str(caught.value) and "style mask #2" in str(caught.value)


@pytest.mark.parametrize("size", [(64, 48), (50, 37), (224, 160)])
def test_layer_masks_keep_their_area_fraction(size):
    mask = torch.zeros(1, 1, *size)
    mask[..., : size[0] // 4, :] = 1  # the top quarter
    mask[..., :, : size[1] // 3] = 1  # and the left third
    fraction = mask.mean().item()
    height, width = size
    for _ in range(5):  # VGG's max pools: floor(h / 2)
        height, width = height // 2, width // 2
        small = layer_mask(mask, (height, width))
        exact = size[0] % height == 0 and size[1] % width == 0  # whole blocks: area averaging is exact
        assert small.mean().item() == pytest.approx(fraction, abs=1e-6 if exact else 0.05)
    assert layer_mask(mask, size) is mask


def test_masked_gram_against_einsum_and_the_plain_gram():
    features = torch.randn(1, 5, 12, 10, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(masked_gram_matrix(features, torch.ones(1, 1, 12, 10)), gram_matrix(features), atol=1e-6)
    mask = torch.rand(1, 1, 12, 10, generator=torch.Generator().manual_seed(1))
    masked = features * mask
    expected = torch.einsum("bihw,bjhw->bij", masked, masked) / (5 * (mask**2).sum())
    assert torch.allclose(masked_gram_matrix(features, mask), expected, atol=1e-6)
    assert torch.equal(masked_gram_matrix(features, torch.zeros(1, 1, 12, 10)), torch.zeros(1, 5, 5))


def test_split_and_brightness_masks_are_complementary():
    top, bottom = split_masks((10, 8), at=0.3)
    assert (
        torch.equal(top + bottom, torch.ones(1, 1, 10, 8)) and top[..., :3, :].min() == 1 and top[..., 3:, :].max() == 0
    )
    left, right = split_masks(torch.zeros(1, 3, 10, 8), at=0.5, vertical=True)
    assert left[..., :4].min() == 1 and left[..., 4:].max() == 0
    with pytest.raises(SettingsError, match="at must"):
        split_masks((10, 8), at=1.0)
    image = smooth_image(32, 32) * 0.3
    image[..., :12, :] += 0.6  # a bright "sky" above a darker "ground"
    bright, dark = brightness_masks(image)
    assert torch.equal(bright + dark, torch.ones(1, 1, 32, 32))
    assert bright[..., :12, :].min() == 1 and bright[..., 12:, :].max() == 0
    soft, _ = brightness_masks(image, smooth=2)
    assert 0 < soft[0, 0, 12, 5] < 1 and soft[0, 0, 0, 0] == 1


def test_otsu_threshold_separates_two_modes():
    values = torch.cat([torch.full((100,), 0.2), torch.full((50,), 0.7)])
    assert 0.2 < otsu_threshold(values) < 0.7
