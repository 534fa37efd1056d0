"""The runs each notebook needs, built from its papermill parameters, and running what is missing.

Notebooks that share settings build identical configurations here, so a run made for one notebook is
found in the result store by the next (same configuration, same hash, same record).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..core.choices import PRUNERS, SYNFLOW_ROUNDS
from ..data.catalog import source_words
from ..data.run_data import resolved_source
from ..runs.checks import fuse_word
from ..runs.config import RunConfig
from ..runs.pretrain import EXPERIMENT as PRETRAINING
from ..runs.store import RunRecord, usable_record
from ..runs.sweep import Executor, SlurmOptions, report, run_sweep
from ..runs.sweep_lines import PENDING
from .style import DENSE_LABEL, pruner_label

SETUPS = {  # the two rows of the user's Table A
    "cifar": dict(dataset="cifar10", model="resnet20", model_class="lottery", label="CIFAR-10 / ResNet20"),
    "mnist": dict(dataset="mnist", model="fc", model_class="default", label="MNIST / FC"),
    # int8 needs a network without residual additions; digits is real data that needs no download
    "digits": dict(dataset="digits", model="conv", model_class="default", label="digits / Conv"),
}


#: the environment variables that name the result store and the data folder wherever a notebook runs
RESULTS_ENV, DATA_ENV = "PRUNELAB_RESULTS", "PRUNELAB_DATA"


def project_root(start: Path | None = None) -> Path | None:
    """The prunelab checkout that holds ``start`` (default: the working directory): the nearest folder at or
    above it with ``run_all.sh`` and ``notebooks/``, or None outside a checkout."""
    here = (start or Path.cwd()).resolve()
    return next((folder for folder in (here, *here.parents)
                 if (folder / "run_all.sh").is_file() and (folder / "notebooks").is_dir()), None)


def store_path(result_dir: str) -> str:
    """Where a notebook's result store is: ``result_dir`` itself when absolute, else ``$PRUNELAB_RESULTS`` when
    set, else ``result_dir`` under the project root. A notebook opened in JupyterLab runs in ``notebooks/``;
    resolving against the root makes it share run_all.sh's store instead of growing ``notebooks/results/``."""
    if Path(result_dir).is_absolute():
        return result_dir
    if os.environ.get(RESULTS_ENV):
        return os.environ[RESULTS_ENV]
    root = project_root()
    return str(root / result_dir) if root else result_dir


def use_project_data() -> None:
    """Point ``$PRUNELAB_DATA`` at the project's ``data/`` when it is unset and a checkout holds the working
    directory, so runs started from ``notebooks/`` (and their worker processes) read the same data folder."""
    root = project_root()
    if root and not os.environ.get(DATA_ENV):
        os.environ[DATA_ENV] = str(root / "data")


@dataclass
class WorkbookParams:
    """The parameters every workbook notebook shares (each notebook's ``parameters`` cell sets them; the
    defaults are the quick profile's Task 1 values)."""

    profile: str = "quick"
    result_dir: str = "results"
    data_source: str = "auto"
    train_subset: int | None = 1000
    test_subset: int | None = 500
    post_epochs: int = 3
    pre_epochs_mag: int = 3
    compressions: list[float] = field(default_factory=lambda: [0.25, 0.5, 1.0])
    pruners: list[str] = field(default_factory=lambda: list(PRUNERS))
    synflow_rounds: list[int] = field(default_factory=lambda: [1, SYNFLOW_ROUNDS])
    #: every accuracy is a mean over these seeds; a set-up on synthetic stand-in data (a pipeline check)
    #: runs the first only
    seeds: list[int] = field(default_factory=lambda: [1, 2, 3])
    #: per set-up changes of the settings above, e.g. {"mnist": {"post_epochs": 30, "compressions": [1.0]}}
    overrides: dict = field(default_factory=dict)
    executor: str = "local"  # local | processes | slurm: where missing runs are computed
    workers: int = 1  # processes for the "processes" executor
    slurm: dict = field(default_factory=dict)  # partition, time, gpus, cpus, sbatch (see prunelab.runs.sweep)
    wait: bool = True  # False: submit to Slurm and stop; re-run the notebook when the runs have landed
    #: runs of one set-up trained together as one network where a fused step is measured faster here (auto),
    #: wherever possible (on), or never (off): prunelab.runs.fused
    fuse: str = "auto"

    @classmethod
    def from_namespace(cls, values: dict) -> WorkbookParams:
        """Pick the known names out of a notebook's globals (papermill injects them there); a single
        ``seed`` (older parameter files) means ``seeds: [seed]``. The result store and the data folder are
        the project's wherever the notebook runs (:func:`store_path`, :func:`use_project_data`)."""
        names = {f for f in cls.__dataclass_fields__}
        chosen = {k: v for k, v in values.items() if k in names}
        if "seeds" not in chosen and "seed" in values:
            chosen["seeds"] = [values["seed"]]
        if "fuse" in chosen:
            chosen["fuse"] = fuse_word(chosen["fuse"])
        params = cls(**chosen)
        params.result_dir = store_path(params.result_dir)
        use_project_data()
        return params

    def sweep_executor(self) -> Executor:
        """Where the runs these parameters lack are computed (:func:`prunelab.runs.sweep.run_sweep`)."""
        return Executor(self.executor, self.workers, SlurmOptions.from_dict(self.slurm), self.wait)

    def setting(self, setup: str, name: str):
        """A setting for one set-up (one of :data:`PER_SETUP`): its override when the parameters give one, else
        the shared value."""
        return self.overrides.get(setup, {}).get(name, getattr(self, name))


