"""Registry of the sample images used in the notebooks.

Images are referred to by a pinned URL and their sha256; nothing is shipped
in the package. :func:`sample_image` returns a local path, taken from the
folder named by ``NST_DATA_DIR`` when that folder has the file, otherwise
downloaded once into a cache folder (torch.hub's download helper, sha256
checked).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch

from .errors import ImageLoadError

__all__ = [
    "SampleImage",
    "SAMPLES",
    "DEFAULT_CONTENT",
    "DEFAULT_STYLE",
    "PD_ART",
    "find_sample",
    "sample_image",
    "list_samples",
    "sample_cache_dir",
    "is_sample_name",
]

DATA_DIR_VARIABLE = "NST_DATA_DIR"


@dataclass(frozen=True)
class SampleImage:
    """One sample image: where it comes from and who made it."""

    name: str  #: short name used in code, e.g. ``"starry_night"``
    filename: str  #: file name in ``NST_DATA_DIR`` and in the cache
    role: str  #: ``"style"`` (a painting) or ``"content"`` (a photograph)
    title: str
    author: str
    year: str
    license: str
    url: str  #: pinned raw URL (a fixed commit, so the bytes never change)
    sha256: str  #: SHA-256 of the file's bytes

    @property
    def credit(self) -> str:
        """One-line attribution to show next to the image or anything made from it."""
        return f"{self.title}, {self.author} ({self.year}). {self.license}."


#: Licence of the paintings: photographs of public-domain 2D artworks are public domain too.
PD_ART = "Public domain (faithful photographic reproduction of a 2D public-domain artwork; PD-Art)"

SAMPLES: dict[str, SampleImage] = {
    sample.name: sample
    for sample in (
        SampleImage(
            name="starry_night",
            filename="starry_night.jpg",
            role="style",
            year="1889",
            title="The Starry Night",
            author="Vincent van Gogh (1853-1890)",
            license=PD_ART,
            url="https://raw.githubusercontent.com/leongatys/PytorchNeuralStyleTransfer/be6c8e2b35568669a5a0ac10b66c912207ad355d/Images/vangogh_starry_night.jpg",
            sha256="228bebf0dd424ea4f740d8d88a67f2960424c166e638086c1ec529260d2e3832",
        ),
        SampleImage(
            name="great_wave",
            filename="great_wave.jpg",
            role="style",
            year="c. 1830-1832",
            title="The Great Wave off Kanagawa (woodblock print)",
            author="Katsushika Hokusai (1760-1849)",
            license=PD_ART,
            url="https://raw.githubusercontent.com/oumi-ai/oumi/d8ed07778d7931565798ad45a859cafb54d4fc58/tests/testdata/images/the_great_wave_off_kanagawa.jpg",
            sha256="b135badbf60ec9d0ad36faa139de6b18a86ec9c81648103c6b5caa999abc02b6",
        ),
        SampleImage(
            name="turner_shipwreck",
            filename="turner_shipwreck.jpg",
            role="style",
            year="c. 1810",
            title="The Wreck of a Transport Ship (a.k.a. The Shipwreck of the Minotaur)",
            author="J. M. W. Turner (1775-1851)",
            license=PD_ART,
            url="https://raw.githubusercontent.com/jcjohnson/neural-style/07c4b8299f8fbdafec0c514fc820ff1d7ff62e46/examples/inputs/shipwreck.jpg",
            sha256="4f7cf34e3cd4a5daaf3f421f059ca9a01aaa2a3afd7243d6670c9c8bc001a213",
        ),
        SampleImage(
            name="monet_san_giorgio",
            filename="monet_san_giorgio.jpg",
            role="style",
            year="1908-1912",
            title="San Giorgio Maggiore at Dusk",
            author="Claude Monet (1840-1926)",
            license=PD_ART,
            url="https://raw.githubusercontent.com/hi-space/image-style-transfer/9de6e1ffc1358098abc7e3c1c6cd55ea3827b362/image/monet-san_giorgio_maggiore_at_dusk.jpg",
            sha256="ad042ac7901946b6d4781978b3d04dd16f1cf9c01dd38a743c0de854df23c554",
        ),
        SampleImage(
            name="gauguin_te_fare",
            filename="gauguin_te_fare.jpg",
            role="style",
            year="1892",
            title="Te Fare (La Maison) (cropped reproduction)",
            author="Paul Gauguin (1848-1903)",
            license=PD_ART,
            url="https://raw.githubusercontent.com/hi-space/image-style-transfer/9de6e1ffc1358098abc7e3c1c6cd55ea3827b362/image/gauguin-te_fare.jpg",
            sha256="f16ce92eaeabc7967c28315b665f88f9be32bb51cc5c8bcba4ddf648bc12b255",
        ),
        SampleImage(
            name="tubingen",
            filename="tubingen.jpg",
            role="content",
            year="unknown",
            title="Neckarfront, Tuebingen, Germany (Wikimedia Commons: Tuebingen_Neckarfront.jpg)",
            author="Andreas Praefcke",
            license="CC BY 3.0 (Wikimedia Commons); attribution required",
            url="https://raw.githubusercontent.com/leongatys/PytorchNeuralStyleTransfer/be6c8e2b35568669a5a0ac10b66c912207ad355d/Images/Tuebingen_Neckarfront.jpg",
            sha256="e67d1869f01fd805385c681a80d9ebcf0f70ea4a5fe6127f0606bb1c7f4bf506",
        ),
        SampleImage(
            name="mount_rainier",
            filename="mount_rainier.jpg",
            role="content",
            year="2018 or earlier",
            title="Landscape in Mount Rainier National Park",
            author="Dive into Deep Learning authors (A. Zhang, Z. C. Lipton, M. Li, A. J. Smola)",
            license="CC BY-SA 4.0 (d2l-en book content license); attribution + share-alike",
            url="https://raw.githubusercontent.com/d2l-ai/d2l-en/23d7a5aecceee57d1292c56e90cce307f183bb0a/img/rainier.jpg",
            sha256="014381e94081625e5e5279fd81f50d01b75ebf10f1e85189d66e2fc93adbc768",
        ),
        SampleImage(
            name="coffee",
            filename="coffee.png",
            role="content",
            year="unknown",
            title="Coffee cup (scikit-image sample 'coffee'; courtesy of Pikolo Espresso Bar)",
            author="Rachel Michetti",
            license="CC0 1.0 (per scikit-image data docstring)",
            url="https://raw.githubusercontent.com/scikit-image/scikit-image/ee0a7a3ebd9ac8c2602f40e55bc015a3c8a81ae8/src/skimage/data/coffee.png",
            sha256="cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
        ),
        SampleImage(
            name="chelsea",
            filename="chelsea.png",
            role="content",
            year="unknown",
            title="Chelsea the cat (scikit-image sample 'chelsea')",
            author="Stefan van der Walt",
            license="CC0 1.0 (per scikit-image data docstring)",
            url="https://raw.githubusercontent.com/scikit-image/scikit-image/ee0a7a3ebd9ac8c2602f40e55bc015a3c8a81ae8/src/skimage/data/chelsea.png",
            sha256="596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
        ),
        SampleImage(
            name="vangogh_wheat_field",
            filename="vangogh_wheat_field.jpg",
            role="style",
            year="1889",
            title="Wheat Field with Cypresses",
            author="Vincent van Gogh (1853-1890)",
            license=PD_ART,
            url="https://raw.githubusercontent.com/gordicaleksa/pytorch-neural-style-transfer/a244dc61797f920a62146d98de92384352a4d3a2/data/style-images/vg_wheat_field.jpg",
            sha256="da6959c2bc8e874f09df0cdce63dd86a1f11b61bf560ff498e1dfe483cdf8a81",
        ),
        SampleImage(
            name="vangogh_bedroom",
            filename="vangogh_bedroom.jpg",
            role="style",
            year="1888",
            title="The Bedroom (Bedroom in Arles)",
            author="Vincent van Gogh (1853-1890)",
            license=PD_ART,
            url="https://raw.githubusercontent.com/hi-space/image-style-transfer/9de6e1ffc1358098abc7e3c1c6cd55ea3827b362/image/vangogh-bedroom_in_arles.jpg",
            sha256="28eba52c0bf68a5e7f02f5eb7af6731bba25f5632951df859bc3d42ed3f458ae",
        ),
        SampleImage(
            name="vangogh_starry_night_rhone",
            filename="vangogh_starry_night_rhone.png",
            role="style",
            year="1888",
            title="Starry Night over the Rhone",
            author="Vincent van Gogh (1853-1890)",
            license=PD_ART,
            url="https://raw.githubusercontent.com/hi-space/image-style-transfer/9de6e1ffc1358098abc7e3c1c6cd55ea3827b362/image/vangogh-starry_night_over_the_rhone.png",
            sha256="e2cb9d9c2694100e0c8c8ebd8d90e355a5224150102abd88f95238069133b2b9",
        ),
        SampleImage(
            name="monet_water_lilies",
            filename="monet_water_lilies.jpg",
            role="style",
            year="c. 1919",
            title="Water Lilies (Nympheas)",
            author="Claude Monet (1840-1926)",
            license=PD_ART,
            url="https://raw.githubusercontent.com/titu1994/Neural-Style-Transfer/d09334855211579ea1adb9ad04f09fc8a7573850/images/inputs/style/water-lilies-1919-2.jpg",
            sha256="db4c4fe90c02be04d269f2f598357bb8cd4ea0541712a90d4913e91b1da689d7",
        ),
        SampleImage(
            name="monet_charing_cross",
            filename="monet_charing_cross.jpg",
            role="style",
            year="1903",
            title="Charing Cross Bridge",
            author="Claude Monet (1840-1926)",
            license=PD_ART,
            url="https://raw.githubusercontent.com/hi-space/image-style-transfer/9de6e1ffc1358098abc7e3c1c6cd55ea3827b362/image/monet-charing_cross_bridge.jpg",
            sha256="4f18c545337eeac023cc5d35342c979a9daafae353b02df7c928086842199ab9",
        ),
        SampleImage(
            name="bern",
            filename="bern.png",
            role="content",
            year="unknown",
            title=(
                "Central Bern from the north, with the Aare (Wikimedia Commons: Central_Bern_from_north.jpg; "
                "downscaled PNG made by the epfl-lara/bolts authors)"
            ),
            author="CucombreLibre (Flickr user 33200530@N04)",
            license="CC BY 2.0 (per epfl-lara/bolts qoi/images/README.md); attribution required",
            url="https://raw.githubusercontent.com/epfl-lara/bolts/80f8bbbcc3770d45e8b58796022a684fa9a81804/qoi/images/Central_Bern_from_north.png",
            sha256="dbf70e5d5463fb2c7a7154e36b23b68679b89c0295c16b9cd25f97a2d45fd426",
        ),
    )
}

#: The paper's Figure 2 pair: Tübingen's Neckarfront in the style of The Starry Night.
DEFAULT_CONTENT = "tubingen"
DEFAULT_STYLE = "starry_night"


def sample_cache_dir() -> Path:
    """Folder where downloaded samples are kept (inside torch.hub's cache)."""
    return Path(torch.hub.get_dir()) / "nst_helpers" / "samples"


def find_sample(name: str) -> SampleImage | None:
    """The sample called ``name`` (``"starry_night"`` or its file name ``"starry_night.jpg"``;
    case and surrounding spaces ignored), or None when there is none."""
    key = str(name).strip().lower()
    return next((sample for sample in SAMPLES.values() if key in (sample.name, sample.filename)), None)


def is_sample_name(name: str) -> bool:
    """True if ``name`` (with or without its file extension) is a sample image."""
    return find_sample(name) is not None


@cache
def _sha256_of(path: str, mtime: float, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verified(path: Path, sample: SampleImage) -> bool:
    stat = path.stat()
    return _sha256_of(str(path), stat.st_mtime, stat.st_size) == sample.sha256


def sample_image(name: str) -> Path:
    """Local path of the sample image ``name`` (see :func:`list_samples`).

    Looks in ``$NST_DATA_DIR`` first, then in :func:`sample_cache_dir`, and
    downloads from the pinned URL if needed. The file's sha256 is checked
    in every case.
    """
    sample = find_sample(name)
    if sample is None:
        names = ", ".join(sorted(SAMPLES))
        raise ImageLoadError(f"No sample image called {name!r}. Samples: {names}.")
    data_dir = os.environ.get(DATA_DIR_VARIABLE)
    if data_dir:
        local = Path(data_dir).expanduser() / sample.filename
        if local.is_file():
            if not _verified(local, sample):
                raise ImageLoadError(
                    f"{local} does not match the pinned sha256 of sample {sample.name!r}; "
                    f"replace it with the file from {sample.url}."
                )
            return local
    cached = sample_cache_dir() / sample.filename
    if cached.is_file() and _verified(cached, sample):
        return cached
    cached.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(sample.url, str(cached), hash_prefix=sample.sha256, progress=False)
    except Exception as exc:  # network errors come in many types; the message is what matters
        hint = (
            f"{DATA_DIR_VARIABLE}={data_dir} has no {sample.filename}"
            if data_dir
            else f"or set {DATA_DIR_VARIABLE} to a folder holding {sample.filename}"
        )
        raise ImageLoadError(
            f"Could not download sample {sample.name!r} from {sample.url} ({exc}). Check your connection, {hint}."
        ) from None
    return cached


def list_samples(role: str | None = None, show: bool = True) -> list[SampleImage]:
    """List the sample images (optionally only ``role="style"`` or ``"content"``).

    Prints a table with the credits when ``show`` is true, and returns the
    :class:`SampleImage` records.
    """
    if role not in (None, "style", "content"):
        raise ValueError(f"role must be None, 'style' or 'content', got {role!r}.")
    chosen = [s for s in SAMPLES.values() if role is None or s.role == role]
    if show:
        width = max(len(s.name) for s in chosen)
        for sample in chosen:
            print(f"{sample.name:<{width}}  {sample.role:<7}  {sample.title}, {sample.author}, {sample.year}")
            print(f"{'':<{width}}  {'':<7}  licence: {sample.license}")
    return chosen
