"""One validation layer before anything is written: numeric flags, record names and grid files."""

import string

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prunelab.errors import UserError
from prunelab.runs.checks import EXPID_MAX, check_expid
from prunelab.runs.cli import main
from prunelab.runs.gridfile import MAX_RUNS, expand, load_grid, run_count

TINY = ["--data-source", "synthetic", "--train-subset", "8", "--test-subset", "8", "--post-epochs", "1"]
SAFE = string.ascii_letters + string.digits + "._-+=,"


def _refused(tmp_path, capsys, *args) -> str:
    """Run the command line in this process; it must exit 2 with one line and leave nothing on disk."""
    results = tmp_path / "results"
    assert main([*TINY, *args, "--result-dir", str(results)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("prunelab: error: "), err
    assert not results.exists()
    return err[0]


@pytest.mark.parametrize("args,needles", [  # the flag, the bad value and any bound the one line must name
    (["--lr", "inf"], ("--lr", "inf")),
    (["--lr", "nan"], ("--lr", "nan")),
    (["--lr", "0"], ("--lr", "0.0")),
    (["--weight-decay", "nan"], ("--weight-decay", "nan")),
    (["--lr-drop-rate=-inf"], ("--lr-drop-rate", "-inf")),
    (["--compression", "inf"], ("--compression", "inf")),
    (["--seed", "-1"], ("--seed", "-1")),
    (["--seed", str(2**64)], ("--seed", str(2**64))),
    (["--post-epochs", "1000000000"], ("--post-epochs", "1000000000", "100,000")),
    (["--train-batch-size", "10000000000"], ("--train-batch-size", "10000000000")),
    (["--lr-drops", "5", "-3"], ("--lr-drops", "-3")),
    (["--gpu", "-1"], ("--gpu", "-1")),
    (["--workers", "-2"], ("--workers", "-2")),
    (["--prune-epochs", "0"], ("--prune-epochs", "0")),
    (["--experiment", "multishot", "--level-list", "5000"], ("--level-list", "5000", "1,000")),
    (["--seed-list", "2", "-1"], ("--seed-list", "-1")),
    (["--seed-list", "2", "2"], ("--seed-list", "2")),  # the value listed twice, named with its flag
    (["--pruner-list", "snip", "snip", "--expid", "x"], ("--pruner-list", "snip")),
])
def test_numeric_flags_must_be_finite_and_in_range(tmp_path, capsys, args, needles):
    line = _refused(tmp_path, capsys, *args)
    assert all(needle in line for needle in needles), line


@pytest.mark.parametrize("expid,needle", [
    ("bad\nname", "a control character"),
    ("tab\there", "a control character"),
    ("nul\0byte", "a control character"),
    (".hidden", "a leading dot"),
    ("_ok-but-then-", None),
    ("=eq", "a leading '='"),
    ("a/b", "the character '/'"),
    ("caf\u00e9", "the character '\\xe9'"),
    ("x" * 245, "245 characters long"),
])
def test_unsafe_expids_are_refused_naming_the_rule(tmp_path, capsys, expid, needle):
    if needle is None:  # a trailing dash is fine: the run goes ahead
        assert main([*TINY, "--expid", expid, "--result-dir", str(tmp_path)]) == 0
        assert (tmp_path / "singleshot" / expid).is_dir()
        return
    line = _refused(tmp_path, capsys, f"--expid={expid}")
    assert needle in line and f"1 to {EXPID_MAX} characters" in line


@given(st.text(alphabet=SAFE, min_size=1, max_size=EXPID_MAX).filter(lambda s: s[0] not in ".-+=,"))
def test_every_name_from_the_documented_set_is_accepted(expid):
    check_expid(expid)


@given(st.text(min_size=1, max_size=300))
def test_an_expid_is_accepted_exactly_when_it_follows_the_rule(expid):
    follows = (len(expid) <= EXPID_MAX and all(c in SAFE for c in expid) and expid[0] not in ".-+=,")
    if follows:
        check_expid(expid)
    else:
        with pytest.raises(UserError) as info:
            check_expid(expid)
        assert "\n" not in str(info.value) and "\0" not in str(info.value)


# ---- grid files ------------------------------------------------------------------------------------

BASE = {"dataset": "mnist", "model": "fc", "data-source": "synthetic", "train-subset": 8, "test-subset": 8}


def _grid_file(tmp_path, content) -> str:
    path = tmp_path / "grid.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    return str(path)


@pytest.mark.parametrize("content,needle", [
    ("", "is empty"),
    ("# nothing but a comment\n", "is empty"),
    ("- rand\n- mag\n", "must be a mapping of sections"),
    ("just a string\n", "must be a mapping of sections"),
    ("executor: local\n", "names no runs"),
    ("base: [1, 2]\n", "base: expected a mapping, got list"),
    ({"base": {**BASE, "lr": "fast"}}, "base.lr: expected a number, got str 'fast'"),
    ({"base": {**BASE, "post-epochs": 1.5}}, "base.post-epochs: expected an integer, got float 1.5"),
    ({"base": {**BASE, "quantization": "yes please"}}, "base.quantization: expected true or false"),
    ({"base": {**BASE, "seed": True}}, "base.seed: expected an integer, got bool True"),
    ({"base": {**BASE, "lr-drops": [1, "x"]}}, "base.lr-drops: expected a list of integers"),
    ({"base": {**BASE, "train-subset": None, "pruner": None}}, "base.pruner: expected a string, got NoneType"),
    ({"base": BASE, "grid": {"compression": [0.5, "high"]}}, "grid.compression[1]: expected a number"),
    ({"base": BASE, "grid": {"pruner": "rand"}}, "must be a non-empty list"),
    ({"base": BASE, "grid": {"pruner": []}}, "must be a non-empty list"),
    ({"base": BASE, "grid": ["pruner"]}, "grid: expected a mapping"),
    ({"base": {**BASE, 3: 1}}, "base: keys must be setting names, not int 3"),
    ({"base": BASE, "overrides": {"when": {}}}, "overrides: expected a list"),
    ({"base": BASE, "overrides": [{"if": {"pruner": "mag"}}]}, "overrides[0]: unknown key(s) if"),
    ({"base": BASE, "overrides": [{"when": {"pruner": "mag"}, "set": {"pre-epochs": "many"}}]},
     "overrides[0].set.pre-epochs: expected an integer"),
    ({"base": BASE, "expid": 7}, "expid: expected a string, got int 7"),
    ({"base": BASE, "grid": {"pruner": ["rand"]}, "expid": "{pruner"}, "expid: the template '{pruner' is malformed"),
    ({"base": BASE, "grid": {"pruner": ["rand"]}, "expid": "{pruner.upper}"}, "which is not a setting"),
    ({"base": BASE, "grid": {"pruner": ["rand"]}, "expid": "{}"}, "which is not a setting"),
    ({"base": BASE, "grid": {"pruner": ["rand"]}, "expid": "{compression:zz}"}, "cannot be filled in"),
    ({"base": BASE, "grid": {"pruner": ["rand"]}, "expid": ".{pruner}"}, "a leading dot"),
    ({"base": BASE, "executor": "cloud"}, "unknown executor 'cloud'"),
    ({"base": BASE, "workers": "two"}, "workers: expected an integer"),
    ({"base": BASE, "workers": 0}, "workers must be at least 1"),
    ({"base": BASE, "slurm": {"time": "1h"}}, "slurm.time: expected an integer"),
    ({"base": BASE, "slurm": {"gpus": -1}}, "slurm gpus must be 0 or more"),
    ({"base": BASE, "slurm": "gpu"}, "slurm: expected a mapping"),
    ({"base": {**BASE, "lr": float("nan")}}, "--lr must be a finite number"),
    ({"base": BASE, "frobnicate": 1}, "unknown section(s) in the grid file: frobnicate"),
    (b"base: {model: fc}\nexpid: \xff\xfe\n", "is not UTF-8 text"),
    ("\ufeffbase: {model: fc}\n".encode("utf-16"), "is not UTF-8 text"),
    ("base: {model: [fc\n", "is not valid YAML"),
])
def test_bad_grid_files_are_one_line_errors_naming_the_key(tmp_path, content, needle):
    with pytest.raises(UserError) as info:
        load_grid(_grid_file(tmp_path, content))
    message = str(info.value)
    assert needle in message and "\n" not in message, message


def test_a_grid_too_large_is_refused_before_it_is_expanded(tmp_path, capsys):
    axes = {name: list(range(1, 101)) for name in ("seed", "post-epochs", "pre-epochs", "train-subset")}
    assert run_count({k.replace("-", "_"): v for k, v in axes.items()}) == 100**4
    path = _grid_file(tmp_path, {"base": {**BASE, "result-dir": str(tmp_path / "r")}, "grid": axes})
    assert main(["sweep", path, "--dry-run"]) == 2  # would take minutes and gigabytes if expanded first
    err = capsys.readouterr().err
    assert f"makes 100,000,000 runs (100 x 100 x 100 x 100), more than the {MAX_RUNS:,}" in err
    assert not (tmp_path / "r").exists()


def test_sweep_command_line_numbers_are_checked_too(tmp_path, capsys):
    path = _grid_file(tmp_path, {"base": BASE})
    assert main(["sweep", path, "--workers", "0", "--dry-run"]) == 2
    assert "workers must be at least 1" in capsys.readouterr().err


# ---- property-based: any mapping the schema does not describe is a one-line UserError, never a crash ----

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=True),
                     st.text(max_size=8))
