"""Figure A draws Table A's runs as their records hold them: after every epoch of the training after pruning, the
mean over seeds as a line and the seeds' range as a band, Mag's pre-training left out."""

import matplotlib
import matplotlib.pyplot as plt
import pandas as pd
import pytest
from matplotlib.colors import to_hex
from matplotlib.legend import Legend

from prunelab import workbook
from prunelab.runs.config import RunConfig
from prunelab.runs.fused import run_configs
from prunelab.runs.store import load_record
from prunelab.workbook.grids import records_table
from prunelab.workbook.style import INK

matplotlib.use("Agg")

SEEDS, POST_EPOCHS, PRE_EPOCHS = (1, 2), 2, 3
#: the rows of Figure A's panels: the epochs.csv column each draws, and the factor it is drawn at (times in ms)
ROWS = {"test_loss": 1.0, "top1": 1.0, "top5": 1.0, "inference_s": 1e3}


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A small store: Rand and Mag (pre-trained first) at compression 1 and at 0.5, and the unpruned network, over
    two seeds, on synthetic MNIST; the notebook's tables of them (pruned, unpruned)."""
    store = tmp_path_factory.mktemp("store")

    def config(pruner: str, compression: float, seed: int) -> RunConfig:
        return RunConfig(dataset="mnist", model="fc", data_source="synthetic", train_subset=128, test_subset=64,
                         train_batch_size=64, post_epochs=POST_EPOCHS, pre_epochs=PRE_EPOCHS if pruner == "mag" else 0,
                         pruner=pruner, compression=compression, seed=seed, result_dir=str(store), fuse="off")

    pruned = [config(p, c, s) for p in ("rand", "mag") for c in (1.0, 0.5) for s in SEEDS]
    records = run_configs(pruned + [config("rand", 0.0, s) for s in SEEDS], progress=False, log=lambda _m: None)
    return records_table(records[:len(pruned)]), records_table(records[len(pruned):])


def _lines(ax) -> dict[str, object]:
    """A panel's lines by colour (hex), each label's in its own."""
    return {to_hex(line.get_color()): line for line in ax.lines}


def test_figure_a_draws_the_seeds_mean_after_every_epoch_after_pruning(tables):
    table, dense = tables
    fig = workbook.plot_epoch_curves(table, dense=dense)
    at_one = pd.concat([dense, table[table["compression"] == 1.0]])
    colours = {**workbook.palette(at_one["label"]), workbook.DENSE_LABEL: INK}
    assert len(fig.axes) == len(ROWS)  # one set-up: a column of a panel per measure
    for ax, (metric, factor) in zip(fig.axes, ROWS.items()):
        lines = _lines(ax)
        assert set(lines) == {to_hex(colours[label]) for label in at_one["label"]}  # compression 0.5 not drawn
        for label, runs in at_one.groupby("label"):
            epochs = pd.concat([load_record(path).epochs for path in runs["path"]])
            post = epochs[epochs["phase"] == "post"].groupby("epoch")[metric]
            line = lines[to_hex(colours[label])]
            assert list(line.get_xdata()) == list(range(POST_EPOCHS + 1))
            assert list(line.get_ydata()) == pytest.approx(list(post.mean() * factor))
            assert (line.get_linestyle() == "--") == (label == workbook.DENSE_LABEL)
            band = next(c for c in ax.collections if to_hex(c.get_facecolor()[0]) == to_hex(colours[label]))
            ys = band.get_paths()[0].vertices[:, 1]
            assert min(ys) == pytest.approx(post.min().min() * factor)
            assert max(ys) == pytest.approx(post.max().max() * factor)
    plt.close(fig)


def test_figure_a_leaves_out_mags_pre_training(tables):
    table, dense = tables
    mag = table[(table["label"] == "Mag") & (table["compression"] == 1.0)]
    epochs = [load_record(path).epochs for path in mag["path"]]
    assert all((e["phase"] == "pre").sum() == PRE_EPOCHS + 1 for e in epochs)  # its records hold the pre-training
    fig = workbook.plot_epoch_curves(table, dense=dense)
    top1 = _lines(fig.axes[1])[to_hex(workbook.palette(["Mag"])["Mag"])]
    post = pd.concat(epochs).query("phase == 'post'").groupby("epoch")["top1"].mean()
    assert list(top1.get_xdata()) == list(range(POST_EPOCHS + 1))  # epochs 0 to 2 once each, none of 0 to 3 before
    assert list(top1.get_ydata()) == pytest.approx(list(post))
    plt.close(fig)


def test_one_slow_evaluation_pass_turns_the_time_axis_logarithmic_not_the_others(tables):
    table, dense = tables
    runs = pd.concat([dense, table])
    epochs = pd.concat([load_record(path).epochs.assign(path=path) for path in runs["path"]], ignore_index=True)
    fig = workbook.plot_epoch_curves(table, dense=dense, epochs=epochs)
    assert [ax.get_yscale() for ax in fig.axes][2:] == ["linear", "linear"]  # top-5 and times as they are
    plt.close(fig)
    slow = epochs.index[(epochs["phase"] == "post") & (epochs["epoch"] == 1)][0]
    epochs.loc[slow, "inference_s"] = 50 * epochs["inference_s"].max()  # one pass under load
    fig = workbook.plot_epoch_curves(table, dense=dense, epochs=epochs)
    assert [ax.get_yscale() for ax in fig.axes][1:] == ["linear", "linear", "log"]
    plt.close(fig)


def test_the_note_on_fused_times_names_which_pruners_trained_in_which_network(tables):
    table, dense = tables
    steps = {"Rand": "fused (4 runs)", "Mag": "fused (2 runs)"}
    fig = workbook.plot_epoch_curves(table.assign(train_step=table["label"].map(steps)), dense=dense)
    (legend,) = fig.findobj(Legend)
    note = " ".join(legend.get_title().get_text().split())
    assert "Rand fused (4 runs)" in note and "Mag fused (2 runs)" in note
    plt.close(fig)
