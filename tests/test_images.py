import io

import numpy as np
import pytest
import torch
from PIL import Image

from nst_helpers import ImageLoadError, ImageSaveError, load_image, save_image, to_pil
from nst_helpers.images import resize_image


def _png_bytes(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def test_path_bytes_pil_and_file_object_agree(tmp_path):
    array = (np.random.default_rng(0).random((20, 30, 3)) * 255).astype(np.uint8)
    image = Image.fromarray(array)
    path = tmp_path / "a.png"
    image.save(path)
    expected = torch.from_numpy(array).permute(2, 0, 1).float().div(255).unsqueeze(0)
    for source in (path, str(path), path.read_bytes(), image, open(path, "rb")):
        tensor = load_image(source, max_size=None)
        assert tensor.shape == (1, 3, 20, 30) and tensor.dtype == torch.float32
        assert torch.allclose(tensor, expected, atol=1e-6)


def test_max_size_keeps_aspect_ratio_and_size_is_exact():
    image = Image.new("RGB", (400, 200), (10, 200, 30))
    assert load_image(image, max_size=100).shape == (1, 3, 50, 100)
    assert load_image(image, max_size=800).shape == (1, 3, 400, 800)  # small images are scaled up too
    assert load_image(image, size=(64, 32)).shape == (1, 3, 64, 32)
    assert load_image(image, size=48).shape == (1, 3, 48, 48)
    assert torch.allclose(load_image(image, max_size=100)[0, :, 10, 10], torch.tensor([10, 200, 30]) / 255, atol=1e-3)


def test_resize_uses_antialiasing():
    # A 1-px checkerboard averaged down should give grey, not aliased black/white.
    board = ((torch.arange(64).view(1, -1) + torch.arange(64).view(-1, 1)) % 2).float().expand(1, 3, 64, 64)
    small = resize_image(board.contiguous(), max_size=16)
    assert small.shape == (1, 3, 16, 16)
    assert torch.allclose(small, torch.full_like(small, 0.5), atol=0.05)


def test_rgba_is_composited_over_white():
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # fully transparent red
    rgba.putpixel((0, 0), (255, 0, 0, 255))  # one opaque red pixel
    tensor = load_image(rgba, max_size=None)
    assert torch.allclose(tensor[0, :, 1, 1], torch.ones(3))
    assert torch.allclose(tensor[0, :, 0, 0], torch.tensor([1.0, 0.0, 0.0]))


def test_greyscale_palette_cmyk_and_16bit():
    gray = Image.new("L", (3, 2), 128)
    assert torch.allclose(load_image(gray, max_size=None), torch.full((1, 3, 2, 3), 128 / 255))
    palette = Image.new("RGB", (3, 2), (0, 0, 255)).convert("P")
    assert torch.allclose(load_image(palette, max_size=None)[0, :, 0, 0], torch.tensor([0.0, 0.0, 1.0]), atol=0.01)
    cmyk = Image.new("CMYK", (3, 2), (0, 255, 255, 0))  # pure red in CMYK
    assert torch.allclose(load_image(cmyk, max_size=None)[0, :, 0, 0], torch.tensor([1.0, 0.0, 0.0]), atol=0.01)
    deep = Image.fromarray(np.full((2, 3), 1000, dtype=np.uint16))  # 16-bit: keep precision, no clipping at 255
    assert deep.mode.startswith("I;16")
    assert torch.allclose(load_image(_png_bytes(deep), max_size=None), torch.full((1, 3, 2, 3), 1000 / 65535), atol=1e-6)


def test_exif_rotation_is_applied():
    image = Image.new("RGB", (40, 20), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 10, 20))  # white band on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    tensor = load_image(_png_bytes(image, "JPEG", exif=exif.tobytes(), quality=95), max_size=None)
    assert tensor.shape == (1, 3, 40, 20)  # upright: portrait
    assert tensor[0, :, :10, :].mean() > 0.9  # the white band is now on top
    assert tensor[0, :, -10:, :].mean() < 0.1


@pytest.mark.parametrize("content, match", [
    (b"", "empty"),
    (b"<!DOCTYPE html><html><body>not an image</body></html>", "HTML"),
    (b"\x00\x01\x02 random binary", "not an image format"),
])
def test_bad_files_give_clear_errors(tmp_path, content, match):
    path = tmp_path / "photo.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageLoadError, match=match):
        load_image(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ImageLoadError, match="No such file"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(ImageLoadError, match="is a folder"):
        load_image(tmp_path)


def test_truncated_jpeg(tmp_path):
    data = _png_bytes(Image.new("RGB", (64, 64), (1, 2, 3)), "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError, match="truncated or corrupt"):
        load_image(path)


def test_round_trip_save_and_load(tmp_path):
    image = torch.rand(1, 3, 17, 23)
    written = save_image(image, tmp_path / "deep" / "folder" / "x.png")
    again = load_image(written, max_size=None)
    assert torch.allclose(again, image, atol=0.5 / 255 + 1e-6)
    assert to_pil(image[0]).size == (23, 17)


def test_save_errors_keep_the_image(tmp_path):
    image = torch.rand(1, 3, 8, 8)
    with pytest.raises(ImageSaveError, match=r"\.png or \.jpg"):
        save_image(image, tmp_path / "x.unknownext")
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ImageSaveError, match="still in memory"):
        save_image(image, blocker / "x.png")
    assert image.shape == (1, 3, 8, 8)


def test_bad_size_arguments():
    with pytest.raises(ImageLoadError, match="max_size"):
        load_image(Image.new("RGB", (4, 4)), max_size=0)
    with pytest.raises(ImageLoadError, match="size"):
        load_image(Image.new("RGB", (4, 4)), size=(0, 3))
