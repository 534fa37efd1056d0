"""Bytes on disk of a pruned model: fp32 dense, fp32 sparse (bitmask or CSR per layer), and int8 (dense,
and with its pruned entries left out)."""

from __future__ import annotations

import io
import math
from collections.abc import Iterator

import numpy as np
import torch
import torch.ao.nn.quantized as nnq
import torch.nn as nn
from torch import Tensor

from ..core.inference import strip_masks, weight_masks
from .pt2e import PT2EInt8, pt2e_int8_weights

#: torch.save's zip format costs about 1.3 KB per file plus about 240 B per stored tensor (record
#: headers, pickle, 64-byte alignment of each storage), measured on torch 2.14; bounds with headroom:
SAVE_OVERHEAD_BASE = 2048
SAVE_OVERHEAD_PER_TENSOR = 384


def saved_bytes(obj) -> int:
    """Bytes of ``torch.save(obj)``."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.tell()


def _tensors(obj) -> Iterator[Tensor]:
    if isinstance(obj, Tensor):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for item in obj:
            yield from _tensors(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _tensors(item)


def raw_bytes(obj) -> tuple[int, int]:
    """(data bytes, stored tensors) of the tensors in ``obj``, as torch.save writes them.

    A per-channel quantized tensor is written as its int8 data plus float64 scales and int64 zero points.
    """
    total, count = 0, 0
    for t in _tensors(obj):
        total += t.untyped_storage().nbytes()
        count += 1
        if t.is_quantized and t.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
            total += t.q_per_channel_scales().numel() * 8 + t.q_per_channel_zero_points().numel() * 8
            count += 2
    return total, count


def bitmask_bytes(numel: int, kept: int) -> int:
    """1 bit per entry, packed, plus the kept values as fp32."""
    return math.ceil(numel / 8) + 4 * kept


def csr_bytes(rows: int, kept: int) -> int:
    """CSR of the [out, rest] view with int32 indices: row pointers, column indices, fp32 values."""
    return 4 * (rows + 1) + 8 * kept


def sparse_state_dict(model: nn.Module) -> tuple[dict[str, Tensor], dict[str, int]]:
    """The plain state dict with every conv/linear weight stored sparsely, and its byte counts.

    Each weight takes the smaller of two formats: a bitmask (``ceil(n/8)`` bytes) plus fp32 kept values,
    or CSR of its ``[out, rest]`` view with int32 indices (``4(rows+1) + 8k`` bytes). The bitmask wins
    above a density of about 1/32, CSR below; ``<name>.shape`` (int32) restores the dense shape.
    Everything else (biases, batchnorm) stays dense.
    """
    masks = weight_masks(model)
    state = strip_masks(model).state_dict()
    out: dict[str, Tensor] = {}
    counts = dict(values=0, index=0, dense=0, shape=0, bitmask_layers=0, csr_layers=0)
    for key, value in state.items():
        layer = key.removesuffix(".weight")
        if not (key.endswith(".weight") and layer in masks):
            out[key] = value
            counts["dense"] += value.untyped_storage().nbytes()
            continue
        mask = masks[layer].cpu()
        flat_mask = mask.reshape(mask.shape[0], -1)
        kept, rows = int(mask.sum()), flat_mask.shape[0]
        values = value.detach().cpu().float().reshape(rows, -1)[flat_mask].contiguous()  # row-major order
        out[f"{key}.shape"] = torch.tensor(list(value.shape), dtype=torch.int32)
        out[f"{key}.values"] = values
        if bitmask_bytes(mask.numel(), kept) <= csr_bytes(rows, kept):
            bits = np.packbits(flat_mask.reshape(-1).numpy().astype(np.uint8))
            out[f"{key}.bitmask"] = torch.from_numpy(bits)
            counts["index"] += bits.nbytes
            counts["bitmask_layers"] += 1
        else:
            crow = torch.cat([torch.zeros(1, dtype=torch.int64), flat_mask.sum(1).cumsum(0)]).to(torch.int32)
            col = flat_mask.nonzero()[:, 1].to(torch.int32).contiguous()
            out[f"{key}.crow"], out[f"{key}.col"] = crow, col
            counts["index"] += crow.numel() * 4 + col.numel() * 4
            counts["csr_layers"] += 1
        counts["values"] += values.numel() * 4
        counts["shape"] += out[f"{key}.shape"].numel() * 4
    return out, counts


def dense_from_sparse(sparse: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rebuild the dense plain state dict from :func:`sparse_state_dict` (to check it loses nothing)."""
    dense = {}
    for key, value in sparse.items():
        if key.endswith((".values", ".bitmask", ".crow", ".col")):
            continue
        if not key.endswith(".shape"):
            dense[key] = value
            continue
        name = key.removesuffix(".shape")
        shape = [int(s) for s in value]
        rows = shape[0]
        numel = math.prod(shape)
        if f"{name}.bitmask" in sparse:
            bits = np.unpackbits(sparse[f"{name}.bitmask"].numpy(), count=numel).astype(bool)
            flat_mask = torch.from_numpy(bits).reshape(rows, -1)
        else:
            crow, col = sparse[f"{name}.crow"].long(), sparse[f"{name}.col"].long()
            row_of = torch.repeat_interleave(torch.arange(rows), crow.diff())
            flat_mask = torch.zeros(rows, numel // rows, dtype=torch.bool)
            flat_mask[row_of, col] = True
        weight = torch.zeros(rows, numel // rows)
        weight[flat_mask] = sparse[f"{name}.values"]
        dense[name] = weight.reshape(shape)
    return dense


def model_sizes(model_fp32_pruned: nn.Module, qmodel: nn.Module) -> dict[str, int]:
    """Bytes on disk (``torch.save`` to memory) of three encodings of a pruned model, with the counts
    that make the sums checkable.

    * ``fp32_dense_bytes``: the plain state dict (:func:`strip_masks`, masks dropped); raw data
      ``fp32_dense_raw_bytes`` (``4 * num_params`` plus any buffers).
    * ``fp32_sparse_bytes``: :func:`sparse_state_dict`; raw data ``fp32_sparse_raw_bytes`` is
      ``sparse_values_bytes + sparse_index_bytes + sparse_shape_bytes + sparse_dense_bytes``.
    * ``int8_bytes``: the quantized model's state dict; raw data ``int8_raw_bytes`` is
      ``int8_weight_bytes`` (1 byte per conv/linear weight) + ``int8_qparam_bytes`` (per-channel
      float64 scale and int64 zero point; on the PT2E path a float32 scale and an int64 zero point) +
      ``int8_other_bytes`` (fp32 biases; on the old paths also activation scales).
    * ``int8_sparse_raw_bytes``: the raw data of the int8 model with each pruned layer's dense int8 weight
      replaced by a bitmask (1 bit per entry) and its kept int8 values (1 byte each): int8 and sparsity
      combined, computed rather than saved.

    Each ``*_bytes`` exceeds its ``*_raw_bytes`` by torch.save's overhead, at most
    ``SAVE_OVERHEAD_BASE + SAVE_OVERHEAD_PER_TENSOR * *_tensors``.
    """
    masks = weight_masks(model_fp32_pruned)
    dense_state = strip_masks(model_fp32_pruned).state_dict()
    dense_raw, dense_tensors = raw_bytes(dense_state)
    sparse, counts = sparse_state_dict(model_fp32_pruned)
    sparse_raw, sparse_tensors = raw_bytes(sparse)
    qstate = qmodel.state_dict()
    int8_raw, int8_tensors = raw_bytes(qstate)
    if isinstance(qmodel, PT2EInt8):  # int8 tensors with separate per-channel scale and zero point tensors
        found = pt2e_int8_weights(qmodel).values()
        qweights = [q for q, _, _ in found]
        int8_qparams = sum(raw_bytes([scale, zero_point])[0] for _, scale, zero_point in found)
    else:  # quantized tensors holding float64 scales and int64 zero points
        qweights = [m.weight() for m in qmodel.modules() if isinstance(m, (nnq.Conv2d, nnq.Linear))]
        int8_qparams = sum(raw_bytes(w)[0] - w.untyped_storage().nbytes() for w in qweights)
    int8_weight = sum(w.untyped_storage().nbytes() for w in qweights)
    # int8 with sparsity: a bitmask per pruned layer plus 1 byte per kept weight, in place of its dense int8
    int8_sparse_raw = int8_raw - sum(m.numel() for m in masks.values()) \
        + sum(math.ceil(m.numel() / 8) + int(m.sum()) for m in masks.values())
    return {
        "total_weights": sum(m.numel() for m in masks.values()),
        "kept_weights": sum(int(m.sum()) for m in masks.values()),
        "num_params": sum(p.numel() for p in model_fp32_pruned.parameters()),
        "fp32_dense_bytes": saved_bytes(dense_state),
        "fp32_dense_raw_bytes": dense_raw,
        "fp32_dense_tensors": dense_tensors,
        "fp32_sparse_bytes": saved_bytes(sparse),
        "fp32_sparse_raw_bytes": sparse_raw,
        "fp32_sparse_tensors": sparse_tensors,
        "sparse_values_bytes": counts["values"],
        "sparse_index_bytes": counts["index"],
        "sparse_shape_bytes": counts["shape"],
        "sparse_dense_bytes": counts["dense"],
        "sparse_bitmask_layers": counts["bitmask_layers"],
        "sparse_csr_layers": counts["csr_layers"],
        "int8_bytes": saved_bytes(qstate),
        "int8_raw_bytes": int8_raw,
        "int8_tensors": int8_tensors,
        "int8_weight_bytes": int8_weight,
        "int8_qparam_bytes": int8_qparams,
        "int8_other_bytes": int8_raw - int8_weight - int8_qparams,
        "int8_sparse_raw_bytes": int8_sparse_raw,
    }
