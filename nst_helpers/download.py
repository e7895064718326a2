"""Fetching images from URLs: bounded in time and size, with messages that say what to do.

:func:`fetch_url` is what :func:`nst_helpers.load_image` calls for an
``http(s)://`` source. The whole download (not only each network read) is
bounded by ``timeout``, so a server trickling bytes cannot stall a notebook,
and at most ``max_bytes`` are read. Every failure (timeout, HTTP status, a
connection cut short, a file too large, a web page instead of a picture)
raises :class:`~nst_helpers.errors.ImageLoadError` with a one-line fix.

The sample images are fetched elsewhere: :mod:`nst_helpers.data` uses
torch.hub's helper, which checks their pinned sha256 while downloading.
"""

from __future__ import annotations

import http.client
import socket
import time
import urllib.error
import urllib.request

from .devices import format_bytes
from .errors import ImageLoadError

__all__ = ["fetch_url", "looks_like_web_page", "MAX_DOWNLOAD_BYTES", "URL_TIMEOUT_S"]

#: Largest download accepted by :func:`fetch_url` (bytes).
MAX_DOWNLOAD_BYTES = 50 * 2**20
#: Seconds a whole download may take before :func:`fetch_url` gives up.
URL_TIMEOUT_S = 20.0


def looks_like_web_page(head: bytes) -> bool:
    """True when ``head`` (the first bytes of a file or response) starts like HTML, XML or JSON.

    That is what servers send instead of an image (error pages, galleries,
    JSON errors), and what a browser's "Save page as" writes.
    """
    start = head.lstrip()[:64].lower()
    return start.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<body", b"{", b"<"))


def _timeout_message(url: str, timeout: float) -> str:
    return (
        f"Timed out after {timeout:g} s waiting for {url}; try again, or download the image yourself and pass its path."
    )


def _http_advice(code: int) -> str:
    if code in (401, 403):  # many sites refuse programs (hotlink protection) but serve browsers
        return (
            "the site does not let programs download it: open the address in your browser, save the "
            "image, and pass its path."
        )
    if code == 429 or code >= 500:
        return "the server is busy or has a problem: try again later, or download the image yourself and pass its path."
    return "check the address, or download the image yourself and pass its path."


def _read_bounded(response, url: str, timeout: float, max_bytes: int) -> bytes:
    """Read at most ``max_bytes + 1`` bytes of ``response`` before the deadline (one more: it is too large)."""
    deadline = time.monotonic() + timeout
    chunks, received = [], 0
    while received <= max_bytes:
        if time.monotonic() > deadline:
            raise ImageLoadError(_timeout_message(url, timeout))
        chunk = response.read1(min(64 * 1024, max_bytes + 1 - received))
        if not chunk:
            break
        chunks.append(chunk)
        received += len(chunk)
    return b"".join(chunks)


def fetch_url(url: str, timeout: float = URL_TIMEOUT_S, max_bytes: int = MAX_DOWNLOAD_BYTES) -> bytes:
    """Download ``url`` and return its bytes, with a bounded time and size.

    ``timeout`` (seconds) bounds the whole download; at most ``max_bytes``
    are read. Raises :class:`ImageLoadError` with a message saying what went
    wrong (timeout, HTTP status, too large, an HTML page instead of an image).
    """
    request = urllib.request.Request(url, headers={"User-Agent": "nst-helpers (image loader)"})
    shrink = "download it yourself, shrink it, and pass the local path."
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            content_type = (response.headers.get("Content-Type") or "").lower()
            length = response.headers.get("Content-Length")
            declared = int(length) if length is not None and length.isdigit() else None
            if declared is not None and declared > max_bytes:
                raise ImageLoadError(
                    f"{url} is {format_bytes(declared)}, more than the {format_bytes(max_bytes)} limit; {shrink}"
                )
            data = _read_bounded(response, url, timeout, max_bytes)
            if declared is not None and len(data) < declared:
                raise ImageLoadError(
                    f"The download of {url} stopped after {format_bytes(len(data))} of {format_bytes(declared)} "
                    "(the connection was closed); try again, or download the image yourself and pass its path."
                )
    except ImageLoadError:
        raise
    except urllib.error.HTTPError as exc:
        raise ImageLoadError(
            f"The server answered HTTP {exc.code} ({exc.reason}) for {url}; {_http_advice(exc.code)}"
        ) from None
    except TimeoutError:
        raise ImageLoadError(_timeout_message(url, timeout)) from None
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, (socket.timeout, TimeoutError)):  # a timeout while connecting
            raise ImageLoadError(_timeout_message(url, timeout)) from None
        raise ImageLoadError(
            f"Could not download {url} ({reason or type(exc).__name__}). Are you online? Otherwise download "
            "the image yourself and pass its path."
        ) from None
    if len(data) > max_bytes:
        raise ImageLoadError(f"{url} is larger than the {format_bytes(max_bytes)} limit; {shrink}")
    if "text/html" in content_type or (content_type.startswith("text/") and looks_like_web_page(data[:256])):
        raise ImageLoadError(
            f"{url} returned a web page ({content_type or 'text'}), not an image. Use the image's own "
            "address (right-click the picture, 'Copy image address')."
        )
    return data
