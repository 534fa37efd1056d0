import warnings

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    torch.set_num_threads(2)
    yield


@pytest.fixture
def no_pruning_warnings():
    from prunelab.core.pruners import PruningWarning
    with warnings.catch_warnings():
        warnings.simplefilter("error", PruningWarning)
        yield
