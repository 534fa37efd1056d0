"""``python -m prunelab.workbook.compare RESULT_DIR``: how the pruners of a result store compare, as plain text.

For runs made on the command line (``prunelab --pruner-list snip rand mine --compression-list 0.5 2 --seed-list 1 2``
and the same with ``--shuffle``, ``--reinitialize`` or ``--invert``), per set-up (data set / model, and the data its
runs used):

1. top-1 per pruner and compression as scored, mean ± sd (n seeds), a cell's collapsed runs counted in it;
2. each ablation against its pruner as scored, with the p and the verdict the workbook's sanity checks give it
   (:mod:`.ablations`: Welch's test, Holm-adjusted over the pruner's ablations at every compression);
3. how far two pruners' masks agree: of the weights either keeps, the share both keep (intersection over union of
   their pruned layers' masks), per compression as a mean over the seeds they share, and which pairs kept the very
   same weights on every one of them.

No statistic is new here: cells, tests and verdicts are the workbook's; ``--csv DIR`` writes the numbers behind them.
"""

from __future__ import annotations

import itertools
import math
import sys
import warnings
from pathlib import Path

import pandas as pd
import torch

from ..core.choices import CHANCE_RULE, REAL_SUBSET_WHY
from ..core.registry import pruner_rounds
from ..errors import UserError
from ..runs.cli import OneLineParser
from ..runs.config import RUNTIME_FIELDS
from ..runs.store import RunRecord, incomplete_folders, iter_records, read_layers
from .ablations import AS_SCORED, AblationVerdict, ablation_study, ablation_tests, single_ablations
from .collapses import collapsed_runs, emptied_layers
from .grids import records_table
from .numbers import NO_SPREAD, accuracy_cell, at_chance, compression_text, mean_sd, p_cell
from .style import column_order
from .tables import setup_row_label

#: the files ``--csv`` writes, by table, and their columns (each file is written, with its header where it has no row)
CSV_FILES = {"accuracy": "accuracy.csv", "ablations": "ablations.csv", "overlap": "mask_overlap.csv"}
CSV_COLUMNS = {
    "accuracy": ["setup", "data", "pruner", "compression", "top1_mean", "top1_sd", "n", "collapsed"],
    "ablations": ["setup", "data", "pruner", "compression", "ablation", "top1_mean", "top1_sd", "n", "scored_mean",
                  "scored_sd", "scored_n", "difference", "p_holm", "told_apart", "verdict"],
    "overlap": ["setup", "data", "compression", "pruner_a", "pruner_b", "iou_mean", "seeds", "identical"]}
#: what the tables set a set-up's runs apart by, or what does not change a run's result: runs of a set-up that
#: differ in anything else are noted (:func:`differing_settings`)
TABLE_FIELDS = {*RUNTIME_FIELDS, "pruner", "pruner_version", "pruner_origin", "compression", "seed", "shuffle",
                "reinitialize", "invert", "data_source"}
#: an ablation's verdict on a synthetic stand-in, from which the workbook draws none (:func:`.ablations.ablation_study`)
NO_VERDICT = "no verdict (stand-in data)"
COLLAPSED_RULE = f"collapsed: a layer kept no weight, or top-1 at chance ({CHANCE_RULE})"


def store_table(result_dir: Path) -> tuple[pd.DataFrame, dict[str, RunRecord], list[str]]:
    """The single-shot records of ``result_dir`` as the workbook's table (:func:`.grids.records_table`), each run's
    ``ablation`` (:func:`.ablations.single_ablations`) and ``block`` (its set-up and data,
    :func:`.tables.setup_row_label`) added; the records by path; notes for the reader (folders left out, runs that
    set several ablations at once). :class:`UserError` where there is no store or no such record in it."""
    if not result_dir.is_dir():
        raise UserError(f"no result store at {result_dir}: not a folder")
    invalid: dict[Path, str] = {}
    records = {str(r.path): r for r in iter_records(result_dir, invalid) if r.config.get("experiment") == "singleshot"}
    if not records:
        raise UserError(f"{result_dir} holds no complete single-shot record")
    notes = []
    left_out = len(set(incomplete_folders(result_dir)) | set(invalid))
    if left_out:
        notes.append(f"{left_out} folder(s) hold no complete record or fail verification and are left out "
                     f"(prunelab verify {result_dir} names them).")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = single_ablations(records_table(records.values()))
    notes += [f"{str(w.message).rstrip('.')}." for w in caught]
    table = table.assign(block=[setup_row_label(*v) for v in zip(table["setup"], table["data_source"], table["data"])])
    return table, records, notes


