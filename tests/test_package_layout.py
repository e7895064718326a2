"""The package's shape, as README's module table describes it: small modules, imports flowing one way,
no private name used outside its module, and the core importable without the notebook extras."""

import ast
import subprocess
import sys

import pytest

from helpers import ROOT

PACKAGE = ROOT / "nst_helpers"
#: README's "floors": a module may import modules of its own floor or below, never above.
FLOORS = {
    **dict.fromkeys(
        [
            "errors",
            "devices",
            "download",
            "image_files",
            "images",
            "data",
            "vgg",
            "weights",
            "losses",
            "fastconv",
            "lbfgs",
        ]
        + ["colors", "masks"],
        1,
    ),
    **dict.fromkeys(["speed", "memory", "objective", "optimizers", "frames", "recorder", "config", "control"], 2),
    "loss_scale": 2,
    **dict.fromkeys(["pyramid", "pyramid_run"], 2),
    "transfer": 3,
    **dict.fromkeys(["plots", "preview", "animation", "paper"], 4),
    **dict.fromkeys(["widgets", "widget_parts", "uploads", "replay_widget", "__main__", "__init__"], 5),
}
MODULES = sorted(path.stem for path in PACKAGE.glob("*.py"))


def _relative_imports(name: str) -> list[tuple[str, list[str]]]:
    tree = ast.parse((PACKAGE / f"{name}.py").read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.append((node.module, [alias.name for alias in node.names]))
            else:  # from . import fastconv
                found.extend((alias.name, []) for alias in node.names)
    return found


def test_every_module_has_a_floor_and_a_first_line_saying_what_it_owns():
    assert set(MODULES) == set(FLOORS), "add the new module to README's module table and to FLOORS here"
    for name in MODULES:
        docstring = ast.get_docstring(ast.parse((PACKAGE / f"{name}.py").read_text(encoding="utf-8")))
        assert docstring and len(docstring.splitlines()[0]) > 20, f"{name}.py needs a first docstring line"


@pytest.mark.parametrize("name", MODULES)
def test_modules_are_small(name):
    lines = len((PACKAGE / f"{name}.py").read_text(encoding="utf-8").splitlines())
    assert lines <= 350, f"{name}.py has {lines} lines: split it by concern"


@pytest.mark.parametrize("name", MODULES)
def test_imports_flow_downwards_and_private_names_stay_home(name):
    for module, names in _relative_imports(name):
        assert FLOORS[module] <= FLOORS[name], (
            f"{name} (floor {FLOORS[name]}) imports {module} (floor {FLOORS[module]})"
        )
        private = [imported for imported in names if imported.startswith("_")]
        assert not private, f"{name} imports private names {private} from {module}"


def test_the_core_imports_without_ipywidgets_or_the_benchmark():
    code = "import sys, nst_helpers; print(sorted(m for m in sys.modules if m.startswith(('ipywidgets', 'bench'))))"
    printed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert printed.strip() == "[]"