#: the settings ``overrides`` may change for one set-up (what :meth:`WorkbookParams.setting` is asked for)
PER_SETUP = ("data_source", "train_subset", "test_subset", "post_epochs", "pre_epochs_mag", "compressions", "pruners",
             "synflow_rounds")


def run_config(params: WorkbookParams, setup: str, pruner: str, compression: float,
               rounds: int | None = None, seed: int | None = None) -> RunConfig:
    """One single-shot run of the workbook (with the first seed unless ``seed`` is given): Mag is
    pre-trained first, as in the user's notes."""
    s = SETUPS[setup]
    value = lambda name: params.setting(setup, name)  # noqa: E731
    return RunConfig(
        dataset=s["dataset"], model=s["model"], model_class=s["model_class"], pruner=pruner,
        compression=float(compression), prune_epochs=rounds,
        pre_epochs=value("pre_epochs_mag") if pruner == "mag" else 0, post_epochs=value("post_epochs"),
        data_source=value("data_source"), train_subset=value("train_subset"), test_subset=value("test_subset"),
        seed=params.seeds[0] if seed is None else seed, result_dir=params.result_dir, fuse=params.fuse)


def seeds_for(params: WorkbookParams, setup: str) -> list[int]:
    """Every seed where the set-up's data is real; the first only where it would be the synthetic stand-in
    (a pipeline check: more seeds of made-up data would not make it quotable)."""
    source = resolved_source(SETUPS[setup]["dataset"], params.setting(setup, "data_source"))
    return list(params.seeds) if source != "synthetic" else list(params.seeds[:1])


def pruner_variants(params: WorkbookParams, setup: str) -> list[tuple[str, int | None]]:
    """(pruner, rounds) pairs for one set-up (its ``pruners`` and ``synflow_rounds``, overridden or shared):
    SynFlow once per entry of ``synflow_rounds``, the others with their default."""
    variants = []
    for pruner in params.setting(setup, "pruners"):
        if pruner == "synflow":
            variants += [("synflow", r) for r in params.setting(setup, "synflow_rounds")]
        else:
            variants.append((pruner, None))
    return variants


def tuning_grid(params: WorkbookParams) -> list[RunConfig]:
    """Task 1: CIFAR-10/ResNet20 and MNIST/FC, each at its compressions and with its pruners (``compressions``
    and ``pruners``, or a set-up's override of them: the quick profile studies MNIST/FC from 0.25 to 3 with
    the ProsPr plugin as well), every pruner variant, over its seeds."""
    return [run_config(params, setup, p, c, r, seed) for setup in ("cifar", "mnist")
            for seed in seeds_for(params, setup) for c in params.setting(setup, "compressions")
            for p, r in pruner_variants(params, setup)]


def dense_grid(params: WorkbookParams, setups: tuple[str, ...] = ("cifar", "mnist")) -> list[RunConfig]:
    """Task 1's reference: each set-up trained unpruned (compression 0 keeps every weight), over its seeds,
    so a reader sees what pruning costs."""
    return [run_config(params, setup, "rand", 0.0, None, seed) for setup in setups for seed in seeds_for(params, setup)]


def compression_grid(params: WorkbookParams, compression: float = 0.5) -> list[RunConfig]:
    """Task 3: the five pruners (SynFlow with its default rounds) on CIFAR-10/ResNet20 at one compression."""
    return [run_config(params, "cifar", p, compression) for p in params.pruners]


#: the sanity checks of notebook 05, as RunConfig's flags: each changes one thing about a pruner's masks or weights
ABLATION_FLAGS = ("shuffle", "reinitialize", "invert")


