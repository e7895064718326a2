"""Structure of every notebook in ``notebooks/`` (docs/NOTEBOOK_CONVENTIONS.md), without running it.

Running the notebooks is nbval's job (``pytest --nbval-lax notebooks``); these
checks are static and fast: the file is valid nbformat, opens with a title and
a Colab badge pointing at itself, has the guarded setup cell, is stored
without outputs, names no machine-specific path, reads no local file that a
Colab runtime would not have, and ends with a Summary and Exercises.

The shared cells (badge, setup cell, imports / device / quick-mode cell, Colab
GPU metadata) are written once, as the blocks after ``<!-- shared: NAME -->``
markers in docs/NOTEBOOK_CONVENTIONS.md; every notebook is compared with them.
"""

from __future__ import annotations

import ast
import difflib
import json
import re
import sys
import types
from functools import cache
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CONVENTIONS = ROOT / "docs" / "NOTEBOOK_CONVENTIONS.md"
# A shared block in the conventions: a marker line, then a fenced code block (the block's text is the cell's text).
SHARED_BLOCK = re.compile(r"^<!-- shared: (?P<name>[\w-]+) -->\n```\w*\n(?P<text>.*?)\n```$", re.MULTILINE | re.DOTALL)
SHARED_NAMES = ("badge", "setup", "imports", "colab-gpu-metadata")
BADGE_PLACEHOLDER = "NN_topic.ipynb"  # stands for the notebook's own file name in the shared badge

BADGE = re.compile(
    r"\[!\[Open In Colab\]\(https://colab\.research\.google\.com/assets/colab-badge\.svg\)\]"
    r"\(https://colab\.research\.google\.com/github/[\w.-]+/[\w.-]+/blob/[\w.-]+/notebooks/(?P<name>[^)\s]+)\)"
)
# Paths that only exist on one machine (or only in Colab).
MACHINE_PATHS = (
    "/work/",
    "/home/",
    "/Users/",
    "/root/",
    "/tmp/",
    "/content/",
    "/mnt/",
    "C:\\",
    "../shared",
    "shared/weights",
    "shared/images",
)
# Calls whose first argument is a file to read; a literal there must be a URL or a file the notebook writes.
READERS = re.compile(
    r"""(?:\bopen|Image\.open|load_image|torch\.load|np\.load|read_csv|imread|read_bytes|read_text)\(\s*"""
    r"""(?:[rbf]{0,2})["'](?P<path>[^"']+)["']"""
)
WRITERS = re.compile(
    r"""(?:\.save|save_image|savefig|torch\.save|np\.save|imwrite|write_bytes|write_text)\(\s*(?:[rbf]{0,2})["']"""
    r"""(?P<path>[^"']+)["']|\bopen\(\s*["'](?P<opened>[^"']+)["']\s*,\s*["'][wax]"""
)
# Notebooks take their settings from the environment; they must not set them.
SETS_NST_VARIABLE = re.compile(
    r"""os\.environ(?:\[\s*["']NST_\w+["']\s*\]\s*=(?!=)|\.setdefault\(\s*["']NST_)"""
    r"""|%env\s+NST_|%set_env\s+NST_"""
)


def _ids(paths):
    return [path.name for path in paths]


@cache
def _read(path: Path):
    """The notebook, parsed once per test session (the tests only read it)."""
    return nbformat.read(path, as_version=4)


@cache
def _shared() -> dict[str, str]:
    """The shared blocks of docs/NOTEBOOK_CONVENTIONS.md, by marker name."""
    text = CONVENTIONS.read_text(encoding="utf-8")
    return {match["name"]: match["text"] for match in SHARED_BLOCK.finditer(text)}


def _split_import_block(source: str) -> tuple[str, str]:
    """(the leading import statements, the rest from the first other statement on) of a cell's source."""
    body = ast.parse(source).body
    first_other = next((node for node in body if not isinstance(node, (ast.Import, ast.ImportFrom))), None)
    if first_other is None:
        return source, ""
    lines = source.splitlines(keepends=True)
    return "".join(lines[: first_other.lineno - 1]), "".join(lines[first_other.lineno - 1 :])


def _diff(expected: str, actual: str, name: str) -> str:
    return "\n".join(
        difflib.unified_diff(
            expected.splitlines(), actual.splitlines(), "docs/NOTEBOOK_CONVENTIONS.md", name, lineterm=""
        )
    )


def _is_own_quick_setting(node: ast.stmt) -> bool:
    """An UPPER_CASE assignment whose value depends on QUICK, or a print call."""
    if isinstance(node, ast.Assign):
        names_ok = all(isinstance(target, ast.Name) and target.id.isupper() for target in node.targets)
        uses_quick = any(isinstance(name, ast.Name) and name.id == "QUICK" for name in ast.walk(node.value))
        return names_ok and uses_quick
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Name)
        and node.value.func.id == "print"
    )


def _headings(notebook, level: int) -> list[tuple[int, str]]:
    """(cell index, text) of the markdown headings of exactly ``level`` (e.g. 2 for ``## ...``)."""
    marker = "#" * level + " "
    found = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            if line.startswith(marker):
                found.append((index, line[len(marker) :].strip()))
    return found


