"""One typed run configuration: the original tool's flags plus prunelab's own, validation, a stable hash."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

from .errors import UserError

OPTIMIZERS = ("sgd", "momentum", "adam", "rms")
#: the SynFlow paper's theory experiments (prunelab.conservation_runs): no train-prune-train, one table each
CONSERVATION_EXPERIMENTS = ("unit-conservation", "layer-conservation", "imp-conservation", "schedule-conservation")
EXPERIMENTS = ("singleshot", "multishot", *CONSERVATION_EXPERIMENTS)
DATASET_NAMES = ("mnist", "cifar10", "cifar100", "digits", "tiny-imagenet", "imagenet")

#: fields that say where and how loudly a run happens, not what it computes: left out of the hash
RUNTIME_FIELDS = ("expid", "result_dir", "gpu", "workers", "no_cuda", "verbose", "force")


@dataclass
class RunConfig:
    """Everything that determines a single-shot run. Defaults are the original tool's.

    The batch sizes are 256 for training, testing and pruning (the course's setting of the tool), and
    ``prune_epochs=None`` means 100 scoring rounds for SynFlow and 1 for the other pruners.
    """

    # training
    dataset: str = "mnist"
    model: str = "fc"
    model_class: str = "default"
    dense_classifier: bool = False
    pretrained: bool = False
    optimizer: str = "adam"
    train_batch_size: int = 256
    test_batch_size: int = 256
    pre_epochs: int = 0
    post_epochs: int = 10
    lr: float = 0.001
    lr_drops: list[int] = field(default_factory=list)
    lr_drop_rate: float = 0.1
    weight_decay: float = 0.0
    # pruning
    pruner: str = "rand"
    compression: float = 1.0
    prune_epochs: int | None = None
    compression_schedule: str = "exponential"
    mask_scope: str = "global"
    prune_dataset_ratio: int = 10
    prune_batch_size: int = 256
    prune_bias: bool = False
    prune_batchnorm: bool = False
    prune_residual: bool = False
    prune_train_mode: bool = False
    reinitialize: bool = False
    shuffle: bool = False
    invert: bool = False
    # experiment
    experiment: str = "singleshot"
    seed: int = 1
    data_source: str = "real"
    train_subset: int | None = None
    test_subset: int | None = None
    save_trace: bool = False
    levels: int | None = None  # prune-train cycles (multishot, imp-conservation): one value of --level-list
    quantization: bool = False  # the original's name for mixed precision training
    amp_dtype: str | None = None  # fp16 | bf16 | None: the device's default (CUDA fp16, CPU bf16)
    # runtime only (not hashed)
    expid: str = ""
    result_dir: str = "results"
    gpu: int = 0
    workers: int = 4
    no_cuda: bool = False
    verbose: bool = False
    force: bool = False

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
        """Scoring rounds: ``prune_epochs``, or 100 for SynFlow and 1 for the others when it is None."""
        if self.prune_epochs is not None:
            return self.prune_epochs
        return 100 if self.pruner == "synflow" else 1

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
        from .data import DATA_SOURCES
        from .models import build_model_check
        from .pruners import PRUNERS, SCHEDULES, SCOPES

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
        choose(self.dataset, DATASET_NAMES, "dataset")
        choose(self.data_source, DATA_SOURCES, "data source")
        choose(self.optimizer, OPTIMIZERS, "optimizer")
        choose(self.pruner, PRUNERS, "pruner")
        choose(self.compression_schedule, SCHEDULES, "compression schedule")
        choose(self.mask_scope, SCOPES, "mask scope")
        build_model_check(self.model, self.model_class)
        if self.amp_dtype is not None:
            choose(self.amp_dtype, ("fp16", "bf16"), "AMP dtype")
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