def ablation_grid(params: WorkbookParams) -> list[RunConfig]:
    """Notebook 05: every pruner of ``params.pruners`` but Rand (a random mask has no ranking to ablate), at each
    set-up's compressions, as scored and with each ablation alone, over the set-up's seeds. MNIST / FC always runs
    (on the bundled real subset where the profile says ``auto``); CIFAR-10 / ResNet20 only where its real data are
    found. The runs as scored are Task 1's where the settings match, so the store reuses them."""
    setups = ["mnist"] + (["cifar"] if resolved_source("cifar10", params.setting("cifar", "data_source")) == "real"
                          else [])
    configs = []
    for setup in setups:
        for seed in seeds_for(params, setup):
            for c in params.setting(setup, "compressions"):
                for pruner in (p for p in params.pruners if p != "rand"):
                    scored = run_config(params, setup, pruner, c, seed=seed)
                    configs += [scored] + [scored.replace(**{flag: True}) for flag in ABLATION_FLAGS]
    return configs


def trace_config(params: WorkbookParams, pruner: str = "snip", compression: float = 1.0) -> RunConfig:
    """Task 2: one CIFAR-10/ResNet20 run, trained briefly, with one inference step traced."""
    return run_config(params, "cifar", pruner, compression).replace(save_trace=True)


def amp_grid(params: WorkbookParams, compressions: Iterable[float], pruner: str = "rand",
             amp_dtype: str | None = None) -> list[RunConfig]:
    """Task 4: CIFAR-10/ResNet20 at each compression, once in fp32 and once with mixed precision.

    The fp32 runs are Task 1's runs where the compressions coincide, so they are reused from the store.
    """
    return [run_config(params, "cifar", pruner, c).replace(quantization=amp, amp_dtype=amp_dtype if amp else None)
            for c in compressions for amp in (False, True)]


def int8_grid(params: WorkbookParams, compressions: Iterable[float], pruner: str = "rand", epochs: int = 20
              ) -> list[RunConfig]:
    """Task 4's int8 part: ``default.conv`` on the real digits set (whole set, ``epochs`` epochs) per compression."""
    return [run_config(params, "digits", pruner, c).replace(data_source="real", train_subset=None, test_subset=None,
                                                            post_epochs=epochs)
            for c in compressions]


class RunsPending(RuntimeError):
    """Runs were submitted to a cluster and have not landed in the result store yet."""


def ensure_runs(configs: Iterable[RunConfig], progress: bool = True, params: WorkbookParams | None = None,
                require: tuple[str, ...] = ()) -> list[RunRecord]:
    """Records for ``configs``: reused from the store when complete, otherwise computed now.

    ``require`` names summary fields a notebook needs: a record made before prunelab measured them
    (peak memory, say) is recomputed.
    Missing runs are computed here, in worker processes, or on Slurm, as ``params.executor`` says. A run's
    own log goes to its record's ``log.txt``; a line per finished run goes to :func:`progress_line`'s
    destination, and the notebook shows one summary line. With ``params.wait`` false, runs are submitted
    to Slurm (those another process is training are left to it) and :class:`RunsPending` says to re-run the
    notebook once they have landed.
    """
    configs = list(configs)
    for config in configs:  # a bad parameter stops the notebook in one line before any run starts
        config.validate()
    missing = [_replacing_if_lacking(c) for c in configs if usable_record(c, require) is None]
    executor = params.sweep_executor() if params else Executor()
    if missing:
        progress_line(f"{len(missing)} of {len(configs)} runs to compute ({executor.kind}).", progress)
        with RunProgress(len(missing), progress) as shown:
            outcomes = run_sweep(missing, executor, log=shown.log, echo=False)
        failed = [o for o in outcomes if o.status == "failed"]
        if failed:
            raise RuntimeError(report(outcomes))
        if any(o.status in PENDING for o in outcomes):
            raise RunsPending(report(outcomes) + "\nRe-run this notebook when these runs have finished.")
    records = [usable_record(c.replace(force=False)) for c in configs]
    print(f"{len(records)} run{'s' if len(records) != 1 else ''}: {len(missing)} computed, "
          f"{len(records) - len(missing)} reused from the result store.")
    return records


#: set by run_all.sh: a file that receives a line per finished run, shown on the terminal as it runs
PROGRESS_FILE = "PRUNELAB_PROGRESS_FILE"


