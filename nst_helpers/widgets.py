"""A sliders panel for style transfer in Jupyter: :class:`StylePanel`.

The only module of the package that imports ipywidgets. ``import nst_helpers``
does not import it, so the core runs headless; use
``from nst_helpers.widgets import StylePanel`` in a notebook.

Design decisions:

* **Nothing runs while a slider moves.** Every slider has
  ``continuous_update=False`` and only the Run button (or :meth:`StylePanel.run`)
  starts an optimisation, which takes seconds to minutes.
* **Weights sit on log sliders** (``FloatLogSlider``): what matters is their
  order of magnitude. A weight slider at its far left switches its term off
  (weight 0); the label beside it then says "off".
* **The live preview is an** ``ipywidgets.Image`` **updated in place**, with a
  progress bar widget, rather than an Output widget around :class:`~nst_helpers.LivePreview`:
  JupyterLab's Output widget ignores ``update_display_data``
  messages (ipywidgets issue #1844), so a display handle inside it would only
  ever show its first frame. Widget values, by contrast, are sent to the
  browser as soon as they change, even while the run blocks the kernel.
* **No Stop button.** While a run blocks the kernel, a click on any button
  waits in the kernel's queue until the run is over. Use Jupyter's Stop
  (interrupt the kernel): :func:`~nst_helpers.stylize` catches the
  ``KeyboardInterrupt`` and returns the partial result, which joins the
  gallery marked "interrupted".

Works with ipywidgets 8 and with the 7.7 that Colab preinstalls.
"""

from __future__ import annotations

import html
import io
from dataclasses import replace
from typing import Optional

try:
    import ipywidgets as widgets
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "nst_helpers.widgets needs ipywidgets: pip install ipywidgets (or pip install 'nst-helpers[notebooks]')."
    ) from error

import torch

from .data import DEFAULT_CONTENT, DEFAULT_STYLE, SAMPLES, is_sample_name, list_samples, sample_image
from .errors import ImageLoadError, NSTError
from .images import ImageSource, load_image, to_pil
from .plots import compare as compare_images
from .plots import plot_losses
from .transfer import Progress, TransferConfig, TransferResult, pick_device, stylize
from .vgg import VGGFeatures

__all__ = ["StylePanel", "WidgetPreview"]

#: Exponent ranges (base 10) of the log sliders; the lowest value of each means "off".
LAYER_WEIGHT_EXPONENTS = (-3, 1)  # w_l: off, then 0.001 ... 10
STYLE_RATIO_EXPONENTS = (-2, 5)  # β/α: 0.01 ... 100 000 (β/α = 10 is the package default)
TV_WEIGHT_EXPONENTS = (-2, 3)  # γ: off, then 0.01 ... 1000
GIVEN = "<given>"  #: dropdown value of an uploaded (or passed-in) image
THUMBNAIL_PX = 160

_SLIDER_STYLE = {"description_width": "120px"}
_SLIDER_LAYOUT = {"width": "430px"}


def _set_tooltip(widget, text: str) -> None:
    """Tooltip on ipywidgets 8 (``tooltip``) and 7 (``description_tooltip``)."""
    if "tooltip" in widget.trait_names():
        widget.tooltip = text
    else:  # ipywidgets 7
        widget.description_tooltip = text


def _png(image: torch.Tensor, max_side: int | None = None) -> bytes:
    picture = to_pil(image)
    if max_side is not None:
        picture.thumbnail((max_side, max_side))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def _uploaded_files(value) -> list[tuple[str, bytes]]:
    """``(name, bytes)`` pairs from a FileUpload value: tuple of dicts (ipywidgets 8) or dict (7)."""
    if isinstance(value, dict):  # ipywidgets 7: {filename: {"metadata": {...}, "content": bytes}}
        return [(name, bytes(item["content"])) for name, item in value.items()]
    return [(item["name"], bytes(item["content"])) for item in value]


def _sample_name(name: str) -> str:
    key = name.strip().lower()
    return next(s.name for s in SAMPLES.values() if key in (s.name, s.filename))


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def _short_layers(layers: dict) -> str:
    """``{"relu1_1": 0.2, "relu2_1": 1.0}`` → ``"1_1:0.2 2_1:1"``; weights left out when all are equal."""
    if not layers:
        return "none"
    names = [name.replace("relu", "").replace("conv", "c") for name in layers]
    if len(set(layers.values())) == 1:
        return " ".join(names)
    return " ".join(f"{name}:{_fmt(weight)}" for name, weight in zip(names, layers.values()))


