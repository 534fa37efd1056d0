"""The mask audit: after training, is every pruned weight still exactly zero, and does every layer keep the
count pruning gave it?

Pruned weights are zeroed in the parameters once and held there by the optimizer's hooks
(:func:`prunelab.models.layers.keep_pruned_at_zero`). A path that bypasses them (an optimizer built without
the hooks, weights loaded over the pruned ones, an in-place edit) lets pruned weights drift back, and a mask
rewritten after pruning changes the sparsity a run reports; neither shows in the accuracy. The audit
compares, per scored parameter, the kept count pruning decided (its share of a global budget, or its local
quota) with the mask's count now, counts the pruned entries that are not exactly zero (NaN included, but in a
run that diverged), and checks the overall count against the target ``round(total * 10**-compression)``.

Verdict: ``drift`` when a pruned weight is not zero or a kept count is off its target, else ``collapsed``
when a layer kept no weight, else ``ok``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch

from ..models.layers import MaskedParam
from .pruners import PruneResult, keep_count

VERDICTS = ("ok", "drift", "collapsed")


@dataclass(frozen=True)
class LayerAudit:
    """One scored parameter after training: its ``size``, the kept count pruning decided (``target_kept``),
    the mask's kept count now (``kept``), its pruned entries whose weight is not exactly zero (``drift``) and,
    in a run that diverged, those NaN or infinite, which say nothing of the mask (``unchecked``)."""

    name: str
    size: int
    target_kept: int
    kept: int
    drift: int
    unchecked: int = 0

    @property
    def collapsed(self) -> bool:
        return self.kept == 0

    @property
    def off_target(self) -> bool:
        return self.kept != self.target_kept

    def row(self) -> dict:
        return {"layer": self.name, "size": self.size, "target_kept": self.target_kept, "kept": self.kept,
                "target_fraction": self.target_kept / self.size, "kept_fraction": self.kept / self.size,
                "drift": self.drift, "collapsed": self.collapsed}


@dataclass(frozen=True)
class MaskAudit:
    """Every scored parameter's :class:`LayerAudit` and the run's overall target: the kept fraction
    ``10**-compression`` (``target_fraction``) and its exact count (``target_kept``; None when nothing was
    pruned, as in a run that diverged before pruning)."""

    layers: tuple[LayerAudit, ...]
    target_fraction: float
    target_kept: int | None

    @property
    def kept(self) -> int:
        return sum(layer.kept for layer in self.layers)

    @property
    def total(self) -> int:
        return sum(layer.size for layer in self.layers)

    @property
    def drift(self) -> int:
        """Pruned weights, over all layers, that are not exactly zero."""
        return sum(layer.drift for layer in self.layers)

    @property
    def unchecked(self) -> int:
        """Pruned weights of a diverged run left unchecked, being NaN or infinite."""
        return sum(layer.unchecked for layer in self.layers)

    @property
    def collapsed(self) -> list[str]:
        return [layer.name for layer in self.layers if layer.collapsed]

    @property
    def off_target(self) -> list[str]:
        """Layers whose kept count is not the one pruning decided."""
        return [layer.name for layer in self.layers if layer.off_target]

    @property
    def overall_off_target(self) -> bool:
        return self.target_kept is not None and self.kept != self.target_kept

    @property
    def verdict(self) -> str:
        if self.drift or self.off_target or self.overall_off_target:
            return "drift"
        return "collapsed" if self.collapsed else "ok"

    def frame(self) -> pd.DataFrame:
        """One row per scored parameter (the record's ``mask_audit.csv``)."""
        return pd.DataFrame([layer.row() for layer in self.layers],
                            columns=["layer", "size", "target_kept", "kept", "target_fraction", "kept_fraction",
                                     "drift", "collapsed"])

    def summary(self) -> dict:
        """The audit's fields of a run's summary: the verdict, what it rests on, and the overall fractions."""
        return {"mask_audit": self.verdict, "mask_audit_drift": self.drift, "mask_audit_unchecked": self.unchecked,
                "mask_audit_collapsed": self.collapsed, "mask_audit_off_target": self.off_target,
                "mask_audit_target_fraction": self.target_fraction,
                "mask_audit_kept_fraction": self.kept / self.total if self.total else 1.0}

    def report(self) -> str:
        """What the audit found, in one line: the problems of a drift, else the counts."""
        if self.verdict == "drift":
            problems = []
            if self.drift:
                where = ", ".join(f"{layer.name}: {layer.drift}" for layer in self.layers if layer.drift)
                problems.append(f"{self.drift:,} pruned weight(s) not zero after training ({where})")
            if self.off_target:
                where = ", ".join(f"{layer.name}: {layer.kept:,} where pruning kept {layer.target_kept:,}"
                                  for layer in self.layers if layer.off_target)
                problems.append(f"kept counts changed since pruning ({where})")
            if self.overall_off_target:
                problems.append(f"{self.kept:,} weights kept where the target is {self.target_kept:,}")
            return "drift: " + "; ".join(problems)
        words = f"{self.verdict}: {self.kept:,} of {self.total:,} prunable weights kept"
        if self.target_kept is not None:
            words += f" (target {self.target_kept:,})"
        if self.unchecked:
            words += (f", every finite pruned weight exactly zero ({self.unchecked:,} NaN or infinite, as the run "
                      "diverged: not checked)")
        else:
            words += ", every pruned weight exactly zero"
        if self.collapsed:
            words += f"; no weight left in {', '.join(self.collapsed)}"
        return words


@torch.no_grad()
def audit_masks(targets: list[MaskedParam], pruning: PruneResult | None, diverged: bool = False) -> MaskAudit:
    """Audit the scored parameters ``targets`` against ``pruning``, the last pruning's result (None: the
    model was never pruned, so every layer's target is all its weights). In a run that ``diverged``, a pruned
    weight that is NaN or infinite is left unchecked, not drift: NaN times the mask's zero stays NaN.

    A parameter ``pruning`` gave no count for (a run resumed from a checkpoint written before the audit
    existed) is held to its mask as it stands; its pruned weights are still checked.
    """
    planned = pruning.layer_kept if pruning is not None else {t.name: t.mask.numel() for t in targets}
    layers = []
    for t in targets:
        pruned = t.mask == 0
        kept = t.mask.numel() - int(pruned.sum().item())
        off = pruned & (t.param.detach() != 0)
        unchecked = int((off & ~torch.isfinite(t.param.detach())).sum().item()) if diverged else 0
        layers.append(LayerAudit(t.name, t.mask.numel(), planned.get(t.name, kept), kept,
                                 int(off.sum().item()) - unchecked, unchecked))
    if pruning is None:
        return MaskAudit(tuple(layers), 1.0, None)
    compression = pruning.settings.compression
    return MaskAudit(tuple(layers), 10.0 ** -compression, keep_count(pruning.total, compression))
