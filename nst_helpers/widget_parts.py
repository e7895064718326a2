"""Building blocks of the sliders panel: image picker, weight slider, gallery card, settings in words.

Used by :mod:`nst_helpers.widgets` (:class:`~nst_helpers.widgets.StylePanel`);
like it, this module imports ipywidgets, and ``import nst_helpers`` imports
neither. Differences between ipywidgets 8 and the 7.7 that Colab
preinstalls are handled here (tooltips) and in :mod:`nst_helpers.uploads`
(the value of a ``FileUpload``; Colab's own upload dialog).
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable
from typing import Literal

import ipywidgets as widgets
import torch

from .data import find_sample, list_samples, sample_image
from .errors import ImageLoadError, NSTError
from .images import ImageSource, load_image
from .preview import png_bytes
from .transfer import TransferResult
from .uploads import UploadControls, uploaded_files

__all__ = [
    "GIVEN",
    "SLIDER_STYLE",
    "SLIDER_LAYOUT",
    "THUMBNAIL_PX",
    "ImagePicker",
    "StyleMix",
    "WeightSlider",
    "set_tooltip",
    "uploaded_files",
    "format_number",
    "short_layers",
    "run_title",
    "gallery_card",
    "heading",
]

SLIDER_STYLE = {"description_width": "120px"}  #: room for the longest description, "smoothness (TV)"
SLIDER_LAYOUT = {"width": "430px"}
COLUMN_WIDTH = "270px"  #: one image column of the panel (three fit beside each other in a notebook)
COLUMN_LAYOUT = {"width": COLUMN_WIDTH, "margin": "0 12px 0 0"}
THUMBNAIL_PX = 160  #: longest side of the image thumbnails; gallery cards are this wide plus a margin
GIVEN = "<given>"  #: dropdown value of an uploaded (or passed-in) image


def set_tooltip(widget: widgets.Widget, text: str) -> None:
    """Tooltip on ipywidgets 8 (``tooltip``) and 7 (``description_tooltip``)."""
    if "tooltip" in widget.trait_names():
        widget.tooltip = text
    else:  # ipywidgets 7
        widget.description_tooltip = text


class WeightSlider:
    """A ``FloatLogSlider`` whose leftmost position means 0 ("off"), with a label saying so.

    ``exponents`` is the slider's range in powers of ten, ``(low, high)``; a
    start ``value`` ≤ 0 puts it at the far left. Attributes: ``slider``,
    ``label`` and ``box`` (both side by side, to place in a layout).
    """

    def __init__(self, description: str, value: float, exponents: tuple[int, int], tooltip: str):
        low, high = exponents
        off = value <= 0
        self.slider = widgets.FloatLogSlider(
            value=10.0**low if off else value,
            base=10,
            min=low,
            max=high,
            step=0.1,
            description=description,
            continuous_update=False,
            readout_format=".3g",
            style=SLIDER_STYLE,
            layout=SLIDER_LAYOUT,
        )
        set_tooltip(self.slider, tooltip)
        self.label = widgets.Label()
        self.slider.observe(self._relabel, names="value")  # a label only: nothing runs on a slider move
        self._relabel()
        self.box = widgets.HBox([self.slider, self.label])

    @property
    def off(self) -> bool:
        return self.slider.value <= 10.0**self.slider.min * (1 + 1e-6)

    @property
    def weight(self) -> float:
        """The weight this slider stands for: 0 at its far left, else its value."""
        return 0.0 if self.off else float(self.slider.value)

    def _relabel(self, _change=None) -> None:
        self.label.value = "off" if self.off else ""


class ImagePicker:
    """The image of one role ("content" or "style"): a sample or an own image, with thumbnail and credit.

    Args:
        role: "content" or "style"; the dropdown lists the samples of that role.
        start: a sample name (``"tubingen"`` or ``"tubingen.jpg"``), or any image
            :func:`~nst_helpers.load_image` accepts, shown as "your image".
        say: ``say(text, error=False)`` reports what an upload did (the panel's status line).

    Attributes: ``dropdown``, ``upload`` (the ``FileUpload`` of ``uploads``, an
    :class:`~nst_helpers.uploads.UploadControls`: in Colab also a button for
    Colab's upload dialog), ``thumbnail``, ``credit``, ``box`` (all in a column)
    and ``given``, ``(name, source)`` of the own image or None.
    """

    def __init__(self, role: str, start: ImageSource, say: Callable[..., None]):
        self.role, self.say = role, say
        self.dropdown = widgets.Dropdown(description=role, style=SLIDER_STYLE)
        self.uploads = UploadControls(role, on_file=self._on_upload, say=say)
        self.upload = self.uploads.upload
        self.thumbnail = widgets.Image(format="png", layout={"max_width": f"{THUMBNAIL_PX}px"})
        self.credit = widgets.HTML(layout={"width": COLUMN_WIDTH})
        self.box = widgets.VBox([self.dropdown, self.uploads.box, self.thumbnail, self.credit], layout=COLUMN_LAYOUT)
        self.given: tuple[str, ImageSource] | None = None
        self._refilling = False  # True while the options are replaced (the value passes through None)
        sample = find_sample(start) if isinstance(start, str) else None
        if sample is None:
            self.given = ("your image", start)
        self._select(GIVEN if sample is None else sample.name)
        self.dropdown.observe(self._on_pick, names="value")
        self.show()

    @property
    def label(self) -> str:
        """The chosen image in words: the sample's name or the own image's."""
        return self._own()[0] if self.dropdown.value == GIVEN else self.dropdown.value

    def image(self, max_size: int) -> torch.Tensor:
        """The chosen image, loaded with its longest side at most ``max_size`` pixels."""
        value = self.dropdown.value
        source = self._own()[1] if value == GIVEN else sample_image(value)
        if isinstance(source, io.IOBase):
            source.seek(0)
        return load_image(source, max_size=max_size)

    def use(self, source: ImageSource, name: str = "your image") -> None:
        """Choose an own image; raises :class:`~nst_helpers.ImageLoadError` (keeping the choice) if unreadable."""
        try:
            load_image(source, max_size=THUMBNAIL_PX)  # fail now, not at the next run
        except ImageLoadError as error:
            raise ImageLoadError(f"{name}: {error}") from None
        self.given = (name, source)
        self._select(GIVEN)
        self.show()

    def show(self) -> None:
        """Draw the thumbnail and the credit of the current choice (or say why it cannot be loaded)."""
        try:
            self.thumbnail.value = png_bytes(self.image(THUMBNAIL_PX))
        except NSTError as error:  # e.g. offline without NST_DATA_DIR: say so, keep the panel usable
            self.thumbnail.value = b""
            self.credit.value = f"<small style='color:#b00'>{html.escape(str(error))}</small>"
            return
        sample = find_sample(self.dropdown.value) if self.dropdown.value != GIVEN else None
        text = sample.credit if sample is not None else self.label
        self.credit.value = f"<small>{html.escape(text)}</small>"

    def _own(self) -> tuple[str, ImageSource]:
        assert self.given is not None, "the dropdown offers GIVEN only once there is an own image"
        return self.given

    def _select(self, value: str) -> None:
        options = [(sample.name, sample.name) for sample in list_samples(self.role, show=False)]
        if value not in (GIVEN, *[name for _label, name in options]):
            options.append((value, value))  # a sample of the other role, e.g. a painting as content
        if self.given is not None:
            options.append((f"⬆ {self.given[0]}", GIVEN))
        self._refilling = True
        try:
            self.dropdown.options = options
            self.dropdown.value = value
        finally:
            self._refilling = False

    def _on_pick(self, _change) -> None:
        if not self._refilling:
            self.show()

    def _on_upload(self, name: str, data: bytes) -> None:
        try:
            self.use(data, name=name)
        except NSTError as error:
            self.say(str(error), error=True)
        else:
            self.say(f"Using {name} as the {self.role} image.")


class StyleMix:
    """A second style with a blend slider, and the colour choice (Gatys et al. 2016): the panel's "Going further" box.

    Args:
        second: the second style at the start (a sample name or any image, as for :class:`ImagePicker`).
        say: the panel's status line, for uploads.

    Attributes: ``picker`` (an :class:`ImagePicker` for the second style),
    ``blend_slider`` (the first style's share of the blend: 1 = first style
    only, the default; 0 = second only), ``colors_dropdown`` (``"painting"``,
    ``"luminance"`` or ``"histogram"``; :attr:`preserve_colors` turns it into
    the config's value) and ``box``.
    """

    def __init__(self, second: ImageSource, say: Callable[..., None]):
        self.picker = ImagePicker("style", second, say=say)
        self.picker.dropdown.description = "second style"
        self.picker.upload.description = "own second style"
        self.blend_slider = widgets.FloatSlider(
            value=1.0,
            min=0.0,
            max=1.0,
            step=0.05,
            description="style blend",
            readout_format=".0%",
            continuous_update=False,
            style=SLIDER_STYLE,
            layout={"width": COLUMN_WIDTH},
        )
        set_tooltip(
            self.blend_slider, "share of the first style: 1 = it alone, 0.5 = Grams mixed half and half, 0 = the second"
        )
        self.colors_dropdown = widgets.Dropdown(
            options=[
                ("the painting's", "painting"),  # not None: ipywidgets shows a None value as no selection
                ("photo's: luminance only", "luminance"),
                ("photo's: histogram", "histogram"),
            ],
            value="painting",
            description="colours",
            style=SLIDER_STYLE,
        )
        set_tooltip(
            self.colors_dropdown,
            "keep the photo's colours (Gatys et al. 2016): stylise luminance only, or recolour the painting first",
        )
        self.box = widgets.VBox([self.blend_slider, self.colors_dropdown, self.picker.box], layout=COLUMN_LAYOUT)

    @property
    def preserve_colors(self) -> Literal["luminance", "histogram"] | None:
        """``TransferConfig.preserve_colors`` for the dropdown's choice (None: the painting's colours)."""
        value = self.colors_dropdown.value
        return value if value in ("luminance", "histogram") else None

    def blend(self) -> tuple[float, float] | None:
        """``(share, 1 - share)`` when both styles are used, else None."""
        share = float(self.blend_slider.value)
        return (share, 1.0 - share) if 0 < share < 1 else None

    def styles(self, first: torch.Tensor, max_size: int) -> torch.Tensor | list[torch.Tensor]:
        """What :func:`~nst_helpers.stylize` gets as ``style``: the first style, the second, or both."""
        share = float(self.blend_slider.value)
        if share >= 1:
            return first
        second = self.picker.image(max_size)
        return second if share <= 0 else [first, second]

    def describe(self, first: str) -> str:
        """The style(s) in words: ``"starry_night"`` or ``"starry_night 70% + great_wave 30%"``."""
        share = float(self.blend_slider.value)
        if share >= 1:
            return first
        if share <= 0:
            return self.picker.label
        return f"{first} {share:.0%} + {self.picker.label} {1 - share:.0%}"


def format_number(value: float) -> str:
    """A weight in three significant digits: ``0.2``, ``1e+03``."""
    return f"{value:.3g}"


def short_layers(layers: dict) -> str:
    """``{"relu1_1": 0.2, "relu2_1": 1.0}`` → ``"1_1:0.2 2_1:1"``; weights left out when all are equal."""
    if not layers:
        return "none"
    names = [name.replace("relu", "").replace("conv", "c") for name in layers]
    if len(set(layers.values())) == 1:
        return " ".join(names)
    return " ".join(f"{name}:{format_number(weight)}" for name, weight in zip(names, layers.values(), strict=True))


def _tv_words(settings: dict) -> str:
    return format_number(settings["tv"]) if settings["tv"] else "off"


def run_title(number: int, settings: dict) -> str:
    """Three lines naming run ``number`` by its gallery ``settings`` (a figure title in ``StylePanel.compare``)."""
    return (
        f"#{number} β/α {format_number(settings['style/content'])}, TV {_tv_words(settings)}\n"
        f"layers {short_layers(settings['layers'])}\n"
        f"{settings['optimizer']}, {settings['steps']} steps, {settings['size']} px"
    )


def gallery_card(number: int, settings: dict, result: TransferResult) -> widgets.VBox:
    """Thumbnail of ``result`` above its settings, loss, time and status: one entry of the panel's gallery."""
    layers = ", ".join(f"{name} {format_number(w)}" for name, w in settings["layers"].items()) or "none"
    totals = result.history["total"]
    loss = f"loss {totals[0]:.3g} → {totals[-1]:.3g}" if totals else "no steps"
    lines = [
        f"#{number} {settings['content']} × {settings['style']}",
        f"{settings['size']} px · {settings['steps']} steps · {settings['optimizer']} · from {settings['init']}",
        f"β/α {format_number(settings['style/content'])} · TV {_tv_words(settings)}"
        + (f" · colours: {settings['colours']}" if settings.get("colours") else ""),
        f"layers: {layers}",
        f"{loss} · {result.seconds:.0f} s · {result.status}",
    ]
    text = "<br>".join(html.escape(line) for line in lines)
    width = f"{THUMBNAIL_PX + 40}px"
    return widgets.VBox(
        [
            widgets.Image(value=png_bytes(result.image, 2 * THUMBNAIL_PX), format="png", layout={"max_width": width}),
            widgets.HTML(f"<small>{text}</small>", layout={"width": width}),
        ],
        layout={"margin": "0 8px 8px 0", "border": "1px solid #ddd", "padding": "4px"},
    )


def heading(text: str) -> widgets.HTML:
    """A bold line above a group of controls."""
    return widgets.HTML(f"<b>{html.escape(text)}</b>")