def test_there_are_notebooks():
    assert NOTEBOOKS, f"no notebooks found in {NOTEBOOK_DIR}"


def test_conventions_define_the_shared_cells():
    shared = _shared()
    missing = [name for name in SHARED_NAMES if name not in shared]
    assert not missing, (
        f"{CONVENTIONS.name} lacks the shared block(s) {missing}: each is a "
        "'<!-- shared: NAME -->' line followed by a fenced code block"
    )
    assert BADGE_PLACEHOLDER in shared["badge"], f"the shared badge must link to {BADGE_PLACEHOLDER}"
    assert '"google.colab" in sys.modules' in shared["setup"]
    imports, rest = _split_import_block(shared["imports"])
    assert imports.strip() and rest.strip(), "the shared imports cell needs an import block and the lines after it"
    assert 'QUICK = os.environ.get("NST_QUICK") == "1"' in rest
    assert isinstance(json.loads(shared["colab-gpu-metadata"]), dict)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
class TestNotebookStructure:
    def test_valid_nbformat(self, path):
        notebook = _read(path)
        nbformat.validate(notebook)
        assert notebook.nbformat == 4
        kernel = notebook.metadata.get("kernelspec", {}).get("name")
        assert kernel in (None, "python3"), f"kernelspec {kernel!r}: use the plain 'python3' kernel"

    def test_file_name_is_numbered(self, path):
        assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", path.name), "name notebooks NN_topic.ipynb"

    def test_title_and_colab_badge_point_at_this_notebook(self, path):
        first = _read(path).cells[0]
        assert first.cell_type == "markdown", "the first cell must be the title (markdown)"
        title = first.source.lstrip().splitlines()[0]
        assert title.startswith(f"# {path.name[:2]} "), f"title {title!r} should start with '# {path.name[:2]} · '"
        badge = BADGE.search(first.source)
        assert badge, "the first cell needs the 'Open In Colab' badge (see docs/NOTEBOOK_CONVENTIONS.md)"
        assert badge["name"] == path.name, f"the Colab badge opens {badge['name']}, not {path.name}"
        expected = _shared()["badge"].replace(BADGE_PLACEHOLDER, path.name)
        assert expected in first.source.splitlines(), (
            f"the title cell needs this line (the shared badge of docs/NOTEBOOK_CONVENTIONS.md):\n{expected}"
        )

    def test_setup_cell_installs_the_package_only_in_colab(self, path):
        code_cells = [cell for cell in _read(path).cells if cell.cell_type == "code"]
        assert code_cells, "no code cells"
        setup = code_cells[0].source
        assert '"google.colab" in sys.modules' in setup, "the first code cell must be the guarded setup cell"
        assert re.search(r"%pip install .*nst-helpers", setup), "the setup cell must %pip install nst-helpers"
        install_line = next(line for line in setup.splitlines() if "%pip install" in line)
        assert install_line.startswith((" ", "\t")), "the install must be inside the `if` (Colab only)"

    def test_setup_cell_is_the_shared_one(self, path):
        cells = _read(path).cells
        assert len(cells) > 1 and cells[1].cell_type == "code", "the setup cell must come right after the title"
        expected = _shared()["setup"]
        assert cells[1].source == expected, (
            "the setup cell differs from the shared one in docs/NOTEBOOK_CONVENTIONS.md:\n"
            + _diff(expected, cells[1].source, path.name)
        )

    def test_imports_cell_is_the_shared_one(self, path):
        """Cell 3 = the shared cell + (only) the notebook's own imports and its own quick-mode settings."""
        cells = _read(path).cells
        assert len(cells) > 2 and cells[2].cell_type == "code", "the imports cell must come right after the setup cell"
        source = cells[2].source
        shared_imports, shared_rest = _split_import_block(_shared()["imports"])
        imports, rest = _split_import_block(source)

        import_lines = imports.splitlines()
        missing = [line for line in shared_imports.splitlines() if line.strip() and line not in import_lines]
        assert not missing, f"the imports cell's import block lacks the shared lines {missing}"

        assert rest.startswith(shared_rest), (
            "after its imports, the imports cell must go on with the shared lines of docs/NOTEBOOK_CONVENTIONS.md:\n"
            + _diff(shared_rest, rest[: len(shared_rest)], path.name)
        )
        own = rest[len(shared_rest) :]
        assert own == "" or own.startswith("\n"), "the shared lines must end the line they are on"
        for node in ast.parse(own).body:
            assert _is_own_quick_setting(node), (
                f"line {ast.get_source_segment(own, node)!r} of the imports cell: after the shared lines only "
                "UPPER_CASE settings that depend on QUICK (and print calls) may follow"
            )

    def test_colab_opens_it_on_a_gpu_runtime(self, path):
        notebook = _read(path)
        for key, value in json.loads(_shared()["colab-gpu-metadata"]).items():
            assert notebook.metadata.get(key) == value, (
                f"every notebook's metadata needs {key!r}: {value!r}, so that Colab opens it on a GPU runtime "
                "(docs/NOTEBOOK_CONVENTIONS.md, Colab runtime)"
            )

    def test_quick_mode_flag(self, path):
        sources = "\n".join(cell.source for cell in _read(path).cells if cell.cell_type == "code")
        assert 'QUICK = os.environ.get("NST_QUICK") == "1"' in sources, "define QUICK from NST_QUICK"

    def test_stored_without_outputs(self, path):
        for index, cell in enumerate(_read(path).cells):
            if cell.cell_type == "code":
                assert cell.get("outputs") == [], f"cell {index} has stored outputs (run nbstripout)"
                assert cell.get("execution_count") is None, f"cell {index} has an execution count (run nbstripout)"

    def test_no_machine_specific_paths(self, path):
        for index, cell in enumerate(_read(path).cells):
            for fragment in MACHINE_PATHS:
                assert fragment not in cell.source, (
                    f"cell {index} mentions {fragment!r}, which exists on one machine only"
                )

    def test_no_nst_settings_in_the_notebook(self, path):
        for index, cell in enumerate(_read(path).cells):
            if cell.cell_type == "code":
                assert not SETS_NST_VARIABLE.search(cell.source), (
                    f"cell {index} sets an NST_* variable; the environment provides those"
                )

    def test_reads_only_files_it_writes_or_urls(self, path):
        cells = [cell.source for cell in _read(path).cells if cell.cell_type == "code"]
        written = {match["path"] or match["opened"] for source in cells for match in WRITERS.finditer(source)}
        for index, source in enumerate(cells):
            for match in READERS.finditer(source):
                target = match["path"]
                if target.startswith(("http://", "https://")) or target in written:
                    continue
                pytest.fail(
                    f"code cell {index} reads {target!r}, which a fresh Colab runtime does not have; "
                    "use nst.sample_image(...), a URL, or a file the notebook writes first"
                )

    def test_nbval_skip_says_why(self, path):
        for index, cell in enumerate(_read(path).cells):
            if cell.cell_type == "code" and "NBVAL_SKIP" in cell.source:
                comments = [
                    line
                    for line in cell.source.splitlines()
                    if line.strip().startswith("#") and "NBVAL_SKIP" not in line
                ]
                assert comments, f"cell {index} is skipped by nbval; add a comment saying why"

    def test_ends_with_summary_and_exercises(self, path):
        notebook = _read(path)
        sections = _headings(notebook, 2)
        names = [text for _, text in sections]
        assert "Summary" in names and "Exercises" in names, "end with '## Summary' and '## Exercises'"
        assert names[-2:] == ["Summary", "Exercises"], f"the last sections must be Summary, Exercises; got {names[-2:]}"
        start = sections[-1][0]
        exercise_text = "\n".join(cell.source for cell in notebook.cells[start:] if cell.cell_type == "markdown")
        exercise_text = exercise_text.split("## Exercises", 1)[1]
        items = re.findall(r"^(?:\d+\.|[-*]) ", exercise_text, flags=re.MULTILINE)
        items += re.findall(r"^### ", exercise_text, flags=re.MULTILINE)
        assert 2 <= len(items) <= 4, f"{len(items)} exercises; the conventions ask for 2-4"


