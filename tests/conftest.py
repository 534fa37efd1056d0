import os
import warnings

import pytest
import torch

# One intra-op thread in this process from the start (so also in module- and session-scoped fixtures),
# again before every test (the fixture below, undoing a test that changed it), and in every process a
# test starts (they inherit the variable). The smoke render runs in the background beside the other tests
# (tests/workbook/conftest.py), so two processes share the 2 cores; with two OpenMP threads each, a thread
# waits at every barrier for one the scheduler has parked, and a ResNet-1202 forward pass took 80 s, not 2 s.
os.environ["OMP_NUM_THREADS"] = "1"
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    yield


@pytest.fixture
def no_pruning_warnings():
    from prunelab.core.pruners import PruningWarning
    with warnings.catch_warnings():
        warnings.simplefilter("error", PruningWarning)
        yield