def progress_line(message: str, show: bool = True) -> None:
    """A progress line for a person watching: appended to ``$PRUNELAB_PROGRESS_FILE`` in a batch run
    (run_all.sh prints that file as it grows, and the rendered page stays clean), printed when a notebook
    is run by hand."""
    if not show:
        return
    target = os.environ.get(PROGRESS_FILE)
    if target:
        with open(target, "a", encoding="utf-8") as file:
            file.write(message + "\n")
    else:
        print(message, flush=True)


#: how the lines of a group's fusion decision begin (prunelab.runs.fused.decide)
FUSION_DECISIONS = ("fused:", "separate:")


class RunProgress:
    """Progress over the runs a notebook computes: in a batch job (``$PRUNELAB_PROGRESS_FILE`` set by
    run_all.sh) a line per finished run to that file, the page keeping its one summary line; in an
    interactive kernel a ``tqdm.auto`` bar (a widget in JupyterLab) that advances as each run finishes."""

    def __init__(self, total: int, show: bool = True) -> None:
        self.show, self.bar = show, None
        if show and not os.environ.get(PROGRESS_FILE):
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc="runs", unit="run")

    def __enter__(self) -> RunProgress:
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()

    def log(self, message: str) -> None:
        """A sweep's log line: a finished run's line ("  [k/n] ...") advances the bar, or is written to the
        batch job's progress file, and so is a group's fusion decision ("  fused: 18 runs in 1 group (...)",
        "  separate: ..."); other lines stay in the records' logs."""
        if message.lstrip().startswith(FUSION_DECISIONS):
            if self.bar is not None:
                self.bar.write(message.strip())
            else:
                progress_line(message.strip(), self.show)
            return
        finished = message.startswith("  [")
        if self.bar is not None:
            if finished:
                self.bar.set_postfix_str(message.strip()[:60], refresh=False)
                self.bar.update(1)
            return
        progress_line(message.strip(), self.show and finished)


def _replacing_if_lacking(config: RunConfig) -> RunConfig:
    """A run whose record lacks a field the notebook needs is recomputed: forced, or it would be reused."""
    return config.replace(force=True) if usable_record(config) is not None else config


def setup_label(dataset: str, model: str) -> str:
    """The workbook's name of a data set and model pair ("CIFAR-10 / ResNet20"), else "dataset / model"."""
    return next((s["label"] for s in SETUPS.values() if s["dataset"] == dataset and s["model"] == model),
                f"{dataset} / {model}")


def records_table(records: Iterable[RunRecord]) -> pd.DataFrame:
    """The tidy table of just these records (the store's table, limited to one notebook's runs), with each run's
    label, set-up and data, and its configuration as written under ``config`` (where the summary has a field too,
    the field's column gives the summary's value: the data source and precision the run resolved to); a shared
    pre-training (no compression: a step of the Mag runs that reuse it, not a run of its own) is left out, so the
    records of a whole store can be passed."""
    rows = []
    for record in (r for r in records if r.config.get("experiment") != PRETRAINING):
        row = {**record.config, **record.summary, "config": record.config, "record": record.path.name,
               "path": str(record.path), "device_name": record.env.get("device_name"), "torch": record.env.get("torch"),
               "cpu_bf16": record.env.get("cpu_bf16")}
        row["label"] = DENSE_LABEL if row["compression"] == 0 else pruner_label(row["pruner"], row["prune_epochs"])
        row["setup"] = setup_label(row["dataset"], row["model"])
        row["data"] = source_words(row["dataset"], row["data_source"])
        row.setdefault("amp", False)  # records made before mixed precision existed were fp32
        row.setdefault("amp_dtype", "fp32")
        rows.append(row)
    return pd.DataFrame(rows)


def stand_in_note(table: pd.DataFrame) -> str:
    """What a caption adds for rows of ``table`` (:func:`records_table`) on synthetic stand-in data: a flag naming
    those set-ups as pipeline checks, or nothing where every row used real data."""
    fake = _stand_in_setups(table)
    return f" ({', '.join(fake)}: SYNTHETIC stand-in data, a pipeline check)" if fake else ""


def stand_in_timing_note(table: pd.DataFrame) -> str:
    """:func:`stand_in_note` for a caption of times alone: the set-ups on synthetic stand-in data are named, and
    their times stand, as a network's time does not depend on the pixel values it reads."""
    fake = _stand_in_setups(table)
    return (f" ({', '.join(fake)}: SYNTHETIC stand-in images; a network's times do not depend on pixel values)"
            if fake else "")


def _stand_in_setups(table: pd.DataFrame) -> list[str]:
    """The set-ups of ``table``'s rows on synthetic stand-in data, sorted."""
    return sorted(set(table.loc[table["data_source"] == "synthetic", "setup"])) if len(table) else []
