"""nst_helpers: the companion package of the neural style transfer tutorial series.

Gatys, Ecker & Bethge, "A Neural Algorithm of Artistic Style" (2015), in
PyTorch: images, VGG features with the paper's layer names, the losses, the
optimisation loop, live preview and plots.
"""

from .animation import ReplayRenderer, save_animation
from .colors import combine_luminance, luminance, match_color_histogram, match_luminance, rgb_to_yiq, yiq_to_rgb
from .config import DEFAULT_STYLE_LAYERS, TransferConfig
from .data import DEFAULT_CONTENT, DEFAULT_STYLE, SAMPLES, SampleImage, list_samples, sample_image
from .devices import native_bf16, pick_device
from .errors import ImageLoadError, ImageSaveError, NSTError, SettingsError, WeightsError
from .frames import Frame, FrameBuffer
from .images import load_image, save_image, show_images, to_pil
from .losses import content_loss, gram_matrix, layer_style_loss, style_loss, tv_loss
from .masks import brightness_masks, layer_mask, load_mask, masked_gram_matrix, split_masks
from .memory import MemoryModel, estimate_memory
from .objective import Objective
from .paper import (
    PAPER_LAYERS,
    PAPER_RATIOS,
    PaperFigure,
    paper_figure1,
    paper_figure2,
    paper_figure3,
    paper_layers,
    raw_loss_weights,
    relative_style_weight,
)
from .plots import plot_feature_maps, plot_gram, plot_losses
from .preview import LivePreview, ProgressFigure, WidgetPreview, draw_progress, in_notebook, png_bytes
from .recorder import Recorder
from .speed import SpeedOptions, resolve_speed
from .transfer import Progress, TransferResult, stylize
from .vgg import VGGFeatures, layer_names, layer_table, print_layer_map
from .weights import load_vgg

__version__ = "0.1.0"

__all__ = [
    "brightness_masks",
    "combine_luminance",
    "layer_mask",
    "load_mask",
    "luminance",
    "masked_gram_matrix",
    "match_color_histogram",
    "match_luminance",
    "rgb_to_yiq",
    "split_masks",
    "yiq_to_rgb",
    "DEFAULT_CONTENT",
    "DEFAULT_STYLE",
    "DEFAULT_STYLE_LAYERS",
    "Frame",
    "FrameBuffer",
    "SAMPLES",
    "ImageLoadError",
    "ImageSaveError",
    "LivePreview",
    "ProgressFigure",
    "MemoryModel",
    "NSTError",
    "Objective",
    "PAPER_LAYERS",
    "PAPER_RATIOS",
    "PaperFigure",
    "Progress",
    "Recorder",
    "ReplayRenderer",
    "SampleImage",
    "SettingsError",
    "SpeedOptions",
    "TransferConfig",
    "TransferResult",
    "VGGFeatures",
    "WeightsError",
    "WidgetPreview",
    "content_loss",
    "draw_progress",
    "estimate_memory",
    "gram_matrix",
    "in_notebook",
    "layer_names",
    "layer_style_loss",
    "layer_table",
    "list_samples",
    "load_image",
    "load_vgg",
    "native_bf16",
    "paper_figure1",
    "paper_figure2",
    "paper_figure3",
    "paper_layers",
    "pick_device",
    "plot_feature_maps",
    "plot_gram",
    "plot_losses",
    "png_bytes",
    "print_layer_map",
    "raw_loss_weights",
    "relative_style_weight",
    "resolve_speed",
    "sample_image",
    "save_animation",
    "save_image",
    "show_images",
    "style_loss",
    "stylize",
    "to_pil",
    "tv_loss",
]
