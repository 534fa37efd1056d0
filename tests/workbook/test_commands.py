"""The command lines the settings print: read back by `prunelab`'s own parser, they make exactly the table's runs."""

import html
import re
import shlex
from pathlib import Path

from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from prunelab.runs.cli import build_parser, configs_from_args, refuse_both_forms
from prunelab.runs.config import RunConfig
from prunelab.runs.store import RunRecord
from prunelab.workbook.commands import WIDTH, command_lines
from prunelab.workbook.grids import (
    WorkbookParams,
    amp_grid,
    dense_grid,
    records_table,
    run_config,
    trace_config,
    tuning_grid,
)
from prunelab.workbook.tables import settings_markdown

#: Task 1 as the quick profile runs it: CIFAR-10 / ResNet20 on the stand-in (one seed), MNIST / FC on real data
#: over three seeds with its own epochs, compressions and the ProsPr plugin; kept out of the store and fused
PARAMS = WorkbookParams(data_source="synthetic", seeds=[1, 2, 3], result_dir="/elsewhere/store", fuse="off",
                        overrides={"mnist": {"data_source": "real", "post_epochs": 30, "pre_epochs_mag": 30,
                                             "compressions": [0.25, 0.5, 1.0, 2.0],
                                             "pruners": ["rand", "mag", "snip", "grasp", "synflow", "prospr"]}})


def _table(configs: list[RunConfig]):
    """The records table of ``configs`` as records: each summary gives the data the run resolved to (bundled
    MNIST, not the configured source) and its precision, as a real record's does."""
    records = [RunRecord(Path("/store/singleshot") / c.config_hash(), c.to_dict(),
                         {"data_source": "bundled", "amp_dtype": "fp32", "train_examples": 100, "test_examples": 50},
                         {"device_name": "cpu"}) for c in configs]
    return records_table(records)


def _commands(lines: list[str]) -> list[list[RunConfig]]:
    """Each command line (continuation lines joined) as ``prunelab`` reads it: its runs."""
    runs = []
    for line in lines:
        words = shlex.split(line.replace("\\\n", " "))
        assert words[0] == "prunelab"
        args = build_parser().parse_args(words[1:])
        refuse_both_forms(words[1:], args)
        runs.append(configs_from_args(args))
    return runs


def _hashes(configs) -> list[str]:
    return sorted(c.config_hash() for c in configs)


def test_task_one_and_its_references_and_ablations_are_made_again_by_the_fewest_commands():
    shuffled = run_config(PARAMS, "mnist", "snip", 1.0, seed=2).replace(shuffle=True)  # one ablation run
    configs = tuning_grid(PARAMS) + dense_grid(PARAMS) + [shuffled]
    lines = command_lines(_table(configs + configs[:3]))  # a record listed twice is one run
    runs = _commands(lines)
    made = [c for command in runs for c in command]
    assert _hashes(made) == _hashes(configs)  # every run once, none the table lacks
    # per set-up: the unpruned reference, the pruners scored from initialization, Mag (pre-trained); the ablation
    assert len(lines) == 7
    assert [len(command) for command in runs] == [1, 5 * 3, 3, 3, 6 * 4 * 3, 4 * 3, 1]
    text = "\n".join(lines)
    for left_out in ("--result-dir", "--fuse", "--seed 1", "--experiment", "--expid", "--pruner-list rand mag"):
        assert left_out not in text
    # the data source as configured (the default, real, for MNIST), not as the summary gives what it resolved to
    assert [("--data-source synthetic" in line, "--data-source" in line) for line in lines[:6]] == \
        [(True, True)] * 3 + [(False, False)] * 3 and "bundled" not in text
    assert "--pruner-list rand snip grasp synflow synflow prospr --prune-epoch-list 1 1 1 1 100 1" in \
        " ".join(text.replace("\\\n", " ").split())  # the registry's order, SynFlow's rounds beside each
    assert re.search(r"--pruner snip .*--shuffle", lines[-1].replace("\\\n", " ")) and "--seed 2" in lines[-1]
    for line in lines:  # the set-up named in every command, defaults or not, as the user's commands name it
        words = line.replace("\\\n", " ").split()
        assert all(flag in words for flag in ("--dataset", "--model", "--model-class"))
    for line in lines:
        rows = line.splitlines()
        assert all(len(row) <= WIDTH for row in rows)
        assert all(row.endswith(" \\") for row in rows[:-1]) and all(row.startswith("    ") for row in rows[1:])


