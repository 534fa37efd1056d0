"""The pruner registry: registration and its refusals, hashes keyed by name and version, installed
packages' pruners found through their entry points, and names listed without importing torch."""

import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn as nn

from prunelab import register_pruner
from prunelab.core.choices import PRUNERS
from prunelab.core.pruners import PruneSettings, prune
from prunelab.core.registry import ENTRY_POINT_GROUP, get_pruner, pruner_names, pruner_rounds
from prunelab.errors import UserError
from prunelab.models import layers as L
from prunelab.runs.config import RunConfig


def score_smallest(model, targets, batches, loss_fn):
    """Keep the smallest magnitudes: a rule none of the built-ins has."""
    return {t.name: -t.param.detach().abs() for t in targets}


def score_largest(model, targets, batches, loss_fn):
    return {t.name: t.param.detach().abs() for t in targets}


def test_the_built_ins_register_through_the_public_call_in_table_order():
    assert pruner_names()[:5] == PRUNERS
    labels = [get_pruner(name).label for name in PRUNERS]
    assert labels == ["Rand", "Mag", "SNIP", "GraSP", "SynFlow"]
    assert get_pruner("snip").origin == "prunelab.core.pruners:score_snip"
    assert pruner_rounds("synflow") == get_pruner("synflow").rounds == 100 and get_pruner("grasp").rounds == 1


def test_a_registered_score_prunes_by_name_and_keeps_what_it_scores_highest():
    pruner = register_pruner("smallest", score_smallest, label="Smallest", rounds=2)
    assert pruner.origin == f"{__name__}:score_smallest" and pruner.colour.startswith("#")
    assert "smallest" in pruner_names() and PruneSettings("smallest", 1.0).resolved_rounds == 2
    model = nn.Sequential(L.Linear(3, 2, bias=False))
    weights = torch.tensor([[0.1, -0.9, 0.5], [-0.3, 0.7, 0.2]])
    with torch.no_grad():
        model[0].weight.copy_(weights)
    prune(model, PruneSettings("smallest", 0.3), [(torch.ones(1, 3), torch.zeros(1, dtype=torch.long))])
    # 10^-0.3 of 6 rounds to 3: the three smallest magnitudes, 0.1, 0.2 and 0.3
    assert model[0].weight_mask.tolist() == [[1.0, 0.0, 0.0], [1.0, 0.0, 1.0]]


@pytest.mark.parametrize("name, score, options, needle", [
    ("Bad Name", score_largest, {}, "lowercase letters"),
    ("snip", score_largest, {}, "built-in pruner"),
    ("partial", print, {}, "must be a function"),
    ("twoargs", lambda model, targets: {}, {}, "(model, targets, batches, loss_fn)"),
    ("nolabel", score_largest, {"label": " "}, "needs a label"),
    ("barlabel", score_largest, {"label": "|grad|"}, "'|grad|'"),
    ("twolines", score_largest, {"label": "a\nb"}, "'a\\nb'"),
    ("badcolour", score_largest, {"colour": "no-such-colour"}, "matplotlib colour"),
    ("zerorounds", score_largest, {"rounds": 0}, "at least 1"),
    ("intversion", score_largest, {"version": 2}, "non-empty string"),
    ("samelabel", score_largest, {"label": "SNIP"}, "already names pruner 'snip'"),
    ("roundslabel", score_largest, {"label": "SynFlow (100 rounds)"}, "gives built-in runs"),
    ("denselabel", score_largest, {"label": "Unpruned"}, "gives built-in runs"),
])
def test_bad_registrations_are_one_line_user_errors(name, score, options, needle):
    with pytest.raises(UserError) as error:
        register_pruner(name, score, **{"label": "A label", **options})
    assert needle in str(error.value) and "\n" not in str(error.value)
    assert name not in pruner_names() or get_pruner(name).origin == f"prunelab.core.pruners:score_{name}"


def test_two_functions_under_one_name_need_two_versions_and_get_two_hashes():
    register_pruner("twin", score_largest, label="Twin")
    config = RunConfig(pruner="twin", data_source="synthetic")
    first = config.config_hash()
    assert (config.to_dict()["pruner_version"], config.to_dict()["pruner_origin"]) == ("1", f"{__name__}:score_largest")
    with pytest.raises(UserError, match="give .*score_smallest another version"):
        register_pruner("twin", score_smallest, label="Twin")
    register_pruner("twin", score_smallest, label="Twin", version="2")
    second = config.config_hash()
    assert second != first
    register_pruner("twin", score_smallest, label="Twin", version="2")  # the same again (a cell run twice)
    assert config.config_hash() == second
    # the hash covers the name and the version, not where the function is defined
    assert {k: v for k, v in config.hashed_fields().items() if k.startswith("pruner")} == {
        "pruner": "twin", "pruner_version": "2"}


def test_built_in_runs_carry_no_version_so_their_hashes_are_those_of_existing_records():
    config = RunConfig(pruner="snip")
    assert "pruner_version" not in config.to_dict() and "pruner_origin" not in config.to_dict()
    assert RunConfig(pruner="snip").config_hash() == "f3410213133a"  # computed before the registry existed
    with pytest.raises(UserError, match="built in and takes no pruner_version"):
        RunConfig(pruner="snip", pruner_version="2").validate()


def test_a_run_handed_over_with_another_version_is_refused():
    register_pruner("handed", score_largest, label="Handed", version="3")
    values = RunConfig(pruner="handed").to_dict()
    assert RunConfig.from_dict(values).config_hash() == RunConfig(pruner="handed").config_hash()
    with pytest.raises(UserError, match="set up with pruner 'handed' version 2"):
        RunConfig.from_dict({**values, "pruner_version": "2"}).validate()


