r"""The paper's Figures 1–3, one function each: the runs of Gatys, Ecker & Bethge (2015), laid out as printed.

* :func:`paper_figure1`: what one layer keeps. Content reconstructions from
  white noise at conv1_1 … conv5_1 and style reconstructions from growing
  layer sets (conv1_1; conv1_1 + conv2_1; … up to conv5_1).
* :func:`paper_figure2`: one photograph in several styles, as a grid.
* :func:`paper_figure3`: style layers (rows: up to conv1_1 … conv5_1) ×
  content/style ratio α/β (columns: the paper's 10⁻⁵, 10⁻⁴, 10⁻³, 10⁻²).

Each takes a model, a size and a step count (small ones for CI's quick mode)
and returns a :class:`PaperFigure`: the images and runs by (row, column)
label, and the matplotlib figure.

**conv or relu?** The 2015 paper names layers "conv1_1 … conv5_1" (Figure 1)
and "conv4_2" (content). Its Caffe network ran every ReLU in place, so the
blob called "conv4_2" held the output *after* the ReLU when the losses read
it, and the authors' later PyTorch code names the same layers ``r11 … r51``,
``r42``. So ``form="relu"`` (the default) uses relu1_1 … relu5_1, what the
paper computed; ``form="conv"`` uses the convolution outputs before their
ReLU (with negative values), which the printed names suggest.

**α/β in this package.** The paper's ratios refer to its raw losses (Eq. 1,
Eq. 4) on a normalised VGG19; this package's losses are relative (see
:mod:`nst_helpers.losses`). :func:`relative_style_weight` maps a paper ratio
to β for α = 1 by one anchor: the paper's usual α/β = 10⁻³ (its Figure 2)
is the package's default β = 10, and every factor of 10 in α/β is a factor of
10 in β. :func:`raw_loss_weights` gives the exact translation for a given
network and image pair instead, for comparison.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from .data import is_sample_name, sample_image
from .devices import pick_device
from .errors import SettingsError
from .images import ImageSource, load_image
from .losses import gram_matrix
from .transfer import TransferResult, stylize
from .vgg import VGGFeatures
from .weights import load_vgg

__all__ = [
    "PaperFigure",
    "PAPER_LAYERS",
    "PAPER_RATIOS",
    "paper_layers",
    "relative_style_weight",
    "raw_loss_weights",
    "paper_figure1",
    "paper_figure2",
    "paper_figure3",
]

PAPER_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")  #: Figure 1's layers, as printed
PAPER_RATIOS = (1e-5, 1e-4, 1e-3, 1e-2)  #: Figure 3's content/style ratios α/β, left to right
ANCHOR_RATIO, ANCHOR_STYLE_WEIGHT = 1e-3, 10.0  #: the paper's usual α/β ↔ this package's default β (α = 1)
FIGURE2_STYLES = ("turner_shipwreck", "starry_night", "great_wave", "gauguin_te_fare", "monet_charing_cross")


@dataclass
class PaperFigure:
    """What a figure function made: images and runs by (row, column) label, and the figure drawn."""

    images: dict[tuple[str, str], torch.Tensor]  #: (row, column) → [1, 3, H, W] in [0, 1], CPU
    results: dict[tuple[str, str], TransferResult]  #: the runs behind the images (losses, steps, time)
    figure: object  #: the matplotlib Figure
    seconds: float = 0.0  #: wall time of all runs
    settings: dict[str, object] = field(default_factory=dict)  #: size, steps, layers … as used


def paper_layers(form: str = "relu") -> list[str]:
    """conv1_1 … conv5_1 in this package's names: ``relu1_1 …`` (what the paper computed) or ``conv1_1 …``."""
    if form not in ("relu", "conv"):
        raise SettingsError(f"form must be 'relu' or 'conv', got {form!r}.")
    return [name.replace("conv", form) for name in PAPER_LAYERS]


