"""nst_helpers: the companion package of the neural style transfer tutorial series.

Gatys, Ecker & Bethge, "A Neural Algorithm of Artistic Style" (2015), in
PyTorch: images, VGG features with the paper's layer names, the losses, the
optimisation loop, live preview and plots.
"""

from .data import DEFAULT_CONTENT, DEFAULT_STYLE, SAMPLES, SampleImage, list_samples, sample_image
from .errors import ImageLoadError, ImageSaveError, NSTError, SettingsError, WeightsError
from .images import load_image, save_image, show_images, to_pil
from .losses import content_loss, gram_matrix, layer_style_loss, style_loss, tv_loss
from .plots import compare, plot_feature_maps, plot_gram, plot_losses
from .preview import LivePreview, in_notebook
from .transfer import (
    DEFAULT_STYLE_LAYERS,
    Objective,
    Progress,
    TransferConfig,
    TransferResult,
    estimate_memory,
    native_bf16,
    pick_device,
    stylize,
)
from .vgg import VGGFeatures, layer_names, layer_table, load_vgg, print_layer_map

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_CONTENT",
    "DEFAULT_STYLE",
    "DEFAULT_STYLE_LAYERS",
    "SAMPLES",
    "ImageLoadError",
    "ImageSaveError",
    "LivePreview",
    "NSTError",
    "Objective",
    "Progress",
    "SampleImage",
    "SettingsError",
    "TransferConfig",
    "TransferResult",
    "VGGFeatures",
    "WeightsError",
    "compare",
    "content_loss",
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
    "pick_device",
    "plot_feature_maps",
    "plot_gram",
    "plot_losses",
    "print_layer_map",
    "sample_image",
    "save_image",
    "show_images",
    "style_loss",
    "stylize",
    "to_pil",
    "tv_loss",
]
