"""Tests of nst_helpers/weights.py: ImageNet, local-file and random weights, the NST_* environment
overrides, and a clear WeightsError for every file that is not usable VGG weights."""

from __future__ import annotations

import pickle
import urllib.error

import pytest
import torch

from nst_helpers import SettingsError, WeightsError, load_vgg


def test_random_weights_are_seeded_and_warn():
    with pytest.warns(UserWarning, match="randomly initialised"):
        first = load_vgg(arch="vgg16", weights="random", cache=False)
    second = load_vgg(arch="vgg16", weights="random", cache=False)
    assert torch.equal(first.layers[0].weight, second.layers[0].weight)


def test_random_weights_warning_names_what_chose_them(monkeypatch):
    with pytest.warns(UserWarning, match="Leave out weights='random'"):
        load_vgg(arch="vgg16", weights="random", cache=False)
    monkeypatch.setenv("NST_WEIGHTS", "random")
    with pytest.warns(UserWarning, match="Unset NST_WEIGHTS"):
        load_vgg(arch="vgg16", cache=False)


def test_environment_variables_choose_weights_and_arch(monkeypatch):
    monkeypatch.setenv("NST_WEIGHTS", "random")
    monkeypatch.setenv("NST_VGG", "vgg16")
    model = load_vgg(cache=False)
    assert model.arch == "vgg16" and model.weights_source == "random" and model.input_norm == "torchvision"
    monkeypatch.setenv("NST_INPUT_NORM", "caffe")
    assert load_vgg(cache=False).input_norm == "caffe"
    monkeypatch.setenv("NST_VGG", "vgg11")
    with pytest.raises(SettingsError, match="vgg19"):
        load_vgg(cache=False)


def test_local_state_dict_float16_with_inferred_arch(tmp_path):
    source = load_vgg(arch="vgg16", weights="random", cache=False)
    state = {f"features.{k}": v.half() for k, v in source.layers.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # a full-model state dict is fine too
    path = tmp_path / "my_vgg.pth"
    torch.save(state, path)
    model = load_vgg(weights=str(path), cache=False)
    assert model.arch == "vgg16" and model.input_norm == "torchvision"
    assert model.layers[0].weight.dtype == torch.float32
    assert torch.allclose(model.layers[0].weight, source.layers[0].weight, atol=1e-3)


def test_shared_vgg16_weights(vgg16_shared):
    assert vgg16_shared.arch == "vgg16" and vgg16_shared.input_norm == "caffe"
    bias = vgg16_shared.layers[0].bias[:4]
    assert torch.allclose(bias, torch.tensor([0.7343, 0.0934, 0.0678, 0.8863]), atol=1e-3)


def test_wrong_keys_and_shapes_are_named(tmp_path):
    state = load_vgg(arch="vgg16", weights="random", cache=False).layers.state_dict()
    path = tmp_path / "vgg.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError, match="missing keys"):
        load_vgg(weights=str(path), arch="vgg19", cache=False)
    state["0.weight"] = torch.zeros(64, 3, 5, 5)
    torch.save(state, path)
    with pytest.raises(WeightsError, match=r"features\.0\.weight has shape \[64, 3, 5, 5\]"):
        load_vgg(weights=str(path), cache=False)


class _Payload:
    def __reduce__(self):
        return (print, ("this would run on load",))


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as handle:
        pickle.dump({"0.weight": _Payload()}, handle, protocol=2)
    with pytest.raises(WeightsError, match="weights_only=True"):
        load_vgg(weights=str(path), cache=False)


def test_not_a_state_dict(tmp_path):
    path = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), path)
    with pytest.raises(WeightsError, match="does not contain a state dict"):
        load_vgg(weights=str(path), cache=False)
    with pytest.raises(WeightsError, match="does not exist"):
        load_vgg(weights=str(tmp_path / "missing.pth"), cache=False)


def test_failed_download_says_how_to_fix(monkeypatch):
    from torchvision.models import VGG19_Weights

    def offline(self, *args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(type(VGG19_Weights.IMAGENET1K_V1), "get_state_dict", offline)
    with pytest.raises(WeightsError) as info:
        load_vgg(weights="imagenet", cache=False)
    message = str(info.value)
    assert "vgg19-dcbb9e9d.pth" in message and "NST_WEIGHTS" in message and "checkpoints" in message


@pytest.mark.parametrize(
    "content, match",
    [
        (b"", r"is empty \(0 bytes\), probably an interrupted download"),
        (b"<!DOCTYPE html><html><body>Rate limit exceeded</body></html>", "text or HTML file.*error page"),
        ("truncated", "truncated or corrupt.*Re-download it"),
        (b"\x80\x02garbage that is not a pickle", "not a PyTorch weights file"),
    ],
)
def test_weights_file_that_is_not_weights(tmp_path, content, match):
    path = tmp_path / "vgg.pth"
    if content == "truncated":
        torch.save(load_vgg(arch="vgg16", weights="random", cache=False).layers.state_dict(), path)
        path.write_bytes(path.read_bytes()[:4096])
    else:
        path.write_bytes(content)
    with pytest.raises(WeightsError, match=match):
        load_vgg(weights=str(path), cache=False)


def test_weights_dict_with_the_wrong_content_says_what_it_holds(tmp_path):
    state = load_vgg(arch="vgg16", weights="random", cache=False).layers.state_dict()
    torch.save({"model": state, "epoch": torch.tensor(3)}, tmp_path / "nested.pth")
    with pytest.raises(WeightsError, match=r"but a dict with keys \['model', 'epoch'\]"):
        load_vgg(weights=str(tmp_path / "nested.pth"), cache=False)
    state["10.weight"] = torch.full_like(state["10.weight"], float("nan"))
    torch.save(state, tmp_path / "nan.pth")
    with pytest.raises(WeightsError, match=r"features\.10\.weight contains NaN or infinite values"):
        load_vgg(weights=str(tmp_path / "nan.pth"), cache=False)
    with pytest.raises(WeightsError, match="is a folder"):
        load_vgg(weights=str(tmp_path), cache=False)


def test_pickled_code_message_names_the_callable(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("this would run on load",))

    torch.save({"0.weight": Payload()}, tmp_path / "evil.pth")  # torch.save's own (zip) format
    with pytest.raises(WeightsError, match=r"would call print on load.*may run code.*weights_only=True"):
        load_vgg(weights=str(tmp_path / "evil.pth"), cache=False)
