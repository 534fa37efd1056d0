"""The layout's rules: imports run downward only (import-linter), no module over 400 lines, every
experiment name has its run function, and each fact has one source."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import prunelab
from prunelab.core import choices
from prunelab.core.registry import pruner_names
from prunelab.runs.config import CONSERVATION_EXPERIMENTS, EXPERIMENTS, TRAINING_EXPERIMENTS
from prunelab.runs.registry import EXPERIMENTS as REGISTRY

REPO = Path(__file__).resolve().parents[1]
LIB = Path(prunelab.__file__).parent
MAX_LINES = 400


def test_ruff_passes_with_the_plainness_rules():
    """Lint, including complexity at most 10, at most 8 arguments and 50 statements a function (pyproject.toml);
    a function that truly needs more says why in a local noqa."""
    exe = shutil.which("ruff", path=str(Path(sys.executable).parent)) or "ruff"
    config = (REPO / "pyproject.toml").read_text()
    assert all(rule in config for rule in ('"C901"', '"PLR0913"', '"PLR0915"'))
    result = subprocess.run([exe, "check", "lib", "tests", "bench", "scripts"], capture_output=True, text=True,
                            cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_import_contracts_hold():
    """Layers (workbook > runs > precision > core | data > models > errors), the layers inside runs, the model
    families' independence and no cycles between siblings, as pyproject.toml states them."""
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
    result = subprocess.run([exe, "--config", str(REPO / "pyproject.toml")], capture_output=True, text=True,
                            cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_no_module_is_longer_than_the_limit():
    long = {str(p.relative_to(LIB)): n for p in LIB.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long


def test_the_library_is_one_folder_per_layer():
    top = {p.name for p in LIB.iterdir() if not p.name.startswith("__")}
    assert top == {"models", "core", "data", "precision", "runs", "workbook", "plugins", "errors.py", "version.py",
                   "files.py"}


def test_every_experiment_name_has_its_run_function():
    assert EXPERIMENTS == (*TRAINING_EXPERIMENTS, *CONSERVATION_EXPERIMENTS)
    assert set(REGISTRY) == {*EXPERIMENTS, "int8", "sparse", "amp-timing"}
    assert [e.name for e in REGISTRY.values() if e.from_record] == ["int8", "sparse", "amp-timing"]


def test_pruner_names_order_and_rounds_come_from_one_place():
    assert choices.PRUNERS == ("rand", "mag", "snip", "grasp", "synflow")
    assert pruner_names()[:5] == choices.PRUNERS
    assert choices.default_rounds("synflow") == choices.SYNFLOW_ROUNDS == 100
    assert all(choices.default_rounds(p) == 1 for p in choices.PRUNERS if p != "synflow")
    # the literal 100 for SynFlow's rounds is written nowhere else in the library
    for path in LIB.rglob("*.py"):
        if path.name == "choices.py":
            continue
        text = path.read_text()
        assert "100 if" not in text and "[1, 100]" not in text, path


def test_the_command_line_lists_choices_without_importing_torch():
    code = ("import sys; from prunelab.runs.cli import build_parser; build_parser(); "
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stderr


def test_the_workbook_api_resolves_every_name_and_importing_it_loads_no_module_behind_it():
    """The notebooks' API is loaded name by name on first use: a name misspelt in its table would
    otherwise fail only in the notebook that calls it, and importing the package must stay cheap for the
    processes run_all.sh starts per notebook."""
    code = "import sys; import prunelab.workbook; print('torch' in sys.modules, 'nbformat' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False False", result.stderr
    from prunelab import workbook

    assert len(workbook.__all__) == len(set(workbook.__all__)) > 0
    for name in workbook.__all__:
        assert getattr(workbook, name) is not None, name
        assert name in dir(workbook), name
    # import-linter sees the modules behind the names only through the package's TYPE_CHECKING imports
    tree = ast.parse(Path(workbook.__file__).read_text())
    guard = next(node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING")
    named = {"." * i.level + (f"{i.module}." if i.module else "") + a.name
             for i in guard.body if isinstance(i, ast.ImportFrom) for a in i.names}
    assert named == set(workbook._API)
    try:
        workbook.no_such_name  # noqa: B018
    except AttributeError as error:
        assert "no_such_name" in str(error)
    else:
        raise AssertionError("an unknown name resolved")
