"""The repository URL lives in one place, pyproject.toml; every copy of its slug agrees, and
`make set-repo-url` (tools/set_repo_url.py) moves them all, checked on a copy of the checkout."""

import importlib.util
import re
import shutil
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "set_repo_url.py"
# Where the project's own repository is written: pip installs from it, Colab opens notebooks from it.
PROJECT_URLS = re.compile(
    r"git\+https://github\.com/(?P<install>[\w.-]+/[\w.-]+?)(?:\.git)?(?=[\"'`\s)@]|$)"
    r"|colab\.research\.google\.com/github/(?P<colab>[\w.-]+/[\w.-]+)/"
)


def repository_slug(root: Path) -> str:
    """owner/name of ``[project.urls] Repository`` in root/pyproject.toml (read with tomllib where there is one)."""
    text = (root / "pyproject.toml").read_text(encoding="utf-8")
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        url = re.search(r'^Repository\s*=\s*"([^"]+)"', text, re.MULTILINE)[1]
    else:
        url = tomllib.loads(text)["project"]["urls"]["Repository"]
    match = re.fullmatch(r"https://github\.com/([\w.-]+/[\w.-]+)", url)
    assert match, f"pyproject.toml: Repository = {url!r} is not https://github.com/OWNER/NAME"
    return match[1]


def written_slugs(root: Path) -> dict[str, list[str]]:
    """{file (and cell): the slugs of its install and Colab URLs} for the notebooks, README and docs."""
    found = {}
    texts = {path.relative_to(root).as_posix(): path.read_text(encoding="utf-8") for path in _text_files(root)}
    for path in sorted((root / "notebooks").glob("*.ipynb")):
        for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
            texts[f"{path.relative_to(root).as_posix()} cell {index}"] = cell.source
    for where, text in texts.items():
        slugs = [match["install"] or match["colab"] for match in PROJECT_URLS.finditer(text)]
        if slugs:
            found[where] = slugs
    return found


def _text_files(root: Path) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def test_every_badge_install_and_link_uses_the_repository_of_pyproject():
    slug = repository_slug(ROOT)
    found = written_slugs(ROOT)
    wrong = {where: slugs for where, slugs in found.items() if set(slugs) != {slug}}
    assert not wrong, f"these name another repository than pyproject.toml's {slug!r} (make set-repo-url): {wrong}"
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        name = path.relative_to(ROOT).as_posix()
        assert f"{name} cell 0" in found and f"{name} cell 1" in found, f"{name}: badge or setup cell without the URL"
    assert "README.md" in found and "docs/NOTEBOOK_CONVENTIONS.md" in found


def test_the_pattern_sees_both_forms_of_the_url():
    text = (
        '%pip install -q "nst-helpers @ git+https://github.com/a-b/c.d"\n'
        "[badge](https://colab.research.google.com/github/e/f/blob/main/notebooks/01_x.ipynb)\n"
        "https://github.com/jupyter-widgets/ipywidgets/issues/3452 is someone else's\n"
    )
    assert [match["install"] or match["colab"] for match in PROJECT_URLS.finditer(text)] == ["a-b/c.d", "e/f"]


@pytest.fixture
def checkout(tmp_path):
    """A copy of what the script rewrites: pyproject.toml, README, docs (text only) and the notebooks."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copy(ROOT / "README.md", tmp_path)
    shutil.copytree(ROOT / "docs", tmp_path / "docs", ignore=shutil.ignore_patterns("*.png", "*.jpg", "*.gif"))
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    return tmp_path


def _set_repo_url(root: Path, url: str, capsys) -> tuple[int, str]:
    """Run the script's command line in this process (a new interpreter takes seconds to import nbformat)."""
    spec = importlib.util.spec_from_file_location("set_repo_url", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        code = module.main([url, "--root", str(root)])
    except SystemExit as stop:  # a bad URL: SystemExit("one-line message")
        code, message = 1, str(stop.code)
    else:
        message = capsys.readouterr().out
    return code, message


def test_set_repo_url_moves_every_copy_on_a_copy_of_the_checkout(checkout, capsys):
    old = repository_slug(checkout)
    before = {path: path.read_bytes() for path in checkout.rglob("*") if path.is_file()}
    code, printed = _set_repo_url(checkout, "https://github.com/someone/style-notes.git", capsys)
    assert code == 0 and "notebooks/05_style_sliders.ipynb: 2 replacement(s)" in printed, printed
    assert repository_slug(checkout) == "someone/style-notes"
    found = written_slugs(checkout)
    assert found.keys() == written_slugs(ROOT).keys()  # the same places, nothing lost
    assert all(set(slugs) == {"someone/style-notes"} for slugs in found.values()), found
    badge = nbformat.read(checkout / "notebooks" / "05_style_sliders.ipynb", as_version=4).cells[0].source
    assert "colab.research.google.com/github/someone/style-notes/blob/main/notebooks/05_style_sliders.ipynb" in badge
    changed = {path for path, data in before.items() if path.read_bytes() != data}
    mentions_it = {path for path, data in before.items() if path.suffix == ".md" and old in data.decode("utf-8")}
    assert changed == {checkout / "pyproject.toml", *checkout.glob("notebooks/*.ipynb"), *mentions_it}
    assert "nothing to change" in _set_repo_url(checkout, "https://github.com/someone/style-notes", capsys)[1]
    assert _set_repo_url(checkout, f"https://github.com/{old}", capsys)[0] == 0
    assert {path: path.read_bytes() for path in before} == before  # and back, byte for byte


def test_set_repo_url_refuses_what_is_not_a_github_repository(checkout, capsys):
    before = (checkout / "pyproject.toml").read_text(encoding="utf-8")
    for url in ("", "github.com/a/b", "https://gitlab.com/a/b", "https://github.com/a", "https://github.com/a/b/c"):
        code, message = _set_repo_url(checkout, url, capsys)
        assert code == 1 and message.endswith("give https://github.com/OWNER/NAME."), (url, message)
    assert (checkout / "pyproject.toml").read_text(encoding="utf-8") == before