def relative_style_weight(alpha_over_beta: float) -> float:
    """β for α = 1 on this package's relative losses, for the paper's ratio α/β (10⁻³ → 10, 10⁻⁴ → 100)."""
    if isinstance(alpha_over_beta, bool) or not isinstance(alpha_over_beta, (int, float)) or not alpha_over_beta > 0:
        raise SettingsError(f"alpha_over_beta must be a positive number, got {alpha_over_beta!r}.")
    return ANCHOR_STYLE_WEIGHT * ANCHOR_RATIO / alpha_over_beta


def raw_loss_weights(
    model: VGGFeatures,
    content: torch.Tensor,
    style: torch.Tensor,
    alpha_over_beta: float,
    content_layer: str = "relu4_2",
    style_layers: tuple[str, ...] | None = None,
) -> dict[str, float]:
    r"""Per-layer weights on the relative style losses (α = 1) that make this package minimise the paper's
    *raw* objective :math:`\alpha L_{content} + \beta \sum_l w_l E_l` exactly, for this network and these images.

    With :math:`L_{content} = \tfrac12 \|P\|^2 \cdot` (relative content loss) and
    :math:`E_l = \|A_l\|^2 / (4 N_l^2 M_l^2) \cdot` (relative style loss at l), the weight of layer l is
    :math:`(\beta/\alpha)\, w_l\, \|A_l\|^2 / (2 N_l^2 M_l^2 \|P\|^2)` with :math:`w_l = 1/5` and
    :math:`A_l` the raw Gram matrix :math:`F F^T`.
    """
    style_layers = tuple(style_layers or paper_layers())
    device = next(model.parameters()).device
    with torch.no_grad():
        photo = model(content.to(device), [content_layer])[content_layer].double()
        painting = model(style.to(device), list(style_layers))
        shapes = model(content.to(device), list(style_layers))  # N_l, M_l of the image being made (content size)
    half_content = 0.5 * float(photo.square().sum())
    weights = {}
    for name in style_layers:
        gram = gram_matrix(painting[name].double(), normalize=False)
        channels, positions = shapes[name].shape[1], shapes[name].shape[-2] * shapes[name].shape[-1]
        # The painting's Gram is rescaled to the content's number of positions, as if it were made at that size.
        gram = gram * positions / (painting[name].shape[-2] * painting[name].shape[-1])
        raw_scale = float(gram.square().sum()) / (4 * channels**2 * positions**2)
        weights[name] = raw_scale / half_content / len(style_layers) / alpha_over_beta
    return weights


def _load(source: ImageSource, size: int) -> torch.Tensor:
    if isinstance(source, str) and is_sample_name(source):
        source = sample_image(source)
    return load_image(source, max_size=size)


def _runner(model: VGGFeatures | None, device, size: int, steps: int, seed: int, log: bool):
    """A function running one stylize call with the figure's shared settings, and the clock of all runs."""
    device = pick_device(device)
    model = model if model is not None else load_vgg(device=device)
    started, count = time.perf_counter(), [0]

    def run(label: str, content: torch.Tensor, style: torch.Tensor, **settings) -> TransferResult:
        settings = {"init": "noise", "seed": seed, "steps": steps, "size": size, "preview_every": 25, **settings}
        result = stylize(content, style, model=model, device=str(device), **settings)
        count[0] += 1
        if log:
            print(f"{count[0]:>2}. {label}: loss {result.history['total'][-1]:.3g}, {result.seconds:.1f} s", flush=True)
        return result

    return run, model, lambda: time.perf_counter() - started


def _grid(rows: list[str], columns: list[str], images: dict, title: str, size: float = 2.2):
    """``images[(row, column)]`` on a grid of axes, row labels at the left; missing cells left blank."""
    import matplotlib.pyplot as plt

    height, width = next(iter(images.values())).shape[-2:]
    figsize = (size * len(columns) + 0.3, size * len(rows) * height / width + 0.9)
    figure, axes = plt.subplots(len(rows), len(columns), figsize=figsize)
    axes = [[axes]] if len(rows) == len(columns) == 1 else axes.reshape(len(rows), len(columns))
    for r, row in enumerate(rows):
        for c, column in enumerate(columns):
            axis = axes[r][c]
            axis.set_xticks([])
            axis.set_yticks([])
            for spine in axis.spines.values():
                spine.set_visible(False)
            if (row, column) in images:
                axis.imshow(images[(row, column)][0].permute(1, 2, 0).clamp(0, 1).numpy())
            if r == 0:
                axis.set_title(column, fontsize=9)
            if c == 0:
                axis.set_ylabel(row, fontsize=9)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


