"""Tests of nst_helpers/download.py: fetching images from URLs, bounded in time and size, with messages
that say what to do. Everything is offline: the `local_server` fixture (conftest.py) serves on 127.0.0.1."""

from __future__ import annotations

import socket
import time

import pytest
import torch

from helpers import SERVED_PNG, check_image_tensor
from nst_helpers import ImageLoadError, load_image
from nst_helpers.download import fetch_url, looks_like_web_page


def test_valid_image_url(local_server):
    tensor = load_image(f"{local_server}/image.png", max_size=None)
    check_image_tensor(tensor, 10, 20)
    assert torch.allclose(tensor[0, :, 0, 0], torch.tensor([1.0, 0.0, 0.0]))


def test_url_404(local_server):
    with pytest.raises(ImageLoadError, match=r"HTTP 404 \(Not Found\).*download the image yourself"):
        load_image(f"{local_server}/missing.jpg")


@pytest.mark.parametrize(
    "path, match",
    [
        ("/forbidden", r"HTTP 403 \(Forbidden\).*open the address in your browser, save the image"),
        ("/busy", r"HTTP 503 \(Service Unavailable\).*try again later"),
    ],
)
def test_url_refused_or_server_error_says_what_to_do(local_server, path, match):
    with pytest.raises(ImageLoadError, match=match):
        load_image(local_server + path)


def test_url_download_cut_short_says_so_instead_of_blaming_the_file(local_server):
    half = len(SERVED_PNG) // 2
    with pytest.raises(ImageLoadError, match=rf"stopped after {half} bytes of {len(SERVED_PNG)} bytes.*try again"):
        fetch_url(local_server + "/cut-short", timeout=5)


@pytest.mark.parametrize(
    "path, match",
    [
        ("/page.html", r"returned a web page \(text/html.*'Copy image address'"),
        ("/page-as-jpeg", "text or HTML file, not an image"),
    ],
)
def test_url_returning_html_instead_of_an_image(local_server, path, match):
    with pytest.raises(ImageLoadError, match=match):
        load_image(local_server + path)


@pytest.mark.parametrize(
    "path, match",
    [
        ("/big-declared", r"is 4.9 KiB, more than the 1000 bytes limit"),
        ("/big-undeclared", r"is larger than the 1000 bytes limit"),
    ],
)
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


@pytest.mark.parametrize(
    "head, expected",
    [
        (b"<!DOCTYPE html><html>", True),
        (b"  \n<?xml version='1.0'?>", True),
        (b'{"error": "rate limited"}', True),
        (b"\x89PNG\r\n\x1a\n", False),
        (b"\xff\xd8\xff\xe0", False),
    ],
)
def test_looks_like_web_page(head, expected):
    assert looks_like_web_page(head) is expected
