"""Tests of nst_helpers/image_files.py: opening every kind of source, and the messages for bad files.

Most bad-file cases run through ``load_image`` in test_images.py (that is how users meet them); these
check ``open_image`` itself.
"""

import io

import pytest
from PIL import Image

from helpers import image_bytes
from nst_helpers import ImageLoadError
from nst_helpers.image_files import megapixels, open_image


def test_every_kind_of_source_opens_the_same_picture(tmp_path):
    picture = Image.new("RGB", (5, 3), (10, 200, 30))
    data = image_bytes(picture)
    path = tmp_path / "p.png"
    path.write_bytes(data)
    sources = [str(path), path, data, bytearray(data), memoryview(data), io.BytesIO(data), picture]
    for source in sources:
        image, name = open_image(source)
        assert image.size == (5, 3) and image.convert("RGB").getpixel((0, 0)) == (10, 200, 30)
        assert isinstance(name, str) and name


@pytest.mark.parametrize(
    "content, match", [(b"", "empty"), (b"<!DOCTYPE html><html>", "web page"), (b"just a note\n", "text")]
)
def test_non_images_are_named_for_what_they_are(tmp_path, content, match):
    path = tmp_path / "photo.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageLoadError, match=match):
        open_image(path)


def test_missing_file_says_so():
    with pytest.raises(ImageLoadError, match="not found|No such|does not exist"):
        open_image("/nonexistent/folder/picture.jpg")


def test_megapixels_in_messages():
    assert megapixels(12_000_000) == "12 megapixels"
    assert megapixels(89_478_485) == "89.5 megapixels"  # Pillow's default decompression-bomb limit
