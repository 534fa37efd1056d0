"""Exact sparse replacements for one pruned linear or conv layer, each a small ``nn.Module``.

Every kernel computes the function of the dense layer it replaces (up to float rounding). Which is fastest
depends on the device, its library (MKL, oneDNN, cuSPARSE), the layer's shape and density and the input's
size, and no rule of thumb predicts it, so :mod:`prunelab.core.sparse` times them in place and keeps the
dense layer unless one clearly wins.

Linear layers, ``y = x Wᵀ + b``: ``compact`` (a dense GEMM over the live input columns and output rows: a
global mask often empties whole columns or rows), ``csr`` (dense x sparseᵀ, for very sparse layers on
MKL), ``csr_t`` (sparse x dense, better on MKL at moderate density), ``bsr`` (block-sparse rows, the
largest of 8x8, 4x4, 2x2 blocks that divides the shape) and ``semi24`` (2:4 semi-structured, CUDA only,
for fp16/bf16 weights whose mask already keeps at most two of every four, so nothing is dropped).

Conv layers (``groups == 1``, zero padding): ``compact`` (a dense convolution over the live input
channels and filters only, usually the better route on CPUs) and ``im2col_csr`` (im2col of the live
input channels, then a CSR matmul; skipped where the unfolded copy would pass ``MAX_UNFOLD_ELEMENTS``).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

LINEAR_KERNELS = ("compact", "csr", "csr_t", "bsr", "semi24")
CONV_KERNELS = ("compact", "im2col_csr")
#: an im2col copy larger than this (elements; 256 MiB in fp32) is not even tried
MAX_UNFOLD_ELEMENTS = 2 ** 26
BSR_BLOCKS = (8, 4, 2)
HALF_TYPES = (torch.float16, torch.bfloat16)


def _live(nonzero: Tensor, dim: int) -> Tensor:
    """Indices along ``dim`` (0: rows / filters, 1: columns / input channels) that hold any non-zero."""
    return nonzero.transpose(0, dim).flatten(1).any(1).nonzero().flatten()


def _register_live(module: nn.Module, layer: nn.Linear | nn.Conv2d) -> None:
    """Give ``module`` the live part of ``layer``: ``live_in`` / ``live_out`` indices (columns or input
    channels, rows or filters holding any non-zero), ``weight`` cut to them, ``bias`` and ``live_bias``, and
    whether inputs must be gathered and outputs scattered at all."""
    weight = layer.weight.detach()
    nonzero = weight != 0
    live_in, live_out = _live(nonzero, 1), _live(nonzero, 0)
    module.gather, module.scatter = len(live_in) < weight.shape[1], len(live_out) < weight.shape[0]
    bias = _bias_or_zeros(layer, weight.shape[0])
    module.register_buffer("live_in", live_in)
    module.register_buffer("live_out", live_out)
    module.register_buffer("weight", weight[live_out][:, live_in].contiguous())
    module.register_buffer("bias", bias)
    module.register_buffer("live_bias", bias[live_out].contiguous())


def _bias_or_zeros(layer: nn.Module, size: int) -> Tensor:
    weight = layer.weight
    if layer.bias is None:
        return torch.zeros(size, device=weight.device, dtype=weight.dtype)
    return layer.bias.detach().clone()


@contextmanager
def _quiet_beta() -> Iterator[None]:
    """PyTorch warns that sparse CSR / BSR support is in beta and, on newer versions, that unchecked sparse
    tensors are unsafe; every kernel is checked against dense instead, and the buffers come from PyTorch's
    own conversion, so they are valid."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Sparse (CSR|BSR) tensor support is in beta")
        warnings.filterwarnings("ignore", "Sparse invariant checks are implicitly disabled")
        yield


