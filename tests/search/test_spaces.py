"""Search spaces on a real network's truncation points and real Optuna trials."""

from __future__ import annotations

import re

import optuna
import pytest

from deltatune.delta import convert
from deltatune.errors import ConfigError
from deltatune.search.runner import _make_space
from deltatune.search.spaces import (
    GlobalSpace,
    GroupSpace,
    LayerSpace,
    Ranges,
    generic_group,
    group_of,
    groups,
    make_space,
)
from deltatune_models import create_model, model_info

from .conftest import settings


@pytest.fixture(scope="module")
def names(tiny_evaluator) -> list[str]:  # type: ignore[no-untyped-def]
    return tiny_evaluator.threshold_names


def test_groups_follow_hrnet_stages_and_branches(names: list[str]) -> None:
    patterns = model_info("hrnet_tiny").threshold_groups  # declared by the HRNet card
    g = groups(names, patterns)
    assert list(g)[:3] == ["input", "stem", "layer1"]
    assert {"stage2.b0", "stage2.b1", "stage2.fuse", "stage4.b3", "transition3"} <= set(g)
    assert sum(len(v) for v in g.values()) == len(names)
    assert group_of("stage4.2.branches.3.1.relu#1", patterns) == "stage4.b3"


def _group_of_before_cards(name: str) -> str:
    """``group_of`` as it was when it hard-coded HRNet's patterns for every model (kept verbatim as the
    reference: the cards' groups must be the groups searches used before)."""
    if name == "input":
        return "input"
    m = re.match(r"(stage\d+)\.\d+\.branches\.(\d+)\.", name)
    if m:
        return f"{m.group(1)}.b{m.group(2)}"
    m = re.match(r"(stage\d+)\.\d+\.", name)
    if m:
        return f"{m.group(1)}.fuse"
    head = re.split(r"[.:#]", name, maxsplit=1)[0]
    return head if head and "." in name else "stem"


# mobilenet_v2 is not here: it declares groups of its own (tests/search/test_classification.py)
@pytest.mark.parametrize(
    "model",
    [pytest.param("hrnet", marks=pytest.mark.slow),  # ~5 s: converts HRNet-W32 (262 points)
     "pose_resnet50", "hrnet_w18_small_v2", "hrnet_tiny", "pose_resnet_tiny", "blazepose"],
)  # fmt: skip
def test_card_groups_are_the_groups_of_before(model: str) -> None:
    """On the real converted network, the card's patterns (or the generic fallback, for cards that
    declare none) give exactly the groups of the old hard-coded ``group_of``, in the same order."""
    names = convert(create_model(model, weights=None)).threshold_names
    before: dict[str, list[str]] = {}
    for n in names:
        before.setdefault(_group_of_before_cards(n), []).append(n)
    assert groups(names, model_info(model).threshold_groups) == before
    assert GroupSpace(names, group_patterns=model_info(model).threshold_groups).groups == {
        g: ns for g, ns in before.items() if g != "input"
    }


def test_search_groups_by_the_searched_models_card(tiny_evaluator) -> None:  # type: ignore[no-untyped-def]
    space = _make_space(settings(space="group"), tiny_evaluator)
    assert space.group_patterns == model_info("hrnet_tiny").threshold_groups != ()
    assert {"stage2.b0", "stage2.fuse"} <= set(space.groups)


def test_a_model_without_declared_groups_gets_the_generic_ones() -> None:
    names = [
        "input",
        "relu",
        "conv.relu",
        "block1.0.relu",
        "block1.1:relu",
        "stage2.0.branches.1.relu",
        ":relu",
    ]
    assert GroupSpace(names).groups == {
        "stem": ["relu", ":relu"],
        "conv": ["conv.relu"],
        "block1": ["block1.0.relu", "block1.1:relu"],
        "stage2": ["stage2.0.branches.1.relu"],  # HRNet's patterns are the HRNet card's, nobody else's
    }
    assert [generic_group(n) for n in names] == [
        "input",
        "stem",
        "conv",
        "block1",
        "block1",
        "stage2",
        "stem",
    ]


