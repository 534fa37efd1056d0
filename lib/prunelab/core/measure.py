"""Numbers that describe a pruned network: FLOPs, densities, the per-layer summary, weight values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
from torch import Tensor

from ..models.layers import IDENTITY_TYPES, MaskedMixin

SUMMARY_COLUMNS = ["module", "param", "shape", "size", "density", "flops", "score mean", "score variance",
                   "score sum", "score abs mean", "score abs variance", "score abs sum", "prunable"]


def _param_flops(module: nn.Module, output: Tensor) -> dict[str, int]:
    """FLOPs of one module's parameters as the original tool counts them.

    A weight costs one multiply-accumulate at every output position it touches; a bias one add per
    output; a batchnorm scale and shift one operation each per output; a residual scale one multiply per
    output. Modules without parameters cost nothing.
    """
    flops: dict[str, int] = {}
    spatial = math.prod(output.shape[2:]) if output.dim() > 2 else 1
    if isinstance(module, nn.Linear):
        flops["weight"] = module.in_features * module.out_features
        if module.bias is not None:
            flops["bias"] = module.out_features
    elif isinstance(module, nn.Conv2d):
        kernel = math.prod(module.kernel_size)
        flops["weight"] = module.in_channels * module.out_channels // module.groups * kernel * spatial
        if module.bias is not None:
            flops["bias"] = module.out_channels * spatial
    elif isinstance(module, nn.modules.batchnorm._BatchNorm):
        if module.affine:
            flops["weight"] = module.num_features * spatial
            flops["bias"] = module.num_features * spatial
    elif isinstance(module, IDENTITY_TYPES):
        flops["weight"] = module.num_features * spatial
    return flops


@torch.no_grad()
def count_flops(model: nn.Module, input_shape, device: torch.device | str | None = None
                ) -> dict[str, dict[str, int]]:
    """Per module, per parameter FLOPs of a dense forward pass on one input of ``input_shape``.

    Forward hooks are registered for this one pass and always removed (the original left them on).
    The model's train / eval mode and batchnorm statistics are left as they were.
    """
    if device is None:
        device = next(model.parameters()).device
    flops: dict[str, dict[str, int]] = {}
    handles = []
    for name, module in model.named_modules():
        def hook(mod, inputs, output, name=name):
            flops[name] = _param_flops(mod, output)
        handles.append(module.register_forward_hook(hook))
    was_training = model.training
    try:
        model.eval()
        dtype = next(model.parameters()).dtype
        model(torch.ones((1, *input_shape), device=device, dtype=dtype))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return flops


def _stats(values: np.ndarray) -> list[float]:
    a = np.abs(values)
    return [float(values.mean()), float(values.var()), float(values.sum()),
            float(a.mean()), float(a.var()), float(a.sum())]


def layer_summary(model: nn.Module, flops: dict[str, dict[str, int]],
                  scores: dict[str, Tensor] | None = None) -> pd.DataFrame:
    """One row per parameter: shape, size, density (kept fraction), FLOPs, score statistics, prunable.

    ``prunable`` is true for the parameters that were scored (present in ``scores``); others have
    density 1 unless their mask prunes something, and score statistics of zero.
    """
    scores = scores or {}
    rows = []
    for module_name, module in model.named_modules():
        for param_name, param in module.named_parameters(recurse=False):
            full = f"{module_name}.{param_name}" if module_name else param_name
            scored = full in scores
            density = 1.0
            if isinstance(module, MaskedMixin) and param_name in module.masked_names():
                density = float(module.mask_of(param_name).float().mean().item())
            score = scores[full].detach().double().cpu().numpy() if scored else np.zeros(1)
            rows.append([module_name, param_name, tuple(param.shape), param.numel(), density,
                         flops.get(module_name, {}).get(param_name, 0), *_stats(score), scored])
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def summary_totals(summary: pd.DataFrame) -> dict[str, float]:
    """Kept / total parameters and FLOPs (FLOPs of the pruned model are the sum of density x FLOPs)."""
    kept_params = float((summary["density"] * summary["size"]).sum())
    total_params = float(summary["size"].sum())
    kept_flops = float((summary["density"] * summary["flops"]).sum())
    total_flops = float(summary["flops"].sum())
    prunable = summary[summary["prunable"]]
    return {
        "params_kept": round(kept_params),
        "params_total": int(total_params),
        "param_density": kept_params / total_params,
        "flops_kept": round(kept_flops),
        "flops_total": int(total_flops),
        "flop_density": kept_flops / total_flops if total_flops else 1.0,
        "prunable_kept": round(float((prunable["density"] * prunable["size"]).sum())),
        "prunable_total": int(prunable["size"].sum()),
    }


def densities(model: nn.Module) -> dict[str, float]:
    """Kept fraction of every masked parameter, by name."""
    out = {}
    for module_name, module in model.named_modules():
        if isinstance(module, MaskedMixin):
            for p in module.masked_names():
                out[f"{module_name}.{p}"] = float(module.mask_of(p).float().mean().item())
    return out
