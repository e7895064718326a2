"""The panel's building blocks, headless: weight slider, image picker (with uploads), settings in words."""

import pytest
import torch

pytest.importorskip("ipywidgets", reason="the sliders panel needs ipywidgets (pip install ipywidgets)")
import ipywidgets  # noqa: E402

from helpers import SHARED_IMAGES, fake_result, image_bytes, smooth_image  # noqa: E402
from nst_helpers import ImageLoadError, to_pil  # noqa: E402
from nst_helpers.widget_parts import (  # noqa: E402
    GIVEN,
    ImagePicker,
    WeightSlider,
    format_number,
    gallery_card,
    run_title,
    set_tooltip,
    short_layers,
)
from test_uploads import deliver  # noqa: E402  (what the browser does, in this ipywidgets version)

SETTINGS = {
    "content": "tubingen",
    "style": "starry_night",
    "size": 256,
    "steps": 100,
    "optimizer": "lbfgs",
    "init": "content",
    "style/content": 1000.0,
    "tv": 0.0,
    "layers": {"relu1_1": 0.5, "relu2_1": 1.0},
}


def test_weight_slider_far_left_means_off():
    weight = WeightSlider("tv", 0.0, (-2, 3), "γ")
    assert isinstance(weight.slider, ipywidgets.FloatLogSlider) and weight.slider.continuous_update is False
    assert weight.off and weight.weight == 0.0 and weight.label.value == "off"
    weight.slider.value = 5.0
    assert not weight.off and weight.weight == pytest.approx(5.0) and weight.label.value == ""
    assert WeightSlider("w", 0.2, (-3, 1), "w_l").weight == pytest.approx(0.2)


def test_set_tooltip_on_this_ipywidgets_version():
    button = ipywidgets.Button()
    set_tooltip(button, "hello")
    name = "tooltip" if "tooltip" in button.trait_names() else "description_tooltip"
    assert getattr(button, name) == "hello"


def test_settings_in_words():
    assert format_number(1000.0) == "1e+03" and format_number(0.2) == "0.2"
    assert short_layers({"relu1_1": 0.2, "relu2_1": 0.2}) == "1_1 2_1"  # equal weights are left out
    assert short_layers({"relu1_1": 0.5, "conv2_1": 1.0}) == "1_1:0.5 c2_1:1"
    assert short_layers({}) == "none"
    assert run_title(3, SETTINGS) == "#3 β/α 1e+03, TV off\nlayers 1_1:0.5 2_1:1\nlbfgs, 100 steps, 256 px"


def test_gallery_card_shows_the_result_and_its_settings():
    result = fake_result(smooth_image(40, 60), seconds=3.0)
    thumbnail, text = gallery_card(2, SETTINGS, result).children
    assert bytes(thumbnail.value).startswith(b"\x89PNG")
    assert "#2 tubingen × starry_night" in text.value and "loss 2 → 1.1" in text.value
    assert "TV off" in text.value and "relu1_1 0.5" in text.value and "completed" in text.value


def test_image_picker_starts_from_a_given_image_and_takes_uploads():
    messages = []
    picker = ImagePicker("content", smooth_image(30, 40), say=lambda text, error=False: messages.append((text, error)))
    assert picker.dropdown.value == GIVEN and picker.label == "your image" and picker.given[0] == "your image"
    assert {"tubingen", "chelsea", GIVEN} <= {value for _label, value in picker.dropdown.options}
    assert bytes(picker.thumbnail.value).startswith(b"\x89PNG")
    assert picker.image(20).shape == (1, 3, 15, 20)
    deliver(picker.upload, "mine.png", image_bytes(to_pil(smooth_image(10, 10, seed=3))))
    assert picker.label == "mine.png" and messages == [("Using mine.png as the content image.", False)]
    deliver(picker.upload, "phone.jpg", b"", size=3_000_000)  # what Colab's FileUpload does to big files
    assert picker.label == "mine.png" and messages[-1][1] is True and "phone.jpg arrived empty" in messages[-1][0]
    with pytest.raises(ImageLoadError, match="notes.txt"):
        picker.use(b"hello", name="notes.txt")
    assert picker.label == "mine.png"  # the previous choice stays


def test_image_picker_finds_samples_by_name_or_file_name(monkeypatch):
    if not SHARED_IMAGES.is_dir():
        pytest.skip(f"sample images not found at {SHARED_IMAGES}")
    monkeypatch.setenv("NST_DATA_DIR", str(SHARED_IMAGES))
    picker = ImagePicker("content", "Starry_Night.jpg ", say=print)  # a painting as content, by its file name
    assert picker.dropdown.value == "starry_night" and picker.given is None
    assert ("starry_night", "starry_night") in picker.dropdown.options
    assert "Gogh" in picker.credit.value and isinstance(picker.image(32), torch.Tensor)
