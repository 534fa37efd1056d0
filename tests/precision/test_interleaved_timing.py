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
    timings = compare_training(model, batches, "cpu", amp, lambda m: torch.optim.SGD(m.parameters(), lr=0.1)).timings
    # warm-up, five timed passes each in turn, then one pass each for the memory peak
    assert order == ["fp32", "amp"] + ["fp32", "amp", "amp", "fp32"] * 2 + ["fp32", "amp"] + ["fp32", "amp"]
    assert {k: t.repeats for k, t in timings.items()} == {"fp32": 5, "amp": 5}
    assert all(t.spread >= 0 and t.median > 0 for t in timings.values())
    assert all(p.grad is None for p in model.parameters())  # copies trained, the given model untouched


def test_a_pass_in_bf16_holds_less_tensor_memory_than_in_fp32():
    """A pass's peak tensor memory here is mostly its activations, which autocast stores in bf16 (half the bytes)."""
    width, batch = 256, 4096  # activations of 4 MB each in fp32, weights of 0.25 MB
    model = torch.nn.Sequential(torch.nn.Linear(width, width), torch.nn.Linear(width, width), torch.nn.Linear(width, 2))
    batches = [(torch.randn(batch, width), torch.randint(0, 2, (batch,)))]
    amp = amp_settings("cpu", True, "bf16")
    peak = compare_training(model, batches, "cpu", amp, lambda m: torch.optim.SGD(m.parameters(), lr=0.1)).peak_mb
    activations_mb = 2 * batch * width * 4 / 2**20  # the two hidden outputs in fp32
    assert peak["fp32"] >= activations_mb
    assert peak["fp32"] - peak["amp"] >= activations_mb / 4
