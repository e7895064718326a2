"""A sliders panel for style transfer in Jupyter: :class:`StylePanel`.

With :mod:`nst_helpers.widget_parts` (its building blocks), the only module
of the package that imports ipywidgets. ``import nst_helpers`` imports
neither, so the core runs headless; use
``from nst_helpers.widgets import StylePanel`` in a notebook.

Design decisions:

* **Nothing runs while a slider moves.** Every slider has
  ``continuous_update=False`` and only the Run button (or :meth:`StylePanel.run`)
  starts an optimisation, which takes seconds to minutes.
* **Weights sit on log sliders** (``FloatLogSlider``): what matters is their
  order of magnitude. A weight slider at its far left switches its term off
  (weight 0); the label beside it then says "off".
* **The live preview is an** ``ipywidgets.Image`` **updated in place** by a
  :class:`~nst_helpers.preview.WidgetPreview` (the same picture as
  :class:`~nst_helpers.LivePreview`), with a progress bar widget, rather than
  an Output widget around a ``LivePreview``: JupyterLab's Output widget
  ignores ``update_display_data`` messages (ipywidgets issue #1844), so a
  display handle inside it would only ever show its first frame.
* **No Stop button.** While a run blocks the kernel, a click on any button
  waits in the kernel's queue until the run is over. Use Jupyter's Stop
  (interrupt the kernel): :func:`~nst_helpers.stylize` catches the
  ``KeyboardInterrupt`` and returns the partial result, which joins the
  gallery marked "interrupted".

Works with ipywidgets 8 and with the 7.7 that Colab preinstalls.
"""

from __future__ import annotations

import html
from dataclasses import replace

try:
    import ipywidgets as widgets
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "nst_helpers.widgets needs ipywidgets: pip install ipywidgets (or pip install 'nst-helpers[notebooks]')."
    ) from error

from .config import TransferConfig
from .data import DEFAULT_CONTENT, DEFAULT_STYLE
from .devices import pick_device
from .errors import NSTError
from .images import ImageSource, show_images
from .preview import WidgetPreview, say_plan
from .transfer import TransferResult, stylize
from .vgg import VGGFeatures
from .widget_parts import (
    SLIDER_LAYOUT,
    SLIDER_STYLE,
    ImagePicker,
    StyleMix,
    WeightSlider,
    gallery_card,
    heading,
    run_title,
    set_tooltip,
)

__all__ = ["StylePanel"]

#: Exponent ranges (base 10) of the log sliders; the lowest value of each means "off".
LAYER_WEIGHT_EXPONENTS = (-3, 1)  # w_l: off, then 0.001 ... 10
STYLE_RATIO_EXPONENTS = (-2, 5)  # β/α: 0.01 ... 100 000 (β/α = 10 is the package default)
TV_WEIGHT_EXPONENTS = (-2, 3)  # γ: off, then 0.01 ... 1000