def test_bad_group_patterns_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="not a valid regex"):
        GroupSpace(["input", "a.relu"], group_patterns=[("{1}", r"(a")])
    with pytest.raises(ConfigError, match="does not fit"):
        GroupSpace(["input", "a.relu"], group_patterns=[("{2}", r"(a)\.")])
    assert GroupSpace(["input", "a.relu"], group_patterns=[("g{1}", r"(a)\.")]).groups == {"ga": ["a.relu"]}


@pytest.mark.parametrize("cls", [LayerSpace, GroupSpace, GlobalSpace])
def test_every_space_sets_every_truncation_point(cls: type, names: list[str]) -> None:
    space = cls(names, ranges=Ranges(lo=1e-3, hi=1.0))
    study = optuna.create_study(
        directions=["minimize", "maximize"], sampler=optuna.samplers.RandomSampler(seed=3)
    )
    zeros = 0
    for _ in range(30):
        cfg = space.suggest(study.ask())
        assert list(cfg.thresholds) == names
        for v in cfg.thresholds.values():
            lo, hi = (0.25e-3, 4.0) if cls is GlobalSpace else (1e-3, 1.0)  # global: scale x multiplier
            assert v == 0.0 or lo <= v <= hi
            zeros += v == 0.0
        assert cfg.input_dilation in (1, 3, 5)
    assert zeros > 0  # the explicit zero is reachable


def test_layer_space_has_one_parameter_per_truncation_point(names: list[str]) -> None:
    space = LayerSpace(names, tune_dilation=False)
    study = optuna.create_study(directions=["minimize", "maximize"])
    t = study.ask()
    cfg = space.suggest(t)
    assert set(t.params) == {f"thr.{n}" for n in names}
    assert cfg.input_dilation == 1 and space.dimension == len(names)


def test_mode_is_searched_only_when_asked(names: list[str]) -> None:
    space = GroupSpace(names, modes=("max", "norm"))
    study = optuna.create_study(directions=["minimize", "maximize"])
    t = study.ask()
    assert space.suggest(t).mode in ("max", "norm") and "mode" in t.params


def test_unknown_space_is_a_config_error(names: list[str]) -> None:
    with pytest.raises(ConfigError, match="--space 'blocks' is unknown"):
        make_space("blocks", names)
    with pytest.raises(ConfigError, match="layer threshold range 1 0.1: need finite numbers 0 < lo < hi"):
        Ranges(lo=1.0, hi=0.1)
    with pytest.raises(ConfigError, match="input threshold range 0 1: need"):
        Ranges(input_lo=0.0)
    with pytest.raises(ConfigError, match="layer threshold range nan 1"):
        Ranges(lo=float("nan"))
    with pytest.raises(ConfigError, match="input threshold range 0.001 inf: need finite numbers"):
        Ranges(input_hi=float("inf"))
    with pytest.raises(ConfigError, match="multiplier range 4 0.25"):
        Ranges(mult=(4.0, 0.25))


@pytest.mark.parametrize("cls", [LayerSpace, GroupSpace, GlobalSpace])
def test_anchor_params_put_every_threshold_at_one_value(cls: type, names: list[str]) -> None:
    r = Ranges(lo=1e-3, hi=1.0, input_lo=1e-2, input_hi=1.0)
    space = cls(names, ranges=r)
    for pos, layer, inp in ((None, 0.0, 0.0), (0.0, 1e-3, 1e-2), (0.5, 10**-1.5, 1e-1)):
        study = optuna.create_study(directions=["minimize", "maximize"])
        study.enqueue_trial(space.anchor_params(pos))
        cfg = space.suggest(study.ask())
        assert cfg.thresholds["input"] == pytest.approx(inp)
        assert all(v == pytest.approx(layer) for k, v in cfg.thresholds.items() if k != "input")
        assert cfg.input_dilation == 1
