"""The names the report gives layers (layer_findings.layer_names): an FC network's ``nn.Sequential`` positions
("1.weight") become a kind, a place and sizes; named modules keep their paths; every table, figure and finding
that names a layer gives the same name."""

import re
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import torch

from prunelab.core.measure import count_flops, layer_summary
from prunelab.models.registry import MODEL_CLASSES
from prunelab.runs.store import read_layers
from prunelab.workbook.collapses import collapse_table
from prunelab.workbook.layer_findings import layer_frame, layer_names, record_weights
from prunelab.workbook.layer_tables import focus_layer_table

MNIST, CIFAR = (1, 28, 28), (3, 32, 32)


def _layer_table(folder: Path, model_class: str, model: str, input_shape) -> tuple[torch.nn.Module, pd.DataFrame]:
    """A network and its layer table as a record in ``folder`` stores it (``layers.csv``) and reads it back."""
    net = MODEL_CLASSES[model_class][model](input_shape, 10)
    table = layer_summary(net, count_flops(net, input_shape, "cpu"))
    table["prunable"] = table["param"] == "weight"
    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / "layers.csv", index=False)
    return net, read_layers(folder)


def _weight_names(table: pd.DataFrame) -> list[str]:
    names = layer_names(table)
    weights = table[(table["param"] == "weight") & table["shape"].str.count(r"\d+").isin([2, 4])]
    return [names[f"{m}.weight"] for m in weights["module"]]


def test_an_fc_networks_layers_are_named_by_kind_place_and_sizes_not_by_sequential_positions(tmp_path):
    net, table = _layer_table(tmp_path, "default", "fc", MNIST)
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    found = [re.fullmatch(r"linear (\d+) \((\d+)→(\d+)\)", name) for name in _weight_names(table)]
    assert all(found) and len(found) == len(linears) == 6
    assert [tuple(map(int, f.groups())) for f in found] == \
        [(i, m.in_features, m.out_features) for i, m in enumerate(linears, 1)]  # "1.weight": linear 1 (784→100)
    names = layer_names(table)
    assert names["1.bias"] == f"{names['1.weight']} bias"  # a parameter other than the weight says which


def test_named_modules_keep_their_paths_and_every_parameter_has_a_name_of_its_own(tmp_path):
    for model_class, model, shape in [("lottery", "resnet20", CIFAR), ("lottery", "vgg11", CIFAR),
                                      ("default", "conv", MNIST)]:
        _, table = _layer_table(tmp_path / model, model_class, model, shape)
        names = layer_names(table)
        assert len(set(names.values())) == len(names) == len(table), model  # unambiguous: one name per parameter
        assert not any(name.endswith(".weight") or re.fullmatch(r"[\d.]+", name) for name in names.values())
    resnet = read_layers(tmp_path / "resnet20")
    weights = resnet[resnet["param"] == "weight"]
    assert [layer_names(resnet)[f"{m}.weight"] for m in weights["module"]] == list(weights["module"])
    conv = read_layers(tmp_path / "conv")
    assert [name.split(" (")[0] for name in _weight_names(conv)] == ["conv 1", "conv 2", "linear 1"]


def test_the_tables_the_figures_and_the_collapse_table_name_a_layer_alike(tmp_path):
    folder = tmp_path / "record"
    net, table = _layer_table(folder, "default", "fc", MNIST)
    state = net.state_dict()
    record = SimpleNamespace(layers=table.assign(density=0.5, flops=10), summary={"data_source": "real"},
                             config={"dataset": "mnist", "model": "fc", "data_source": "real", "pruner": "snip"},
                             path=folder, state_dict=lambda: state,
                             masks=lambda: {f"{k}_mask": torch.ones_like(v) for k, v in state.items()})
    expected = _weight_names(table)
    frame = layer_frame({"SNIP": record})
    assert list(frame["layer"]) == list(focus_layer_table(frame, "SNIP")["layer"])[:-1] == expected  # Tables H, I
    assert list(record_weights(record)) == expected  # the histograms' panels and their reading sentence
    collapsed = pd.DataFrame([dict(setup="MNIST / FC", label="SNIP", compression=3.0, top1=11.35, seed=1,
                                   majority_class_top1=11.35, stand_in=False, path=str(folder),
                                   collapsed_layers=["3.weight", "1.weight"])])
    shown = collapse_table(collapsed).iloc[0]["layers with no weights"]
    assert shown == ", ".join(expected[:2])  # in network order, as Table H lists them


def test_a_layers_route_says_whether_a_branch_runs_beside_it_from_the_whole_network(tmp_path):
    """A ResNet's shortcut has its block's conv branch beside it, and that branch the shortcut, an identity one
    included (it prunes nothing, so only the whole layer table shows it); an FC chain's layers and a ResNet's stem
    and classifier have no branch beside them. A nearly empty layer is then called a bottleneck only where it has
    none; a thinned shortcut leaves its block to the conv branch."""
    from prunelab.workbook.layer_findings import compression_result, layer_routes

    net, resnet = _layer_table(tmp_path / "resnet20", "lottery", "resnet20", CIFAR)
    resnet["prunable"] = (resnet["param"] == "weight") & resnet["shape"].str.count(r"\d+").isin([2, 4])
    routes = layer_routes(resnet["module"])
    assert (routes["blocks.6.shortcut.0"], routes["blocks.6.conv1"], routes["blocks.0.conv2"]) == \
        ("shortcut", "branch", "branch")  # blocks.0's shortcut is an identity
    assert (routes["conv"], routes["fc"]) == ("only", "only")
    _, fc = _layer_table(tmp_path / "fc", "default", "fc", MNIST)
    assert set(layer_routes(fc["module"]).values()) == {"only"}
    record = SimpleNamespace(layers=resnet.assign(density=0.5, flops=10), summary={"data_source": "real"},
                             config={"dataset": "cifar10", "model": "resnet20", "data_source": "real",
                                     "pruner": "synflow"})
    frame = layer_frame({"SynFlow": record})
    assert "blocks.0.shortcut" not in set(frame["layer"])  # not pruned, yet it made blocks.0's convs a branch
    thin = {"blocks.6.shortcut.0": "shortcut", "blocks.0.conv2": "branch", "fc": "only"}
    frame.loc[frame["layer"].isin(list(thin)), "density"] = 0.001
    (synflow,) = compression_result(frame, 0.3, "SNIP").pruners
    assert {n.layer: n.route for n in synflow.near_empty} == thin