def _run_setup_cell(monkeypatch, *, colab: bool, installed: bool) -> list[tuple[str, str]]:
    """Run the shared setup cell, its ``%pip`` turned into a call recorded here; returns the recorded calls."""
    transform = pytest.importorskip("IPython.core.inputtransformer2").TransformerManager().transform_cell
    calls: list[tuple[str, str]] = []
    shell = types.SimpleNamespace(run_line_magic=lambda name, line: calls.append((name, line)))
    with monkeypatch.context() as patch:
        if colab:
            patch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
        else:
            patch.delitem(sys.modules, "google.colab", raising=False)
        if not installed:
            patch.setitem(sys.modules, "nst_helpers", None)  # `import nst_helpers` raises ImportError
        exec(transform(_shared()["setup"]), {"get_ipython": lambda: shell})
    return calls


def test_setup_cell_installs_in_colab_only(monkeypatch, capsys):
    assert _run_setup_cell(monkeypatch, colab=False, installed=False) == []  # locally: nothing, no error
    calls = _run_setup_cell(monkeypatch, colab=True, installed=True)
    assert len(calls) == 1 and calls[0][0] == "pip" and "nst-helpers @ git+https://github.com/" in calls[0][1]
    assert capsys.readouterr().out.startswith("nst-helpers ")


def test_setup_cell_stops_with_one_line_saying_what_to_do_when_the_install_failed(monkeypatch):
    with pytest.raises(RuntimeError) as raised:
        _run_setup_cell(monkeypatch, colab=True, installed=False)
    message = str(raised.value)
    assert "\n" not in message and message.startswith("nst-helpers is not installed")
    assert "pip's messages above" in message and "Restart session" in message and "URL" in message
    assert raised.value.__cause__ is None and raised.value.__suppress_context__  # the message alone, no chain
