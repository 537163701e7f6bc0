"""Small synthetic ablation studies for the report tests (statistics glue: synthetic data are fine here).

Values are ``base + effect[level] + unit effect + noise``: the unit (seed) effect is shared by all levels of
a seed, so a paired analysis removes it. Everything is drawn from a seeded generator, so every test sees
the same numbers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from deltatune.ablation.results import AblationResults, MetricSpec

#: Strategy effects of the default study: tpe clearly better, nsga2 a little.
EFFECTS = {"greedy": 0.0, "tpe": 1.0, "nsga2": 0.3}


def make_results(
    *,
    strategies: Sequence[str] = ("greedy", "tpe"),
    spaces: Sequence[str] = ("group", "layer"),
    seeds: int = 5,
    effects: Mapping[str, float] = EFFECTS,
    noise: float = 0.1,
    unit_sd: float = 0.3,
    pairing: str = "unit",
    margin: float | None = 0.5,
    loss_margin: float | None = 0.5,
    primary: tuple[str, str, str] | None = ("strategy", "greedy", "speedup"),
    clips: Sequence[str] = (),
    keep: Callable[[dict], bool] | None = None,
    speed: bool = True,
    fronts: bool = True,
    rng_seed: int = 1,
) -> AblationResults:
    """A strategy x space study with ``seeds`` seeds; ``space`` has no effect.

    ``clips``: score each run on these clips (an observation factor ``scored_on``). ``keep``: a filter on
    observation rows (dicts) to simulate missing data; runs without any observation left are missing runs.
    """
    rng = np.random.default_rng(rng_seed)
    unit_fx = rng.normal(0.0, unit_sd, size=seeds)
    rows: list[dict] = []
    reps: list[dict] = []
    front: list[dict] = []
    prov: list[dict] = []
    for st in strategies:
        for sp in spaces:
            for s in range(seeds):
                run = f"{st}-{sp}-{s}"
                key = {"run": run, "seed": s, "unit": str(s), "strategy": st, "space": sp}
                for clip in clips or (None,):
                    extra = {"scored_on": clip} if clip is not None else {}
                    speedup = 2.0 + effects.get(st, 0.0) + unit_fx[s] + rng.normal(0.0, noise)
                    loss = 1.0 - 0.5 * effects.get(st, 0.0) + 0.1 * unit_fx[s] + rng.normal(0.0, noise)
                    rows.append({**key, **extra, "metric": "speedup", "value": speedup})
                    rows.append({**key, **extra, "metric": "loss", "value": loss})
                for r in range(4):
                    ratio = 2.0 + effects.get(st, 0.0) + rng.normal(0.0, 0.05)
                    reps.append(
                        {**key, "repeat": r, "dense_ms": 10.0 * ratio, "delta_ms": 10.0, "ratio": ratio}
                    )
                for k in range(4):
                    front.append(
                        {**key, "accuracy_loss": 0.5 * k, "speedup": 1.5 + 0.3 * k + effects.get(st, 0.0)}
                    )
                prov.append(
                    {
                        "run": run,
                        "git_revision": "abc1234",
                        "versions": json.dumps({"torch": "2.13.0", "numpy": "2.1.0"}),
                        "wall_s": 12.0,
                        "host": "ci",
                        "attempt": 1,
                    }
                )
    obs = pd.DataFrame(rows)
    if keep is not None:
        obs = obs[[keep(r) for r in rows]].reset_index(drop=True)
    factors = {"strategy": list(strategies), "space": list(spaces)}
    if clips:
        factors["scored_on"] = list(clips)
    return AblationResults(
        name="synthetic",
        description="A synthetic strategy x space study for the report tests.",
        model="hrnet_tiny",
        factors=factors,
        pairing=pairing,
        unit_name="seed",
        metrics=[
            MetricSpec("speedup", "speed-up", True, margin),
            MetricSpec("loss", "accuracy loss", False, loss_margin),
        ],
        primary=primary,
        observations=obs,
        speed_repeats=pd.DataFrame(reps) if speed else pd.DataFrame(),
        fronts=pd.DataFrame(front) if fronts else pd.DataFrame(),
        provenance=pd.DataFrame(prov),
        expected_runs=len(strategies) * len(spaces) * seeds,
        notes=["synthetic data"],
    )