def test_a_grid_that_is_not_a_full_product_is_split_so_no_command_asks_for_a_run_the_table_lacks():
    params = WorkbookParams(data_source="synthetic")
    configs = ([run_config(params, "cifar", "snip", c, seed=s) for c in (0.5, 1.0) for s in (1, 2)]
               + [run_config(params, "cifar", "grasp", 0.5, seed=1), run_config(params, "cifar", "synflow", 1.0, 1),
                  trace_config(params), *amp_grid(params, [0.5, 1.0])])
    lines = command_lines(_table(configs))
    runs = _commands(lines)
    assert _hashes(c for command in runs for c in command) == _hashes(configs)  # each run once, no other
    # Rand, SNIP and GraSP at 0.5 on seed 1; Rand, SNIP and SynFlow with one round at 1 on seed 1; SNIP on seed 2
    # (no fewer: a command with GraSP, or with SynFlow, holds three runs at most); the trace; mixed precision
    assert sorted(len(command) for command in runs) == [1, 2, 2, 3, 3]
    assert any("--save-trace" in line for line in lines) and any("--quantization" in line for line in lines)
    # one round for every pruner listed with SynFlow's one: a count for them all, not one each
    assert [line.count("--prune-epochs 1") for line in lines if "synflow" in line] == [1]


def test_prune_train_cycles_are_listed_with_the_level_list_and_a_run_without_them_apart():
    base = RunConfig(experiment="multishot", pruner="mag", post_epochs=2)
    configs = [base.replace(levels=level, seed=seed) for level in (1, 2, 3) for seed in (1, 2)]
    (line,) = command_lines(_table(configs))
    assert "--level-list 1 2 3" in line and "--seed-list 1 2" in line
    assert _hashes(_commands([line])[0]) == _hashes(configs)
    magnitude = [RunConfig(experiment="imp-conservation", pruner="mag", levels=levels) for levels in (None, 2)]
    lines = command_lines(_table(magnitude))
    assert sorted(line.count("--level-list") for line in lines) == [0, 1]
    assert _hashes(c for command in _commands(lines) for c in command) == _hashes(magnitude)


def test_the_settings_end_with_the_commands_and_the_pdf_appendix_keeps_them():
    from prunelab.workbook.pdf_document import Task, build_document, page_html

    configs = tuning_grid(PARAMS)
    markdown = settings_markdown(PARAMS, _table(configs))
    block = markdown.split("```bash\n")[1].split("\n```")[0]
    lines = re.split(r"\n(?! )", block)  # a command's continuation lines are indented
    assert _hashes(c for command in _commands(lines) for c in command) == _hashes(configs)
    assert settings_markdown(PARAMS, _table(configs).drop(columns="config")).count("```") == 0  # no configurations
    cell = new_code_cell("show_settings()", outputs=[new_output("display_data", data={"text/markdown": markdown})])
    cell.metadata["tags"] = ["settings"]
    task = Task("01_tuning", "Task 1", new_notebook(cells=[new_markdown_cell("# Task 1\n\nWhy."), cell]))
    appendix = html.unescape(page_html(build_document([task], "quick"), {})).split('id="appendix"')[1]
    code = re.sub(r"<[^>]+>", "", appendix.split("<pre")[1].split("</pre>")[0].split(">", 1)[1])
    assert code.strip() == block.strip()  # the commands whole, line by line


def test_a_pruner_scoring_more_than_once_has_its_rounds_written_even_at_prunelabs_default():
    """prunelab's SynFlow scores over 100 rounds unless told otherwise, the original tool's over one: a command that
    left the rounds out would make other runs there, so every command naming a pruner that scores more than once
    gives the count; pruners that score once, by default in both tools, need none."""
    params = WorkbookParams(data_source="synthetic")
    alone = [run_config(params, "cifar", "synflow", 1.0, seed=1)]  # SynFlow at prunelab's default, 100
    assert alone[0].prune_epochs is None and alone[0].resolved_prune_epochs == 100
    (line,) = command_lines(_table(alone))
    assert "--prune-epochs 100" in line and _hashes(_commands([line])[0]) == _hashes(alone)
    once = [run_config(params, "cifar", pruner, 1.0, seed=1) for pruner in ("snip", "grasp")]
    (line,) = command_lines(_table(once))
    assert "--prune-epoch" not in line and _hashes(_commands([line])[0]) == _hashes(once)