_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                       max_leaves=8)
_keys = st.sampled_from(["pruner", "compression", "lr", "post-epochs", "seed", "quantization", "lr-drops", "expid",
                         "model", "bogus", "train-subset"])
_sections = st.fixed_dictionaries({}, optional={
    "base": st.one_of(_values, st.dictionaries(_keys, _values, max_size=4)),
    "grid": st.one_of(_values, st.dictionaries(_keys, st.lists(_values, max_size=3), max_size=3)),
    "overrides": _values, "expid": st.one_of(_values, st.text(max_size=12)), "executor": _values,
    "workers": _values, "slurm": _values})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=_sections)
def test_any_grid_file_loads_or_is_refused_in_one_line(tmp_path, spec):
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(spec))
    try:
        grid = load_grid(path)
    except UserError as err:
        assert "\n" not in str(err) and str(err)
    else:
        assert all(c.record_name and not c.record_name.startswith(".") for c in grid.configs)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(["seed", "post_epochs", "pre_epochs", "train_subset", "test_subset"]),
                       st.integers(1, 40), min_size=1, max_size=5))
def test_the_run_count_is_the_product_of_the_axes(sizes):
    grid = {name: list(range(1, n + 1)) for name, n in sizes.items()}
    count = run_count(grid)
    if count <= 200:
        assert len(expand({**{k.replace("-", "_"): v for k, v in BASE.items()}}, grid)) == count


