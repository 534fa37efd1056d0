"""The ``tinyimagenet`` and ``imagenet`` model classes: every model builds and runs, layouts match the originals."""

import math

import pytest
import torch
import torch.nn as nn

from prunelab.models import families, imagenet, layers, tinyimagenet

TINY_SHAPE, TINY_CLASSES = (3, 64, 64), 200
IMAGENET_SHAPE, IMAGENET_CLASSES = (3, 224, 224), 1000


def _forward(net: nn.Module, shape) -> torch.Tensor:
    # train mode, as in test_models: at initialization eval-mode batchnorm is the identity and the deep
    # residual stacks grow their activations block after block
    net.train()
    with torch.no_grad():
        return net(torch.randn(1, *shape))


@pytest.mark.parametrize("name", list(tinyimagenet.MODELS))
def test_every_tinyimagenet_model_builds_and_runs_at_64x64(name):
    net = tinyimagenet.MODELS[name](TINY_SHAPE, TINY_CLASSES)
    out = _forward(net, TINY_SHAPE)
    assert out.shape == (1, TINY_CLASSES) and torch.isfinite(out).all()
    assert layers.masked_parameters(net)


@pytest.mark.parametrize("name", list(imagenet.MODELS))
def test_every_imagenet_model_builds_and_runs_at_224x224(name):
    net = imagenet.MODELS[name](IMAGENET_SHAPE, IMAGENET_CLASSES)
    out = _forward(net, IMAGENET_SHAPE)
    assert out.shape == (1, IMAGENET_CLASSES) and torch.isfinite(out).all()
    assert layers.masked_parameters(net)


def test_model_names_per_class_are_the_originals():
    vggs = [f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "-bn")]
    resnets = [f"resnet{d}" for d in (18, 34, 50, 101, 152)]
    assert set(tinyimagenet.MODELS) == {*vggs, *resnets, *(f"wide-{r}" for r in resnets)}
    assert set(imagenet.MODELS) == {*vggs, *resnets, "wide-resnet50", "wide-resnet101"}


def test_tinyimagenet_vgg_layout_and_initialization():
    torch.manual_seed(1)
    net = tinyimagenet.MODELS["vgg16-bn"](TINY_SHAPE, TINY_CLASSES)
    convs = [n for n, m in net.named_modules() if isinstance(m, nn.Conv2d)]
    assert convs[:3] == ["features.0", "features.3", "features.7"]  # conv, bn, relu, conv, bn, relu, pool, ...
    linears = [n for n, m in net.named_modules() if isinstance(m, nn.Linear)]
    assert linears == ["classifier.0", "classifier.3", "classifier.6"]
    assert net.classifier[0].in_features == 512 * 4 and net.classifier[0].out_features == 1024
    w = net.features[0].weight
    fan_out = w.shape[0] * w[0, 0].numel()
    assert abs(w.std().item() - math.sqrt(2 / fan_out)) < 0.1 * math.sqrt(2 / fan_out)
    assert abs(net.classifier[3].weight.std().item() - 0.01) < 0.001
    assert torch.all(net.classifier[3].bias == 0) and torch.all(net.features[0].bias == 0)


def test_tinyimagenet_resnet_layout():
    net = tinyimagenet.MODELS["resnet18"](TINY_SHAPE, TINY_CLASSES)
    convs = [n for n, m in net.named_modules() if isinstance(m, nn.Conv2d)]
    assert convs[:3] == ["conv1.0", "conv2_x.0.residual_function.0", "conv2_x.0.residual_function.3"]
    assert "conv3_x.0.shortcut.0" in convs and len(convs) == 1 + 16 + 3
    assert isinstance(net.conv2_x[0].shortcut, layers.Identity2d)
    assert net.conv1[0].stride == (1, 1)  # 64x64 inputs keep the 3x3 stride-1 stem of the original
    wide = tinyimagenet.MODELS["wide-resnet50"](TINY_SHAPE, TINY_CLASSES)
    assert wide.conv2_x[0].residual_function[0].out_channels == 128 and wide.fc.in_features == 2048


def test_tinyimagenet_wide_basic_resnets_equal_the_plain_ones_as_in_the_original():
    count = [sum(p.numel() for p in tinyimagenet.MODELS[n](TINY_SHAPE, 10).parameters())
             for n in ("resnet18", "wide-resnet18")]
    assert count[0] == count[1]


