"""Uploads, headless, under the installed ipywidgets (8, or 7.7 in `make test-widgets7`): both value formats,
empty files, and Colab's own upload dialog (a fake ``google.colab`` module)."""

import datetime
import sys
import types

import pytest

pytest.importorskip("ipywidgets", reason="the sliders panel needs ipywidgets (pip install ipywidgets)")
import ipywidgets  # noqa: E402

from helpers import image_bytes, smooth_image  # noqa: E402
from nst_helpers import to_pil  # noqa: E402
from nst_helpers.uploads import (  # noqa: E402
    COLAB_BUTTON_TEXT,
    UploadControls,
    empty_upload_message,
    in_colab,
    uploaded_files,
)

WHEN = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)  # FileUpload serialises this field
IPYWIDGETS_7 = ipywidgets.__version__.startswith("7.")


def deliver(upload: ipywidgets.FileUpload, name: str, content: bytes, size: int | None = None) -> None:
    """Choose a file in ``upload`` as the browser does: ipywidgets 8 sets ``value``; 7.x (where ``value`` is
    read-only) sets ``metadata`` and ``data``, then counts up ``_counter``, from which ``value`` is made."""
    size = len(content) if size is None else size
    if "_counter" in upload.trait_names():  # ipywidgets 7
        upload.metadata = [{"name": name, "type": "image/png", "size": size, "lastModified": 0}]
        upload.data = [content]
        upload._counter += 1
    else:
        item = {"name": name, "type": "image/png", "size": size, "last_modified": WHEN, "content": memoryview(content)}
        upload.value = (item,)


@pytest.fixture(autouse=True)
def not_colab(monkeypatch):
    """Outside Colab, even when the tests run in Colab; the ``colab`` fixture below puts a fake one back."""
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)


@pytest.fixture
def colab(not_colab, monkeypatch):
    """A fake Colab runtime: ``google.colab.files.upload()`` returns the dicts queued in the returned list."""
    queued: list = []

    def upload():
        answer = queued.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    files = types.SimpleNamespace(upload=upload)
    monkeypatch.setitem(sys.modules, "google.colab", types.SimpleNamespace(files=files))
    monkeypatch.setitem(sys.modules, "google.colab.files", files)
    return queued


def _controls(role="content"):
    got, said = [], []
    controls = UploadControls(
        role, on_file=lambda name, data: got.append((name, data)), say=lambda *a, **k: said.append((a, k))
    )
    return controls, got, said


def test_uploaded_files_reads_ipywidgets_8_and_7_values():
    version_8 = (
        {"name": "a.png", "type": "image/png", "size": 3, "last_modified": WHEN, "content": memoryview(b"abc")},
    )
    version_7 = {"a.png": {"metadata": {"name": "a.png"}, "content": b"abc"}}
    assert uploaded_files(version_8) == uploaded_files(version_7) == [("a.png", b"abc")]
    assert uploaded_files(()) == [] and uploaded_files({}) == []


def test_a_chosen_file_reaches_on_file_in_this_ipywidgets_version():
    controls, got, said = _controls()
    data = image_bytes(to_pil(smooth_image(10, 10)))
    deliver(controls.upload, "mine.png", data)
    assert got == [("mine.png", data)] and said == []
    assert isinstance(controls.upload.value, dict if IPYWIDGETS_7 else tuple)  # this version's own format
    assert controls.colab_button is None and controls.box.children == (controls.upload,)  # not in Colab


def test_an_empty_upload_is_reported_with_what_to_do():
    assert not in_colab()
    controls, got, said = _controls("style")
    deliver(controls.upload, "phone.jpg", b"", size=3_400_000)
    assert got == [] and len(said) == 1
    (text,), options = said[0]
    assert options == {"error": True} and text == empty_upload_message("phone.jpg", "style")
    assert "phone.jpg arrived empty" in text and "use_image('style'" in text and "Colab" not in text


def test_in_colab_the_message_names_the_colab_button(colab):
    assert in_colab()
    text = empty_upload_message("phone.jpg", "content")
    assert "1 MB" in text and "ipywidgets#3452" in text and f"'{COLAB_BUTTON_TEXT}'" in text
    assert "use_image('content'" in text


def test_in_colab_the_button_uses_colabs_upload_dialog(colab):
    controls, got, said = _controls()
    assert controls.colab_button is not None and controls.colab_button.description == COLAB_BUTTON_TEXT
    assert controls.box.children[:2] == (controls.colab_button, controls.upload)
    big = bytes(range(256)) * 8000  # 2 MB: what the FileUpload loses in Colab
    colab.append({"a.png": b"x", "phone.jpg": big})
    controls.colab_button.click()
    assert got == [("phone.jpg", big)] and said == []  # the last file chosen, as for the FileUpload


def test_in_colab_a_failed_or_cancelled_dialog_is_reported(colab):
    controls, got, said = _controls()
    colab.extend([{}, RuntimeError("TypeError: Failed to fetch"), {"empty.png": b""}])
    for _ in range(3):
        controls.colab_button.click()
    assert got == []
    texts = [args[0] for args, options in said if options == {"error": True}]
    assert len(texts) == 3
    assert "No file was chosen" in texts[0]
    assert "Colab's upload dialog failed (RuntimeError: TypeError: Failed to fetch)" in texts[1]
    assert "empty.png arrived empty" in texts[2]
