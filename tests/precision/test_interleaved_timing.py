"""fp32 against mixed precision training steps, taken in turn on copies of one model."""

import torch

from prunelab.precision.amp import amp_settings
from prunelab.precision.timing import compare_training


def test_fp32_and_amp_training_alternate_on_the_same_batches():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
    order = []
    model.register_forward_hook(lambda *_: order.append("amp" if torch.is_autocast_enabled("cpu") else "fp32"))
    batches = [(torch.randn(4, 3, 2, 2), torch.tensor([0, 1, 2, 0]))]
    amp = amp_settings("cpu", True, "bf16")
    timings = compare_training(model, batches, "cpu", amp, lambda m: torch.optim.SGD(m.parameters(), lr=0.1))
    assert order == ["fp32", "amp"] + ["fp32", "amp", "amp", "fp32"] * 2 + ["fp32", "amp"]
    assert {k: t.repeats for k, t in timings.items()} == {"fp32": 5, "amp": 5}
    assert all(t.spread >= 0 and t.median > 0 for t in timings.values())
    assert all(p.grad is None for p in model.parameters())  # copies trained, the given model untouched