def pick_setup(table: pd.DataFrame, setup: str | None) -> pd.DataFrame:
    """The runs of the set-up named ``setup`` ("MNIST / FC", or "mnist/fc"), all where None; :class:`UserError`
    naming the store's set-ups where it holds no such one."""
    if setup is None:
        return table
    names = {_key(name): name for name in table["setup"]}
    names |= {_key(f"{d}/{m}"): name for d, m, name in zip(table["dataset"], table["model"], table["setup"])}
    if _key(setup) not in names:
        raise UserError(f"no set-up {setup!r} in the store; choose one of: {', '.join(dict.fromkeys(table['setup']))}")
    return table[table["setup"] == names[_key(setup)]]


def _key(name: str) -> str:
    return "".join(name.lower().split())



def accuracy_numbers(scored: pd.DataFrame) -> pd.DataFrame:
    """Top-1 as scored per pruner label and compression: mean, sd and n over seeds (:func:`.numbers.mean_sd`), how
    many of those runs collapsed (:func:`collapsed`), and the cell as the workbook writes it
    (:func:`.numbers.accuracy_cell`)."""
    rows = []
    flagged = scored.assign(collapsed=collapsed_runs(emptied_layers(scored), at_chance(scored)))
    for (label, compression), runs in flagged.groupby(["label", "compression"]):
        mean, sd, n = mean_sd(list(runs["top1"]))
        rows.append({"pruner": label, "compression": float(compression), "top1_mean": mean, "top1_sd": sd, "n": n,
                     "collapsed": int(runs["collapsed"].sum()), "cell": accuracy_cell(list(runs["top1"]))})
    return pd.DataFrame(rows)


def accuracy_text(numbers: pd.DataFrame) -> pd.DataFrame:
    """:func:`accuracy_numbers` as a table: a row per pruner, a column per compression, a cell's collapsed runs
    counted after it ("10.0 ± 0.0 (n=2), 2 of 2 collapsed")."""
    cells = [cell + (f", {k} of {n} collapsed" if k else "")
             for cell, k, n in zip(numbers["cell"], numbers["collapsed"], numbers["n"])]
    frame = numbers.assign(cell=cells).pivot(index="pruner", columns="compression", values="cell")
    frame = frame.loc[column_order(frame.index)].fillna(NO_SPREAD)
    frame.columns = [compression_text(c) for c in frame.columns]
    frame.columns.name, frame.index.name = "compression", None
    return frame


def verdict_words(verdict: AblationVerdict | None) -> str:
    """An ablation's verdict (:class:`.ablations.AblationVerdict`) in a few words; None: the pruner has no run as
    scored there to set it against."""
    if verdict is None:
        return "untested"
    if verdict.at_chance:
        return "both at chance"
    if not verdict.testable:
        return "untested"
    if verdict.told_apart:
        return "told apart"
    if verdict.collapsed or verdict.ablation_collapsed:
        return "not told apart, beside collapsed runs"
    return "not told apart, large: unresolved at this n" if verdict.low_power else "not told apart"


