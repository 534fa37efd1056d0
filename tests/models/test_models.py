import pytest
import torch
import torch.nn as nn

from prunelab.errors import UserError
from prunelab.models import layers
from prunelab.models.registry import MODEL_CLASSES, build_model

SHAPES = {"default": ((1, 28, 28), 10), "lottery": ((3, 32, 32), 10)}


@pytest.mark.parametrize("model_class,name", [(c, n) for c, models in MODEL_CLASSES.items() if c in SHAPES
                                              for n in models])  # the 64x64 / 224x224 classes: test_models_large
def test_every_model_builds_and_runs_forward(model_class, name):
    shape, classes = SHAPES[model_class]
    net = build_model(name, model_class, shape, classes)
    # train mode: at initialization the running statistics are the identity, and in eval mode the
    # 600 residual additions of resnet1202 overflow float32 (its activations double per block)
    with torch.no_grad():
        out = net(torch.randn(2, *shape))
    assert out.shape[-1] == classes and torch.isfinite(out).all()
    assert layers.masked_parameters(net), "every model has prunable layers"


def test_lottery_models_take_other_input_channels_and_sizes():
    out = build_model("resnet20", "lottery", (1, 28, 28), 10)(torch.randn(2, 1, 28, 28))
    assert out.shape == (2, 10)


def test_resnet20_layout_matches_the_original_names():
    net = build_model("resnet20", "lottery", (3, 32, 32), 10)
    convs = [n for n, m in net.named_modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 21  # stem, 18 in blocks, 2 shortcut 1x1
    assert convs[:3] == ["conv", "blocks.0.conv1", "blocks.0.conv2"]
    assert "blocks.3.shortcut.0" in convs and "blocks.6.shortcut.0" in convs
    assert isinstance(net.blocks[0].shortcut, layers.Identity2d)


def test_lottery_initialization_is_kaiming_normal_with_zero_bias():
    torch.manual_seed(3)
    net = build_model("vgg11-bn", "lottery", (3, 32, 32), 10)
    w = net.layers[0].conv.weight
    fan_in = w[0].numel()
    assert abs(w.std().item() - (2 / fan_in) ** 0.5) < 0.1 * (2 / fan_in) ** 0.5
    assert torch.all(net.layers[0].conv.bias == 0) and torch.all(net.layers[0].bn.weight == 1)


def test_dense_classifier_is_a_plain_linear_layer():
    for cls, name in (("default", "fc"), ("lottery", "resnet20"), ("lottery", "vgg11")):
        shape, classes = SHAPES[cls]
        dense = build_model(name, cls, shape, classes, dense_classifier=True)
        last = [m for m in dense.modules() if isinstance(m, nn.Linear)][-1]
        assert type(last) is nn.Linear
        masked = build_model(name, cls, shape, classes)
        assert isinstance([m for m in masked.modules() if isinstance(m, nn.Linear)][-1], layers.Linear)


def test_model_outside_its_class_names_the_class_that_has_it():
    with pytest.raises(UserError) as err:
        build_model("resnet20", "default", (3, 32, 32), 10)
    assert "'lottery'" in str(err.value) and "default" in str(err.value)
    with pytest.raises(UserError, match="unknown model 'resnet21'"):
        build_model("resnet21", "lottery", (3, 32, 32), 10)
    with pytest.raises(UserError, match="unknown model class"):
        build_model("fc", "nope", (1, 28, 28), 10)
