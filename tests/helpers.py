"""Plain helpers shared by the tests: where things are, small test pictures, image checks, a loopback server."""

from __future__ import annotations

import http.server
import io
import os
import time
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NST_SHARED_DIR", ROOT.parent / "shared"))
SHARED_WEIGHTS = SHARED / "weights" / "vgg16_caffe_features_fp16.pth"
SHARED_IMAGES = SHARED / "images"


def smooth_image(height: int = 48, width: int = 64, seed: int = 0) -> torch.Tensor:
    """A deterministic, smooth-ish test picture in [0, 1], [1, 3, H, W]."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, max(2, height // 8), max(2, width // 8), generator=generator)
    return torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)


def stripes_image(height: int = 48, width: int = 64, period: int = 6) -> torch.Tensor:
    """Diagonal colour stripes: a simple 'style' texture."""
    yy, xx = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    phase = ((xx + yy) % period).float() / period
    return torch.stack([phase, 1 - phase, (phase * 2) % 1]).unsqueeze(0)


def image_bytes(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    """``image`` encoded as a file of format ``fmt`` (PIL save options in ``kwargs``)."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def check_image_tensor(tensor: torch.Tensor, height: int | None = None, width: int | None = None) -> None:
    """Assert the package's image convention: float32 ``[1, 3, H, W]``, finite, in [0, 1] (and the size if given)."""
    assert tensor.dtype == torch.float32 and tensor.dim() == 4 and tensor.shape[:2] == (1, 3)
    if height is not None:
        assert tuple(tensor.shape[-2:]) == (height, width)
    assert bool(torch.isfinite(tensor).all()) and float(tensor.min()) >= 0.0 and float(tensor.max()) <= 1.0


# --------------------------------------------------------------------------- loopback HTTP server

#: What the loopback server sends for /image.png: a 20x10 red PNG.
SERVED_PNG = image_bytes(Image.new("RGB", (20, 10), (255, 0, 0)))


class LoopbackHandler(http.server.BaseHTTPRequestHandler):
    """Answers the paths the URL tests ask for, each imitating one kind of real server."""

    def log_message(self, *args):  # keep the test output quiet
        pass

    def _send(self, body: bytes, content_type: str, length: bool = True, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # http.server's name
        try:
            if self.path == "/image.png":
                self._send(SERVED_PNG, "image/png")
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
                self.send_header("Content-Length", str(len(SERVED_PNG)))
                self.end_headers()
                self.wfile.write(SERVED_PNG[: len(SERVED_PNG) // 2])
                self.close_connection = True
            elif self.path == "/forbidden":
                self.send_error(403)
            elif self.path == "/busy":
                self.send_error(503)
            elif self.path == "/slow":
                time.sleep(3)
                self._send(SERVED_PNG, "image/png")
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


def fake_result(image: torch.Tensor, config=None, seconds: float = 0.01):
    """A two-step TransferResult around ``image`` (for tests of what displays or stores results)."""
    from nst_helpers import TransferResult

    history = {"content": [0.0, 0.1], "style": [2.0, 1.0], "tv": [0.0, 0.0], "total": [2.0, 1.1]}
    return TransferResult(
        image=image,
        best_image=image,
        best_loss=1.1,
        best_step=2,
        history=history,
        steps=2,
        seconds=seconds,
        config=config,
        device="cpu",
    )


def fake_replay(count: int = 6, height: int = 24, width: int = 32, steps: int = 30):
    """A TransferResult with ``count`` recorded frames, each one flat colour (frame i: red = 40·i), and a history."""
    from nst_helpers import Frame

    result = fake_result(torch.rand(1, 3, height, width))
    total = [2.0 / (1 + step) for step in range(steps)]
    result.history = {"content": [0.1] * steps, "style": total, "tv": [0.0] * steps, "total": total}
    result.steps = steps
    marks = [1] + [round(steps * (i + 1) / (count - 1)) for i in range(count - 1)]
    result.frames = []
    for index, step in enumerate(marks[:count]):
        image = torch.zeros(3, height, width, dtype=torch.uint8)
        image[0] = 40 * index
        image[2] = 200
        losses = {"content": 0.1, "style": total[step - 1], "tv": 0.0, "total": total[step - 1]}
        result.frames.append(Frame(step, image, losses))
    return result
