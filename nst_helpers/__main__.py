"""Command line: ``python -m nst_helpers CONTENT STYLE -o OUT [options]``.

CONTENT and STYLE are sample names (``python -m nst_helpers --list``),
paths or URLs; several STYLEs are blended (``--style-blend 0.7,0.3``) or
painted in regions (``--style-masks sky.png,ground.png``), and
``--preserve-colors luminance|histogram`` keeps the content's colours.
``--scales auto`` paints coarse to fine (``none``: at one size) and
``--style-scale 0.5`` makes the brush strokes smaller.
With no arguments it stylises the default sample pair (Tübingen in the
style of The Starry Night) and says where it wrote the result. Exit status:

* 0 on success;
* 2 on bad input, with a one-line error (no traceback);
* 1 if the run was cut short (interrupted mid-run, non-finite loss, out of
  memory: the best image so far is still written) or the output could not
  be written (the image is then saved in the temp folder instead);
* 130 on Ctrl-C before the optimisation started (nothing to save), the
  shell's convention for an interrupt.
"""

from __future__ import annotations

import argparse
import difflib
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from .animation import check_animation_path, save_animation
from .config import TransferConfig
from .data import DEFAULT_CONTENT, DEFAULT_STYLE, SAMPLES, is_sample_name, list_samples
from .errors import ImageSaveError, NSTError, SettingsError
from .preview import LivePreview
from .pyramid import parse_scales
from .transfer import Progress, TransferResult, stylize

