import matplotlib

matplotlib.use("Agg")

import pytest
import torch  # noqa: E402

from nst_helpers import gram_matrix, plot_feature_maps, plot_gram, plot_losses  # noqa: E402


def _history(steps):
    """Loss history of a made-up run: falling content, style and total terms, TV all zero."""
    return {
        "content": [1.0 / (i + 1) for i in range(steps)],
        "style": [2.0 / (i + 1) for i in range(steps)],
        "tv": [0.0] * steps,
        "total": [3.0 / (i + 1) for i in range(steps)],
    }


def test_plot_helpers_return_figures():
    features = torch.rand(1, 12, 9, 7)
    assert len(plot_feature_maps(features, count=12, ncols=4).axes) == 12
    assert plot_gram(gram_matrix(features)).axes[0].get_xlabel() == "channel j"
    figure = plot_losses(_history(5))
    assert {line.get_label() for line in figure.axes[0].lines} == {"content", "style", "total"}  # tv is all zero


def test_plot_losses_log_scale_skips_zeros_and_keeps_colours():
    # A run from the photo: the content term is exactly 0 at the first step; on a log axis that is a gap.
    history = {"content": [0.0, 1e-4, 0.1], "style": [5.0, 3.0, 1.0], "tv": [0.0] * 3, "total": [5.0, 3.0, 1.1]}
    lines = {line.get_label(): line for line in plot_losses(history).axes[0].lines}
    content_y = list(lines["content"].get_ydata())
    assert content_y[0] != content_y[0] and content_y[1:] == [1e-4, 0.1]  # NaN, then the values
    with_tv = plot_losses({**history, "tv": [0.01] * 3}).axes[0].lines
    colours = {line.get_label(): line.get_color() for line in with_tv}
    assert {name: line.get_color() for name, line in lines.items()} == {
        name: colour for name, colour in colours.items() if name != "tv"
    }  # the same colour with or without a TV curve


def test_plot_losses_log_axis_spans_at_most_four_decades_below_the_largest_loss():
    # bf16 rounding leaves the first content loss at ~1e-5 instead of 0: it must not squash the curves.
    history = {"content": [1e-5, 0.6, 0.5], "style": [5.0, 1.0, 0.4], "total": [5.0, 1.6, 0.9]}
    low, high = plot_losses(history).axes[0].get_ylim()
    assert low == pytest.approx(1e-3) and high > 5.0  # 10^(1 - 4): the top decade is 10^1
    narrow = {"content": [0.2, 0.1], "total": [1.0, 0.5]}  # within four decades: matplotlib's own limits
    assert plot_losses(narrow).axes[0].get_ylim()[0] > 0.05
