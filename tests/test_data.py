import csv
import shutil

import pytest
import torch

from nst_helpers import SAMPLES, ImageLoadError, list_samples, load_image, sample_image
from nst_helpers.data import find_sample, is_sample_name, sample_cache_dir


def test_registry_matches_the_manifest(shared_images):
    rows = {row["name"]: row for row in csv.DictReader(open(shared_images / "MANIFEST.csv"))}
    assert {s.filename for s in SAMPLES.values()} == set(rows)
    for sample in SAMPLES.values():
        row = rows[sample.filename]
        assert (sample.url, sample.sha256, sample.role, sample.license) == (
            row["url"],
            row["sha256"],
            row["role"],
            row["license"],
        )
        assert sample.url.startswith("https://") and len(sample.sha256) == 64


def test_local_folder_is_used_and_checked(shared_images, monkeypatch, tmp_path):
    monkeypatch.setenv("NST_DATA_DIR", str(shared_images))
    path = sample_image("starry_night")
    assert path == shared_images / "starry_night.jpg"
    assert sample_image("starry_night.jpg") == path
    assert load_image(path, max_size=64).shape == (1, 3, 51, 64)
    # A file with the right name but wrong bytes is refused.
    bad = tmp_path / "data"
    bad.mkdir()
    (bad / "starry_night.jpg").write_bytes(b"not the painting")
    monkeypatch.setenv("NST_DATA_DIR", str(bad))
    with pytest.raises(ImageLoadError, match="sha256"):
        sample_image("starry_night")


def test_download_goes_through_torch_hub_with_the_hash(shared_images, monkeypatch, tmp_path):
    monkeypatch.delenv("NST_DATA_DIR", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    calls = []

    def fake_download(url, dst, hash_prefix=None, progress=True):
        calls.append((url, hash_prefix))
        shutil.copy(shared_images / "great_wave.jpg", dst)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    first = sample_image("great_wave")
    second = sample_image("great_wave")  # cached: no second download
    assert first == second == sample_cache_dir() / "great_wave.jpg"
    assert calls == [(SAMPLES["great_wave"].url, SAMPLES["great_wave"].sha256)]


def test_failed_download_explains(monkeypatch, tmp_path):
    monkeypatch.delenv("NST_DATA_DIR", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(ImageLoadError, match="NST_DATA_DIR"):
        sample_image("chelsea")


def test_unknown_sample_and_listing(capsys):
    with pytest.raises(ImageLoadError, match="starry_night"):
        sample_image("mona_lisa")
    styles = list_samples("style")
    assert {s.role for s in styles} == {"style"} and len(styles) == 10
    printed = capsys.readouterr().out
    assert "Vincent van Gogh" in printed and "licence" in printed
    assert "CC BY 3.0" in SAMPLES["tubingen"].credit


def test_readme_credits_every_sample():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    credits = readme.split("## Sample images and credits", 1)[1].split("\n## ", 1)[0]
    for sample in SAMPLES.values():
        row = next((line for line in credits.splitlines() if line.startswith(f"| `{sample.name}` |")), None)
        assert row is not None, f"README's credits table has no row for {sample.name}"
        assert sample.author in row and sample.license in row


def test_find_sample_by_name_or_file_name():
    assert find_sample("starry_night") is find_sample(" Starry_Night.JPG ") is SAMPLES["starry_night"]
    assert find_sample("coffee.png") is SAMPLES["coffee"]
    assert find_sample("mona_lisa") is None and find_sample("starry_night.png") is None
    assert is_sample_name("tubingen.jpg") and not is_sample_name("photos/tubingen.jpg")
