"""A pruned conv net trained on digits, shared by the int8 tests of both paths (trained once per session)."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from prunelab.core.pruners import PruneSettings, prune
from prunelab.data.in_memory import DeviceLoader, load_data
from prunelab.models import default
from prunelab.models import layers as L
from prunelab.models.registry import build_model


@pytest.fixture(scope="session")
def trained_fp32():
    """(model, calibration batches, test loader): ``default.conv`` width 16, half its weights pruned by
    magnitude, trained 6 epochs on one thread; the test loader's batches of 120 split the 360 test images
    evenly, so a model compiled per input shape compiles once."""
    torch.manual_seed(0)  # one thread: tests/conftest.py
    data = load_data("digits")
    train = DeviceLoader(data.train, data.info, 64, shuffle=True)
    test = DeviceLoader(data.test, data.info, 120)
    model = default.conv(data.info.input_shape, data.info.num_classes, depth=3, width=16)
    prune(model, PruneSettings("mag", 0.3), list(train)[:2])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    L.keep_pruned_at_zero(optimizer, model)
    for _ in range(6):
        model.train()
        for x, y in train:
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
    model.eval()
    return model, list(train)[:8], test


@pytest.fixture
def pruned_bn_net():
    """(model, batches): conv, batchnorm (its running statistics set), ReLU, linear; half the weights pruned
    at random; in eval mode, so quantization folds the batchnorm into the convolution."""
    model = nn.Sequential(L.Conv2d(1, 6, 3, padding=1), L.BatchNorm2d(6), nn.ReLU(), nn.Flatten(),
                          L.Linear(6 * 8 * 8, 10))
    batches = [(torch.randn(32, 1, 8, 8), torch.randint(0, 10, (32,))) for _ in range(3)]
    prune(model, PruneSettings("rand", 0.5), batches[:1])
    for x, _ in batches:
        model(x)
    return model.eval(), batches


@pytest.fixture
def pruned_resnet():
    """(model, inputs): a ResNet20 for 16x16 inputs, 90% of its weights pruned at random, in eval mode."""
    torch.manual_seed(0)
    model = build_model("resnet20", "lottery", (3, 16, 16), 10)
    x = torch.randn(32, 3, 16, 16)
    prune(model, PruneSettings("rand", 1.0), [(x, torch.randint(0, 10, (32,)))])
    return model.eval(), x
