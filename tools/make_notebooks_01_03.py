"""Write notebooks 01-03 of the tutorial series, stripped of outputs.

The notebooks are generated rather than edited by hand so that their cells,
ids and metadata stay reviewable as plain Python and never carry outputs:

    python tools/make_notebooks_01_03.py          # writes notebooks/01_…, 02_…, 03_…

Edit the cell text here, run the script, then check with
``NST_QUICK=1 pytest --nbval-lax notebooks tests/test_notebooks.py``.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SLUG = "nst-helpers/nst-helpers"  # GitHub owner/repo: the one constant to change when publishing

SETUP = '''\
# Setup: in Colab, install the companion package (Colab already has torch/torchvision; they are kept).
import sys
if "google.colab" in sys.modules:
    %pip install -q "nst-helpers @ git+https://github.com/nst-helpers/nst-helpers"
'''

IMPORTS = '''\
import os
import torch
import matplotlib.pyplot as plt
import nst_helpers as nst

QUICK = os.environ.get("NST_QUICK") == "1"   # set by `make test`: tiny images, few steps
device = nst.pick_device()                    # CUDA → MPS → CPU
SIZE = 96 if QUICK else (512 if device.type == "cuda" else 256)
print(f"device: {device}, quick mode: {QUICK}, image size: {SIZE}")
'''


def md(text: str):
    return ("markdown", text)


def code(text: str):
    return ("code", text)


def title_cell(filename: str, title: str, intro: str):
    badge = (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
             f"(https://colab.research.google.com/github/{SLUG}/blob/main/notebooks/{filename})")
    return md(f"# {title}\n\n{intro.strip()}\n\n{badge}")


def build(filename: str, cells: list, gpu: bool = False) -> None:
    notebook = new_notebook()
    for index, (kind, text) in enumerate(cells):
        text = textwrap.dedent(text).strip("\n")
        cell = new_markdown_cell(text) if kind == "markdown" else new_code_cell(text)
        cell["id"] = str(index)  # the ids nbstripout assigns: the files are a fixed point of the hook
        notebook.cells.append(cell)
    notebook.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    if gpu:  # Colab opens these with a GPU runtime
        notebook.metadata["accelerator"] = "GPU"
        notebook.metadata["colab"] = {"provenance": [], "gpuType": "T4"}
    nbformat.validate(notebook)
    path = NOTEBOOKS / filename
    nbformat.write(notebook, path)
    print(f"wrote {path.relative_to(ROOT)} ({len(cells)} cells)")


# --------------------------------------------------------------------------- 01

NB01 = [
    title_cell("01_loading_images.ipynb", "01 · Loading images", """
        Neural style transfer (Gatys, Ecker & Bethge, *A Neural Algorithm of Artistic Style*)
        starts from two pictures: a **content** photograph and a **style** painting. Before any
        network sees them they have to become tensors of the right shape, size, colour layout and
        value range. This notebook covers where the pictures come from (the sample images, a URL,
        your own upload), how big to make them, how VGG expects its input to be normalised (and how
        to undo it), how to show them, and the pitfalls that silently break many tutorials:
        transparency, greyscale files, phone photos lying on their side and huge images.
    """),
    code(SETUP),
    code("import io\nimport time\n\nfrom PIL import Image\nimport torchvision.transforms.functional as TF\n"
         + IMPORTS),
    md("""
        ## 1. The sample images

        The package keeps a small registry of sample images: the paper's Tübingen photograph
        and *The Starry Night*, a few more paintings and photographs, each with a pinned URL, a
        SHA-256 checksum and its credit line. `nst.list_samples()` prints them;
        `nst.sample_image(name)` returns a local file path, downloading the file once into a
        cache folder (or taking it from the folder named by the `NST_DATA_DIR` environment
        variable, for offline machines).
    """),
    code("""
        samples = nst.list_samples()
        assert {"tubingen", "starry_night"} <= {sample.name for sample in samples}
    """),
    md("""
        `nst.load_image` turns a file (or a URL, bytes, a PIL image …) into the one image format
        used everywhere in the series: a `float32` tensor of shape `[1, 3, H, W]`
        (batch of one, RGB channels, height, width) with values in `[0, 1]`. `max_size` scales the
        longest side to that many pixels. The content photograph is released under CC BY 3.0, so
        its credit line goes wherever it (or a picture made from it) is shown.
    """),
    code("""
        content_path = nst.sample_image("tubingen")
        style_path = nst.sample_image("starry_night")
        content = nst.load_image(content_path, max_size=SIZE)
        style = nst.load_image(style_path, max_size=SIZE)

        print("content:", tuple(content.shape), content.dtype,
              f"values in [{content.min():.2f}, {content.max():.2f}]")
        print("style:  ", tuple(style.shape))
        print("credits:", nst.SAMPLES["tubingen"].credit)
        print("        ", nst.SAMPLES["starry_night"].credit)

        assert content.shape[:2] == (1, 3) and content.dtype == torch.float32
        assert 0.0 <= content.min() and content.max() <= 1.0
        assert max(content.shape[-2:]) == SIZE and max(style.shape[-2:]) == SIZE

        nst.show_images([content, style], titles=["content: Tübingen", "style: The Starry Night"])
        plt.show()
    """),
    md("""
        ## 2. An image from a URL

        `load_image` also accepts an `http(s)://` address. The download is bounded in time
        (20 s) and size (50 MB), and every failure becomes an `nst.ImageLoadError` whose message
        says what happened: no connection, an HTTP error, or a web page instead of a picture (the
        usual mistake: copy the *image* address, not the page's). Catching that one exception type
        lets a notebook fall back to a sample image instead of stopping, for example when it runs
        offline.
    """),
    code("""
        url = ("https://raw.githubusercontent.com/scikit-image/scikit-image/"
               "ee0a7a3ebd9ac8c2602f40e55bc015a3c8a81ae8/src/skimage/data/chelsea.png")
        try:
            from_url = nst.load_image(url, max_size=SIZE)
            print(f"downloaded {url}")
        except nst.ImageLoadError as error:  # offline, blocked, moved ...: the message says which
            print(f"Could not load the URL, so a sample image is used instead.\\n  {error}")
            from_url = nst.load_image(nst.sample_image("chelsea"), max_size=SIZE)

        assert from_url.shape[:2] == (1, 3)
    """),
    md("""
        ## 3. Your own image: upload or local file

        In Colab, `google.colab.files.upload()` opens a file picker and returns
        `{file name: bytes}`. The bytes go straight into `load_image`, with no need to save them
        first. Set `UPLOAD = True` and run the cell again to pick a file (it is off by default so
        that *Run all* does not stop and wait for a file). On your own machine, put a path in
        `my_image_path` instead. With neither, the cell keeps using the content photograph.
    """),
    code("""
        UPLOAD = False      # Colab: True opens a file picker
        my_image_path = ""  # elsewhere: the path of one of your images, e.g. "photos/cat.jpg"

        my_image = content
        if "google.colab" in sys.modules:
            if UPLOAD:
                from google.colab import files

                uploaded = files.upload()  # {file name: bytes}
                if uploaded:
                    name, data = next(iter(uploaded.items()))
                    my_image = nst.load_image(data, max_size=SIZE)
                    print(f"uploaded {name}")
        elif my_image_path:
            my_image = nst.load_image(my_image_path, max_size=SIZE)
            print(f"loaded {my_image_path}")

        print("my image:", tuple(my_image.shape))
        assert my_image.shape[:2] == (1, 3)
    """),
    md("""
        ## 4. Size and aspect ratio

        The optimisation in style transfer changes every pixel, and each step runs VGG forward
        and backward, so time and memory grow with the number of pixels: a 512 px image costs
        about four times as much as a 256 px one. The size also sets the *scale* of the style: the
        network's filters have a fixed size in pixels, so the same painting loaded smaller gives
        coarser brush strokes relative to the picture.

        * `max_size=S` scales the **longest side** to `S` pixels and keeps the aspect ratio.
          This is what you normally want.
        * `size=(height, width)` (or one int for a square) resizes to exactly that shape, which
          squashes or stretches the picture when the ratio differs.

        Content and style images do not need the same shape: the style enters only through Gram
        matrices (notebook 03), whose size depends on the number of channels, not on pixels.
    """),
    code("""
        with Image.open(content_path) as photo:
            original_width, original_height = photo.size

        kept = nst.load_image(content_path, max_size=SIZE)
        squashed = nst.load_image(content_path, size=SIZE)
        print(f"original: {original_width}×{original_height} px (width × height)")
        print(f"max_size={SIZE}: {kept.shape[-1]}×{kept.shape[-2]} px, size={SIZE}: {squashed.shape[-1]}×{squashed.shape[-2]} px")

        longest = max(original_width, original_height)
        assert max(kept.shape[-2:]) == SIZE
        assert abs(kept.shape[-2] - original_height * SIZE / longest) <= 1  # aspect ratio kept (±1 px rounding)
        assert abs(kept.shape[-1] - original_width * SIZE / longest) <= 1
        assert squashed.shape[-2:] == (SIZE, SIZE)

        nst.show_images([kept, squashed], titles=[f"max_size={SIZE}: ratio kept", f"size={SIZE}: squashed"])
        plt.show()
    """),
    md("""
        ## 5. Normalising for VGG

        VGG was trained on ImageNet photographs that were normalised in a fixed way before they
        reached the first convolution, and its weights only make sense for inputs prepared the
        same way. Feed it raw `[0, 1]` values and nothing fails: every activation is merely
        shifted and scaled, and the features (and therefore the losses) get quietly worse. There
        are two conventions, one per family of weights.

        **torchvision** (the VGG19 weights used by default): per RGB channel, subtract the
        ImageNet mean and divide by the standard deviation,
        $x' = (x - \\mu) / \\sigma$ with $\\mu = (0.485, 0.456, 0.406)$ and
        $\\sigma = (0.229, 0.224, 0.225)$. The values end up roughly in $[-2.1, 2.6]$.

        In this package the feature extractor owns the normalisation: you always pass RGB in
        `[0, 1]`, and `model.normalize` is applied inside `model(...)`. That rules out the common
        bug of normalising twice, once in a data transform and again in the model. First, by hand:
    """),
    code("""
        imagenet_mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        imagenet_std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        normalized_by_hand = (content - imagenet_mean) / imagenet_std  # broadcasts over H and W
        print(f"normalised values in [{normalized_by_hand.min():.2f}, {normalized_by_hand.max():.2f}]")
    """),
    md("""
        Now compare with the package. We need an extractor that uses the torchvision convention
        whatever the environment says. The normalisation does not depend on the network's weights,
        so for this one comparison we build the extractor with **random weights**, which are
        created locally in a second, instead of the real ones (a 550 MB download that this
        notebook otherwise does not need). Expect a warning that random weights only suit smoke
        tests: that is all we need here. Random weights are good for
        nothing else: every other notebook uses `nst.load_vgg(device=device)`, which gives the
        real ImageNet weights.
    """),
    code("""
        torchvision_vgg = nst.load_vgg(arch="vgg19", weights="random", input_norm="torchvision")
        print(torchvision_vgg.extra_repr())
        assert torch.allclose(normalized_by_hand, torchvision_vgg.normalize(content), atol=1e-6)
    """),
    md("""
        **Caffe** (the original Oxford VGG weights, which Gatys et al. used, as do many style
        transfer repositories): channels in **BGR** order, values in **0..255**, minus the mean
        pixel $(103.939, 116.779, 123.68)$ given in BGR order, with no division by a standard
        deviation. Using Caffe weights with torchvision's normalisation (or the reverse) raises no
        error; the results are just worse. So the package picks the convention that goes with the
        weights: torchvision for torchvision's files, Caffe for files whose name says "caffe",
        and the `NST_INPUT_NORM` environment variable overrides both.
    """),
    code("""
        caffe_mean_bgr = torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
        caffe_by_hand = content.flip(1) * 255.0 - caffe_mean_bgr  # RGB → BGR, 0..255, minus the mean

        caffe_vgg = nst.load_vgg(arch="vgg19", weights="random", input_norm="caffe")
        assert torch.allclose(caffe_by_hand, caffe_vgg.normalize(content), atol=1e-3)

        print(f"torchvision: values in [{normalized_by_hand.min():7.2f}, {normalized_by_hand.max():7.2f}], "
              f"std {normalized_by_hand.std():.2f}")
        print(f"caffe:       values in [{caffe_by_hand.min():7.2f}, {caffe_by_hand.max():7.2f}], "
              f"std {caffe_by_hand.std():.2f}")
        print(f"ratio of spreads: {caffe_by_hand.std() / normalized_by_hand.std():.0f}×")
    """),
    md("""
        Under the Caffe convention the inputs, and with them every activation in the network,
        are dozens of times larger. Losses built from raw activations inherit that factor (squared,
        or to the fourth power for Gram-based losses), which is one reason why the "style weight"
        differs by many orders of magnitude between tutorials. Notebook 03 measures this.

        ## 6. Back to a picture: the inverse transform

        Undoing the torchvision normalisation is $x = x' \\sigma + \\mu$. To get an 8-bit picture
        back, `nst.to_pil` clamps to `[0, 1]`, multiplies by 255 and rounds, giving a
        `PIL.Image` you can save or display. Loading that picture again returns the tensor up to
        the 8-bit rounding: at most half a grey level, $0.5/255$.
    """),
    code("""
        recovered = normalized_by_hand * imagenet_std + imagenet_mean
        assert torch.allclose(recovered, content, atol=1e-6)

        picture = nst.to_pil(content)
        print(picture.mode, picture.size)
        round_trip = nst.load_image(picture, max_size=None)  # max_size=None: keep the size
        largest_error = (round_trip - content).abs().max().item()
        print(f"largest round-trip error: {largest_error * 255:.2f} grey levels")
        assert round_trip.shape == content.shape
        assert largest_error <= 0.5 / 255 + 1e-6
    """),
    md("""
        ## 7. Showing images

        `nst.show_images` puts tensors (`[1, 3, H, W]` or `[3, H, W]`) and PIL images side by
        side, optionally with titles and a number of columns, and returns the matplotlib figure
        so you can save it (`figure.savefig(...)`).
    """),
    code("""
        figure = nst.show_images([content, picture, from_url, style],
                                 titles=["tensor", "PIL image", "from the URL", "style"], ncols=4, size=3)
        assert len(figure.axes) == 4
        plt.show()
    """),
    md("""
        ## 8. Pitfalls

        ### 8.1 Transparency and greyscale

        A PNG with transparency has **four** channels (RGBA). A greyscale file has **one**. VGG's
        first convolution expects exactly three. The naive `ToTensor` route keeps the extra
        channel, and VGG then stops with a shape error. Slicing off the alpha channel with `[:3]`
        is worse, because it shows whatever colour happens to be stored under fully transparent
        pixels. `load_image` composites transparent pixels over white and repeats a grey channel
        three times. Let us build both kinds of file in memory and check pixel values.
    """),
    code("""
        rgba = Image.new("RGBA", (64, 32), (255, 0, 0, 255))  # opaque red
        rgba.paste((0, 160, 0, 0), (0, 0, 32, 32))             # left half: fully transparent, hidden green
        rgba_png = io.BytesIO()
        rgba.save(rgba_png, format="PNG")

        naive = TF.to_tensor(rgba)
        loaded = nst.load_image(rgba_png.getvalue(), max_size=None)
        print("naive to_tensor:", tuple(naive.shape), " load_image:", tuple(loaded.shape))
        print("a transparent pixel, naive [:3]:", naive[:3, 16, 8].tolist(), " load_image:", loaded[0, :, 16, 8].tolist())

        assert naive.shape[0] == 4 and loaded.shape[1] == 3
        assert torch.allclose(naive[:3, 16, 8], torch.tensor([0.0, 160 / 255, 0.0]))  # the hidden colour
        assert torch.allclose(loaded[0, :, 16, 8], torch.ones(3))                    # white background
        assert torch.allclose(loaded[0, :, 16, 48], torch.tensor([1.0, 0.0, 0.0]))  # opaque red unchanged
    """),
    code("""
        grey = Image.linear_gradient("L").resize((64, 32))  # one channel: a dark-to-light ramp
        grey_png = io.BytesIO()
        grey.save(grey_png, format="PNG")

        loaded_grey = nst.load_image(grey_png.getvalue(), max_size=None)
        print("naive to_tensor:", tuple(TF.to_tensor(grey).shape), " load_image:", tuple(loaded_grey.shape))
        assert TF.to_tensor(grey).shape[0] == 1 and loaded_grey.shape[1] == 3
        assert torch.equal(loaded_grey[:, 0], loaded_grey[:, 1]) and torch.equal(loaded_grey[:, 1], loaded_grey[:, 2])

        nst.show_images([naive[:3], loaded, loaded_grey],
                        titles=["RGBA, alpha dropped", "RGBA over white", "greyscale → RGB"], size=3)
        plt.show()
    """),
    md("""
        ### 8.2 Phone photos lying on their side (EXIF orientation)

        A phone camera stores the pixels the way the sensor read them and writes "rotate by
        90° for display" into the photo's EXIF metadata (the *Orientation* tag, number `0x0112`).
        Photo viewers obey the tag. `PIL.Image.open` does not, so a portrait photo arrives
        sideways, and style transfer then matches the content of a sideways picture.
        `load_image` applies the tag (`PIL.ImageOps.exif_transpose`). To check it, we build a
        JPEG that is stored as a landscape picture, red on top and blue below, tagged with
        orientation 6 ("rotate 90° clockwise to display").
    """),
    code("""
        stored = Image.new("RGB", (96, 48), (0, 0, 255))  # blue ...
        stored.paste((255, 0, 0), (0, 0, 96, 24))          # ... with a red top half
        exif = Image.Exif()
        exif[0x0112] = 6                                   # Orientation: rotate 90° clockwise to display
        phone_jpeg = io.BytesIO()
        stored.save(phone_jpeg, format="JPEG", exif=exif.tobytes())

        with Image.open(io.BytesIO(phone_jpeg.getvalue())) as opened:
            print("PIL.Image.open:", opened.size, "(width, height), orientation tag:", opened.getexif().get(0x0112))
            sideways = TF.to_tensor(opened.convert("RGB"))
        upright = nst.load_image(phone_jpeg.getvalue(), max_size=None)
        print("load_image:    ", tuple(upright.shape), "(…, height, width)")

        assert sideways.shape[-2:] == (48, 96)  # as stored: landscape
        assert upright.shape[-2:] == (96, 48)   # as displayed: portrait
        # Turned clockwise, the stored top (red) becomes the right-hand side.
        assert upright[0, 0, 48, -5] > 0.9 and upright[0, 2, 48, -5] < 0.1
        assert upright[0, 2, 48, 4] > 0.9 and upright[0, 0, 48, 4] < 0.1

        nst.show_images([sideways, upright], titles=["Image.open: as stored", "load_image: as displayed"], size=3)
        plt.show()
    """),
    md("""
        ### 8.3 Very large images

        A 24-megapixel photo as a `float32` tensor takes 24e6 × 3 × 4 bytes ≈ 290 MB, and VGG's
        first layer alone turns it into 64 channels (6 GB), with more for every layer and again as
        much for the backward pass. Always resize first (`max_size`). Decoding a big JPEG at full
        resolution only to throw most of the pixels away is also slow. JPEG can decode directly at
        1/2, 1/4 or 1/8 scale, and `load_image` asks for that (Pillow's `draft`) whenever
        `max_size` is given. We make a large JPEG in memory and compare.
    """),
    code("""
        big_width = 1200 if QUICK else 4000
        big_height = big_width * 3 // 4
        ramp = Image.linear_gradient("L").resize((big_width, big_height))
        grain = Image.effect_noise((big_width, big_height), 20)  # fine detail, as in a real photo
        rings = Image.radial_gradient("L").resize((big_width, big_height))
        big = Image.merge("RGB", (ramp, grain, rings))
        big_jpeg = io.BytesIO()
        big.save(big_jpeg, format="JPEG", quality=90)
        big_bytes = big_jpeg.getvalue()

        start = time.perf_counter()
        with Image.open(io.BytesIO(big_bytes)) as full:
            full.load()  # decode every pixel
            full_size = full.size
        full_seconds = time.perf_counter() - start

        with Image.open(io.BytesIO(big_bytes)) as drafted:
            drafted.draft("RGB", (SIZE, SIZE))  # decode at the smallest scale that is still >= SIZE
            drafted_size = drafted.size

        start = time.perf_counter()
        small = nst.load_image(big_bytes, max_size=SIZE)
        small_seconds = time.perf_counter() - start

        print(f"JPEG: {len(big_bytes) / 1e6:.1f} MB, {full_size[0]}×{full_size[1]} px; "
              f"as float32 [1, 3, H, W]: {full_size[0] * full_size[1] * 3 * 4 / 1e6:.0f} MB")
        print(f"full decode: {full_seconds * 1000:.0f} ms; draft decodes {drafted_size[0]}×{drafted_size[1]} px")
        print(f"load_image(max_size={SIZE}): {small_seconds * 1000:.0f} ms → {tuple(small.shape)}")

        assert max(drafted_size) < max(full_size) and min(drafted_size) >= min(small.shape[-2:])
        assert max(small.shape[-2:]) == SIZE
    """),
    md("""
        A small file can still decode to an enormous picture: a PNG of a single colour
        compresses to almost nothing whatever its size. Pillow therefore refuses to open images
        above `PIL.Image.MAX_IMAGE_PIXELS` (about 89 megapixels; it warns above that limit and
        raises an error above twice the limit), as a guard against such *decompression bombs*.
        `load_image` turns that error into an `ImageLoadError` that says what to do. To see it
        without building a gigantic file, we lower the limit for a moment and load a small
        single-colour PNG.
    """),
    code("""
        blank = Image.new("RGB", (2000, 1000), "white")
        blank_png = io.BytesIO()
        blank.save(blank_png, format="PNG")
        print(f"{blank.width}×{blank.height} px PNG: {len(blank_png.getvalue()) / 1e3:.0f} kB compressed, "
              f"{blank.width * blank.height * 3 / 1e6:.0f} MB decoded")

        default_limit = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = 500_000  # pretend: refuse anything above 2 × 500,000 pixels
        bomb_message = ""
        try:
            nst.load_image(blank_png.getvalue())
        except nst.ImageLoadError as error:
            bomb_message = str(error)
        finally:
            Image.MAX_IMAGE_PIXELS = default_limit  # always restore the real limit
        print(bomb_message)
        assert "bomb" in bomb_message.lower()  # refused, with an explanation
    """),
    md("""
        ## Summary

        * One image format everywhere: `float32` `[1, 3, H, W]`, RGB, values in `[0, 1]`, from
          `nst.load_image`, which takes sample paths (`nst.sample_image`), URLs, uploaded bytes,
          file objects and PIL images.
        * `max_size` keeps the aspect ratio; `size` forces an exact shape. The size sets both the
          cost and the scale of the style.
        * VGG needs its training-time normalisation: torchvision's ImageNet mean and std, or
          Caffe's BGR 0..255 minus the mean pixel. The extractor owns it (`model.normalize`), so
          images stay in `[0, 1]` everywhere else; a mismatch raises no error but gives worse
          features.
        * `nst.to_pil` converts back to an 8-bit picture; the round trip loses at most half a
          grey level.
        * The loader handles transparency (over white), greyscale (three equal channels), EXIF
          orientation, big JPEGs (reduced-scale decoding) and decompression bombs (a clear error).

        ## Exercises

        1. Upload a portrait photo from your phone (section 3) and compare `Image.open` with
           `nst.load_image`. Is it sideways? Print its orientation tag.
        2. Normalise the content image twice (by hand, then with `torchvision_vgg.normalize`) and
           look at the value range. Why would VGG not complain, and what would happen to the
           features?
        3. Time `nst.load_image` on the big JPEG from section 8.3 with `max_size=None` and with
           `max_size=512`. How much of the difference is decoding and how much is resizing?
        4. Load *The Starry Night* with `size=(SIZE, SIZE)` and with `max_size=SIZE`. Which one
           changes the shapes of the brush strokes, and why would that matter for style transfer?
    """),
]

# --------------------------------------------------------------------------- 02

NB02 = [
    title_cell("02_inside_vgg19.ipynb", "02 · Inside VGG19", """
        Gatys et al. describe a picture by the activations it produces in VGG19 (Simonyan &
        Zisserman, 2014), a convolutional network trained to recognise objects in ImageNet. The
        style-transfer losses are built on those activations. This notebook opens the network:
        the layers and their names in the paper, what the feature maps of a photograph look like,
        a subtle bug caused by in-place ReLUs, and how much of the photograph each layer keeps,
        which we find by reconstructing the photo from a single layer's features (the top row of
        the paper's Figure 1).
    """),
    code(SETUP),
    code("from torch import nn\n\n" + IMPORTS),
    md("""
        ## 1. The layers and their names

        `nst.load_vgg(device=device)` returns a `VGGFeatures` module: the convolutional part of
        VGG only (the classifier is not needed), frozen and in evaluation mode. By default this
        is torchvision's ImageNet VGG19 (downloaded once, about 550 MB). Environment variables
        can switch to other weights, e.g. an offline VGG16, which has three convolutions instead
        of four in blocks 3–5. All the layer names used below exist in both.

        The paper names layers by **block** and position: `conv3_1` is the first convolution of
        the third block. A block ends with a 2×2 pooling layer that halves the height and width.
        Every convolution (3×3, padding 1, so the size is kept) is followed by a ReLU with the same
        number (`relu3_1`). The package derives these names by walking the modules, so they match
        torchvision's module indices:
    """),
    code("""
        model = nst.load_vgg(device=device)
        nst.print_layer_map(model)

        names = model.names
        convs = [name for name in names if name.startswith("conv")]
        assert names[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
        assert len(convs) == {"vgg19": 16, "vgg16": 13}[model.arch]
        assert len(set(names)) == len(names)
    """),
    md("""
        The same table condensed to one line per block. The **receptive field** is the size of
        the input patch that one position of a layer can see. Each 3×3 convolution widens it by
        2 × (the current stride), and each pooling layer doubles the stride. Deep layers see large
        parts of the image, and this is why they capture objects and arrangements rather than
        edges.
    """),
    code("""
        rows = nst.layer_table(model)
        receptive_field, jump, blocks = 1, 1, {}
        for row in rows:
            module = model.layers[row["index"]]
            if row["type"] == "Conv2d":
                receptive_field += (module.kernel_size[0] - 1) * jump
            elif row["name"].startswith("pool"):
                receptive_field += (module.kernel_size - 1) * jump
                jump *= module.stride
            block = int(row["name"][4:].split("_")[0]) if not row["name"].startswith("pool") else None
            if block is not None and row["type"] == "Conv2d":
                entry = blocks.setdefault(block, {"convs": 0, "parameters": 0})
                entry["convs"] += 1
                entry["parameters"] += sum(p.numel() for p in module.parameters())
                entry.update(channels=row["channels"], stride=row["stride"], last=row["name"], field=receptive_field)

        print(f"{'block':>5}  {'convs':>5}  {'channels':>8}  {'stride':>6}  {'receptive field':>15}  {'parameters':>10}")
        for block, entry in blocks.items():
            print(f"{block:>5}  {entry['convs']:>5}  {entry['channels']:>8}  {entry['stride']:>6}  "
                  f"{str(entry['field']) + ' px at ' + entry['last']:>15}  {entry['parameters']:>10,}")
        assert [entry["stride"] for entry in blocks.values()] == [1, 2, 4, 8, 16]
        assert [entry["channels"] for entry in blocks.values()] == [64, 128, 256, 512, 512]
    """),
    md("""
        ## 2. Feature maps of the content photograph

        `model(image, layers)` takes an RGB image in `[0, 1]` (the model normalises it itself)
        and returns a dictionary `{layer name: features}`, running the network only as deep as the
        deepest layer requested. The features of one layer have shape `[1, C, H / s, W / s]`: $C$
        channels ("feature maps"), each a picture of where one filter responds, at stride $s$.
    """),
    code("""
        content = nst.load_image(nst.sample_image("tubingen"), max_size=SIZE).to(device)
        first_convs = ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"]
        with torch.no_grad():
            features = model(content, first_convs)

        for block, name in enumerate(first_convs):
            print(f"{name}: {tuple(features[name].shape)}")
            expected = (content.shape[-2] // 2**block, content.shape[-1] // 2**block)
            assert features[name].shape[-2:] == expected
    """),
    md("""
        The first 16 channels of each layer, each scaled to its own range (bright = strong
        response). At `conv1_1` the maps are colour and edge detectors and still look like the
        photograph. Each block halves the resolution, and every position summarises a larger patch
        (the receptive fields above). By `conv5_1` a channel responds to whole parts of the scene,
        and the picture itself is no longer readable.
    """),
    code("""
        nst.show_images(content.cpu(), titles=["content"], size=3)
        plt.show()
        for name in first_convs:
            maps = features[name]
            nst.plot_feature_maps(maps, count=16, ncols=8,
                                  title=f"{name}: {maps.shape[1]} channels of {maps.shape[2]}×{maps.shape[3]}")
            plt.show()
    """),
    md("""
        ## 3. What an in-place ReLU does to a stored "conv" feature

        torchvision builds VGG with `nn.ReLU(inplace=True)`, which saves memory by writing
        $\\max(0, x)$ into the convolution's output tensor instead of a new one. Any reference you
        kept to that output, from a forward hook or a loop that stores `x` after the conv, now
        points to the *ReLU's* result. Code that believes it uses `conv4_2` really uses `relu4_2`,
        and nothing warns you. A two-layer network shows it:
    """),
    code("""
        torch.manual_seed(0)
        conv = nn.Conv2d(3, 4, kernel_size=3, padding=1)
        stored = {}
        conv.register_forward_hook(lambda module, inputs, output: stored.update(conv=output))
        tiny_input = torch.rand(1, 3, 8, 8)

        with torch.no_grad():
            safe_out = nn.Sequential(conv, nn.ReLU(inplace=False))(tiny_input)
            print(f"inplace=False: stored conv output min {stored['conv'].min():+.3f}")
            assert stored["conv"].min() < 0  # a convolution's output has negative values

            inplace_out = nn.Sequential(conv, nn.ReLU(inplace=True))(tiny_input)
            print(f"inplace=True:  stored conv output min {stored['conv'].min():+.3f}")
            assert stored["conv"].min() >= 0                          # the negatives are gone:
            assert stored["conv"].data_ptr() == inplace_out.data_ptr()  # it *is* the ReLU's output
            assert torch.equal(stored["conv"], safe_out)
    """),
    md("""
        The package rebuilds every ReLU with `inplace=False`, so a stored `conv*` feature stays
        the convolution's output (with negative values) and `relu*` is exactly its positive part.

        The Caffe code used for the paper also ran its ReLUs in place, so the paper's "conv4_2"
        in effect meant the output after the ReLU. The package asks for the layer that is actually
        computed: its defaults are `relu4_2` for content and `relu1_1 … relu5_1` for style.
    """),
    code("""
        with torch.no_grad():
            pairs = model(content, ["conv1_1", "relu1_1", "conv4_2", "relu4_2"])
        for conv_name, relu_name in (("conv1_1", "relu1_1"), ("conv4_2", "relu4_2")):
            conv_out, relu_out = pairs[conv_name], pairs[relu_name]
            print(f"{conv_name}: min {conv_out.min():9.2f}, {(conv_out < 0).float().mean():.0%} negative; "
                  f"{relu_name}: min {relu_out.min():.2f}")
            assert conv_out.min() < 0
            assert torch.equal(relu_out, conv_out.clamp(min=0))
    """),
    md("""
        ## 4. What each layer keeps: content reconstructions

        How much of the photograph does one layer remember? Following the paper (Figure 1, top
        row), start from white noise and change its pixels by gradient descent until its features
        at one layer match the photograph's: minimise the content loss at that layer alone. What
        comes out is the information that layer keeps.

        `nst.stylize` does exactly this when the style term is switched off: `style_weight=0`
        with no style layers, `init="noise"`, and one content layer. (The content loss here is
        *relative*, $\\|F - P\\|^2 / \\|P\\|^2$: 1 for all-zero features, 0 at a perfect match;
        notebook 03 explains why.) Both images are passed as the same tensor, so the result has
        the photograph's size. Reconstructing from deep layers takes many steps, so the runs are
        short in quick mode.
    """),
    code("""
        RECON_SIZE = 48 if QUICK else SIZE
        RECON_STEPS = 15 if QUICK else (300 if device.type == "cuda" else 150)
        reconstruction_layers = ["relu1_2", "relu2_2", "relu3_2", "relu4_2", "relu5_2"]
        photo = nst.load_image(nst.sample_image("tubingen"), max_size=RECON_SIZE)

        reconstructions = {}
        for layer in reconstruction_layers:
            result = nst.stylize(photo, photo, model=model, init="noise", content_layers=(layer,),
                                 style_layers={}, style_weight=0.0, steps=RECON_STEPS)
            reconstructions[layer] = result
            content_history = result.history["content"]
            print(f"{layer}: content loss {content_history[0]:.3f} → {content_history[-1]:.4f} "
                  f"in {result.steps} steps ({result.seconds:.1f} s)")
            assert result.completed and content_history[-1] < content_history[0]
    """),
    code("""
        nst.show_images([photo] + [result.image for result in reconstructions.values()],
                        titles=["photograph"] + [f"from {layer}" for layer in reconstructions], size=2.6)
        plt.show()
        nst.plot_losses({layer: result.history["content"] for layer, result in reconstructions.items()},
                        title="Relative content loss while reconstructing")
        plt.show()
    """),
    md("""
        As in the paper, the lower layers reproduce the photograph almost exactly, pixel colours
        included. Going deeper, the arrangement of the scene (the houses, the river, the skyline)
        stays, while exact colours and fine texture are lost, leaving patterns that several
        pictures would share. That is why a deep layer (`relu4_2`) serves as the *content*
        representation: matching it keeps the layout and leaves the painterly details free for the
        style loss. Deep layers also need many more steps: after a short run the reconstructions
        from `relu4_2` and `relu5_2` are still mostly noise.

        ## Summary

        * VGG's convolutional part is five blocks of 3×3 convolutions + ReLU, each ending in a
          2×2 pooling layer; the paper's names (`conv3_1`, `relu3_1`, `pool3`) follow that
          structure, and `nst.print_layer_map` / `nst.layer_table` list them.
        * `model(image, layers)` returns `{name: [1, C, H/s, W/s]}`. Deeper layers have more
          channels, lower resolution, larger receptive fields and more abstract responses.
        * In-place ReLUs overwrite stored conv outputs. The package's extractor keeps them apart,
          `relu = conv.clamp(min=0)`.
        * Reconstructing from white noise shows what a layer keeps: low layers keep pixels, high
          layers keep the arrangement of objects. This is the content representation.

        ## Exercises

        1. The paper's Figure 1 reconstructs from `conv1_1 … conv5_1`, before the ReLUs. Run the
           reconstructions from those layers and compare them with the `relu*_2` results.
        2. Load the network with average pooling (`nst.load_vgg(device=device, pooling="avg")`,
           which the paper suggests) and pass `model=` and `pooling="avg"` to `nst.stylize`.
           Do the `relu5_2` reconstructions change?
        3. Plot the feature maps of *The Starry Night* at `conv2_1` and `conv4_1`. Which
           channels respond to the swirling brush strokes?
        4. Using the receptive fields from section 1, explain why a reconstruction from
           `relu5_2` cannot place details more precisely than a few dozen pixels.
    """),
]

# --------------------------------------------------------------------------- 03

NB03 = [
    title_cell("03_gram_matrices.ipynb", "03 · Gram matrices", """
        Gatys et al. describe the *style* of a picture by the correlations between the feature
        maps of a layer, the Gram matrix $G^l_{ij} = \\sum_k F^l_{ik} F^l_{jk}$: how strongly
        channels $i$ and $j$ fire together, summed over all positions $k$. This notebook computes
        it by hand and with the package, draws it, shows why it keeps texture and throws away
        layout, reconstructs a style from white noise with more and more layers (the bottom row of
        the paper's Figure 1), and measures how normalisation choices change what a "style
        weight" means.
    """),
    code(SETUP),
    code(IMPORTS),
    md("""
        ## 1. Features of the style and content images

        As in notebook 02: the extractor from `nst.load_vgg`, the two sample images, and their
        features at the paper's five style layers `relu1_1 … relu5_1`.
    """),
    code("""
        model = nst.load_vgg(device=device)
        style = nst.load_image(nst.sample_image("starry_night"), max_size=SIZE).to(device)
        content = nst.load_image(nst.sample_image("tubingen"), max_size=SIZE).to(device)
        style_layers = list(nst.DEFAULT_STYLE_LAYERS)  # the paper's five layers, weight 1/5 each
        with torch.no_grad():
            style_features = model(style, style_layers)
            content_features = model(content, style_layers)

        features = style_features["relu2_1"]
        batch, channels, height, width = features.shape
        print(f"relu2_1 of the style image: {tuple(features.shape)}")
        print(style_layers)
    """),
    md("""
        ## 2. A Gram matrix by hand

        In the paper's notation a layer has $N_l$ channels of $M_l$ positions each. Flatten the
        features into the $N_l \\times M_l$ matrix $F$ (one row per channel) and multiply it by
        its transpose: $G = F F^\\top$, an $N_l \\times N_l$ matrix. Entry $G_{ij}$ is large when
        channels $i$ and $j$ are active at the same places; the diagonal $G_{ii}$ is the energy
        of channel $i$.

        `nst.gram_matrix` also divides by $N_l M_l$ (= C·H·W), so that its entries are averages
        that do not grow with the image size (`normalize=False` gives the plain sum). It takes a
        batch `[B, C, H, W]` and returns `[B, C, C]`. `torch.einsum` expresses the same sum
        without any reshaping.
    """),
    code("""
        flat = features.reshape(channels, height * width)          # F: N_l × M_l
        gram_by_hand = flat @ flat.T / (channels * height * width)  # N_l × N_l
        gram_einsum = torch.einsum("bchw,bdhw->bcd", features, features) / (channels * height * width)
        gram_package = nst.gram_matrix(features)                    # [1, N_l, N_l]
        print(f"Gram matrix: {tuple(gram_package.shape)}")

        scale = gram_package.abs().max()  # compare relative to the largest entry
        assert gram_package.shape == (1, channels, channels)
        assert torch.allclose(gram_by_hand / scale, gram_package[0] / scale, atol=1e-5)
        assert torch.allclose(gram_einsum / scale, gram_package / scale, atol=1e-5)
        unnormalized = nst.gram_matrix(features, normalize=False)[0]
        assert torch.allclose(unnormalized / (channels * height * width) / scale, gram_package[0] / scale, atol=1e-5)
        assert torch.allclose(gram_package[0], gram_package[0].T)  # symmetric
    """),
    md("""
        ## 3. What Gram matrices look like

        The first 64 channels of `relu2_1` for the painting and for the photograph. The two
        images activate different sets of channels, and different pairs together, and this is
        the difference the style loss measures.
    """),
    code("""
        figure, axes = plt.subplots(1, 2, figsize=(10, 4))
        nst.plot_gram(nst.gram_matrix(style_features["relu2_1"]), title="The Starry Night, relu2_1", ax=axes[0])
        nst.plot_gram(nst.gram_matrix(content_features["relu2_1"]), title="Tübingen, relu2_1", ax=axes[1])
        figure.tight_layout()
        plt.show()

        for name in style_layers:
            difference = nst.layer_style_loss(nst.gram_matrix(content_features[name]),
                                              nst.gram_matrix(style_features[name]))
            print(f"{name}: relative Gram difference photo vs painting {difference:.3f}")
    """),
    md("""
        ## 4. Why Gram matrices capture texture and discard layout

        $G_{ij} = \\sum_k F_{ik} F_{jk}$ sums over positions $k$, and a sum does not depend on the
        order of its terms. So if we **shuffle the positions** of a feature map, moving every
        column of $F$ somewhere else, the Gram matrix does not change at all, although the
        arrangement is destroyed, as the content loss (which compares position by position) shows.
        What survives is *which features occur, and which occur together*. Because each feature
        describes a whole patch of the image (its receptive field), this is a description of local
        texture: brush strokes, colours, repeated motifs, with no record of where they are.
    """),
    code("""
        generator = torch.Generator().manual_seed(0)
        permutation = torch.randperm(height * width, generator=generator).to(features.device)
        shuffled = features.reshape(1, channels, height * width)[:, :, permutation].reshape(features.shape)

        gram_shuffled = nst.gram_matrix(shuffled)
        content_change = nst.content_loss(shuffled, features).item()
        style_change = nst.layer_style_loss(gram_shuffled, gram_package).item()
        print(f"after shuffling the positions: relative content loss {content_change:.3f}, "
              f"relative Gram difference {style_change:.1e}")
        assert torch.allclose(gram_shuffled / scale, gram_package / scale, atol=1e-5)
        assert content_change > 0.5 and style_change < 1e-6

        channel = int(features[0].flatten(1).var(dim=1).argmax())  # the most varied channel, for the picture
        figure, axes = plt.subplots(1, 2, figsize=(8, 3.2))
        for axis, maps, label in ((axes[0], features, "as computed"), (axes[1], shuffled, "positions shuffled")):
            axis.imshow(maps[0, channel].cpu(), cmap="viridis")
            axis.set_title(f"relu2_1, channel {channel}: {label}")
            axis.axis("off")
        figure.tight_layout()
        plt.show()
    """),
    md("""
        ## 5. Style reconstructions with more and more layers

        The bottom row of the paper's Figure 1: start from white noise and change the pixels until
        their Gram matrices match the painting's, using only `relu1_1`, then `relu1_1` and
        `relu2_1`, and so on up to all five layers. With `content_weight=0` the content term is
        off, and `nst.stylize` optimises the style loss
        $\\sum_l w_l \\, \\|G^l - A^l\\|^2 / \\|A^l\\|^2$ with equal weights $w_l$. The painting
        is passed as both images, so the result has its size.
    """),
    code("""
        RECON_SIZE = 48 if QUICK else SIZE
        RECON_STEPS = 15 if QUICK else (300 if device.type == "cuda" else 150)
        painting = nst.load_image(nst.sample_image("starry_night"), max_size=RECON_SIZE)

        layer_sets = [style_layers[: count] for count in range(1, len(style_layers) + 1)]
        style_reconstructions = []
        for layers in layer_sets:
            result = nst.stylize(painting, painting, model=model, init="noise", content_weight=0.0,
                                 style_layers={name: 1 / len(layers) for name in layers}, steps=RECON_STEPS)
            style_reconstructions.append(result)
            style_history = result.history["style"]
            print(f"{' + '.join(layers)}: style loss {style_history[0]:.3f} → {style_history[-1]:.4f} "
                  f"({result.seconds:.1f} s)")
            assert result.completed and style_history[-1] < style_history[0]
    """),
    code("""
        titles = ["painting"] + [layers[0] if len(layers) == 1 else f"{layers[0]} … {layers[-1]}"
                                 for layers in layer_sets]
        nst.show_images([painting] + [result.image for result in style_reconstructions], titles=titles, size=2.6)
        plt.show()
    """),
    md("""
        With `relu1_1` alone the result has the painting's colours, and little else; its features
        see 3×3 pixels. Each added layer matches correlations over larger patches, and the
        reconstruction gains the painting's strokes, then its swirls, at ever larger scales. The
        layout is never reproduced: the swirls appear in different places, because no Gram matrix
        records where anything is. The deeper sets need more steps than the shallow ones: after a
        short run they are still noisy.

        ## 6. Normalisation, and what a "style weight" means

        The paper minimises $\\alpha L_{content} + \\beta L_{style}$ with the raw losses
        $L_{content} = \\tfrac12 \\sum (F - P)^2$ (Eq. 1) and
        $E_l = \\frac{1}{4 N_l^2 M_l^2} \\sum_{ij} (G_{ij} - A_{ij})^2$ (Eq. 4), and reports
        ratios $\\alpha/\\beta$ of $10^{-3}$ to $10^{-4}$. Those numbers only mean something for
        the same network, input convention, image size and Gram normalisation. In particular:

        * **activation scale**: Caffe-convention inputs (0..255) make the activations far
          larger than torchvision's normalised inputs (notebook 01). Scaling features by $s$
          scales the content loss by $s^2$, the Gram matrices by $s^2$ and $E_l$ by $s^4$;
        * **image size**: sums over positions grow with the number of positions $M$, and a Gram
          matrix that is not divided by $M$ grows with it, so its squared error grows with $M^2$;
        * **layers**: the $E_l$ of different layers differ by orders of magnitude, so equal
          weights $w_l$ do not give the layers equal influence.

        This is why published style weights range from about 1 to $10^6$ and more. The package
        uses **relative** losses instead: $\\|F - P\\|^2 / \\|P\\|^2$ and
        $\\|G - A\\|^2 / \\|A\\|^2$, which are 1 for all-zero features and 0 at a perfect match, do
        not change at all when the features are scaled, and change little with the image size.
        The table compares the losses at the start of a run from white noise at two image sizes,
        and with the activations multiplied by 100 (about the gap between the Caffe and
        torchvision conventions).
    """),
    code("""
        content_layer = "relu4_2"
        weights = nst.DEFAULT_STYLE_LAYERS


        def features_at(size):
            \"\"\"Features of white noise (the starting image), the photo and the painting at one size.\"\"\"
            photo = nst.load_image(nst.sample_image("tubingen"), max_size=size).to(device)
            art = nst.load_image(nst.sample_image("starry_night"), max_size=size).to(device)
            noise = torch.rand(photo.shape, generator=torch.Generator().manual_seed(0)).to(device)
            with torch.no_grad():
                return [model(image, style_layers + [content_layer]) for image in (noise, photo, art)]


        def loss_magnitudes(noise_features, photo_features, art_features, activation_scale=1.0):
            \"\"\"Content and style losses of the noise image, raw (paper) and relative, in float64.\"\"\"
            noise_f, photo_f, art_f = ({name: activation_scale * value.double() for name, value in f.items()}
                                       for f in (noise_features, photo_features, art_features))
            target_grams = {name: nst.gram_matrix(art_f[name]).double() for name in style_layers}
            unnormalized = sum(
                weight * (nst.gram_matrix(noise_f[name], normalize=False).double()
                          - nst.gram_matrix(art_f[name], normalize=False).double()).square().sum()
                for name, weight in weights.items())
            return {
                "content Eq.1": nst.content_loss(noise_f[content_layer], photo_f[content_layer], relative=False).item(),
                "content rel.": nst.content_loss(noise_f[content_layer], photo_f[content_layer]).item(),
                "style ΣΣ(G−A)²": unnormalized.item(),
                "style Eq.4-5": nst.style_loss(noise_f, target_grams, weights, relative=False).item(),
                "style rel.": nst.style_loss(noise_f, target_grams, weights).item(),
            }


        base_features, double_features = features_at(SIZE), features_at(2 * SIZE)
        table = {
            f"{SIZE} px": loss_magnitudes(*base_features),
            f"{2 * SIZE} px": loss_magnitudes(*double_features),
            f"{SIZE} px, activations ×100": loss_magnitudes(*base_features, activation_scale=100.0),
        }
        columns = list(next(iter(table.values())))
        print(f"{'':<28}" + "".join(f"{column:>16}" for column in columns))
        for setting, values in table.items():
            print(f"{setting:<28}" + "".join(f"{values[column]:>16.3g}" for column in columns))
    """),
    md("""
        Read the table by columns. The raw losses jump by orders of magnitude between rows, so a
        weight tuned for one row is wrong by the same factor for another; the relative losses stay
        put. The asserts state the expected factors:
    """),
    code("""
        base, bigger, scaled = table.values()
        ratio = {column: {"size ×2": bigger[column] / base[column], "activations ×100": scaled[column] / base[column]}
                 for column in columns}
        for column, factors in ratio.items():
            print(f"{column:<16} size ×2: {factors['size ×2']:>10.3g}×   activations ×100: {factors['activations ×100']:>10.3g}×")

        assert abs(ratio["content Eq.1"]["activations ×100"] / 1e4 - 1) < 1e-6  # s²
        assert abs(ratio["style Eq.4-5"]["activations ×100"] / 1e8 - 1) < 1e-6  # s⁴
        assert abs(ratio["content rel."]["activations ×100"] - 1) < 1e-6        # unchanged
        assert abs(ratio["style rel."]["activations ×100"] - 1) < 1e-6
        assert ratio["content Eq.1"]["size ×2"] > 2                              # ~4× the positions
        assert ratio["style ΣΣ(G−A)²"]["size ×2"] > 8                            # ~M²
        assert 0.5 < ratio["content rel."]["size ×2"] < 2 and 0.5 < ratio["style rel."]["size ×2"] < 2
    """),
    md("""
        The paper's $E_l$ already divides by $N_l^2 M_l^2$, so it varies less with the image size
        than the unnormalised sum does, but it still varies enormously from layer to layer:
    """),
    code("""
        noise_features, photo_features, art_features = base_features
        print(f"{'layer':<8} {'E_l (Eq. 4)':>12} {'relative':>10}")
        raw_per_layer = {}
        for name in style_layers:
            gram, target = nst.gram_matrix(noise_features[name]), nst.gram_matrix(art_features[name])
            raw_per_layer[name] = nst.layer_style_loss(gram, target, relative=False).item()
            print(f"{name:<8} {raw_per_layer[name]:>12.3g} {nst.layer_style_loss(gram, target).item():>10.3f}")
        print(f"largest / smallest E_l: {max(raw_per_layer.values()) / min(raw_per_layer.values()):.0f}×")
    """),
    md("""
        So with the paper's raw losses, "$w_l = 1/5$ on each layer" really lets one or two layers
        dominate, and $\\beta$ has to be retuned whenever the network, its input convention or the
        image size changes. With relative losses the layers start within a factor of a few of each
        other (1 would mean all-zero features; white noise overshoots the painting's Gram matrices
        somewhat), and the package's default `style_weight=10` means the same thing with
        torchvision's VGG19, the
        Caffe-convention VGG16 and any image size. The optimisation problem is the same family
        (each term is the paper's loss times a constant fixed by the targets); only the scale of
        $\\alpha$ and $\\beta$ changes.

        ## Summary

        * The Gram matrix $G = F F^\\top$ of a layer's flattened features ($N_l \\times M_l$)
          records which channels fire together. `nst.gram_matrix` divides by $N_l M_l$ and equals
          `reshape` + `@` or `torch.einsum("bchw,bdhw->bcd", ...)` divided by C·H·W.
        * It sums over positions, so shuffling positions leaves it unchanged: it keeps texture
          statistics and discards layout.
        * Matching Gram matrices from white noise reproduces a painting's texture, at larger and
          larger scales as deeper layers are added (Figure 1, bottom row).
        * Raw losses scale with the activations ($s^2$, $s^4$), the image size and the layer, so
          style weights do not carry over between setups. Relative losses are scale-free, and the
          package uses them.

        ## Exercises

        1. Use centred features (subtract each channel's mean before the product, a covariance
           matrix) and repeat the style reconstruction with all five layers. What changes?
        2. Reconstruct the style with all five layers but weights concentrated on the deep ones,
           e.g. `{"relu1_1": 0.05, …, "relu5_1": 0.5}`.
        3. Load the painting at half and at double `RECON_SIZE` and reconstruct its style at the
           same output size. How does the size of the brush strokes change, and why?
        4. Flip the style image horizontally and compare the Gram matrices before and after. They
           are close but not identical; why, given section 4?
    """),
]


def main() -> None:
    build("01_loading_images.ipynb", NB01)
    build("02_inside_vgg19.ipynb", NB02, gpu=True)
    build("03_gram_matrices.ipynb", NB03, gpu=True)


if __name__ == "__main__":
    main()
