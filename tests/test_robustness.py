"""Bad input, issue #4: every case ends in a clear message that says what to do, and no work is lost.

One test per row of the issue; the weights rows are also tested in tests/test_vgg.py
(wrong keys and shapes, float16, offline download) and the loop's in
tests/test_transfer.py. Everything is offline: URLs
are served by a local http.server on 127.0.0.1, CUDA out-of-memory errors are
simulated by forward hooks, free memory is monkeypatched.
"""

from __future__ import annotations

import contextlib
import http.server
import io
import re
import socket
import struct
import threading
import time
import warnings
import zlib

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps

import nst_helpers.transfer as transfer_module
from conftest import smooth_image, stripes_image
from nst_helpers import (
    ImageLoadError,
    ImageSaveError,
    SettingsError,
    WeightsError,
    load_image,
    load_vgg,
    save_image,
    stylize,
)
from nst_helpers.__main__ import main
from nst_helpers.images import fetch_url
from nst_helpers.transfer import estimate_memory

# Shallow layers keep each run fast on two CPU cores; what is tested here does not depend on depth.
SHALLOW = dict(content_layers=("relu2_2",), style_layers={"relu1_1": 0.5, "relu2_1": 0.5})
SMALL = dict(steps=6, preview_every=3, device="cpu", **SHALLOW)


def _encode(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _pixels(tensor: torch.Tensor) -> np.ndarray:
    """[1, 3, H, W] in [0, 1] → H x W x 3 in 0..255 (float), for comparing with PIL."""
    return tensor[0].permute(1, 2, 0).numpy() * 255.0


def _check_image_tensor(tensor: torch.Tensor, height: int | None = None, width: int | None = None) -> None:
    assert tensor.dtype == torch.float32 and tensor.dim() == 4 and tensor.shape[:2] == (1, 3)
    if height is not None:
        assert tuple(tensor.shape[-2:]) == (height, width)
    assert bool(torch.isfinite(tensor).all()) and float(tensor.min()) >= 0.0 and float(tensor.max()) <= 1.0


# --------------------------------------------------------------------------- images: files


@pytest.mark.parametrize("content, match", [
    (b"", "is empty"),
    (b"<!DOCTYPE html><html><head><title>404</title></head></html>", "text or HTML file"),
    (b"Just some notes, saved with the wrong extension.\n", "text or HTML file"),
    ("Notizen über Bilder: äöü\n".encode(), "text or HTML file"),
    (b"\x00\x13\x37\xfe binary, but no image format", "not an image format Pillow can read; convert it"),
    (b"{\"error\": \"not found\"}", "text or HTML file"),
])
def test_empty_text_and_html_files_named_jpg(tmp_path, content, match):
    path = tmp_path / "photo.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageLoadError, match=match):
        load_image(path)


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_truncated_jpeg_at_any_point(tmp_path, fraction):
    array = (np.random.default_rng(0).random((64, 96, 3)) * 255).astype(np.uint8)
    data = _encode(Image.fromarray(array), "JPEG", quality=90)
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ImageLoadError, match="truncated or corrupt.*Re-download"):
        load_image(path)


def test_one_by_one_image_loads_and_stylises(tmp_path, vgg19_random):
    path = tmp_path / "dot.png"
    Image.new("RGB", (1, 1), (200, 100, 50)).save(path)
    tensor = load_image(path, max_size=32)  # scaled up like any other image: a flat colour
    _check_image_tensor(tensor, 32, 32)
    assert torch.allclose(tensor, torch.tensor([200, 100, 50]).div(255).view(1, 3, 1, 1).expand_as(tensor), atol=1e-3)
    assert load_image(path, max_size=None).shape == (1, 3, 1, 1)
    result = stylize(path, stripes_image(), model=vgg19_random, size=32, **SMALL)
    assert result.completed and result.image.shape == (1, 3, 32, 32)


def test_very_thin_image_loads_sensibly_and_stylize_explains_the_16_px_minimum(tmp_path, vgg19_random):
    path = tmp_path / "thin.png"
    Image.new("RGB", (4000, 3), (10, 20, 30)).save(path)
    assert load_image(path, max_size=None).shape == (1, 3, 3, 4000)
    assert load_image(path, max_size=512).shape == (1, 3, 1, 512)  # aspect ratio kept, at least 1 px
    with pytest.raises(SettingsError, match=r"content image is 1x512 px.*needs at least 16 px.*crop it"):
        stylize(path, stripes_image(), model=vgg19_random, size=512, steps=2, device="cpu")  # deepest: relu5_1
    strip = tmp_path / "strip.png"
    Image.new("RGB", (200, 10), (10, 20, 30)).save(strip)  # at size=64: 3x64 px; 16 px needs size >= 342
    with pytest.raises(SettingsError, match=r"content image is 3x64 px.*use size=342 or more"):
        stylize(strip, stripes_image(), model=vgg19_random, size=64, steps=2, device="cpu")
    assert stylize(strip, stripes_image(), model=vgg19_random, size=342, steps=1, device="cpu").completed


