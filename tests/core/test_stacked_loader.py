"""The fused batches: one block per distinct loader where runs share one, every run's labels."""

import pytest
import torch

from prunelab.core.fused_loop import StackedLoader


class _Batches:
    """A loader of fixed batches: [B, 1, 2, 2] images filled with ``value``, labels ``value``."""

    def __init__(self, value: int) -> None:
        self.value, self.epoch = value, 0

    def __len__(self) -> int:
        return 2

    def __iter__(self):
        for _ in range(2):
            yield torch.full((3, 1, 2, 2), float(self.value)), torch.full((3,), self.value)


def test_runs_of_one_loader_read_its_block_once_and_keep_their_labels():
    loader = StackedLoader([_Batches(7), _Batches(9)], [0, 0, 0, 1, 1, 1], shared=3)
    batches = list(loader)
    assert len(batches) == 2
    x, y = batches[0]
    assert x.shape == (3, 2, 2, 2) and x[:, 0].eq(7).all() and x[:, 1].eq(9).all()
    assert y.shape == (3, 6) and y[0].tolist() == [7, 7, 7, 9, 9, 9]


def test_without_blocks_each_run_gets_its_copy():
    x, y = next(iter(StackedLoader([_Batches(7), _Batches(9)], [1, 0, 1])))
    assert x[:, :, 0, 0].tolist() == [[9, 7, 9]] * 3 and y[0].tolist() == [9, 7, 9]


def test_runs_out_of_block_order_are_refused():
    with pytest.raises(ValueError, match="blocks of 2"):
        StackedLoader([_Batches(7), _Batches(9)], [0, 1, 0, 1], shared=2)
