"""Move the project to another GitHub repository: rewrite its slug (owner/name) everywhere it is written.

The repository URL has one home, ``[project.urls] Repository`` in ``pyproject.toml``. Copies of its
slug sit where a URL must be literal: every notebook's Colab badge and setup cell (``%pip install
"nst-helpers @ git+https://github.com/OWNER/NAME"``), the README and ``docs/*.md``
(``tests/test_repo_url.py`` checks that they agree). This script replaces the slug of
``pyproject.toml`` by the new one in all of them, the notebooks through nbformat::

    make set-repo-url URL=https://github.com/owner/name
    python tools/set_repo_url.py https://github.com/owner/name [--root DIR]

Only slugs that follow ``github.com/`` or Colab's ``/github/`` are replaced, so other text that
happens to contain the old name stays as it is.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

GITHUB_URL = re.compile(r"https://github\.com/(?P<slug>[\w.-]+/[\w.-]+?)(?:\.git)?/?")
REPOSITORY_LINE = re.compile(r'^Repository\s*=\s*"(?P<url>[^"]+)"', re.MULTILINE)


def repository_url(pyproject: str) -> str:
    """The ``Repository`` URL of ``[project.urls]`` in the text of a pyproject.toml."""
    section = pyproject.split("[project.urls]", 1)
    match = REPOSITORY_LINE.search(section[1].split("\n[", 1)[0]) if len(section) == 2 else None
    if match is None:
        raise SystemExit('pyproject.toml has no [project.urls] Repository = "https://github.com/OWNER/NAME" line.')
    return match["url"]


def slug_of(url: str) -> str:
    """``owner/name`` of a GitHub repository URL; a one-line error for anything else."""
    match = GITHUB_URL.fullmatch(url.strip())
    if match is None:
        raise SystemExit(f"{url!r} is not a GitHub repository URL: give https://github.com/OWNER/NAME.")
    return match["slug"]


def replace_slug(text: str, old: str, new: str) -> tuple[str, int]:
    """``text`` with ``old`` replaced by ``new`` after ``github.com/`` or ``/github/``; and how many were."""
    pattern = re.compile(r"(?:(?<=github\.com/)|(?<=/github/))" + re.escape(old) + r"(?![\w.-])")
    return pattern.subn(new, text)


def rewrite(root: Path, new_url: str) -> list[str]:
    """Replace the slug of ``root/pyproject.toml`` by that of ``new_url``; returns one line per changed file."""
    pyproject = root / "pyproject.toml"
    old, new = slug_of(repository_url(pyproject.read_text(encoding="utf-8"))), slug_of(new_url)
    if old == new:
        return []
    changed = []
    for path in [pyproject, root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        if path.is_file():
            text, count = replace_slug(path.read_text(encoding="utf-8"), old, new)
            if count:
                path.write_text(text, encoding="utf-8")
                changed.append(f"{path.relative_to(root)}: {count}")
    for path in sorted((root / "notebooks").glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        total = 0
        for cell in notebook.cells:
            cell.source, count = replace_slug(cell.source, old, new)
            total += count
        if total:
            nbformat.write(notebook, path)
            changed.append(f"{path.relative_to(root)}: {total}")
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the new repository, https://github.com/OWNER/NAME")
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1], help="the checkout")
    args = parser.parse_args(argv)
    changed = rewrite(args.root, args.url)
    if not changed:
        print(f"nothing to change: the repository is already {args.url}")
    for line in changed:
        print(f"{line} replacement(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