def test_enlarging_past_the_pixel_limit_is_refused_before_allocating(monkeypatch):
    """A typo like size=40000 made a 14 GB tensor and got the process killed; now it is a clear error."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5_000)
    dot = Image.new("RGB", (2, 1), (1, 2, 3))
    match = r"Enlarging a 1x2 px image to 100x200 px gives 0.02 megapixels, more than twice .* Use a smaller size"
    with pytest.raises(ImageLoadError, match=match):
        load_image(dot, max_size=200)
    _check_image_tensor(load_image(dot, max_size=140), 70, 140)  # 9,800 px: within twice the limit
    _check_image_tensor(load_image(Image.new("RGB", (400, 200)), max_size=150), 75, 150)  # shrinking: always fine


def test_enlarging_past_the_free_memory_is_refused(monkeypatch):
    import nst_helpers.images as images_module

    monkeypatch.setattr(images_module, "available_memory", lambda: 2**20)  # 1 MiB free
    with pytest.raises(ImageLoadError, match=r"to 200x400 px .*about 1.8 MiB of memory .* only 1.0 MiB is free"):
        load_image(Image.new("RGB", (2, 1)), max_size=400)
    _check_image_tensor(load_image(Image.new("RGB", (2, 1)), max_size=100), 50, 100)  # 0.1 MiB: fits


# --------------------------------------------------------------------------- images: decompression bombs


@pytest.fixture
def png_200x100(tmp_path):
    path = tmp_path / "big.png"
    Image.new("RGB", (200, 100), (0, 128, 255)).save(path)
    return path


def test_decompression_bomb_over_twice_the_limit_is_refused_with_size_and_fix(png_200x100, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5_000)  # the PNG has 20,000 pixels: > 2x the limit
    with pytest.raises(ImageLoadError) as info:
        load_image(png_200x100)
    message = str(info.value)
    assert "0.02 megapixels" in message and "0.005 megapixels" in message  # how large, and the limit
    assert "PIL.Image.MAX_IMAGE_PIXELS = None" in message and "shrink it" in message  # what to do


def test_decompression_bomb_between_one_and_two_times_the_limit_loads_with_a_clear_warning(png_200x100, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 15_000)  # 20,000 pixels: between 1x and 2x
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tensor = load_image(png_200x100, max_size=64)
    _check_image_tensor(tensor, 32, 64)
    ours = [w for w in caught if "200x100 px (0.02 megapixels)" in str(w.message)]
    assert len(ours) == 1 and "Loading it anyway" in str(ours[0].message)
    assert ours[0].filename == __file__  # points at the caller's line, not into the package
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]  # no raw PIL text


# --------------------------------------------------------------------------- images: modes, EXIF, animation


def test_greyscale_and_bilevel_images_become_equal_rgb_channels():
    grey = np.array([[0, 64], [128, 255]], dtype=np.uint8)
    tensor = load_image(_encode(Image.fromarray(grey)), max_size=None)
    assert torch.allclose(tensor, torch.from_numpy(grey).float().div(255).expand(1, 3, 2, 2))
    bilevel = Image.fromarray(np.array([[True, False], [False, True]]))
    assert bilevel.mode == "1"
    tensor = load_image(_encode(bilevel), max_size=None)
    assert torch.equal(tensor[0, 0], torch.tensor([[1.0, 0.0], [0.0, 1.0]])) and torch.equal(tensor[0, 0], tensor[0, 2])


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_partial_transparency_is_composited_over_white(mode):
    if mode == "RGBA":
        image = Image.new("RGBA", (2, 1), (255, 0, 0, 255))
        image.putpixel((1, 0), (255, 0, 0, 64))  # mostly transparent red
        colour = np.array([255, 0, 0])
    else:
        image = Image.new("LA", (2, 1), (40, 255))
        image.putpixel((1, 0), (40, 64))
        colour = np.array([40, 40, 40])
    pixels = _pixels(load_image(_encode(image), max_size=None))
    alpha = 64 / 255
    assert np.allclose(pixels[0, 0], colour, atol=0.01)
    assert np.allclose(pixels[0, 1], colour * alpha + 255 * (1 - alpha), atol=0.01)


@pytest.mark.parametrize("transparency", ["index", "per_entry_alpha"])
def test_palette_image_with_transparency(transparency):
    image = Image.new("P", (3, 1), 0)
    image.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 759)
    image.putpixel((1, 0), 1)
    image.putpixel((2, 0), 2)
    if transparency == "index":  # tRNS with one fully transparent index
        data, expected = _encode(image, transparency=1), [[255, 0, 0], [255, 255, 255], [0, 0, 255]]
    else:  # tRNS with an alpha per palette entry: red opaque, green transparent, blue half
        data = _encode(image, transparency=bytes([255, 0, 128]))
        half = 128 / 255
        expected = [[255, 0, 0], [255, 255, 255], [255 * (1 - half), 255 * (1 - half), 255]]
    assert Image.open(io.BytesIO(data)).mode == "P"
    assert np.allclose(_pixels(load_image(data, max_size=None))[0], expected, atol=0.01)


def test_palette_without_transparency():
    image = Image.new("P", (2, 1), 0)
    image.putpalette([10, 20, 30, 200, 100, 0] + [0] * 762)
    image.putpixel((1, 0), 1)
    assert np.allclose(_pixels(load_image(_encode(image), max_size=None))[0], [[10, 20, 30], [200, 100, 0]], atol=0.01)


@pytest.mark.parametrize("fmt", ["JPEG", "TIFF"])
def test_cmyk_is_converted_to_rgb(fmt):
    image = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # red
    image.paste((255, 0, 255, 0), (4, 0, 8, 8))  # green on the right half
    pixels = _pixels(load_image(_encode(image, fmt, **({"quality": 100} if fmt == "JPEG" else {})), max_size=None))
    assert Image.open(io.BytesIO(_encode(image, fmt))).mode == "CMYK"
    assert np.allclose(pixels[4, 1], [255, 0, 0], atol=6) and np.allclose(pixels[4, 6], [0, 255, 0], atol=6)


def _png_rgb16(array: np.ndarray) -> bytes:
    """A 16-bit-per-channel RGB PNG written by hand (Pillow cannot write one)."""
    height, width, _ = array.shape
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in array)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def test_sixteen_bit_images_keep_their_values():
    grey = np.array([[0, 1000], [40000, 65535]], dtype=np.uint16)  # I;16: full precision
    tensor = load_image(_encode(Image.fromarray(grey)), max_size=None)
    assert torch.allclose(tensor[0, 1], torch.from_numpy(grey / 65535).float(), atol=1e-6)
    colour = np.array([[[65535, 0, 32768], [1000, 60000, 30000]]], dtype=np.uint16)  # RGB 48-bit
    tensor = load_image(_png_rgb16(colour), max_size=None)  # Pillow reads it as 8-bit RGB: within 1/255
    assert torch.allclose(tensor[0].permute(1, 2, 0), torch.from_numpy(colour / 65535).float(), atol=1 / 255 + 1e-6)


def test_32_bit_integer_and_float_tiffs():
    integers = np.array([[0, 255], [128, 64]], dtype=np.int32)  # values up to 255: read as 8-bit levels
    tensor = load_image(_encode(Image.fromarray(integers), "TIFF"), max_size=None)
    assert torch.allclose(tensor[0, 0], torch.from_numpy(integers / 255).float(), atol=1e-6)
    floats = np.array([[0.0, 0.25], [0.5, 1.0]], dtype=np.float32)  # values in [0, 1]: used as they are
    tensor = load_image(_encode(Image.fromarray(floats), "TIFF"), max_size=None)
    assert torch.allclose(tensor[0, 2], torch.from_numpy(floats), atol=1e-6)


# Orientation tag → what a viewer does to display the stored pixels, written out by hand with numpy.
_EXIF_BY_HAND = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],  # mirror left-right
    3: lambda a: a[::-1, ::-1],  # rotate 180
    4: lambda a: a[::-1, :],  # mirror top-bottom
    5: lambda a: a.transpose(1, 0, 2),  # transpose
    6: lambda a: np.rot90(a, k=-1),  # rotate 90 clockwise
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),  # transverse
    8: lambda a: np.rot90(a, k=1),  # rotate 90 counter-clockwise
}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_all_eight_exif_orientations(orientation):
    stored = (np.arange(2 * 3 * 3).reshape(2, 3, 3) * 14).astype(np.uint8)  # 3 wide, 2 high, every pixel distinct
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _encode(Image.fromarray(stored), "PNG", exif=exif.tobytes())  # lossless: exact comparison
    loaded = _pixels(load_image(data, max_size=None))
    reference = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))))
    assert np.allclose(loaded, reference, atol=1e-3)
    assert np.allclose(loaded, _EXIF_BY_HAND[orientation](stored), atol=1e-3)
    if orientation == 6:  # by hand: the stored bottom-left pixel ends up top-left
        assert np.allclose(loaded[0, 0], stored[1, 0], atol=1e-3) and loaded.shape[:2] == (3, 2)
    # The max_size resize uses the displayed (rotated) aspect ratio.
    expected = (1, 3, 40, 60) if orientation <= 4 else (1, 3, 60, 40)
    assert load_image(data, max_size=60).shape == expected


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_animated_image_uses_first_frame_with_a_warning(fmt):
    frames = [Image.new("RGB", (8, 8), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, fmt, save_all=True, append_images=frames[1:], duration=100,
                   **({"lossless": True} if fmt == "WEBP" else {}))
    with pytest.warns(UserWarning, match=r"animated \(3 frames\); using the first frame"):
        tensor = load_image(buffer.getvalue(), max_size=None)
    assert np.allclose(_pixels(tensor)[4, 4], [255, 0, 0], atol=2)


# --------------------------------------------------------------------------- images: URLs (loopback only)


_PNG = _encode(Image.new("RGB", (20, 10), (255, 0, 0)))


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output quiet
        pass

    def _send(self, body: bytes, content_type: str, length: bool = True, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802 - http.server's name
        try:
            if self.path == "/image.png":
                self._send(_PNG, "image/png")
            elif self.path == "/page.html":
                self._send(b"<!doctype html><html><body>a gallery page</body></html>", "text/html; charset=utf-8")
            elif self.path == "/page-as-jpeg":  # a server that lies about the type
                self._send(b"<html><body>Access denied</body></html>", "image/jpeg")
            elif self.path == "/big-declared":
                self._send(b"\0" * 5000, "image/png")
            elif self.path == "/big-undeclared":
                self._send(b"\0" * 5000, "image/png", length=False)
            elif self.path == "/cut-short":  # announces the whole PNG, sends half, closes the connection
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(_PNG)))
                self.end_headers()
                self.wfile.write(_PNG[: len(_PNG) // 2])
                self.close_connection = True
            elif self.path == "/forbidden":
                self.send_error(403)
            elif self.path == "/busy":
                self.send_error(503)
            elif self.path == "/slow":
                time.sleep(3)
                self._send(_PNG, "image/png")
            elif self.path == "/trickle":  # a byte every 50 ms: no single read times out
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.end_headers()
                for _ in range(60):
                    self.wfile.write(b"\0")
                    self.wfile.flush()
                    time.sleep(0.05)
            else:
                self.send_error(404)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up, as the test wants
            pass


@pytest.fixture(scope="module")
def local_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_valid_image_url(local_server):
    tensor = load_image(f"{local_server}/image.png", max_size=None)
    _check_image_tensor(tensor, 10, 20)
    assert torch.allclose(tensor[0, :, 0, 0], torch.tensor([1.0, 0.0, 0.0]))


def test_url_404(local_server):
    with pytest.raises(ImageLoadError, match=r"HTTP 404 \(Not Found\).*download the image yourself"):
        load_image(f"{local_server}/missing.jpg")


@pytest.mark.parametrize("path, match", [
    ("/forbidden", r"HTTP 403 \(Forbidden\).*open the address in your browser, save the image"),
    ("/busy", r"HTTP 503 \(Service Unavailable\).*try again later"),
])
def test_url_refused_or_server_error_says_what_to_do(local_server, path, match):
    with pytest.raises(ImageLoadError, match=match):
        load_image(local_server + path)


def test_url_download_cut_short_says_so_instead_of_blaming_the_file(local_server):
    half = len(_PNG) // 2
    with pytest.raises(ImageLoadError, match=rf"stopped after {half} bytes of {len(_PNG)} bytes.*try again"):
        fetch_url(local_server + "/cut-short", timeout=5)


@pytest.mark.parametrize("path, match", [
    ("/page.html", r"returned a web page \(text/html.*'Copy image address'"),
    ("/page-as-jpeg", "text or HTML file, not an image"),
])
def test_url_returning_html_instead_of_an_image(local_server, path, match):
    with pytest.raises(ImageLoadError, match=match):
        load_image(local_server + path)


@pytest.mark.parametrize("path, match", [
    ("/big-declared", r"is 5 kB, more than the 1 kB limit"),
    ("/big-undeclared", r"is larger than the 1 kB limit"),
])
def test_url_response_larger_than_max_bytes(local_server, path, match):
    with pytest.raises(ImageLoadError, match=match + ".*shrink it, and pass the local path"):
        fetch_url(local_server + path, max_bytes=1000)
    assert len(fetch_url(local_server + path, max_bytes=5000)) == 5000  # exactly at the limit is fine


@pytest.mark.parametrize("path", ["/slow", "/trickle"])
def test_url_that_takes_longer_than_the_timeout(local_server, path):
    started = time.monotonic()
    with pytest.raises(ImageLoadError, match=r"Timed out after 0.5 s waiting for .*try again"):
        fetch_url(local_server + path, timeout=0.5)
    assert time.monotonic() - started < 2.0  # bounded: the whole download, not each read


def test_url_nobody_answers():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    with pytest.raises(ImageLoadError, match="Could not download .*Are you online"):
        fetch_url(f"http://127.0.0.1:{closed_port}/x.png", timeout=2)


def _write_bad_input(folder, kind: str, server: str) -> str:
    """A bad image of the given kind, as a user would pass it on the command line."""
    path = folder / f"{kind}.jpg"
    if kind == "missing":
        return str(path)
    if kind == "folder":
        return str(folder)
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "html":
        path.write_bytes(b"<!DOCTYPE html><html><body>Gallery</body></html>")
    elif kind == "truncated":
        array = (np.random.default_rng(0).random((32, 48, 3)) * 255).astype(np.uint8)
        path.write_bytes(_encode(Image.fromarray(array), "JPEG")[:300])
    elif kind == "bomb":
        path = folder / "bomb.png"
        Image.new("L", (200, 100)).save(path)  # 20,000 px, over twice the limit the test sets
    elif kind == "thin":
        path = folder / "thin.png"
        Image.new("RGB", (4000, 3), (10, 20, 30)).save(path)
    elif kind == "url_404":
        return f"{server}/missing.jpg"
    elif kind == "url_html":
        return f"{server}/page.html"
    elif kind == "misspelt_sample":
        return "starry_nite"
    return str(path)


_CLI_BAD_INPUTS = {
    "missing": r"error: No such file: .*missing\.jpg \(current folder: .*list_samples",
    "folder": "error: .* is a folder; give the path of an image file inside it",
    "empty": r"error: .*empty\.jpg is empty \(0 bytes\); re-download",
    "html": "error: .*html.jpg is a text or HTML file, not an image",
    "truncated": "error: .*truncated.jpg could not be decoded .*truncated or corrupt. Re-download",
    "bomb": "error: .*bomb.png is 0.02 megapixels, more than twice .*PIL.Image.MAX_IMAGE_PIXELS = None",
    "thin": "error: The (content|style) image is 1x64 px after resizing, but the deepest layer needs at least 16 px",
    "url_404": r"error: The server answered HTTP 404 \(Not Found\)",
    "url_html": r"error: .*page.html returned a web page",
    "misspelt_sample": "error: No such file or sample image: 'starry_nite'. Did you mean the sample 'starry_night'",
}


@pytest.mark.parametrize("role", ["content", "style"])
@pytest.mark.parametrize("kind", list(_CLI_BAD_INPUTS))
def test_command_line_bad_image_is_exit_2_and_one_line(tmp_path, vgg19_random, local_server, monkeypatch, capsys,
                                                       kind, role):
    if kind == "bomb":  # a 200x100 PNG stands in for a real bomb
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5_000)
    monkeypatch.setattr(transfer_module, "load_vgg", lambda **kwargs: vgg19_random)  # no download, no file
    good = tmp_path / "good.png"
    save_image(smooth_image(), good)
    bad = _write_bad_input(tmp_path, kind, local_server)
    pair = [bad, str(good)] if role == "content" else [str(good), bad]
    out = tmp_path / "out.png"
    code = main(pair + ["-o", str(out), "--size", "64", "--steps", "2", "--quiet", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert re.search(_CLI_BAD_INPUTS[kind], err), err


def test_command_line_size_too_large_to_load_is_refused_before_the_weights(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5_000)  # stands in for size=40000 with the real limit
    monkeypatch.setattr(transfer_module, "load_vgg", lambda **kwargs: pytest.fail("weights loaded"))
    save_image(smooth_image(16, 16), tmp_path / "c.png")
    code = main([str(tmp_path / "c.png"), str(tmp_path / "c.png"), "-o", str(tmp_path / "out.png"), "--size", "200",
                 "--quiet", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("error: Enlarging a 16x16 px image to 200x200 px") and "Use a smaller size" in err


# --------------------------------------------------------------------------- images: property tests


def _random_image(mode: str, height: int, width: int, seed: int, transparent: bool) -> Image.Image:
    rng = np.random.default_rng(seed)
    if mode == "1":
        return Image.fromarray(rng.random((height, width)) > 0.5)
    if mode in ("L", "LA", "RGB", "RGBA"):
        channels = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}[mode]
        array = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
        return Image.fromarray(array[..., 0] if channels == 1 else array, mode=None if channels != 2 else "LA")
    if mode == "P":
        image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).quantize(colors=8)
        if transparent:
            image.info["transparency"] = 0
        return image
    if mode == "CMYK":
        values = rng.integers(0, 256, height * width * 4, dtype=np.uint8)
        return Image.frombytes("CMYK", (width, height), values.tobytes())
    if mode == "I;16":
        return Image.fromarray(rng.integers(0, 65536, (height, width), dtype=np.uint16))
    if mode == "I":
        return Image.fromarray(rng.integers(-1000, 100000, (height, width), dtype=np.int32))
    scale = [1.0, 255.0, 1e6][seed % 3]  # F: [0, 1], [0, 255] or anything
    return Image.fromarray((rng.standard_normal((height, width)) * scale).astype(np.float32))


_MODES = ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F"]
_FORMATS = ["PNG", "JPEG", "GIF", "TIFF", "WEBP", "BMP"]


def _supported_pairs() -> list[tuple[str, str]]:
    pairs = []
    for mode in _MODES:
        for fmt in _FORMATS:
            try:
                _encode(_random_image(mode, 2, 2, 0, False), fmt)
            except (OSError, ValueError, KeyError):
                continue  # the format cannot store this mode
            pairs.append((mode, fmt))
    return pairs


_PAIRS = _supported_pairs()
_FUZZ = settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@contextlib.contextmanager
def _small_pixel_limit():
    """Random headers may claim huge sizes: a low bomb limit keeps the fuzz fast (they become ImageLoadError)."""
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = 250_000
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def test_every_mode_is_stored_in_several_formats():
    formats = {mode: {fmt for m, fmt in _PAIRS if m == mode} for mode in _MODES}
    assert all(len(formats[mode]) >= 2 for mode in _MODES), formats
    assert {"PNG", "TIFF"} <= formats["I;16"] and "TIFF" in formats["F"] and "JPEG" in formats["CMYK"]


@pytest.mark.parametrize("mode, fmt", _PAIRS, ids=[f"{mode}-{fmt}" for mode, fmt in _PAIRS])
def test_every_mode_and_format_pair_loads(mode, fmt):
    """The deterministic sweep behind the fuzz test: each pair at least once, odd sizes, with and without resizing."""
    data = _encode(_random_image(mode, 5, 7, 1, transparent=True), fmt)
    _check_image_tensor(load_image(data, max_size=None), 5, 7)
    _check_image_tensor(load_image(data, max_size=14), 10, 14)


@_FUZZ
@given(pair=st.sampled_from(_PAIRS), height=st.integers(1, 24), width=st.integers(1, 24),
       seed=st.integers(0, 2**16), transparent=st.booleans(), max_size=st.sampled_from([None, 7, 32]))
def test_fuzz_valid_images_in_every_mode_and_format(pair, height, width, seed, transparent, max_size):
    mode, fmt = pair
    image = _random_image(mode, height, width, seed, transparent)
    data = _encode(image, fmt)
    with _small_pixel_limit():
        tensor = load_image(data, max_size=max_size)
    if max_size is None:
        expected = (height, width)
    else:
        scale = max_size / max(height, width)
        expected = (max(1, round(height * scale)), max(1, round(width * scale)))
    _check_image_tensor(tensor, *expected)
    if max_size is None and mode in ("L", "RGB") and fmt in ("PNG", "TIFF", "BMP"):  # lossless: exact pixels
        assert np.allclose(_pixels(tensor), np.asarray(image.convert("RGB")), atol=1e-3)


# Each format's signature, so random bodies reach the parsers instead of stopping at "unknown format".
_MAGIC = [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"GIF89a", b"II*\x00", b"MM\x00*",
          b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"BM", b"<html>", b"\x00\x00\x01\x00"]


@_FUZZ
@given(magic=st.sampled_from(_MAGIC), body=st.binary(max_size=600))
def test_fuzz_random_bytes_only_ever_raise_image_load_error(magic, body):
    with _small_pixel_limit():
        try:
            tensor = load_image(magic + body, max_size=16)
        except ImageLoadError:
            return
    _check_image_tensor(tensor)
    assert max(tensor.shape[-2:]) == 16  # max_size was applied


@_FUZZ
@given(pair=st.sampled_from(_PAIRS), seed=st.integers(0, 2**16), keep=st.floats(0.0, 1.0),
       edits=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), max_size=8))
def test_fuzz_damaged_files_only_ever_raise_image_load_error(pair, seed, keep, edits):
    mode, fmt = pair
    data = bytearray(_encode(_random_image(mode, 9, 13, seed, False), fmt))
    for where, value in edits:
        data[min(int(where * len(data)), len(data) - 1)] = value
    data = bytes(data[: max(1, int(keep * len(data)))] if keep < 0.95 else data)
    with _small_pixel_limit():
        try:
            tensor = load_image(data, max_size=None)
        except ImageLoadError:
            return
    _check_image_tensor(tensor)


# --------------------------------------------------------------------------- settings


def test_unknown_style_layer_lists_valid_names_and_suggests_closest(vgg19_random):
    match = r"Unknown layer 'relu_5_1'.*Did you mean 'relu5_1'\?.*Valid names: conv1_1"
    with pytest.raises(SettingsError, match=match):
        stylize(smooth_image(), stripes_image(), model=vgg19_random, **{**SMALL, "style_layers": {"relu_5_1": 1.0}})


@pytest.mark.parametrize("overrides, match", [
    ({"size": -64}, "size must be a whole number ≥ 1, got -64"),
    ({"size": 12.5}, "size must be a whole number"),
    ({"style_size": 0}, "style_size must be a whole number ≥ 1"),
    ({"content_weight": -1.0}, "content_weight must be a finite number ≥ 0"),
    ({"tv_weight": -0.5}, "tv_weight must be a finite number ≥ 0"),
    ({"style_weight": float("inf")}, "style_weight must be a finite number"),
    ({"content_weight": 0.0, "style_weight": 0.0}, "nothing to optimise"),
    ({"lr": -1.0}, "lr must be a positive number"),
    ({"lr": "fast"}, "lr must be a positive number"),
    ({"style_layers": {"relu1_1": -1.0}}, "Style layer weight for relu1_1"),
    ({"style_layers": {"relu1_1": "heavy"}}, "Style layer weight for relu1_1"),
])
def test_negative_or_zero_steps_weights_and_sizes(overrides, match):
    with pytest.raises(SettingsError, match=match):
        stylize(smooth_image(), stripes_image(), model=None, **{**SMALL, **overrides})  # fails before any weights


def test_bad_sizes_in_the_command_line_are_one_line_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NST_WEIGHTS", "random")
    save_image(smooth_image(), tmp_path / "c.png")
    for flag, value in (("--size", "-5"), ("--steps", "-1"), ("--style-weight", "-3")):
        assert main([str(tmp_path / "c.png"), str(tmp_path / "c.png"), flag, value, "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_size_too_large_for_free_memory_suggests_a_size_that_fits(tmp_path, vgg19_random, monkeypatch, precision):
    free = 300 * 2**20
    monkeypatch.setattr(transfer_module, "_free_memory", lambda device: free)
    path = tmp_path / "big.png"
    save_image(smooth_image(768, 1024), path)
    with pytest.raises(SettingsError, match=r"A 768x1024 image needs about .* GiB on cpu, but only 0.29 GiB") as info:
        stylize(path, stripes_image(), model=vgg19_random, size=1024, steps=2, device="cpu",
                precision=precision)  # default layers
    suggested = int(re.search(r"Use size=(\d+) or smaller", str(info.value)).group(1))
    assert 16 <= suggested < 1024 and suggested % 16 == 0
    layers = ["relu4_2", "relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    height = round(768 * suggested / 1024)
    assert estimate_memory(vgg19_random, height, suggested, layers, precision) <= 0.9 * free  # the advice fits
    assert estimate_memory(vgg19_random, height + 12, suggested + 16, layers, precision) > 0.9 * free  # the largest
    transfer_module._check_memory(vgg19_random, height, suggested, layers, precision, torch.device("cpu"))  # accepted


def test_memory_too_small_for_any_size_says_so(vgg19_random, monkeypatch):
    monkeypatch.setattr(transfer_module, "_free_memory", lambda device: 40 * 2**20)  # less than the weights
    with pytest.raises(SettingsError, match="Not even a small image fits .* check_memory=False"):
        stylize(smooth_image(64, 64), stripes_image(), model=vgg19_random, steps=2, device="cpu")


def test_cuda_requested_without_cuda_gives_guidance_before_loading_anything(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(transfer_module, "load_vgg", lambda **kwargs: pytest.fail("weights loaded"))
    with pytest.raises(SettingsError, match=r"no CUDA GPU is available.*Change runtime type.*device='cpu'"):
        stylize(smooth_image(), stripes_image(), device="cuda", steps=2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (mixes CUDA and CPU tensors and models)")
def test_mismatched_devices_are_reconciled():
    """Images and model on different devices: everything goes to config.device; the result is on the CPU."""
    model = load_vgg(arch="vgg19", weights="random", device="cuda", cache=False)
    content_gpu, style_cpu = smooth_image().cuda(), stripes_image()
    on_cpu = stylize(content_gpu, style_cpu, model=model, **SMALL)  # model on CUDA, device="cpu"
    assert on_cpu.completed and on_cpu.device == "cpu" and on_cpu.image.device.type == "cpu"
    model = load_vgg(arch="vgg19", weights="random", device="cpu", cache=False)
    on_gpu = stylize(smooth_image(), stripes_image().cuda().requires_grad_(True), model=model,
                     **{**SMALL, "device": "cuda"})  # model on the CPU, images mixed, device="cuda"
    assert on_gpu.completed and on_gpu.device.startswith("cuda") and on_gpu.image.device.type == "cpu"
    assert on_gpu.history["total"] == pytest.approx(on_cpu.history["total"], rel=1e-2)


_LAYOUTS = {
    "requires_grad": lambda image: image.clone().requires_grad_(True),
    "transposed_view": lambda image: image.transpose(2, 3).contiguous().transpose(2, 3),
    "channels_last": lambda image: image.contiguous(memory_format=torch.channels_last),
    "flipped_view": lambda image: image.flip(-1).flip(-1),
    "float64": lambda image: image.double(),
    "float16": lambda image: image.half(),
    "uint8_0_to_255": lambda image: image.mul(255).round().to(torch.uint8),
    "chw_without_batch": lambda image: image[0],
}


@pytest.mark.parametrize("layout", list(_LAYOUTS))
def test_cpu_tensors_with_grad_views_and_other_dtypes(vgg19_random, layout, optimizer="lbfgs"):
    content, style, fast = smooth_image(24, 32), stripes_image(24, 24), {**SMALL, "steps": 3}
    given, given_style = _LAYOUTS[layout](content), _LAYOUTS[layout](style)
    # Reference: the same values as plain contiguous float32 (uint8 means 0..255, so divide by 255).
    as_float = (lambda t: t.float() / 255) if layout == "uint8_0_to_255" else (lambda t: t.detach().float())
    expected = stylize(as_float(given).contiguous(), as_float(given_style).contiguous(), model=vgg19_random,
                       optimizer=optimizer, **fast)
    result = stylize(given, given_style, model=vgg19_random, optimizer=optimizer, **fast)
    assert result.completed and result.image.shape == (1, 3, 24, 32) and result.image.dtype == torch.float32
    assert result.history["total"] == pytest.approx(expected.history["total"], rel=1e-3, abs=1e-6)
    if layout == "requires_grad":
        assert given.grad is None  # the caller's tensor is not touched


@pytest.mark.parametrize("tensor, match", [
    (torch.randint(0, 255, (1, 3, 16, 16)), "dtype torch.int64 is ambiguous.*tensor.float\\(\\) / 255"),
    (torch.full((1, 3, 16, 16), float("nan")), "NaN or infinite"),
    (torch.rand(1, 4, 16, 16), r"must be \[3, H, W\] or \[1, 3, H, W\]"),
    (torch.rand(2, 3, 16, 16), r"got \[2, 3, 16, 16\]"),
    (torch.rand(1, 3, 0, 16), "H, W ≥ 1"),
])
def test_unusable_image_tensors_are_refused(vgg19_random, tensor, match):
    with pytest.raises(ImageLoadError, match=match):
        stylize(tensor, stripes_image(), model=vgg19_random, **SMALL)


def test_image_tensor_in_0_255_range_is_clamped_with_a_warning():
    with pytest.warns(UserWarning, match=r"range from 0 to 255, outside \[0, 1\].*divide 0..255 values by 255"):
        tensor = load_image(torch.linspace(0, 255, 48).view(1, 3, 4, 4), max_size=None)
    _check_image_tensor(tensor, 4, 4)


@pytest.mark.parametrize("init", ["content", "style", "noise"])
def test_style_and_content_files_of_different_sizes_and_aspect_ratios(tmp_path, vgg19_random, init):
    save_image(smooth_image(90, 30), tmp_path / "portrait.png")
    save_image(stripes_image(20, 120), tmp_path / "panorama.png")
    result = stylize(tmp_path / "portrait.png", tmp_path / "panorama.png", model=vgg19_random, size=64,
                     style_size=96, init=init, **SMALL)
    assert result.completed and result.image.shape == (1, 3, 64, 21)


# --------------------------------------------------------------------------- weights


@pytest.mark.parametrize("content, match", [
    (b"", r"is empty \(0 bytes\), probably an interrupted download"),
    (b"<!DOCTYPE html><html><body>Rate limit exceeded</body></html>", "text or HTML file.*error page"),
    ("truncated", "truncated or corrupt.*Re-download it"),
    (b"\x80\x02garbage that is not a pickle", "not a PyTorch weights file"),
])
def test_weights_file_that_is_not_weights(tmp_path, content, match):
    path = tmp_path / "vgg.pth"
    if content == "truncated":
        torch.save(load_vgg(arch="vgg16", weights="random", cache=False).layers.state_dict(), path)
        path.write_bytes(path.read_bytes()[:4096])
    else:
        path.write_bytes(content)
    with pytest.raises(WeightsError, match=match):
        load_vgg(weights=str(path), cache=False)


def test_weights_dict_with_the_wrong_content_says_what_it_holds(tmp_path):
    state = load_vgg(arch="vgg16", weights="random", cache=False).layers.state_dict()
    torch.save({"model": state, "epoch": torch.tensor(3)}, tmp_path / "nested.pth")
    with pytest.raises(WeightsError, match=r"but a dict with keys \['model', 'epoch'\]"):
        load_vgg(weights=str(tmp_path / "nested.pth"), cache=False)
    state["10.weight"] = torch.full_like(state["10.weight"], float("nan"))
    torch.save(state, tmp_path / "nan.pth")
    with pytest.raises(WeightsError, match=r"features\.10\.weight contains NaN or infinite values"):
        load_vgg(weights=str(tmp_path / "nan.pth"), cache=False)
    with pytest.raises(WeightsError, match="is a folder"):
        load_vgg(weights=str(tmp_path), cache=False)


def test_pickled_code_message_names_the_callable(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("this would run on load",))

    torch.save({"0.weight": Payload()}, tmp_path / "evil.pth")  # torch.save's own (zip) format
    with pytest.raises(WeightsError, match=r"would call print on load.*may run code.*weights_only=True"):
        load_vgg(weights=str(tmp_path / "evil.pth"), cache=False)


# --------------------------------------------------------------------------- during the run


@contextlib.contextmanager
def on_forward_call(model, call: int, action):
    """Run ``action(output)`` on the ``call``-th forward of ``model`` (1 and 2 compute the targets, 3 is step 1)."""
    calls = {"n": 0}

    def hook(module, inputs, output):
        calls["n"] += 1
        if calls["n"] == call:
            return action(output)
        return None

    handle = model.register_forward_hook(hook)
    try:
        yield calls
    finally:
        handle.remove()


def _raise(error):
    def action(output):
        raise error() if isinstance(error, type) else error
    return action


def _allocate_too_much(output):
    return torch.empty(2**60, dtype=torch.uint8)  # a real CPU allocation failure (RuntimeError, not OOM type)


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_keyboard_interrupt_inside_the_vgg_forward_mid_run(vgg19_random, optimizer):
    with on_forward_call(vgg19_random, 6, _raise(KeyboardInterrupt)):
        with pytest.warns(RuntimeWarning, match="Interrupted after 3 of 6 steps; returning the best image"):
            result = stylize(smooth_image(), stripes_image(), model=vgg19_random, optimizer=optimizer, **SMALL)
    assert result.status == "interrupted" and result.steps == 3 and len(result.history["total"]) == 3
    assert 1 <= result.best_step <= 3 and result.best_loss == pytest.approx(min(result.history["total"]))
    _check_image_tensor(result.best_image, 48, 64)
    _check_image_tensor(result.image, 48, 64)


def test_keyboard_interrupt_before_the_loop_propagates_with_nothing_to_lose(vgg19_random):
    with on_forward_call(vgg19_random, 1, _raise(KeyboardInterrupt)):
        with pytest.raises(KeyboardInterrupt):
            stylize(smooth_image(), stripes_image(), model=vgg19_random, **SMALL)


def test_command_line_interrupted_mid_run_still_writes_the_image(tmp_path, vgg19_random, monkeypatch, capsys):
    monkeypatch.setattr(transfer_module, "load_vgg", lambda **kwargs: vgg19_random)
    save_image(smooth_image(), tmp_path / "c.png")
    save_image(stripes_image(), tmp_path / "s.png")
    with on_forward_call(vgg19_random, 5, _raise(KeyboardInterrupt)):
        code = main([str(tmp_path / "c.png"), str(tmp_path / "s.png"), "-o", str(tmp_path / "out.png"), "--size", "48",
                     "--steps", "6", "--quiet", "--device", "cpu"])
    captured = capsys.readouterr()
    assert code == 1 and "warning: Interrupted after 2 of 6 steps" in captured.err and "Traceback" not in captured.err
    assert (tmp_path / "out.png").is_file() and "interrupted: 2 steps" in captured.out


def _make_nan(output):
    return {name: value * float("nan") for name, value in output.items()}


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_nan_loss_mid_run_stops_with_the_best_image_before_it(vgg19_random, optimizer):
    with on_forward_call(vgg19_random, 5, _make_nan):  # call 5 = step 3
        with pytest.warns(RuntimeWarning, match=r"NaN or infinite at step 3; stopped and kept the best image"):
            result = stylize(smooth_image(), stripes_image(), model=vgg19_random, optimizer=optimizer,
                             **{**SMALL, "preview_every": 4})
    totals = result.history["total"]
    assert result.status == "non_finite" and np.isnan(totals[2]) and np.isfinite(totals[:2]).all()
    assert result.best_step in (1, 2) and result.best_loss == pytest.approx(min(totals[:2]))
    assert torch.equal(result.image, result.best_image)
    _check_image_tensor(result.image, 48, 64)


def _spy_on_release(monkeypatch) -> list:
    """Record the devices transfer._release frees memory on (gc + torch.cuda.empty_cache)."""
    released, release = [], transfer_module._release
    monkeypatch.setattr(transfer_module, "_release", lambda device: (released.append(device), release(device))[1])
    return released


@pytest.mark.parametrize("call", [1, 2], ids=["content_targets", "style_targets"])
def test_out_of_memory_before_the_loop_is_a_settings_error_suggesting_a_size(vgg19_random, call, monkeypatch):
    released = _spy_on_release(monkeypatch)
    oom = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    with on_forward_call(vgg19_random, call, _raise(oom)):
        with pytest.raises(SettingsError, match=r"Ran out of memory on cpu at 48x64 px\. Memory was released") as info:
            stylize(smooth_image(), stripes_image(), model=vgg19_random, **SMALL)
    assert torch.cuda.OutOfMemoryError is torch.OutOfMemoryError
    assert int(re.search(r"try size=(\d+) or smaller", str(info.value)).group(1)) < 64
    assert released == [torch.device("cpu")]


@pytest.mark.parametrize("action", [_raise(torch.OutOfMemoryError("CUDA out of memory.")), _allocate_too_much],
                         ids=["cuda_oom_simulated", "real_cpu_allocation_failure"])
@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_out_of_memory_mid_run_keeps_the_best_image(vgg19_random, action, optimizer, monkeypatch):
    released = _spy_on_release(monkeypatch)
    with on_forward_call(vgg19_random, 5, action):
        with pytest.warns(RuntimeWarning, match=r"Ran out of memory on cpu at 48x64 px after 2 steps"):
            result = stylize(smooth_image(), stripes_image(), model=vgg19_random, optimizer=optimizer, **SMALL)
    assert result.status == "out_of_memory" and result.steps == 2 and len(result.history["total"]) == 2
    assert int(re.search(r"try size=(\d+) or smaller", result.message).group(1)) < 64
    _check_image_tensor(result.best_image, 48, 64)
    assert result.best_loss == pytest.approx(min(result.history["total"]))
    assert released == [torch.device("cpu")]


def test_absurd_adam_learning_rate_is_refused_or_stops_cleanly(vgg19_random):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            result = stylize(smooth_image(), stripes_image(), model=vgg19_random, optimizer="adam", lr=1e38, **SMALL)
    except SettingsError as error:
        assert "lr" in str(error)
        return
    assert result.status == "non_finite" and "Lower the learning rate" in result.message
    assert bool(torch.isfinite(result.image).all())


def test_other_runtime_errors_are_not_mistaken_for_out_of_memory(vgg19_random):
    with on_forward_call(vgg19_random, 4, _raise(RuntimeError("some other bug"))):
        with pytest.raises(RuntimeError, match="some other bug"):
            stylize(smooth_image(), stripes_image(), model=vgg19_random, **SMALL)


def test_result_saved_to_an_unwritable_path_stays_in_memory(tmp_path, vgg19_random):
    result = stylize(smooth_image(), stripes_image(), model=vgg19_random, **SMALL)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    before = result.image.clone()
    with pytest.raises(ImageSaveError, match="a_file is a file, not a folder. The image is still in memory"):
        result.save(blocker / "out.png")
    assert torch.equal(result.image, before)
    assert result.save(tmp_path / "elsewhere.png").is_file()