def _note(title: str, note: str) -> str:
    return f"{title}\n({note})" if note else title


def paper_figure1(
    content: ImageSource = "tubingen",
    style: ImageSource = "starry_night",
    *,
    model: VGGFeatures | None = None,
    size: int = 128,
    steps: int = 200,
    form: str = "relu",
    device=None,
    seed: int = 0,
    note: str = "",
    log: bool = True,
) -> PaperFigure:
    """Figure 1: reconstructions from white noise. Top row (style): the painting's Gram matrices at
    conv1_1, then conv1_1 + conv2_1, … up to conv5_1. Bottom row (content): the photo's features at one
    layer, conv1_1 … conv5_1. The inputs are in the first column. ``form``: see the module docstring."""
    layers = paper_layers(form)
    run, model, clock = _runner(model, device, size, steps, seed, log)
    photo, painting = _load(content, size), _load(style, size)
    letters = "abcde"
    style_columns = [f"({letters[i]}) {layers[0]}" + (f" … {layers[i]}" if i else "") for i in range(5)]
    content_columns = [f"({letters[i]}) {layers[i]}" for i in range(5)]
    images, results = {("style", "input"): painting, ("content", "input"): photo}, {}
    for i in range(5):
        style_set = {name: 1 / (i + 1) for name in layers[: i + 1]}
        key = ("style", style_columns[i])
        results[key] = run(
            f"style from {' + '.join(style_set)}", painting, painting, content_weight=0.0, style_layers=style_set
        )
    for i in range(5):
        key = ("content", content_columns[i])
        results[key] = run(
            f"content from {layers[i]}", photo, photo, content_layers=(layers[i],), style_layers={}, style_weight=0.0
        )
    images.update({key: result.image for key, result in results.items()})
    import matplotlib.pyplot as plt

    height, width = photo.shape[-2:]
    figure, axes = plt.subplots(2, 6, figsize=(13.2, 2 * 2.2 * height / width + 1.3))
    for row, (name, columns) in enumerate((("style", style_columns), ("content", content_columns))):
        for col, column in enumerate(["input", *columns]):
            axis = axes[row][col]
            axis.imshow(images[(name, column)][0].permute(1, 2, 0).clamp(0, 1).numpy())
            axis.set_xticks([])
            axis.set_yticks([])
            axis.set_title(
                "painting" if column == "input" and name == "style" else "photograph" if column == "input" else column,
                fontsize=9,
            )
        axes[row][0].set_ylabel(f"{name} reconstructions", fontsize=10)
    title = (
        f"Figure 1 (Gatys et al. 2015): style (top) and content (bottom) reconstructions from white noise; "
        f"{model.arch}, {form} layers, {size} px, {steps} L-BFGS steps"
    )
    figure.suptitle(_note(title, note), fontsize=10)
    figure.tight_layout()
    settings = {"size": size, "steps": steps, "layers": layers, "arch": model.arch, "form": form}
    return PaperFigure(images, results, figure, clock(), settings)