def test_an_unknown_name_is_one_line_listing_every_registered_name():
    register_pruner("listed", score_largest, label="Listed")
    with pytest.raises(UserError) as error:
        RunConfig(pruner="nonesuch").validate()
    message = str(error.value)
    assert message.startswith("unknown pruner 'nonesuch'; choose one of: rand, mag, snip, grasp, synflow")
    assert "listed" in message and "\n" not in message


def _install(root, name: str, module: str, source: str) -> None:
    """An installed distribution as pip leaves it: a module and a dist-info with its entry point."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{module}_dist-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}-dist\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{name} = {module}\n")


def test_an_installed_packages_pruner_is_listed_unloaded_and_loaded_on_first_use(tmp_path, monkeypatch):
    _install(tmp_path, "halfmag", "halfmag_plugin", """
        from prunelab import register_pruner

        def score(model, targets, batches, loss_fn):
            return {t.name: t.param.detach().abs() / 2 for t in targets}

        register_pruner("halfmag", score, label="Half magnitude", colour="tab:olive", version="0.1")
        """)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "halfmag" in pruner_names() and "halfmag_plugin" not in sys.modules  # listed by name only
    pruner = get_pruner("halfmag")
    assert "halfmag_plugin" in sys.modules
    assert (pruner.label, pruner.colour, pruner.version) == ("Half magnitude", "tab:olive", "0.1")
    assert pruner.origin == "halfmag_plugin:score" and pruner.importable
    assert RunConfig(pruner="halfmag", data_source="synthetic").validate().to_dict()["pruner_version"] == "0.1"


def test_an_entry_point_that_registers_nothing_is_named_in_one_line(tmp_path, monkeypatch):
    _install(tmp_path, "ghost", "ghost_plugin", "VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UserError, match="entry point 'ghost' = ghost_plugin registered no pruner named 'ghost'"):
        get_pruner("ghost")


def test_names_and_the_built_ins_rounds_come_without_importing_torch():
    code = ("import sys; from prunelab.core.registry import check_pruner_name, pruner_names, pruner_rounds; "
            "check_pruner_name('grasp'); names = pruner_names(); "
            "print(names[:5] == ('rand', 'mag', 'snip', 'grasp', 'synflow'), pruner_rounds('synflow'), "
            "'torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["True", "100", "False"], result.stderr


@pytest.mark.parametrize("score, needle", [
    (lambda model, targets, batches, loss_fn: {t.name: t.param.detach().abs().T.contiguous() for t in targets},
     "shape (3, 2) for layer"),  # as many elements, transposed: would rank the wrong weights
    (lambda model, targets, batches, loss_fn: {t.name: t.param.detach().abs().sum() for t in targets}, "shape ()"),
    (lambda model, targets, batches, loss_fn: {}, "no score for layer"),
    (lambda model, targets, batches, loss_fn: {"typo.weight": torch.ones(2, 3),  # a name that is no weight's
                                                **{t.name: t.param.detach().abs() for t in targets}}, "'typo.weight'"),
    (lambda model, targets, batches, loss_fn: {t.name: t.param.detach().numpy() for t in targets}, "a ndarray"),
    (lambda model, targets, batches, loss_fn: {t.name: t.param.detach() * 1j for t in targets}, "complex64"),
    (lambda model, targets, batches, loss_fn: None, "a NoneType, not a dict"),
    (lambda model, targets, batches, loss_fn: {t.name: t.param.detach() / 0 for t in targets}, "6 NaN or infinite"),
])
def test_a_score_that_is_not_one_real_tensor_per_weight_is_a_one_line_user_error(score, needle):
    register_pruner("badscore", score, label="Bad score", version=str(id(score)))
    model = nn.Sequential(L.Linear(3, 2, bias=False))
    with pytest.raises(UserError, match=r"pruner 'badscore' returned") as caught:
        prune(model, PruneSettings("badscore", 0.3), [(torch.ones(1, 3), torch.zeros(1, dtype=torch.long))])
    assert needle in str(caught.value) and "\n" not in str(caught.value)


def test_a_score_function_that_changes_the_weights_is_a_one_line_user_error():
    def scale(model, targets, batches, loss_fn):
        with torch.no_grad():
            for t in targets:
                t.param.mul_(10)
        return {t.name: t.param.detach().abs() for t in targets}

    register_pruner("scaler", scale, label="Scaler", version="1")
    model = nn.Sequential(L.Linear(3, 2, bias=False))
    with pytest.raises(UserError, match=r"pruner 'scaler' changed the model's weights") as caught:
        prune(model, PruneSettings("scaler", 0.3), [(torch.ones(1, 3), torch.zeros(1, dtype=torch.long))])
    assert "\n" not in str(caught.value)
    register_pruner("ones", lambda model, targets, batches, loss_fn: {t.name: torch.ones_like(t.param)
                                                                      for t in targets}, label="Ones", version="1")
    with torch.no_grad():
        model[0].weight[0, 0] = float("nan")  # a NaN left as it was is not a change
    prune(model, PruneSettings("ones", 0.3), [(torch.ones(1, 3), torch.zeros(1, dtype=torch.long))])


def test_a_built_in_label_is_refused_before_the_built_ins_load():
    code = textwrap.dedent("""
        import sys
        import prunelab
        import prunelab.errors
        assert "prunelab.core.pruners" not in sys.modules
        def mine(model, targets, batches, loss_fn):
            return {}
        try:
            prunelab.register_pruner("mysnip", mine, label="SNIP")
        except prunelab.errors.UserError as err:
            print("refused:", err)
        from prunelab.core.registry import get_pruner
        print("snip is", get_pruner("snip").label)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "refused:" in out and "'snip'" in out and "snip is SNIP" in out