def test_imagenet_names_and_forward_match_torchvision():
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(2)
    ours = imagenet.MODELS["resnet18"](IMAGENET_SHAPE, IMAGENET_CLASSES)
    theirs = torchvision.models.resnet18()
    shapes = {k: v.shape for k, v in ours.state_dict().items() if not k.endswith("_mask")}
    assert shapes == {k: v.shape for k, v in theirs.state_dict().items()}
    missing = ours.load_state_dict(theirs.state_dict(), strict=False).missing_keys
    assert all(k.endswith("_mask") for k in missing)
    ours.eval()
    theirs.eval()
    x = torch.randn(1, *IMAGENET_SHAPE)
    with torch.no_grad():
        assert torch.allclose(ours(x), theirs(x), atol=1e-5)
    with torch.device("meta"):  # shapes only: no memory, no initialization
        vgg = imagenet.MODELS["vgg11-bn"](IMAGENET_SHAPE, IMAGENET_CLASSES)
        reference = torchvision.models.vgg11_bn()
    shapes = {k: v.shape for k, v in vgg.state_dict().items() if not k.endswith("_mask")}
    assert shapes == {k: v.shape for k, v in reference.state_dict().items()}


def test_imagenet_honours_num_classes_and_has_no_residual_scales():
    net = imagenet.MODELS["resnet50"](IMAGENET_SHAPE, 10)
    assert net.fc.out_features == 10
    assert not any(isinstance(m, layers.IDENTITY_TYPES) for m in net.modules())
    assert net.layer1[0].conv2.stride == (1, 1) and net.layer2[0].conv2.stride == (2, 2)  # v1.5 stride


@pytest.mark.parametrize("family,name,dense,masked", [
    (tinyimagenet, "vgg11", ["classifier.0", "classifier.3", "classifier.6"], []),
    (tinyimagenet, "resnet18", ["fc"], []),
    (imagenet, "vgg11", ["classifier.6"], ["classifier.0", "classifier.3"]),
    (imagenet, "resnet18", ["fc"], []),
])
def test_dense_classifier(family, name, dense, masked):
    shape = TINY_SHAPE if family is tinyimagenet else IMAGENET_SHAPE
    with torch.device("meta"):  # layouts only
        net = family.MODELS[name](shape, 10, dense_classifier=True)
        plain = family.MODELS[name](shape, 10)
    modules = dict(net.named_modules())
    assert all(type(modules[n]) is nn.Linear for n in dense)
    assert all(isinstance(modules[n], layers.Linear) for n in masked)
    assert all(isinstance(dict(plain.named_modules())[n], layers.Linear) for n in dense)


def test_initialize_redraws_weights_and_keeps_masks():
    net = tinyimagenet.MODELS["resnet18"](TINY_SHAPE, TINY_CLASSES)
    conv = net.conv2_x[0].residual_function[0]
    conv.weight_mask[0].zero_()
    layers.apply_masks(net)
    before = conv.weight.detach().clone()
    families.initialize(net)
    assert not torch.equal(before, conv.weight) and torch.all(conv.weight_mask[0] == 0)
    assert torch.all(net.conv2_x[0].shortcut.weight == 1)


def test_models_take_other_input_channels():
    out = _forward(tinyimagenet.MODELS["vgg11"]((1, 64, 64), 5), (1, 64, 64))
    assert out.shape == (1, 5)
    out = _forward(imagenet.MODELS["resnet18"]((1, 64, 64), 5), (1, 64, 64))
    assert out.shape == (1, 5)


@pytest.mark.parametrize("model_class,name,shape", [("tinyimagenet", "vgg11-bn", (3, 64, 64)),
                                                     ("imagenet", "resnet18", (3, 224, 224))])
def test_registered_under_the_original_class_names_and_reinitialized_their_way(model_class, name, shape):
    from prunelab.models.registry import build_model, build_model_check, reinitialize

    build_model_check(name, model_class)
    net = build_model(name, model_class, shape, 7)
    assert _forward(net, shape).shape == (1, 7)
    conv = next(m for m in net.modules() if isinstance(m, layers.Conv2d))
    conv.weight_mask[0].zero_()
    layers.apply_masks(net)
    before = conv.weight.detach().clone()
    reinitialize(net)
    assert not torch.equal(before, conv.weight) and torch.all(conv.weight_mask[0] == 0)