def paper_figure2(
    content: ImageSource = "tubingen",
    styles: tuple[ImageSource, ...] = FIGURE2_STYLES,
    *,
    model: VGGFeatures | None = None,
    size: int = 192,
    steps: int = 300,
    alpha_over_beta: float = 1e-3,
    init: str = "content",
    device=None,
    seed: int = 0,
    note: str = "",
    log: bool = True,
) -> PaperFigure:
    """Figure 2: the photograph (A) and its renderings in each style (B, C, …), each with the painting
    as an inset, on a grid of three columns. Content at relu4_2, style at relu1_1 … relu5_1 (w_l = 1/5),
    β from the paper's α/β by :func:`relative_style_weight`. The paper starts from white noise; at the
    small sizes and step counts used here that leaves a grain of noise and, for several styles, little of
    the photograph, so the default starts from the photograph (``init="noise"`` for the paper's start)."""
    run, model, clock = _runner(model, device, size, steps, seed, log)
    photo = _load(content, size)
    beta = relative_style_weight(alpha_over_beta)
    images, results, paintings = {("A", "photograph"): photo}, {}, {}
    for index, source in enumerate(styles):
        name = source if isinstance(source, str) else f"style {index + 1}"
        key = ("ABCDEFGHIJKLMNOPQRSTUVWXYZ"[index + 1], name.split("/")[-1])
        paintings[key] = _load(source, size)
        results[key] = run(f"{key[0]}: {key[1]}", photo, paintings[key], init=init, style_weight=beta)
        images[key] = results[key].image
    import matplotlib.pyplot as plt

    columns = 3
    rows = -(-len(images) // columns)
    height, width = photo.shape[-2:]
    panel = 3.6
    figure, axes = plt.subplots(
        rows, columns, figsize=(panel * columns, panel * rows * height / width + 0.7), squeeze=False
    )
    for axis in axes.flat:
        axis.axis("off")
    for axis, (key, image) in zip(axes.flat, images.items()):
        axis.imshow(image[0].permute(1, 2, 0).clamp(0, 1).numpy())
        axis.set_title(f"{key[0]}: {key[1]}", fontsize=9)
        if key in paintings:  # the painting as an inset in the lower left corner, as in the paper
            inset = axis.inset_axes((0.0, 0.0, 0.3, 0.3))
            inset.imshow(paintings[key][0].permute(1, 2, 0).numpy())
            inset.set_xticks([])
            inset.set_yticks([])
    title = (
        f"Figure 2 (Gatys et al. 2015): one photograph in {len(styles)} styles; α/β = {alpha_over_beta:g} "
        f"(β = {beta:g} on relative losses), {model.arch}, {size} px, {steps} L-BFGS steps from {init}"
    )
    figure.suptitle(_note(title, note), fontsize=10)
    figure.tight_layout()
    settings = {"size": size, "steps": steps, "style_weight": beta, "arch": model.arch, "init": init}
    return PaperFigure(images, results, figure, clock(), settings)


def paper_figure3(
    content: ImageSource = "tubingen",
    style: ImageSource = "starry_night",
    *,
    model: VGGFeatures | None = None,
    size: int = 128,
    steps: int = 150,
    ratios: tuple[float, ...] = PAPER_RATIOS,
    depth: int = 5,
    init: str = "noise",
    device=None,
    seed: int = 0,
    note: str = "",
    log: bool = True,
) -> PaperFigure:
    """Figure 3: rows use the style layers up to relu1_1, relu2_1, … (the first ``depth`` rows), columns
    the paper's content/style ratios α/β (β by :func:`relative_style_weight`, α = 1; content at relu4_2)."""
    layers = paper_layers("relu")
    if isinstance(depth, bool) or depth not in range(1, 6):
        raise SettingsError(f"depth must be 1 to 5 (rows up to relu1_1 … relu5_1), got {depth!r}.")
    run, model, clock = _runner(model, device, size, steps, seed, log)
    photo, painting = _load(content, size), _load(style, size)
    rows = [f"up to {layers[i]}" for i in range(depth)]
    columns = [f"α/β = {ratio:.0e} (β = {relative_style_weight(ratio):g})" for ratio in ratios]
    results = {}
    for i, row in enumerate(rows):
        style_set = {name: 1 / (i + 1) for name in layers[: i + 1]}
        for ratio, column in zip(ratios, columns):
            results[(row, column)] = run(
                f"{row}, {column}",
                photo,
                painting,
                init=init,
                style_layers=style_set,
                style_weight=relative_style_weight(ratio),
            )
    images = {key: result.image for key, result in results.items()}
    title = (
        f"Figure 3 (Gatys et al. 2015): style layers (rows) × content/style ratio (columns); "
        f"{model.arch}, {size} px, {steps} L-BFGS steps from {init}"
    )
    figure = _grid(rows, columns, images, _note(title, note), size=2.6)
    settings = {"size": size, "steps": steps, "ratios": ratios, "arch": model.arch, "init": init}
    return PaperFigure(images, results, figure, clock(), settings)