DEFAULTS = TransferConfig()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m nst_helpers",
        description="Neural style transfer (Gatys et al.): paint CONTENT in the style of STYLE.",
        epilog="Offline: NST_WEIGHTS=path/to/state_dict.pth NST_VGG=vgg16 NST_INPUT_NORM=caffe "
        "NST_DATA_DIR=folder/with/samples. See the README.",
    )
    parser.add_argument(
        "content",
        nargs="?",
        default=DEFAULT_CONTENT,
        help=f"content image: sample name, path or URL (default: {DEFAULT_CONTENT})",
    )
    parser.add_argument(
        "style",
        nargs="*",
        default=[DEFAULT_STYLE],
        help=f"style image(s): sample names, paths or URLs; several are blended (default: {DEFAULT_STYLE})",
    )
    parser.add_argument("-o", "--output", help="where to write the result (default: outputs/CONTENT_STYLE.png)")
    parser.add_argument("--size", type=int, default=DEFAULTS.size, help="longest side in px (default: %(default)s)")
    parser.add_argument("--style-size", type=int, default=None, help="longest side of the style image in px")
    parser.add_argument(
        "--style-scale",
        type=float,
        default=None,
        help="style image size relative to the content's (brush-stroke size: 0.5 finer, 2 coarser)",
    )
    parser.add_argument(
        "--scales",
        default=DEFAULTS.scales if isinstance(DEFAULTS.scales, str) else ",".join(map(str, DEFAULTS.scales)),
        metavar="auto|none|S1,S2,...",
        help="coarse to fine: auto (halve down to 128-255 px), none (one size) or the coarser sizes in px "
        "(default: %(default)s); --steps counts the steps of all sizes",
    )
    parser.add_argument("--scale-steps", metavar="N1,N2,...", help="steps per size, coarsest first (sum: the steps)")
    parser.add_argument("--steps", type=int, default=DEFAULTS.steps, help="VGG evaluations (default: %(default)s)")
    parser.add_argument("--optimizer", choices=("lbfgs", "adam"), default=DEFAULTS.optimizer)
    parser.add_argument("--lr", type=float, default=None, help="learning rate (default: 1 for L-BFGS, 0.02 for Adam)")
    parser.add_argument("--content-weight", type=float, default=DEFAULTS.content_weight)
    parser.add_argument("--style-weight", type=float, default=DEFAULTS.style_weight)
    parser.add_argument("--tv-weight", type=float, default=DEFAULTS.tv_weight)
    parser.add_argument("--init", choices=("content", "noise", "style"), default=DEFAULTS.init)
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed)
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: best available)")
    parser.add_argument("--pooling", choices=("max", "avg"), default=DEFAULTS.pooling)
    parser.add_argument("--precision", choices=("fp32", "bf16", "fp16", "auto"), default=DEFAULTS.precision)
    parser.add_argument(
        "--animation",
        metavar="OUT.gif|OUT.mp4",
        help="also write a replay of the run with its loss curve (.mp4 needs ffmpeg)",
    )
    parser.add_argument(
        "--record-every",
        type=int,
        default=None,
        help="with --animation: steps between frames (default: steps/60, at least 1)",
    )
    parser.add_argument(
        "--preserve-colors",
        choices=("luminance", "histogram"),
        default=None,
        help="keep the content's colours: stylise luminance only, or recolour the style first",
    )
    parser.add_argument("--style-blend", metavar="W1,W2,...", help="one weight per style image (default: equal)")
    parser.add_argument(
        "--style-masks", metavar="M1,M2,...", help="one greyscale mask per style image, white = that style"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--list", action="store_true", help="list the sample images and exit")
    return parser


def _stem(source: str) -> str:
    if is_sample_name(source):
        return Path(source).stem
    return Path(source.split("?")[0]).stem or "image"


def _misspelt_sample(source: str) -> str | None:
    """A one-line error for a bare name that is neither a file nor a sample but close to one, else None."""
    if is_sample_name(source) or "://" in source or Path(source).expanduser().exists():
        return None
    if any(separator in source for separator in ("/", "\\")):
        return None  # a path: the image loader's "No such file" message says more
    close = difflib.get_close_matches(Path(source).stem.lower(), sorted(SAMPLES), n=1, cutoff=0.6)
    if not close:
        return None
    return (
        f"No such file or sample image: {source!r}. Did you mean the sample {close[0]!r}? "
        "List the samples with: python -m nst_helpers --list"
    )


def _numbers(text: str | None, option: str) -> tuple[float, ...] | None:
    """``"0.7,0.3"`` → ``(0.7, 0.3)``; None stays None; anything else is a one-line SettingsError."""
    if text is None:
        return None
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise SettingsError(f"{option} takes numbers separated by commas, e.g. 0.7,0.3; got {text!r}.") from None


def _whole_numbers(text: str, option: str) -> tuple[int, ...]:
    """``"240,60"`` → ``(240, 60)``; anything else is a one-line SettingsError."""
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise SettingsError(f"{option} takes whole numbers separated by commas, e.g. 240,60; got {text!r}.") from None


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    previous, warnings.showwarning = warnings.showwarning, _one_line_warning
    try:
        return _run(args)
    finally:
        warnings.showwarning = previous


def _run(args: argparse.Namespace) -> int:
    if args.list:
        list_samples()
        return 0
    for source in (args.content, *args.style):
        problem = _misspelt_sample(source)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 2
    output = Path(args.output or f"outputs/{_stem(args.content)}_{'+'.join(_stem(s) for s in args.style)}.png")
    try:  # before the run: bad numbers, a wrong animation suffix, no ffmpeg
        config, animation = _config(args)
    except NSTError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    callback = None if args.quiet else _saying_the_plan(LivePreview(figure=False, bar=True, title="stylising"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the status is reported below instead
            result = stylize(args.content, list(args.style), config, callback=callback)
    except NSTError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted before the optimisation started; nothing to save.", file=sys.stderr)
        return 130
    return _save(result, output, animation)


def _saying_the_plan(callback: Callable[[Progress], object]) -> Callable[[Progress], object]:
    """``callback``, after printing the run's scales and memory estimate (the first progress's note)."""

    def show(progress: Progress) -> object:
        if progress.note:
            print(progress.note, file=sys.stderr, flush=True)
        return callback(progress)

    return show


def _config(args: argparse.Namespace) -> tuple[TransferConfig, Path | None]:
    """The run's settings and the animation's path (if any); raises NSTError for bad values."""
    animation = check_animation_path(args.animation) if args.animation else None
    record_every = 0
    if animation is not None:
        record_every = args.record_every if args.record_every is not None else max(1, args.steps // 60)
        if record_every < 1:
            raise SettingsError(f"--record-every must be a whole number ≥ 1, got {record_every}.")
    config = TransferConfig(
        size=args.size,
        style_size=args.style_size,
        style_scale=args.style_scale,
        scales=parse_scales(args.scales),
        scale_steps=None if args.scale_steps is None else _whole_numbers(args.scale_steps, "--scale-steps"),
        steps=args.steps,
        optimizer=args.optimizer,
        lr=args.lr,
        content_weight=args.content_weight,
        style_weight=args.style_weight,
        tv_weight=args.tv_weight,
        init=args.init,
        seed=args.seed,
        device=args.device,
        pooling=args.pooling,
        precision=args.precision,
        record_every=record_every,
        preserve_colors=args.preserve_colors,
        style_blend=_numbers(args.style_blend, "--style-blend"),
        style_masks=None if args.style_masks is None else tuple(args.style_masks.split(",")),
    )
    return config, animation


def _save(result: TransferResult, output: Path, animation: Path | None) -> int:
    """Write the picture (elsewhere if ``output`` cannot be written) and the animation; the exit status."""
    try:
        written = result.save(output)
    except ImageSaveError as error:
        fallback = Path(tempfile.gettempdir()) / f"nst_result_{int(time.time())}.png"
        result.save(fallback)
        print(f"error: {error} Saved it to {fallback} instead.", file=sys.stderr)
        return 1
    print(f"{result.summary()}\nwrote {written}")
    if animation is not None:
        try:
            print(f"wrote {save_animation(result, animation)} ({len(result.frames)} frames)")
        except NSTError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    if not result.completed:
        print(f"warning: {result.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
