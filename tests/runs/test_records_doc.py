"""docs/records.md defines what a record holds: it must name (in backticks) every file of every kind of record, every
key of their JSON files and every column of their CSV files, so a field added without its definition fails here.

One small record of each kind is made once (a traced single-shot run with its shared pre-training, multishot, the
four conservation experiments, and int8, sparse and AMP timing made from the single-shot run), on a synthetic digits
stand-in with one epoch: a few seconds."""

import dataclasses
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from test_derived import CHEAP

import prunelab.precision.int8 as int8_paths
from prunelab.runs.config import CONSERVATION_EXPERIMENTS, RunConfig
from prunelab.runs.registry import run

DOC = Path(__file__).parents[2] / "docs" / "records.md"
QUIET = dict(progress=False, log=lambda _: None)
TINY = dict(dataset="digits", model="fc", data_source="synthetic", train_subset=64, test_subset=32, post_epochs=1,
            train_batch_size=32, test_batch_size=16, compression=0.5, prune_dataset_ratio=2)
#: each conservation experiment's cheapest run (schedule-conservation: SynFlow in 2 rounds, not 100)
CONSERVATION = {"unit-conservation": {}, "layer-conservation": {}, "imp-conservation": dict(pruner="mag", levels=1),
                "schedule-conservation": dict(pruner="synflow", prune_epochs=2)}
KINDS = ("singleshot", "pretrain", "multishot", *CONSERVATION_EXPERIMENTS, "int8", "sparse", "amp-timing")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A result dir holding a record of every kind."""
    base = RunConfig(**TINY, result_dir=str(tmp_path_factory.mktemp("records")))
    source = run(base.replace(pre_epochs=1, save_trace=True), **QUIET)
    run(base.replace(experiment="multishot", levels=2, pre_epochs=1), **QUIET)
    for experiment, changes in CONSERVATION.items():
        run(base.replace(experiment=experiment, post_epochs=1, **changes), **QUIET)
    with pytest.MonkeyPatch.context() as patch:  # int8 on the old path: the same fields, without PT2E's compiling
        patch.setattr(int8_paths, "pt2e_unavailable", lambda: "left out by the test")
        for make, settings in CHEAP.values():
            make(source, settings, log=QUIET["log"])
    return Path(base.result_dir)


def _named_in_doc() -> set[str]:
    return set(re.findall(r"`([^`\n]+)`", DOC.read_text()))


def _keys(value, nested: tuple[str, ...] = ()) -> set[str]:
    """The keys of a JSON object, and those of the objects under the keys ``nested`` (one level of them each)."""
    keys = set(value)
    for key in nested:
        if isinstance(value.get(key), dict):
            keys |= _keys(value[key], ("original_design",))
    return keys


def _names(folder: Path) -> dict[str, set[str]]:
    """Every name a record folder holds, by where it is: its files, their JSON keys and CSV columns."""
    read = lambda name: json.loads((folder / name).read_text())  # noqa: E731
    names = {"files": {p.name for p in folder.iterdir()},
             "summary.json": _keys(read("summary.json"), ("trace", "design_steps")),
             "config.json": _keys(read("config.json"), ("int8", "sparse", "amp_timing")),
             "env.json": _keys(read("env.json"))}
    for table in sorted(folder.glob("*.csv")):
        names[table.name] = set(pd.read_csv(table, nrows=0).columns)
    return names


@pytest.mark.parametrize("kind", KINDS)
def test_every_file_field_and_column_of_a_record_is_defined_in_the_doc(store, kind):
    (folder,) = [p for p in (store / kind).iterdir() if not p.name.startswith(".")]
    named = _named_in_doc()
    missing = {where: sorted(names - named) for where, names in _names(folder).items() if names - named}
    assert not missing, f"docs/records.md does not name these of a {kind} record: {missing}"


def test_the_records_checked_hold_the_optional_parts_too(store):
    (singleshot,) = (store / "singleshot").iterdir()
    summary = json.loads((singleshot / "summary.json").read_text())
    assert {"trace", "design_steps", "pretrain_record"} <= set(summary)  # only a traced run that pre-trains has them
    assert (store / "sparse").is_dir() and len(list((store / "sparse").glob("*/layers.csv"))) == 1


def test_every_configuration_field_is_defined_in_the_doc():
    # the fields a record of a built-in pruner leaves out (a registered pruner's version and origin) included
    missing = sorted({f.name for f in dataclasses.fields(RunConfig)} - _named_in_doc())
    assert not missing, f"docs/records.md does not name these configuration fields: {missing}"