# ---- one style for every message a person reads on a refusal: a lowercase sentence, no final period ----

def _error_messages():
    """(place, leading literal, trailing literal) of every message given to UserError, one of its subclasses
    or an argparse ``parser.error`` in lib/ (a part that is a placeholder is None)."""
    import ast
    from pathlib import Path

    import prunelab

    lib = Path(prunelab.__file__).parent
    trees = {path: ast.parse(path.read_text()) for path in sorted(lib.rglob("*.py"))}
    errors = {"UserError"}
    for tree in trees.values():  # subclasses, wherever they are defined (one level is all there is)
        errors |= {node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
                   and any(isinstance(b, ast.Name) and b.id == "UserError" for b in node.bases)}
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            if name not in errors and not (name == "error" and "parser" in ast.unparse(node.func)):
                continue
            text = node.args[0]
            parts = text.values if isinstance(text, ast.JoinedStr) else [text]
            literal = [p.value if isinstance(p, ast.Constant) and isinstance(p.value, str) else None for p in parts]
            yield f"{path.relative_to(lib)}:{node.lineno}", literal[0], literal[-1]


def test_every_refusal_message_is_a_lowercase_sentence_without_a_final_period():
    messages = list(_error_messages())
    assert len(messages) > 60  # every raise site is seen, not none
    capitalized = [place for place, first, _ in messages if first and first[0].isupper()]
    period = [place for place, _, last in messages if last and last.rstrip().endswith(".")]
    assert not capitalized and not period, (capitalized, period)


def test_an_unknown_slurm_option_with_a_line_break_is_named_on_one_line():
    from prunelab.runs.gridfile import SlurmOptions

    with pytest.raises(UserError) as refused:
        SlurmOptions.from_dict({"\n": None})
    assert "\n" not in str(refused.value) and "'\\n'" in str(refused.value)
