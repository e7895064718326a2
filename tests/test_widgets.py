"""The sliders panel, headless: ipywidgets builds and updates widgets without a browser."""

import io
import subprocess
import sys
import types

import pytest
import torch

pytest.importorskip("ipywidgets", reason="the sliders panel needs ipywidgets (pip install ipywidgets)")
import ipywidgets  # noqa: E402

from helpers import fake_result, smooth_image, stripes_image  # noqa: E402
from nst_helpers import to_pil  # noqa: E402
from nst_helpers.widget_parts import GIVEN  # noqa: E402
from nst_helpers.widgets import StylePanel  # noqa: E402
from test_uploads import deliver  # noqa: E402  (what the browser does, in this ipywidgets version)


def _panel(**kwargs):
    """A panel on test tensors (no sample images needed), small and on the CPU."""
    return StylePanel(
        smooth_image(48, 64),
        stripes_image(40, 40),
        **{"second_style": smooth_image(30, 40, seed=9), "size": 48, "steps": 5, "device": "cpu", **kwargs},
    )


@pytest.fixture
def fake_stylize(monkeypatch):
    """Replace the panel's stylize with a recorder returning a tiny result."""
    calls = []

    def fake(content, style, config=None, *, model=None, callback=None, **overrides):
        calls.append({"content": content, "style": style, "config": config, "model": model})
        return fake_result(torch.rand(1, 3, *content.shape[-2:]), config)

    monkeypatch.setattr("nst_helpers.widgets.stylize", fake)
    return calls