class _SparseWeight(nn.Module):
    """A sparse weight kept as dense component buffers, which ``.to()``, deepcopy and state_dict handle.

    The sparse tensor itself is built once per set of buffers and cached: building it costs as much
    as running a small layer, and sparse tensors cannot be deep-copied (the cache is dropped then).
    """

    def __init__(self, layout: torch.layout, weight: Tensor, blocksize: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.layout = layout
        self.size = tuple(weight.shape)
        with _quiet_beta():
            sparse = weight.to_sparse_bsr(blocksize) if layout == torch.sparse_bsr else weight.to_sparse_csr()
        self.register_buffer("crow", sparse.crow_indices())
        self.register_buffer("col", sparse.col_indices())
        self.register_buffer("values", sparse.values())
        self._cache: tuple | None = None

    def sparse(self) -> Tensor:
        parts = (self.crow, self.col, self.values)
        if self._cache is None or any(a is not b for a, b in zip(self._cache[:3], parts, strict=True)):
            build = torch.sparse_bsr_tensor if self.layout == torch.sparse_bsr else torch.sparse_csr_tensor
            with _quiet_beta():
                self._cache = (*parts, build(*parts, self.size, check_invariants=False))
        return self._cache[3]

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_cache"] = None
        return state


class CompactLinear(nn.Module):
    """Dense GEMM over the live input columns and live output rows; dead rows output their bias."""

    def __init__(self, layer: nn.Linear) -> None:
        super().__init__()
        _register_live(self, layer)

    def forward(self, x: Tensor) -> Tensor:
        lead, x = x.shape[:-1], x.reshape(-1, x.shape[-1])
        if self.gather:
            x = x.index_select(1, self.live_in)
        if not self.scatter:
            return F.linear(x, self.weight, self.bias).reshape(*lead, -1)
        out = self.bias.expand(x.shape[0], -1).contiguous()
        if len(self.live_out):
            out.index_copy_(1, self.live_out, F.linear(x, self.weight, self.live_bias))
        return out.reshape(*lead, -1)


class CSRLinear(nn.Module):
    """``F.linear`` with a CSR weight (dense x sparseᵀ)."""

    def __init__(self, layer: nn.Linear) -> None:
        super().__init__()
        self.weight = _SparseWeight(torch.sparse_csr, layer.weight.detach())
        self.register_buffer("bias", None if layer.bias is None else layer.bias.detach().clone())

    def forward(self, x: Tensor) -> Tensor:
        lead = x.shape[:-1]
        return F.linear(x.reshape(-1, x.shape[-1]), self.weight.sparse(), self.bias).reshape(*lead, -1)


class SparseLeftLinear(nn.Module):
    """``W_sparse @ xᵀ`` (sparse x dense), then transposed back; CSR (``csr_t``) or BSR (``bsr``)."""

    def __init__(self, layer: nn.Linear, layout: torch.layout = torch.sparse_csr,
                 blocksize: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.weight = _SparseWeight(layout, layer.weight.detach(), blocksize)
        self.register_buffer("bias", None if layer.bias is None else layer.bias.detach().clone().unsqueeze(1))

    def forward(self, x: Tensor) -> Tensor:
        lead, x = x.shape[:-1], x.reshape(-1, x.shape[-1])
        weight = self.weight.sparse()
        y = torch.mm(weight, x.t()) if self.bias is None else torch.addmm(self.bias, weight, x.t())
        return y.t().contiguous().reshape(*lead, -1)


def _bsr_block(shape: tuple[int, ...]) -> int | None:
    return next((b for b in BSR_BLOCKS if shape[0] % b == 0 and shape[1] % b == 0), None)


def _is_two_four(weight: Tensor) -> bool:
    """At most two non-zeros in every aligned group of four along each row (so 2:4 drops nothing)."""
    if weight.shape[1] % 4:
        return False
    return bool(((weight != 0).reshape(weight.shape[0], -1, 4).sum(-1) <= 2).all())


def semi_structured_linear(layer: nn.Linear) -> nn.Module | None:
    """A copy of ``layer`` with its weight in 2:4 semi-structured form, or None where that does not apply.

    It applies on CUDA to fp16/bf16 weights whose mask is already 2:4 and whose shape the kernels accept;
    anything else (CPU, fp32, a denser group, an unsupported shape or GPU) is skipped without a word.
    """
    weight = layer.weight.detach()
    if weight.device.type != "cuda" or weight.dtype not in HALF_TYPES or not _is_two_four(weight):
        return None
    try:
        sparse = torch.sparse.to_sparse_semi_structured(weight.clone())
    except Exception:  # noqa: BLE001 - unsupported shape, dtype or GPU: the kernel does not apply
        return None
    copy = nn.Linear(layer.in_features, layer.out_features, layer.bias is not None, device=weight.device,
                     dtype=weight.dtype)
    copy.weight = nn.Parameter(sparse, requires_grad=False)
    if layer.bias is not None:
        copy.bias = nn.Parameter(layer.bias.detach().clone(), requires_grad=False)
    return copy


def _conv_supported(layer: nn.Conv2d) -> bool:
    return layer.groups == 1 and layer.padding_mode == "zeros" and not isinstance(layer.padding, str)


def _out_size(layer: nn.Module, height: int, width: int) -> tuple[int, int]:
    sizes = []
    for size, k, s, p, d in zip((height, width), layer.kernel_size, layer.stride, layer.padding, layer.dilation,
                                strict=True):
        sizes.append((size + 2 * p - d * (k - 1) - 1) // s + 1)
    return sizes[0], sizes[1]


class _ChannelCompacted(nn.Module):
    """Shared by the conv kernels: the live input channels and filters, and the scatter of live outputs."""

    def __init__(self, layer: nn.Conv2d) -> None:
        super().__init__()
        _register_live(self, layer)
        self.out_channels = layer.weight.shape[0]
        self.conv_args = dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation)
        self.kernel_size, self.stride = layer.kernel_size, layer.stride
        self.padding, self.dilation = layer.padding, layer.dilation

    def _inputs(self, x: Tensor) -> Tensor:
        return x.index_select(1, self.live_in) if self.gather else x

    def _outputs(self, y: Tensor | None, n: int, height: int, width: int) -> Tensor:
        """``y`` holds the live filters' outputs; dead filters output their bias everywhere."""
        if not self.scatter:
            return y
        out = self.bias.view(1, -1, 1, 1).expand(n, -1, height, width).contiguous()
        if y is not None:
            out.index_copy_(1, self.live_out, y)
        return out


class CompactConv2d(_ChannelCompacted):
    """A dense convolution over the live input channels and filters only. On CPUs oneDNN's direct convolution
    does far more multiply-adds per second than a sparse matmul, so removing what is provably zero (whole
    channels and filters, which high compression leaves plenty of) usually beats exploiting scattered zeros,
    and it reads the input once instead of ``kh * kw`` times."""

    def forward(self, x: Tensor) -> Tensor:
        height, width = _out_size(self, x.shape[2], x.shape[3])
        y = None
        if len(self.live_out):
            y = F.conv2d(self._inputs(x), self.weight, self.live_bias, **self.conv_args)
        return self._outputs(y, x.shape[0], height, width)


class Im2colConv2d(_ChannelCompacted):
    """Unfold the live input channels (im2col), multiply by the CSR filter matrix, fold back to NCHW. The
    unfolded copy is ``kh * kw`` times the input, so this can only win on very sparse layers over small
    inputs."""

    def __init__(self, layer: nn.Conv2d) -> None:
        super().__init__(layer)
        self.matrix = _SparseWeight(torch.sparse_csr, self.weight.flatten(1))

    def forward(self, x: Tensor) -> Tensor:
        n = x.shape[0]
        height, width = _out_size(self, x.shape[2], x.shape[3])
        y = None
        if len(self.live_out):
            cols = F.unfold(self._inputs(x), self.kernel_size, self.dilation, self.padding, self.stride)
            cols = cols.transpose(0, 1).reshape(cols.shape[1], -1)  # (C kh kw, N L)
            y = torch.addmm(self.live_bias.unsqueeze(1), self.matrix.sparse(), cols)
            y = y.reshape(-1, n, height, width).transpose(0, 1).contiguous()
        return self._outputs(y, n, height, width)


def _unfold_elements(layer: nn.Conv2d, input_shape: tuple[int, ...]) -> int:
    live_in = len(_live(layer.weight.detach() != 0, 1))
    height, width = _out_size(layer, input_shape[2], input_shape[3])
    return input_shape[0] * live_in * layer.kernel_size[0] * layer.kernel_size[1] * height * width


def linear_candidates(layer: nn.Linear, names: Iterable[str] = LINEAR_KERNELS) -> dict[str, nn.Module]:
    """The sparse kernels that apply to ``layer`` among ``names`` (compact only if it removes something)."""
    found: dict[str, nn.Module] = {}
    names = set(names)
    if "compact" in names:
        compact = CompactLinear(layer)
        if compact.gather or compact.scatter:
            found["compact"] = compact
    if "csr" in names:
        found["csr"] = CSRLinear(layer)
    if "csr_t" in names:
        found["csr_t"] = SparseLeftLinear(layer)
    block = _bsr_block(tuple(layer.weight.shape))
    if "bsr" in names and block is not None:
        found["bsr"] = SparseLeftLinear(layer, torch.sparse_bsr, (block, block))
    if "semi24" in names and (semi := semi_structured_linear(layer)) is not None:
        found["semi24"] = semi
    return found


def conv_candidates(layer: nn.Conv2d, input_shape: tuple[int, ...], names: Iterable[str] = CONV_KERNELS
                    ) -> dict[str, nn.Module]:
    """The sparse kernels that apply to ``layer`` on inputs of ``input_shape`` (N, C, H, W) among ``names``."""
    names = set(names)
    if not _conv_supported(layer) or len(input_shape) != 4:
        return {}
    found: dict[str, nn.Module] = {}
    if "compact" in names:
        compact = CompactConv2d(layer)
        if compact.gather or compact.scatter:
            found["compact"] = compact
    if "im2col_csr" in names and _unfold_elements(layer, input_shape) <= MAX_UNFOLD_ELEMENTS:
        found["im2col_csr"] = Im2colConv2d(layer)
    return found


def candidates(layer: nn.Module, input_shape: tuple[int, ...], names: Iterable[str] | None = None
               ) -> dict[str, nn.Module]:
    """Every exact sparse kernel for a linear or conv ``layer`` (others: none), by kernel name."""
    if isinstance(layer, nn.Linear):
        return linear_candidates(layer, LINEAR_KERNELS if names is None else names)
    if isinstance(layer, nn.Conv2d):
        return conv_candidates(layer, tuple(input_shape), CONV_KERNELS if names is None else names)
    return {}