STOP_NOTE = (
    "<small>To stop a run early, use Jupyter's <b>■ Stop</b> (interrupt the kernel): the run ends "
    "after the current step and its partial result joins the gallery. A Stop button here could not "
    "work: while a run keeps the kernel busy, clicks wait until it is over.</small>"
)
CPU_NOTE = (
    " (no GPU: keep size ≤ 256 and steps ≤ 200 for runs of a few minutes; "
    "in Colab, Runtime → Change runtime type → GPU)"
)


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
        image_pickers: the :class:`~nst_helpers.widget_parts.ImagePicker`
            of each role, ``"content"`` and ``"style"``.
        style_mix: a :class:`~nst_helpers.widget_parts.StyleMix`: the second
            style (``second_style``), the blend slider and the colour choice.
        layer_sliders, ratio_slider, tv_slider, steps_slider, size_slider,
        optimizer_dropdown, init_dropdown, content_picker, style_picker,
        content_upload, style_upload, run_button: the controls, for code
        that sets them (as a notebook must, since nbval cannot click).
    """

    def __init__(
        self,
        content: ImageSource = DEFAULT_CONTENT,
        style: ImageSource = DEFAULT_STYLE,
        *,
        second_style: ImageSource = "vangogh_wheat_field",
        size: int | None = None,
        steps: int | None = None,
        config: TransferConfig | None = None,
        model: VGGFeatures | None = None,
        device=None,
    ):
        self.base_config = config or TransferConfig()
        self.device = pick_device(device if device is not None else self.base_config.device)
        self.model = model
        self.gallery: list[tuple[dict, TransferResult]] = []
        self.last_preview: WidgetPreview | None = None
        self._build_image_pickers(content, style)
        self.style_mix = StyleMix(second_style, say=self._say)
        self._build_weight_sliders()
        self._build_run_settings(size or (512 if self.device.type == "cuda" else 256), steps or self.base_config.steps)
        self._build_run_controls()
        self.widget = self._layout()
        say_plan(self)  # scales, steps and memory estimate in the status line, again when size or steps change

    # -- building the panel --------------------------------------------------------------------

    def _build_image_pickers(self, content: ImageSource, style: ImageSource) -> None:
        """Per role a sample dropdown, an upload button, a thumbnail and the image's credit."""
        self.image_pickers = {
            role: ImagePicker(role, start, say=self._say) for role, start in (("content", content), ("style", style))
        }
        content_picker, style_picker = self.image_pickers["content"], self.image_pickers["style"]
        self.content_picker, self.style_picker = content_picker.dropdown, style_picker.dropdown
        self.content_upload, self.style_upload = content_picker.upload, style_picker.upload
        self.content_thumbnail, self.style_thumbnail = content_picker.thumbnail, style_picker.thumbnail

    def _build_weight_sliders(self) -> None:
        """One log slider per style layer (w_l), then β/α and γ."""
        config = self.base_config
        self._layer_weights = {
            name: WeightSlider(
                name, weight, LAYER_WEIGHT_EXPONENTS, f"w_l of {name} in the style loss Σ w_l E_l; far left: layer off"
            )
            for name, weight in config.style_layers.items()
        }
        self.layer_sliders = {name: weight.slider for name, weight in self._layer_weights.items()}
        self._ratio = WeightSlider(
            "style ÷ content",
            config.style_weight / (config.content_weight or 1.0),
            STYLE_RATIO_EXPONENTS,
            "β/α: style weight over content weight (α stays as in the config)",
        )
        self.ratio_slider = self._ratio.slider
        self._tv = WeightSlider(
            "smoothness (TV)",
            config.tv_weight,
            TV_WEIGHT_EXPONENTS,
            "γ, weight of the total-variation loss; far left: off",
        )
        self.tv_slider = self._tv.slider

    def _build_run_settings(self, size: int, steps: int) -> None:
        """Steps, size, optimiser and start image; slider ranges widen to include the start values."""
        common = {"continuous_update": False, "style": SLIDER_STYLE, "layout": SLIDER_LAYOUT}
        self.steps_slider = widgets.IntSlider(
            value=steps, min=min(10, steps), max=max(1000, steps), step=10, description="steps", **common
        )
        self.size_slider = widgets.IntSlider(
            value=size, min=min(64, size), max=max(1024, size), step=32, description="size (px)", **common
        )
        set_tooltip(self.size_slider, "longest side of the result; time and memory grow with its square")
        self.optimizer_dropdown = widgets.Dropdown(
            options=[("L-BFGS (the paper)", "lbfgs"), ("Adam", "adam")],
            value=self.base_config.optimizer,
            description="optimiser",
            style=SLIDER_STYLE,
        )
        self.init_dropdown = widgets.Dropdown(
            options=[("content image", "content"), ("white noise (the paper)", "noise"), ("style image", "style")],
            value=self.base_config.init,
            description="start from",
            style=SLIDER_STYLE,
        )

    def _build_run_controls(self) -> None:
        """The Run and Clear buttons, status line, progress bar, preview image, error output and gallery."""
        self.run_button = widgets.Button(description="Run", button_style="primary", icon="play")
        set_tooltip(self.run_button, "stylise with these settings (the only thing that starts a run)")
        self.run_button.on_click(self._on_run_clicked)
        self.clear_button = widgets.Button(description="Clear gallery", icon="trash")
        self.clear_button.on_click(lambda _button: self.clear_gallery())
        self.status = widgets.HTML()
        self.progress_bar = widgets.IntProgress(
            value=0, min=0, max=max(self.steps_slider.value, 1), layout={"width": "430px"}
        )
        self.progress_text = widgets.HTML()
        self.preview_image = widgets.Image(format="png", layout={"max_width": "640px", "display": "none"})
        self.gallery_box = widgets.Box(layout={"flex_flow": "row wrap"})
        self.errors = widgets.Output()  # unexpected errors of a click show their traceback here

    def _layout(self) -> widgets.VBox:
        """Images on top, weights beside run settings, buttons, progress, preview, gallery."""
        images = widgets.HBox([picker.box for picker in self.image_pickers.values()] + [self.style_mix.box])
        weights = widgets.VBox(
            [heading("Style layers w_l (log scale)")]
            + [w.box for w in self._layer_weights.values()]
            + [heading("Loss weights"), self._ratio.box, self._tv.box]
        )
        device = widgets.HTML(
            f"<small>device: {self.device}{CPU_NOTE if self.device.type == 'cpu' else ''}</small>", layout=SLIDER_LAYOUT
        )
        settings = widgets.VBox(
            [heading("Run"), self.steps_slider, self.size_slider, self.optimizer_dropdown, self.init_dropdown, device]
        )
        return widgets.VBox(
            [
                images,
                widgets.HBox([weights, settings]),
                widgets.HBox([self.run_button, self.clear_button, self.status]),
                widgets.HTML(STOP_NOTE),
                widgets.HBox([self.progress_bar, self.progress_text]),
                self.preview_image,
                self.errors,
                heading("Gallery (newest last)"),
                self.gallery_box,
            ]
        )

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
            preserve_colors=self.style_mix.preserve_colors,
            style_blend=self.style_mix.blend(),
            device=str(self.device),
            preview_every=max(1, min(self.base_config.preview_every, steps // 5)),  # at least ~5 frames a run
        )

    def settings(self) -> dict:
        """The widget values in words, as stored in the gallery."""
        config = self.config()
        return {
            "content": self.image_pickers["content"].label,
            "style": self.style_mix.describe(self.image_pickers["style"].label),
            "colours": config.preserve_colors,
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
        content = self.image_pickers["content"].image(config.size)
        style_size = config.style_size or config.size
        style = self.style_mix.styles(self.image_pickers["style"].image(style_size), style_size)  # one or two
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
        self.gallery_box.children = (*self.gallery_box.children, gallery_card(number, settings, result))
        self._say(
            f"run #{number}: {result.summary()}" + (f" {result.message}" if result.message else ""),
            error=result.status not in ("completed", "stopped"),
        )
        return result

    def compare(self, last: int | None = None, size: float = 3.0):
        """Figure with the gallery's results side by side, titled with their settings (``last``: only the newest)."""
        entries = list(enumerate(self.gallery, start=1))
        if last is not None:
            entries = entries[-last:]
        if not entries:
            raise ValueError("The gallery is empty: run the panel first.")
        figure = show_images(
            [r.image for _n, (_s, r) in entries], [run_title(n, s) for n, (s, _r) in entries], size=size
        )
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
        if role not in self.image_pickers:
            raise ValueError(f"role must be 'content' or 'style', got {role!r}.")
        self.image_pickers[role].use(source, name)

    # -- internals -----------------------------------------------------------------------------

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

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