def _png_bytes(height=30, width=40) -> bytes:
    buffer = io.BytesIO()
    to_pil(smooth_image(height, width, seed=5)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_core_package_does_not_import_ipywidgets():
    code = "import sys, nst_helpers; assert 'ipywidgets' not in sys.modules, 'core imported ipywidgets'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_weights_are_log_sliders_and_nothing_updates_continuously():
    panel = _panel()
    assert set(panel.layer_sliders) == {"relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"}
    weight_sliders = [*panel.layer_sliders.values(), panel.ratio_slider, panel.tv_slider]
    for slider in weight_sliders:
        assert isinstance(slider, ipywidgets.FloatLogSlider) and slider.base == 10
        assert slider.max - slider.min >= 4  # at least four orders of magnitude
    for slider in weight_sliders + [panel.steps_slider, panel.size_slider]:
        assert slider.continuous_update is False
    assert all(s.value == pytest.approx(0.2) for s in panel.layer_sliders.values())
    assert panel.ratio_slider.min <= 1 and panel.ratio_slider.max >= 4  # β/α from ≤ 10 to ≥ 10 000
    assert panel.ratio_slider.value == pytest.approx(10.0)
    assert isinstance(panel.steps_slider, ipywidgets.IntSlider) and panel.steps_slider.value == 5
    assert isinstance(panel.size_slider, ipywidgets.IntSlider) and panel.size_slider.value == 48
    assert panel.size_slider.max >= 1024
    assert [value for _label, value in panel.optimizer_dropdown.options] == ["lbfgs", "adam"]
    assert [value for _label, value in panel.init_dropdown.options] == ["content", "noise", "style"]
    assert isinstance(panel.content_upload, ipywidgets.FileUpload)
    assert isinstance(panel.widget, ipywidgets.VBox)


def test_sample_pickers_list_samples_by_role():
    panel = _panel()
    contents = {value for _label, value in panel.content_picker.options}
    styles = {value for _label, value in panel.style_picker.options}
    assert {"tubingen", "chelsea", GIVEN} <= contents and "starry_night" not in contents
    assert {"starry_night", "great_wave", GIVEN} <= styles and "tubingen" not in styles
    assert panel.content_picker.value == GIVEN  # the tensor we passed


def test_moving_sliders_never_starts_a_run(fake_stylize):
    panel = _panel()
    for slider in panel.layer_sliders.values():
        slider.value = 1.0
    panel.ratio_slider.value, panel.tv_slider.value = 1000.0, 5.0
    panel.steps_slider.value, panel.size_slider.value = 200, 512
    panel.optimizer_dropdown.value, panel.init_dropdown.value = "adam", "noise"
    assert fake_stylize == [] and panel.gallery == []


def test_run_builds_the_config_from_the_widgets(fake_stylize):
    panel = _panel()
    panel.layer_sliders["relu1_1"].value = 1.0
    panel.layer_sliders["relu5_1"].value = 1e-9  # clamps to the far left: layer off
    panel.ratio_slider.value = 100.0
    panel.tv_slider.value = 2.0
    panel.steps_slider.value = 7
    panel.size_slider.value = 96
    panel.optimizer_dropdown.value = "adam"
    panel.init_dropdown.value = "noise"
    result = panel.run()

    assert len(fake_stylize) == 1
    config = fake_stylize[0]["config"]
    assert (config.steps, config.size, config.optimizer, config.init) == (7, 96, "adam", "noise")
    assert config.content_weight == 1.0 and config.style_weight == pytest.approx(100.0)
    assert config.tv_weight == pytest.approx(2.0)
    assert set(config.style_layers) == {"relu1_1", "relu2_1", "relu3_1", "relu4_1"}
    assert config.style_layers["relu1_1"] == pytest.approx(1.0)
    assert fake_stylize[0]["content"].shape == (1, 3, 72, 96)  # resized to the size slider
    settings, stored = panel.gallery[0]
    assert stored is result and settings["style/content"] == pytest.approx(100.0) and settings["tv"] == 2.0
    assert len(panel.gallery_box.children) == 1


def test_far_left_switches_tv_off_and_label_says_so():
    panel = _panel()
    assert panel.config().tv_weight == 0.0 and panel._tv.label.value == "off"
    panel.tv_slider.value = 0.5
    assert panel.config().tv_weight == pytest.approx(0.5) and panel._tv.label.value == ""


def test_bad_settings_on_click_are_shown_not_raised(fake_stylize):
    panel = _panel()
    for slider in panel.layer_sliders.values():
        slider.value = 1e-9  # clamps to the far left: all style layers off, style weight still > 0
    panel.run_button.click()
    assert fake_stylize == [] and panel.gallery == []
    assert "style_layers is empty" in panel.status.value
    assert panel.run_button.disabled is False


def test_upload_becomes_the_content_image(fake_stylize):
    panel = _panel()
    deliver(panel.content_upload, "my photo.png", _png_bytes(30, 40))
    assert panel.content_picker.value == GIVEN
    assert "my photo.png" in dict((v, k) for k, v in panel.content_picker.options)[GIVEN]
    assert panel.content_thumbnail.value  # a thumbnail was drawn
    panel.run()
    assert fake_stylize[0]["content"].shape == (1, 3, 36, 48)  # 30x40 scaled to the 48 px size slider
    assert panel.gallery[0][0]["content"] == "my photo.png"


def test_in_colab_each_picker_offers_colabs_upload_dialog(monkeypatch, fake_stylize):
    """In Colab (a fake google.colab here) a button opens Colab's upload dialog, which has no 1 MB limit."""
    files = types.SimpleNamespace(upload=lambda: {"big photo.png": _png_bytes(60, 80)})
    monkeypatch.setitem(sys.modules, "google.colab", types.SimpleNamespace(files=files))
    panel = _panel()
    buttons = {role: picker.uploads.colab_button for role, picker in panel.image_pickers.items()}
    assert all(isinstance(button, ipywidgets.Button) for button in buttons.values())
    buttons["style"].click()
    assert panel.style_picker.value == GIVEN and "big photo.png" in panel.status.value
    panel.run()
    assert fake_stylize[0]["style"].shape == (1, 3, 36, 48)


def test_unreadable_upload_keeps_the_previous_choice():
    panel = _panel()
    deliver(panel.content_upload, "notes.txt", b"hello")
    assert panel.content_picker.value == GIVEN and panel.image_pickers["content"].given[0] == "your image"
    assert "notes.txt" in panel.status.value


def test_real_run_with_random_weights_fills_preview_and_gallery(monkeypatch):
    monkeypatch.setenv("NST_WEIGHTS", "random")
    panel = _panel(size=32, steps=4)
    result = panel.run()
    totals = result.history["total"]
    assert result.completed and result.steps == 4 and totals[-1] < totals[0]
    assert result.image.shape == (1, 3, 24, 32)
    assert panel.last_preview.frames >= 2 and bytes(panel.preview_image.value).startswith(b"\x89PNG")
    assert panel.progress_bar.value == 4 and "done" in panel.progress_text.value
    panel.ratio_slider.value, panel.steps_slider.value = 1000.0, 2
    panel.run()
    assert len(panel.gallery) == 2 and len(panel.gallery_box.children) == 2
    figure = panel.compare()
    assert len(figure.axes) == 2 and "β/α 1e+03" in figure.axes[1].get_title()
    assert "layers 1_1 2_1 3_1 4_1 5_1" in figure.axes[0].get_title()
    panel.clear_gallery()
    assert panel.gallery == [] and panel.gallery_box.children == ()


def test_second_style_blend_slider_and_colours_reach_stylize(fake_stylize):
    panel = _panel()
    mix = panel.style_mix
    assert (
        mix.blend_slider.value == 1
        and mix.colors_dropdown.value == "painting"
        and mix.preserve_colors is None
        and not mix.blend_slider.continuous_update
    )
    panel.run()
    assert isinstance(fake_stylize[-1]["style"], torch.Tensor)  # one style, as before
    assert fake_stylize[-1]["config"].style_blend is None and fake_stylize[-1]["config"].preserve_colors is None
    mix.blend_slider.value, mix.colors_dropdown.value = 0.7, "luminance"
    assert len(fake_stylize) == 1  # moving them started nothing
    panel.run()
    first, second = fake_stylize[-1]["style"]
    assert first.shape == (1, 3, 48, 48) and second.shape == (1, 3, 36, 48)
    config = fake_stylize[-1]["config"]
    assert config.style_blend == pytest.approx((0.7, 0.3)) and config.preserve_colors == "luminance"
    settings, _result = panel.gallery[-1]
    assert settings["style"] == "your image 70% + your image 30%" and settings["colours"] == "luminance"
    card_text = panel.gallery_box.children[-1].children[1].value
    assert "70% + your image 30%" in card_text and "colours: luminance" in card_text
    mix.blend_slider.value, mix.colors_dropdown.value = 0.0, "histogram"
    panel.run()
    assert fake_stylize[-1]["style"].shape == (1, 3, 36, 48)  # the second style alone
    assert fake_stylize[-1]["config"].preserve_colors == "histogram"
