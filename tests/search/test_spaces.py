"""Search spaces on a real network's truncation points and real Optuna trials."""

from __future__ import annotations

import optuna
import pytest

from deltatune.errors import ConfigError
from deltatune.search.spaces import GlobalSpace, GroupSpace, LayerSpace, Ranges, group_of, groups, make_space


@pytest.fixture(scope="module")
def names(tiny_evaluator) -> list[str]:  # type: ignore[no-untyped-def]
    return tiny_evaluator.threshold_names


def test_groups_follow_hrnet_stages_and_branches(names: list[str]) -> None:
    g = groups(names)
    assert list(g)[:3] == ["input", "stem", "layer1"]
    assert {"stage2.b0", "stage2.b1", "stage2.fuse", "stage4.b3", "transition3"} <= set(g)
    assert sum(len(v) for v in g.values()) == len(names)
    assert group_of("stage4.2.branches.3.1.relu#1") == "stage4.b3"


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
    with pytest.raises(ConfigError):
        Ranges(lo=1.0, hi=0.1)


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
