"""Files from the learner's computer for the panel: FileUpload values of ipywidgets 7.7 and 8, Colab's own upload.

Used by :class:`~nst_helpers.widget_parts.ImagePicker`; like it, this module
imports ipywidgets (``import nst_helpers`` does not import it).

* **Two FileUpload formats.** ipywidgets 8 gives a tuple of dicts with
  ``name`` and ``content`` (a ``memoryview``); the 7.7 that Colab preinstalls
  gives a dict ``{file name: {"metadata": {...}, "content": bytes}}``.
  :func:`uploaded_files` reads both.
* **Colab loses large uploads.** In Colab, ``FileUpload`` is reported to
  lose files of about 1 MB or more (ipywidgets issue #3452): a phone photo
  arrives empty, or not at all. So in Colab the upload controls add a button
  that opens Colab's own upload dialog (``google.colab.files.upload()``), and
  a file that arrives empty is reported in the panel with what to do instead,
  never dropped silently.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import ipywidgets as widgets

__all__ = [
    "COLAB_BUTTON_TEXT",
    "UploadControls",
    "colab_upload",
    "empty_upload_message",
    "in_colab",
    "path_or_url_hint",
    "uploaded_files",
]

COLAB_BUTTON_TEXT = "from this computer (Colab)"  #: the Colab upload button's label, quoted in the messages


def uploaded_files(value) -> list[tuple[str, bytes]]:
    """``(name, bytes)`` pairs from a FileUpload value: tuple of dicts (ipywidgets 8) or dict (7)."""
    if isinstance(value, dict):  # ipywidgets 7: {filename: {"metadata": {...}, "content": bytes}}
        return [(name, bytes(item["content"])) for name, item in value.items()]
    return [(item["name"], bytes(item["content"])) for item in value]


def in_colab() -> bool:
    """True in a Colab runtime (the test the notebooks' setup cell uses)."""
    return "google.colab" in sys.modules


def colab_upload() -> list[tuple[str, bytes]]:
    """``(name, bytes)`` of the files chosen in Colab's own upload dialog (``google.colab.files.upload()``)."""
    from google.colab import files  # only in Colab; in_colab() says whether it is there

    return [(name, bytes(data)) for name, data in files.upload().items()]


def path_or_url_hint(role: str) -> str:
    """The way round any upload: the panel's ``use_image`` with a path or URL."""
    return f"give a path or URL: StylePanel.use_image({role!r}, 'photo.jpg' or 'https://…/photo.jpg')"


def empty_upload_message(name: str, role: str) -> str:
    """What to say when ``name`` arrived with no bytes: why (Colab's size limit or an empty file) and what to do."""
    if in_colab():
        return (
            f"{name} arrived empty: in Colab the upload button loses files of about 1 MB or more "
            f"(ipywidgets#3452). Use the '{COLAB_BUTTON_TEXT}' button, or {path_or_url_hint(role)}."
        )
    return f"{name} arrived empty (0 bytes). Is the file empty? Choose it again, or {path_or_url_hint(role)}."


class UploadControls:
    """One image's upload controls: ipywidgets' ``FileUpload`` and, in Colab, a button for Colab's upload dialog.

    Args:
        role: "content" or "style" (the button's label and the messages).
        on_file: ``on_file(name, data)`` gets the file that arrived (the last one, if several did).
        say: ``say(text, error=False)``: the panel's status line; gets every upload that cannot be used
            (an empty file, a failed or cancelled Colab upload), so nothing fails silently.

    Attributes: ``upload`` (the ``FileUpload``), ``colab_button`` (None outside
    Colab) and ``box`` (the controls in a column, to place in a layout).
    """

    def __init__(self, role: str, on_file: Callable[[str, bytes], None], say: Callable[..., None]):
        self.role, self.on_file, self.say = role, on_file, say
        self.upload = widgets.FileUpload(accept="image/*", multiple=False, description=f"own {role}")
        self.upload.observe(lambda change: self.receive(uploaded_files(change["new"])), names="value")
        self.colab_button: widgets.Button | None = None
        children: list[widgets.Widget] = [self.upload]
        if in_colab():
            self.colab_button = widgets.Button(description=COLAB_BUTTON_TEXT, icon="upload", layout={"width": "auto"})
            self.colab_button.tooltip = f"Colab's own upload dialog, which takes large files too (the {role} image)"
            self.colab_button.on_click(self._on_colab_click)
            hint = widgets.HTML("<small>files over ~1 MB: use the Colab button</small>")
            children = [self.colab_button, self.upload, hint]
        self.box = widgets.VBox(children)

    def receive(self, files: list[tuple[str, bytes]]) -> None:
        """Hand the last of ``files`` to ``on_file``; say what happened if it is empty. No files: nothing to do."""
        if not files:
            return  # the value was cleared
        name, data = files[-1]
        if not data:
            self.say(empty_upload_message(name, self.role), error=True)
            return
        self.on_file(name, data)

    def _on_colab_click(self, _button) -> None:
        try:
            files = colab_upload()
        except Exception as error:  # any failure of Colab's dialog ends in the panel's status line, not a log
            failed = f"Colab's upload dialog failed ({type(error).__name__}: {error})"
            self.say(f"{failed}. Try again, or {path_or_url_hint(self.role)}.", error=True)
            return
        if not files:
            self.say("No file was chosen in Colab's upload dialog.", error=True)
            return
        self.receive(files)
