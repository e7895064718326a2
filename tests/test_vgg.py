"""Tests of nst_helpers/vgg.py: paper layer names, the torchvision layout, non-in-place ReLUs, input
normalisation, running only as deep as needed, and the extractor's errors."""

import pytest
import torch
import torchvision
from torch import nn

from nst_helpers import SettingsError, layer_names, layer_table, load_vgg
from nst_helpers.vgg import VGGFeatures, build_features

# Indices in torchvision's vgg19().features that every popular tutorial hard-codes.
VGG19_KNOWN = {
    0: "conv1_1",
    1: "relu1_1",
    4: "pool1",
    5: "conv2_1",
    6: "relu2_1",
    10: "conv3_1",
    11: "relu3_1",
    19: "conv4_1",
    20: "relu4_1",
    21: "conv4_2",
    22: "relu4_2",
    28: "conv5_1",
    29: "relu5_1",
    34: "conv5_4",
    36: "pool5",
}
VGG16_KNOWN = {
    0: "conv1_1",
    5: "conv2_1",
    10: "conv3_1",
    17: "conv4_1",
    19: "conv4_2",
    20: "relu4_2",
    24: "conv5_1",
    25: "relu5_1",
    28: "conv5_3",
    30: "pool5",
}


@pytest.mark.parametrize("arch, known", [("vgg19", VGG19_KNOWN), ("vgg16", VGG16_KNOWN)])
def test_layer_names_match_torchvision_indices(arch, known):
    features = getattr(torchvision.models, arch)(weights=None).features
    names = layer_names(features)
    assert len(names) == len(features)
    for index, name in known.items():
        assert names[index] == name
    for name, module in zip(names, features):
        kind = {"conv": nn.Conv2d, "relu": nn.ReLU, "pool": nn.MaxPool2d}[name[:4]]
        assert isinstance(module, kind)


@pytest.mark.parametrize("arch", ["vgg16", "vgg19"])
def test_our_features_have_torchvision_key_layout(arch):
    ours = build_features(arch).state_dict()
    theirs = getattr(torchvision.models, arch)(weights=None).features.state_dict()
    assert list(ours) == list(theirs)
    assert all(ours[k].shape == theirs[k].shape for k in ours)


def test_relus_are_not_inplace_so_conv_features_keep_negatives(vgg19_random):
    assert not any(getattr(m, "inplace", False) for m in vgg19_random.layers)
    out = vgg19_random(torch.rand(1, 3, 32, 32), ["conv4_2", "relu4_2"])
    assert (out["conv4_2"] < 0).any()  # an in-place ReLU would have zeroed these
    assert torch.equal(out["relu4_2"], out["conv4_2"].clamp_min(0))


def test_torchvision_normalisation_by_hand(vgg19_random):
    pixel = torch.tensor([1.0, 0.5, 0.0]).view(1, 3, 1, 1)
    expected = torch.tensor([(1 - 0.485) / 0.229, (0.5 - 0.456) / 0.224, (0 - 0.406) / 0.225]).view(1, 3, 1, 1)
    assert torch.allclose(vgg19_random.normalize(pixel), expected, atol=1e-5)


def test_caffe_normalisation_by_hand():
    model = VGGFeatures(build_features("vgg16"), input_norm="caffe", arch="vgg16")
    pixel = torch.tensor([1.0, 0.5, 0.0]).view(1, 3, 1, 1)  # RGB
    # BGR, 0..255, minus the Caffe mean (B 103.939, G 116.779, R 123.68)
    expected = torch.tensor([0 - 103.939, 127.5 - 116.779, 255 - 123.68]).view(1, 3, 1, 1)
    assert torch.allclose(model.normalize(pixel), expected, atol=1e-3)


def test_forward_runs_only_as_deep_as_needed(vgg19_random):
    calls = []
    hooks = [
        m.register_forward_hook(lambda mod, i, o, n=n: calls.append(n))
        for n, m in zip(vgg19_random.names, vgg19_random.layers)
    ]
    try:
        out = vgg19_random(torch.rand(1, 3, 16, 16), ["relu2_1", "conv1_2"])
    finally:
        for hook in hooks:
            hook.remove()
    assert set(out) == {"relu2_1", "conv1_2"}
    assert calls[-1] == "relu2_1" and len(calls) == vgg19_random.index["relu2_1"] + 1


def test_layer_table_channels_and_strides(vgg19_random):
    rows = {row["name"]: row for row in layer_table(vgg19_random)}
    assert rows["conv1_1"]["channels"] == 64 and rows["conv1_1"]["stride"] == 1
    assert rows["relu3_1"]["channels"] == 256 and rows["relu3_1"]["stride"] == 4
    assert rows["relu5_1"]["channels"] == 512 and rows["relu5_1"]["stride"] == 16
    assert rows["pool5"]["stride"] == 32
    out = vgg19_random(torch.rand(1, 3, 64, 64), ["relu3_1"])["relu3_1"]
    assert out.shape == (1, 256, 16, 16)


def test_unknown_layer_lists_names_and_suggests_closest(vgg19_random):
    with pytest.raises(SettingsError, match=r"Did you mean 'relu4_2'\?.*Valid names: conv1_1"):
        vgg19_random(torch.rand(1, 3, 32, 32), ["relu_4_2"])


def test_too_small_image_has_clear_error(vgg19_random):
    with pytest.raises(SettingsError, match="at least 16 px"):
        vgg19_random(torch.rand(1, 3, 8, 64), ["relu5_1"])


def test_avg_pooling_option():
    model = load_vgg(arch="vgg16", weights="random", pooling="avg", cache=False)
    assert any(isinstance(m, nn.AvgPool2d) for m in model.layers)
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.layers)


def test_model_is_frozen_and_stays_in_eval(vgg19_random):
    assert not any(p.requires_grad for p in vgg19_random.parameters())
    vgg19_random.train()
    assert not vgg19_random.training


def test_no_layers_requested_runs_nothing(vgg19_random):
    assert vgg19_random(torch.rand(1, 3, 8, 8), []) == {}
    assert vgg19_random.min_input_size([]) == 1


def test_for_compute_makes_a_bf16_nhwc_copy_and_leaves_the_original(vgg19_random):
    image = torch.rand(1, 3, 32, 40, generator=torch.Generator().manual_seed(5))
    fast = vgg19_random.for_compute(torch.bfloat16, channels_last=True)
    assert fast is not vgg19_random and vgg19_random.compute_dtype == torch.float32
    assert vgg19_random.layers[0].weight.is_contiguous()  # the original is untouched
    assert fast.layers[0].weight.dtype == torch.bfloat16 and fast.mean.dtype == torch.float32
    assert vgg19_random.for_compute() is vgg19_random  # nothing to change: no copy
    with torch.no_grad():
        exact = vgg19_random(image, ["relu1_1", "relu3_1"])
        low = fast(image.contiguous(memory_format=torch.channels_last), ["relu1_1", "relu3_1"])
    for name in exact:
        assert low[name].dtype == torch.bfloat16
        assert low[name].is_contiguous(memory_format=torch.channels_last)
        error = (low[name].float() - exact[name]).norm() / exact[name].norm()
        assert error < 0.02, (name, error)  # bf16 rounding (~0.4 % per value), not a different network