class _WeightSlider:
    """A FloatLogSlider whose leftmost position means 0 ("off"), with a label saying so."""

    def __init__(self, description: str, value: float, exponents: tuple[int, int], tooltip: str):
        low, high = exponents
        off = value <= 0
        self.slider = widgets.FloatLogSlider(
            value=10.0**low if off else value, base=10, min=low, max=high, step=0.1,
            description=description, continuous_update=False, readout_format=".3g",
            style=_SLIDER_STYLE, layout=_SLIDER_LAYOUT)
        _set_tooltip(self.slider, tooltip)
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


class WidgetPreview:
    """:func:`~nst_helpers.stylize` callback drawing into widgets, updated in place.

    Every call redraws one PNG (current image + loss curves per term) into
    ``image`` and moves ``bar``; ``text`` gets step, loss and time. The
    figure is a plain ``matplotlib.figure.Figure`` (not pyplot), so nothing
    is left open and the inline backend never shows it a second time.
    """

    def __init__(self, image: widgets.Image, bar: widgets.IntProgress, text: widgets.HTML, title: str = ""):
        self.image, self.bar, self.text, self.title = image, bar, text, title
        self.frames = 0  #: how many times the figure was redrawn

    def __call__(self, progress: Progress) -> None:
        self.bar.max = max(progress.steps, 1)
        self.bar.value = min(progress.step, progress.steps)
        total = progress.losses.get("total")
        parts = [f"step {progress.step}/{progress.steps}"]
        if total is not None:
            parts.append(f"loss {total:.4g}")
        parts.append(f"{progress.elapsed:.1f} s")
        if progress.done:
            parts.append("done")
        self.text.value = html.escape(" · ".join(parts))
        self.image.value = self._render(progress)
        self.frames += 1

    def _render(self, progress: Progress) -> bytes:
        from matplotlib.figure import Figure

        figure = Figure(figsize=(8, 3.2), dpi=80, layout="constrained")
        image_axis, loss_axis = figure.subplots(1, 2)
        image_axis.imshow(progress.image[0].permute(1, 2, 0).clamp(0, 1).numpy())
        image_axis.axis("off")
        image_axis.set_title(f"{self.title + ': ' if self.title else ''}step {progress.step}/{progress.steps}")
        plot_losses(progress.history, ax=loss_axis)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return buffer.getvalue()


