"""benchmarks/time_to_quality.py measures what it says: one time per evaluation, from the call to stylize,
targets left out; the bar is crossed at the right step of the right level."""

from helpers import ROOT, smooth_image, stripes_image
from nst_helpers import stylize
from time_to_quality import EvaluationClock, first_below

SHALLOW = dict(content_layers=("relu2_2",), style_layers={"relu1_1": 0.5, "relu2_1": 0.5}, device="cpu")


def test_the_clock_ticks_once_per_evaluation_with_gradients_even_on_a_copy_of_the_network(vgg19_random):
    clock = EvaluationClock(vgg19_random)
    try:
        # bf16 makes stylize run a copy of the network (for_compute): the hook must still reach this clock
        for precision in ("fp32", "bf16"):
            clock.start()
            result = stylize(
                smooth_image(48, 64),
                stripes_image(),
                model=vgg19_random,
                steps=5,
                scales=(32,),
                scale_steps=(3, 2),
                precision=precision,
                **SHALLOW,
            )
            assert len(clock.wall) == len(clock.cpu) == result.steps == 5  # the 4 target passes are not counted
            assert clock.wall == sorted(clock.wall) and clock.wall[0] > 0
            ends, _cpu = clock.step_ends((99.0, 99.0))
            assert ends[:-1] == clock.wall[1:] and ends[-1] == 99.0
    finally:
        clock.handle.remove()


def test_first_below_looks_only_at_the_given_level():
    record = {"total": [0.5, 2.0, 1.5, 1.0, 0.9], "levels": [0, 1, 1, 1, 1]}
    assert first_below(record, 1.0, 1) == 4  # step 1 is below the bar, but at the coarse level
    assert first_below(record, 1.0, 0) == 1
    assert first_below(record, 0.1, 1) is None


def test_the_benchmark_and_its_json_fields_are_in_its_readme():
    readme = (ROOT / "benchmarks" / "README.md").read_text(encoding="utf-8")
    assert "`time_to_quality.py`" in readme
    for field in ("to_quality_step", "auto_run", "curves"):
        assert f"`{field}`" in readme