def ablation_numbers(block: pd.DataFrame) -> pd.DataFrame:
    """A row per pruner, compression and ablation that ran in ``block`` (one set-up on one data source): its top-1
    and the pruner's as scored, their difference, Welch's p Holm-adjusted over the pruner's family
    (:func:`.ablations.ablation_tests`) and the workbook's verdict (:func:`.ablations.ablation_study`, real data
    only)."""
    if (block["ablation"] == AS_SCORED).all():
        return pd.DataFrame()
    stand_in = bool(block["stand_in"].astype(bool).any())
    verdicts = {} if stand_in else {(v.pruner, v.compression, v.ablation): v for v in ablation_study(block)}
    rows = []
    for (_, label, compression, name), test in ablation_tests(block).items():
        runs = block[(block["label"] == label) & (block["compression"] == compression)]
        ablated, scored = (list(runs.loc[runs["ablation"] == side, "top1"]) for side in (name, AS_SCORED))
        if not ablated:
            continue
        mean, sd, n = mean_sd(ablated)
        scored_mean, scored_sd, scored_n = mean_sd(scored)
        rows.append({"pruner": label, "compression": float(compression), "ablation": name, "top1_mean": mean,
                     "top1_sd": sd, "n": n, "scored_mean": scored_mean, "scored_sd": scored_sd, "scored_n": scored_n,
                     "difference": test.difference, "p_holm": test.p_value,
                     "told_apart": None if stand_in else test.significant,
                     "verdict": NO_VERDICT if stand_in else verdict_words(verdicts.get((label, compression, name))),
                     "cell": accuracy_cell(ablated), "scored_cell": accuracy_cell(scored)})
    return pd.DataFrame(rows)


def ablation_text(numbers: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "pruner": numbers["pruner"], "compression": numbers["compression"].map(compression_text),
        "ablation": numbers["ablation"], "top-1 (%)": numbers["cell"], AS_SCORED: numbers["scored_cell"],
        "difference": [NO_SPREAD if math.isnan(d) else f"{d:+.1f}" for d in numbers["difference"]],
        "p (Holm)": [p_cell(p) if math.isfinite(p) else NO_SPREAD for p in numbers["p_holm"]],
        "verdict": numbers["verdict"]})


def kept_weights(record: RunRecord) -> dict[str, torch.Tensor]:
    """The masks of the layers ``record``'s run pruned (its layer table's ``prunable``; every mask where the table
    does not say), each flat, True where a weight is kept."""
    masks = record.masks()
    try:
        layers = read_layers(record.path)
        pruned = {f"{m}.{p}_mask".lstrip(".") for m, p, kept in zip(layers["module"], layers["param"],
                                                                    layers["prunable"]) if kept}
    except (OSError, KeyError):
        pruned = set(masks)
    return {name: mask.reshape(-1) != 0 for name, mask in masks.items() if name in pruned}