class StylePanel:
    """Sliders for the style weights and settings, a Run button, a live preview and a gallery.

    Args:
        content, style: the images selected at the start: a sample name
            (``nst.list_samples()``), or any image :func:`~nst_helpers.load_image`
            accepts (path, bytes, PIL image, tensor), shown as "your image".
        size, steps: starting values of those sliders (default: 512 px on
            CUDA, else 256 px; ``config.steps``). Slider ranges widen to
            include them.
        config: the :class:`~nst_helpers.TransferConfig` the sliders start
            from; fields without a widget (content layers, ``lr``, pooling,
            precision, ...) are taken from it unchanged.
        model: a :class:`~nst_helpers.VGGFeatures`; default
            :func:`~nst_helpers.load_vgg` (environment overrides apply).
        device: as for :func:`~nst_helpers.pick_device`.

    Attributes:
        widget: the whole panel (displaying the panel displays it).
        gallery: ``(settings, result)`` of every run, oldest first.
        layer_sliders, ratio_slider, tv_slider, steps_slider, size_slider,
        optimizer_dropdown, init_dropdown, content_picker, style_picker,
        content_upload, style_upload, run_button: the controls, for code
        that sets them (as a notebook must, since nbval cannot click).
    """

    def __init__(self, content: ImageSource = DEFAULT_CONTENT, style: ImageSource = DEFAULT_STYLE, *,
                 size: Optional[int] = None, steps: Optional[int] = None, config: TransferConfig | None = None,
                 model: VGGFeatures | None = None, device=None):
        self.base_config = config or TransferConfig()
        self.device = pick_device(device if device is not None else self.base_config.device)
        size = size or (512 if self.device.type == "cuda" else 256)
        steps = steps or self.base_config.steps
        self.model = model
        self.gallery: list[tuple[dict, TransferResult]] = []
        self._refilling = False  # True while a picker's options are replaced (its value passes through None)
        self._given: dict[str, tuple[str, ImageSource]] = {}  # role → (label, source) of an own image
        self.last_preview: WidgetPreview | None = None

        # Images: sample pickers by role, uploads, thumbnails and credits.
        self.content_picker = widgets.Dropdown(description="content", style=_SLIDER_STYLE)
        self.style_picker = widgets.Dropdown(description="style", style=_SLIDER_STYLE)
        self.content_upload = widgets.FileUpload(accept="image/*", multiple=False, description="own content")
        self.style_upload = widgets.FileUpload(accept="image/*", multiple=False, description="own style")
        self.content_thumbnail = widgets.Image(format="png", layout={"max_width": f"{THUMBNAIL_PX}px"})
        self.style_thumbnail = widgets.Image(format="png", layout={"max_width": f"{THUMBNAIL_PX}px"})
        self.content_credit = widgets.HTML(layout={"width": "300px"})
        self.style_credit = widgets.HTML(layout={"width": "300px"})
        for role, start in (("content", content), ("style", style)):
            if isinstance(start, str) and is_sample_name(start):
                self._options(role, select=_sample_name(start))
            else:
                self._given[role] = ("your image", start)
                self._options(role, select=GIVEN)
            self._picker(role).observe(lambda change, role=role: self._on_pick(role), names="value")
            self._upload(role).observe(lambda change, role=role: self._on_upload(role, change["new"]),
                                       names="value")

        # Weights: one log slider per style layer, β/α and γ.
        self._layer_weights = {
            name: _WeightSlider(name, weight, LAYER_WEIGHT_EXPONENTS,
                                f"w_l of {name} in the style loss Σ w_l E_l; far left: layer off")
            for name, weight in self.base_config.style_layers.items()
        }
        self.layer_sliders = {name: weight.slider for name, weight in self._layer_weights.items()}
        alpha = self.base_config.content_weight or 1.0
        self._ratio = _WeightSlider("style ÷ content", self.base_config.style_weight / alpha, STYLE_RATIO_EXPONENTS,
                                    "β/α: style weight over content weight (α stays as in the config)")
        self.ratio_slider = self._ratio.slider
        self._tv = _WeightSlider("smoothness (TV)", self.base_config.tv_weight, TV_WEIGHT_EXPONENTS,
                                 "γ, weight of the total-variation loss; far left: off")
        self.tv_slider = self._tv.slider

        # Run settings.
        self.steps_slider = widgets.IntSlider(value=steps, min=min(10, steps), max=max(1000, steps), step=10,
                                              description="steps", continuous_update=False,
                                              style=_SLIDER_STYLE, layout=_SLIDER_LAYOUT)
        self.size_slider = widgets.IntSlider(value=size, min=min(64, size), max=max(1024, size), step=32,
                                             description="size (px)", continuous_update=False,
                                             style=_SLIDER_STYLE, layout=_SLIDER_LAYOUT)
        _set_tooltip(self.size_slider, "longest side of the result; time and memory grow with its square")
        self.optimizer_dropdown = widgets.Dropdown(options=[("L-BFGS (the paper)", "lbfgs"), ("Adam", "adam")],
                                                   value=self.base_config.optimizer, description="optimiser",
                                                   style=_SLIDER_STYLE)
        self.init_dropdown = widgets.Dropdown(
            options=[("content image", "content"), ("white noise (the paper)", "noise"), ("style image", "style")],
            value=self.base_config.init, description="start from", style=_SLIDER_STYLE)

        # Running, progress, preview, gallery.
        self.run_button = widgets.Button(description="Run", button_style="primary", icon="play")
        _set_tooltip(self.run_button, "stylise with these settings (the only thing that starts a run)")
        self.run_button.on_click(self._on_run_clicked)
        self.clear_button = widgets.Button(description="Clear gallery", icon="trash")
        self.clear_button.on_click(lambda _button: self.clear_gallery())
        self.status = widgets.HTML()
        self.progress_bar = widgets.IntProgress(value=0, min=0, max=max(steps, 1), layout={"width": "430px"})
        self.progress_text = widgets.HTML()
        self.preview_image = widgets.Image(format="png", layout={"max_width": "640px", "display": "none"})
        self.gallery_box = widgets.Box(layout={"flex_flow": "row wrap"})
        self.errors = widgets.Output()  # unexpected errors of a click show their traceback here
        stop_note = widgets.HTML(
            "<small>To stop a run early, use Jupyter's <b>■ Stop</b> (interrupt the kernel): the run ends "
            "after the current step and its partial result joins the gallery. A Stop button here could not "
            "work: while a run keeps the kernel busy, clicks wait until it is over.</small>")

        def heading(text):
            return widgets.HTML(f"<b>{text}</b>")

        images = widgets.HBox([
            widgets.VBox([self.content_picker, self.content_upload, self.content_thumbnail, self.content_credit]),
            widgets.VBox([self.style_picker, self.style_upload, self.style_thumbnail, self.style_credit]),
        ])
        weights = widgets.VBox([heading("Style layers w_l (log scale)")]
                               + [w.box for w in self._layer_weights.values()]
                               + [heading("Loss weights"), self._ratio.box, self._tv.box])
        settings = widgets.VBox([heading("Run"), self.steps_slider, self.size_slider, self.optimizer_dropdown,
                                 self.init_dropdown,
                                 widgets.HTML(f"<small>device: {self.device}"
                                              + ("" if self.device.type != "cpu" else
                                                 " (no GPU: keep size ≤ 256 and steps ≤ 200 for runs of a few "
                                                 "minutes; in Colab, Runtime → Change runtime type → GPU)")
                                              + "</small>", layout={"width": "430px"})])
        self.widget = widgets.VBox([
            images,
            widgets.HBox([weights, settings]),
            widgets.HBox([self.run_button, self.clear_button, self.status]),
            stop_note,
            widgets.HBox([self.progress_bar, self.progress_text]),
            self.preview_image,
            self.errors,
            heading("Gallery (newest last)"),
            self.gallery_box,
        ])
        for role in ("content", "style"):
            self._show_choice(role)

    # -- what the widgets say ------------------------------------------------------------------

    def config(self) -> TransferConfig:
        """The :class:`~nst_helpers.TransferConfig` the widgets describe right now."""
        steps = self.steps_slider.value
        alpha = self.base_config.content_weight or 1.0
        return replace(
            self.base_config,
            size=self.size_slider.value,
            steps=steps,
            optimizer=self.optimizer_dropdown.value,
            init=self.init_dropdown.value,
            content_weight=alpha,
            style_weight=alpha * self._ratio.weight,
            tv_weight=self._tv.weight,
            style_layers={name: w.weight for name, w in self._layer_weights.items() if not w.off},
            device=str(self.device),
            preview_every=max(1, min(self.base_config.preview_every, steps // 5)),  # at least ~5 frames a run
        )

    def settings(self) -> dict:
        """The widget values in words, as stored in the gallery."""
        config = self.config()
        return {
            "content": self._label("content"),
            "style": self._label("style"),
            "size": config.size,
            "steps": config.steps,
            "optimizer": config.optimizer,
            "init": config.init,
            "style/content": config.style_weight / config.content_weight,
            "tv": config.tv_weight,
            "layers": dict(config.style_layers),
        }

    # -- running -------------------------------------------------------------------------------

    def run(self) -> TransferResult:
        """Stylise with the current widget values (what the Run button does) and add the result to the gallery."""
        config = self.config().validate()  # bad settings fail here, before any image is loaded
        settings = self.settings()
        content = self._image("content", config.size)
        style = self._image("style", config.style_size or config.size)
        number = len(self.gallery) + 1
        preview = WidgetPreview(self.preview_image, self.progress_bar, self.progress_text, title=f"run #{number}")
        self.last_preview = preview
        self.preview_image.layout.display = None  # hidden until the first run: an empty Image shows a broken icon
        self.run_button.disabled, self.run_button.description = True, "Running…"
        self._say(f"run #{number}: {config.size} px, {config.steps} steps on {self.device} …")
        try:
            result = stylize(content, style, config, model=self.model, callback=preview)
        finally:
            self.run_button.disabled, self.run_button.description = False, "Run"
        self.gallery.append((settings, result))
        self.gallery_box.children = tuple(self.gallery_box.children) + (self._card(number, settings, result),)
        self._say(f"run #{number}: {result.summary()}" + (f" {result.message}" if result.message else ""),
                  error=result.status not in ("completed", "stopped"))
        return result

    def compare(self, last: int | None = None, size: float = 3.0):
        """Figure with the gallery's results side by side, titled with their settings (``last``: only the newest)."""
        entries = list(enumerate(self.gallery, start=1))
        if last is not None:
            entries = entries[-last:]
        if not entries:
            raise ValueError("The gallery is empty: run the panel first.")
        titles = [f"#{n} β/α {_fmt(s['style/content'])}, TV {_fmt(s['tv']) if s['tv'] else 'off'}\n"
                  f"layers {_short_layers(s['layers'])}\n{s['optimizer']}, {s['steps']} steps, {s['size']} px"
                  for n, (s, _r) in entries]
        figure = compare_images([r.image for _n, (_s, r) in entries], titles, size=size)
        for axis in figure.axes:  # three lines of settings per title: smaller type, and room above
            axis.title.set_fontsize(9)
        figure.tight_layout()
        return figure

    def clear_gallery(self) -> None:
        self.gallery.clear()
        self.gallery_box.children = ()

    def use_image(self, role: str, source: ImageSource, name: str = "your image") -> None:
        """Select an own image for ``role`` ("content" or "style"), as an upload does.

        Raises :class:`~nst_helpers.ImageLoadError` (and keeps the current choice) if it cannot be read.
        """
        if role not in ("content", "style"):
            raise ValueError(f"role must be 'content' or 'style', got {role!r}.")
        try:
            load_image(source, max_size=THUMBNAIL_PX)  # fail now, not at the next run
        except ImageLoadError as error:
            raise ImageLoadError(f"{name}: {error}") from None
        self._given[role] = (name, source)
        self._options(role, select=GIVEN)
        self._show_choice(role)

    # -- internals -----------------------------------------------------------------------------

    def _picker(self, role: str) -> widgets.Dropdown:
        return self.content_picker if role == "content" else self.style_picker

    def _upload(self, role: str) -> widgets.FileUpload:
        return self.content_upload if role == "content" else self.style_upload

    def _options(self, role: str, select: str) -> None:
        options = [(sample.name, sample.name) for sample in list_samples(role, show=False)]
        if select not in (GIVEN, *[value for _label, value in options]):
            options.append((select, select))  # a sample of the other role, e.g. a painting as content
        if role in self._given:
            options.append((f"⬆ {self._given[role][0]}", GIVEN))
        picker = self._picker(role)
        self._refilling = True
        try:
            picker.options = options
            picker.value = select
        finally:
            self._refilling = False

    def _label(self, role: str) -> str:
        value = self._picker(role).value
        return self._given[role][0] if value == GIVEN else value

    def _source(self, role: str) -> ImageSource:
        value = self._picker(role).value
        return self._given[role][1] if value == GIVEN else sample_image(value)

    def _image(self, role: str, max_size: int) -> torch.Tensor:
        source = self._source(role)
        if isinstance(source, io.IOBase):
            source.seek(0)
        return load_image(source, max_size=max_size)

    def _on_pick(self, role: str) -> None:
        if not self._refilling:
            self._show_choice(role)

    def _show_choice(self, role: str) -> None:
        thumbnail = self.content_thumbnail if role == "content" else self.style_thumbnail
        credit = self.content_credit if role == "content" else self.style_credit
        value = self._picker(role).value
        try:
            thumbnail.value = _png(self._image(role, THUMBNAIL_PX))
        except NSTError as error:  # e.g. offline without NST_DATA_DIR: say so, keep the panel usable
            thumbnail.value = b""
            credit.value = f"<small style='color:#b00'>{html.escape(str(error))}</small>"
            return
        text = SAMPLES[value].credit if value in SAMPLES else self._given[role][0]
        credit.value = f"<small>{html.escape(text)}</small>"

    def _on_upload(self, role: str, value) -> None:
        files = _uploaded_files(value)
        if not files:
            return
        name, data = files[-1]
        try:
            self.use_image(role, data, name=name)
        except NSTError as error:
            self._say(str(error), error=True)
        else:
            self._say(f"Using {name} as the {role} image.")

    def _on_run_clicked(self, _button) -> None:
        self.errors.clear_output()
        with self.errors:  # an unexpected error shows its traceback in the panel, not only in the browser log
            try:
                self.run()
            except NSTError as error:  # bad settings, unreadable image, not enough memory: say what to do
                self._say(str(error), error=True)

    def _say(self, text: str, error: bool = False) -> None:
        colour = "#b00" if error else "inherit"
        self.status.value = f"<span style='color:{colour}'>{html.escape(text)}</span>"

    def _card(self, number: int, settings: dict, result: TransferResult) -> widgets.VBox:
        layers = ", ".join(f"{name} {_fmt(w)}" for name, w in settings["layers"].items()) or "none"
        totals = result.history["total"]
        loss = f"loss {totals[0]:.3g} → {totals[-1]:.3g}" if totals else "no steps"
        lines = [
            f"#{number} {settings['content']} × {settings['style']}",
            f"{settings['size']} px · {settings['steps']} steps · {settings['optimizer']} · from {settings['init']}",
            f"β/α {_fmt(settings['style/content'])} · TV {_fmt(settings['tv']) if settings['tv'] else 'off'}",
            f"layers: {layers}",
            f"{loss} · {result.seconds:.0f} s · {result.status}",
        ]
        text = "<br>".join(html.escape(line) for line in lines)
        return widgets.VBox(
            [widgets.Image(value=_png(result.image, 2 * THUMBNAIL_PX), format="png",
                           layout={"max_width": f"{THUMBNAIL_PX + 40}px"}),
             widgets.HTML(f"<small>{text}</small>", layout={"width": f"{THUMBNAIL_PX + 40}px"})],
            layout={"margin": "0 8px 8px 0", "border": "1px solid #ddd", "padding": "4px"})

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