def shared_kept(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> tuple[int, int]:
    """How many weights both masks keep, and how many either keeps, over the layers both pruned."""
    names = [name for name in a if name in b and a[name].numel() == b[name].numel()]
    both = sum(int((a[name] & b[name]).sum()) for name in names)
    either = sum(int((a[name] | b[name]).sum()) for name in names)
    return both, either


def mask_overlaps(scored: pd.DataFrame, records: dict[str, RunRecord]) -> pd.DataFrame:
    """A row per compression, seed and pair of pruners that both ran there as scored: the intersection over union
    of their kept weights, and whether they kept the very same ones. One seed's masks are read at a time, each
    once."""
    rows = []
    for (compression, seed), runs in scored[scored["compression"] > 0].groupby(["compression", "seed"]):
        runs = runs.drop_duplicates("label")  # a pruner's runs that differ in other settings (noted): its first
        if len(runs) < 2:
            continue
        kept = {label: kept_weights(records[path]) for label, path in zip(runs["label"], runs["path"])}
        for a, b in itertools.combinations(column_order(kept), 2):
            both, either = shared_kept(kept[a], kept[b])
            rows.append({"compression": float(compression), "pruner_a": a, "pruner_b": b, "seed": int(seed),
                         "iou": both / either if either else math.nan, "identical": both == either})
    return pd.DataFrame(rows)


def overlap_summary(overlaps: pd.DataFrame) -> pd.DataFrame:
    """:func:`mask_overlaps` over seeds: per compression and pair, the mean intersection over union, the seeds they
    share and whether the masks were identical on every one."""
    return overlaps.groupby(["compression", "pruner_a", "pruner_b"], sort=False).agg(
        iou_mean=("iou", "mean"), seeds=("seed", "count"), identical=("identical", "all")).reset_index()


def overlap_text(summary: pd.DataFrame) -> pd.DataFrame:
    """One compression's :func:`overlap_summary` as a symmetric pruner × pruner table."""
    labels = column_order([*summary["pruner_a"], *summary["pruner_b"]])
    frame = pd.DataFrame(NO_SPREAD, index=labels, columns=labels)
    for row in summary.itertuples():
        cell = "identical" if row.identical else NO_SPREAD if math.isnan(row.iou_mean) else f"{row.iou_mean:.3f}"
        frame.loc[row.pruner_a, row.pruner_b] = frame.loc[row.pruner_b, row.pruner_a] = f"{cell} (n={row.seeds})"
    for label in labels:
        frame.loc[label, label] = ""
    return frame


def differing_settings(block: pd.DataFrame) -> dict[str, dict[str, list[str]]]:
    """The settings in which the runs of ``block`` differ, beside those the tables set them apart by
    (:data:`TABLE_FIELDS`): for each, its values (as Python writes them) and the pruner labels of the runs with each.
    Cells and pruners compared across such runs compare more than the pruning."""
    rounds = {name: pruner_rounds(name) for name in set(block["pruner"])}  # None: the pruner's own rounds
    configs = [(label, {k: (rounds[c["pruner"]] if k == "prune_epochs" and v is None else v)
                        for k, v in c.items() if k not in TABLE_FIELDS})
               for label, c in zip(block["label"], block["config"])]
    found = {}
    for name in sorted(set().union(*(config for _, config in configs))):
        labels: dict[str, set] = {}
        for label, config in configs:
            labels.setdefault(repr(config.get(name)), set()).add(label)
        if len(labels) > 1:
            found[name] = {value: column_order(runs) for value, runs in sorted(labels.items())}
    return found


def data_lines(block: pd.DataFrame) -> list[str]:
    """What data the runs of ``block`` used, as their records say: the source in words, the images each used, and
    an unmissable line for a synthetic stand-in."""
    counts = zip(block.get("train_examples", []), block.get("test_examples", []))
    sizes = sorted({(int(tr), int(te)) for tr, te in counts if pd.notna(tr) and pd.notna(te)})
    used = "; ".join(f"{tr:,} training / {te:,} test images" for tr, te in sizes) or "image counts not recorded"
    lines = [f"Data: {'; '.join(sorted(set(block['data'])))} ({used})."]
    if (block["data_source"] == "synthetic").any():
        lines.append("SYNTHETIC STAND-IN DATA, NOT REAL RESULTS: generated images, a pipeline check; do not read or "
                     "quote these accuracies or masks, and no verdict is drawn from them.")
    elif (block["data_source"] == "bundled").any():
        lines.append(REAL_SUBSET_WHY)
    return lines


def block_report(block: pd.DataFrame, records: dict[str, RunRecord]) -> tuple[list[str], dict[str, pd.DataFrame]]:
    """The lines of one set-up on one data source, and its numbers by :data:`CSV_FILES` table."""
    name = block["block"].iloc[0]
    scored = block[block["ablation"] == AS_SCORED]
    lines = [f"== {name}: {len(block)} runs ==", *data_lines(block)]
    for setting, values in differing_settings(block).items():
        lines.append(f"Note: the runs differ in {setting}: "
                     + "; ".join(f"{value} ({', '.join(labels)})" for value, labels in values.items()) + ".")
    numbers = {"accuracy": accuracy_numbers(scored), "ablations": ablation_numbers(block),
               "overlap": overlap_summary(mask_overlaps(scored, records)) if len(scored) else pd.DataFrame()}
    if len(numbers["accuracy"]):
        lines += ["", "Top-1 (%) as scored, mean ± sd (n seeds):", accuracy_text(numbers["accuracy"]).to_string()]
        if numbers["accuracy"]["collapsed"].any():
            lines.append(COLLAPSED_RULE + ".")
    if len(numbers["ablations"]):
        lines += ["", "Ablations against the pruner as scored (Welch's p, Holm-adjusted over each pruner's ablations "
                  "at every compression; the workbook's verdicts):",
                  ablation_text(numbers["ablations"]).to_string(index=False)]
    lines += overlap_lines(numbers["overlap"])
    return lines, numbers


def overlap_lines(summary: pd.DataFrame) -> list[str]:
    """Per compression the mask overlap table, and the pairs whose masks were identical on every shared seed."""
    if summary.empty:
        return ["", "Mask overlap: no two pruners ran as scored at one compression and seed."]
    lines = []
    for compression, pairs in summary.groupby("compression"):
        lines += ["", f"Mask overlap at compression {compression_text(compression)}: of the weights either pruner "
                  "keeps, the share both keep (intersection over union), mean over shared seeds:",
                  overlap_text(pairs).to_string()]
        same = pairs[pairs["identical"]]
        lines += [f"Identical masks on every shared seed ({n}): {a} and {b}."
                  for a, b, n in zip(same["pruner_a"], same["pruner_b"], same["seeds"])]
    return lines


def compare(result_dir: Path, setup: str | None = None) -> tuple[str, dict[str, pd.DataFrame]]:
    """The report of ``result_dir`` (one set-up where ``setup`` names it), and its numbers by :data:`CSV_FILES`
    table, a row per set-up, data, pruner and compression (and ablation, or pair of pruners)."""
    table, records, notes = store_table(result_dir)
    table = pick_setup(table, setup)
    blocks = list(dict.fromkeys(table["block"]))
    lines = [f"Result store {result_dir}: {len(table)} single-shot runs, {len(blocks)} set-up(s).", *notes]
    tables: dict[str, list[pd.DataFrame]] = {name: [] for name in CSV_FILES}
    for name in blocks:
        block = table[table["block"] == name]
        text, numbers = block_report(block, records)
        lines += ["", *text]
        for kind, frame in numbers.items():
            if len(frame):
                tables[kind].append(frame.assign(setup=block["setup"].iloc[0], data=block["data"].iloc[0]))
    return "\n".join(lines), {kind: pd.concat(frames)[CSV_COLUMNS[kind]] if frames else
                              pd.DataFrame(columns=CSV_COLUMNS[kind]) for kind, frames in tables.items()}


def write_csv(folder: Path, tables: dict[str, pd.DataFrame]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, frame in tables.items():
        path = folder / CSV_FILES[kind]
        frame.to_csv(path, index=False)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="compare", description="Compare the pruners of a result store: top-1 per pruner "
                           "and compression, ablations against each pruner as scored, and mask overlap.")
    parser.add_argument("result_dir", metavar="RESULT_DIR", help="the result store (--result-dir of the runs)")
    parser.add_argument("--setup", help="one set-up of the store, e.g. 'MNIST / FC' or mnist/fc (default: all)")
    parser.add_argument("--csv", metavar="DIR", help="also write the tables' numbers as CSV files into DIR")
    args = parser.parse_args(argv)
    try:
        if args.csv is not None and (not args.csv.strip() or Path(args.csv).exists() and not Path(args.csv).is_dir()):
            raise UserError(f"--csv {args.csv!r} is not a folder")
        text, tables = compare(Path(args.result_dir), args.setup)
    except UserError as err:
        print(f"compare: error: {err}", file=sys.stderr)
        return 2
    try:
        written = write_csv(Path(args.csv), tables) if args.csv is not None else []
    except OSError as err:
        print(f"compare: error: cannot write the CSV files into {args.csv}: {err.strerror or err}", file=sys.stderr)
        return 2
    print(text)
    if written:
        print("\nCSV: " + ", ".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
