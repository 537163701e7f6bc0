"""HTML and Markdown reports: every required section, self-contained HTML, PNGs written and linked."""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import math
import re
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from deltatune.report.analysis import analyse
from deltatune.report.render import render_html, render_markdown, write_report
from deltatune.report.wording import fmt, fmt_signed
from tests.report.conftest import ASO_ITERATIONS
from tests.report.synthetic import make_results

#: Slow (~50 s on 2 cores): the report fixtures run the statistics and draw every plot.
pytestmark = pytest.mark.slow

_IMG = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


@pytest.fixture(scope="module")
def page(three_by_two) -> str:
    results, analysis = three_by_two
    return render_html(results, analysis)


def test_html_has_every_section(three_by_two, page: str) -> None:
    _, a = three_by_two
    for text in (
        "Ablation study: synthetic",
        "Completed runs: 30 of 30 expected",
        "Primary comparison: strategy on speedup (baseline greedy)",
        "Per level",
        "Per design cell (strategy × space)",
        "why this test",
        "p (Holm)",
        "Holm",
        "Hedges&#x27; g",
        "rank-biserial",
        "TOST",
        "Bayes p_rope",
        "almost stochastic",
        "ASO eps_min",
        "80 % power",
        "Measured speed",
        "Pareto fronts",
        "Provenance",
        "abc1234",
        "torch",
        "How to read this report",
        "equivalence margin",
        "Critical-difference diagram",
    ):
        assert text in page, text
    for p in a.pairwise:  # each comparison: its test, the reason it was chosen, its sentence, its power note
        for text in (p.test.test, p.test.reason, p.summary, p.power_note):
            assert html.escape(text) in page, text
    for m in a.metrics:
        for c in m.comparisons:
            if c.omnibus is not None:
                assert html.escape(c.omnibus.test) in page and html.escape(c.omnibus.posthoc_test) in page
    # the primary comparison is reported before the metric sections
    assert page.index("<h2 id=\"primary-comparison") < page.index("<h2 id=\"speed-up-speedup")


def test_html_is_self_contained_with_decodable_images(page: str) -> None:
    images = _IMG.findall(page)
    # 2 metrics x (box per each of the 2 factors + interaction + CD diagram) + speed + fronts
    assert len(images) == 10
    for data in images:
        with Image.open(io.BytesIO(base64.b64decode(data))) as im:
            assert im.format == "PNG" and im.size[0] >= 400
    lowered = page.lower()
    for banned in ("<script", "http://", "https://", '<link rel="stylesheet"', "@import", "url("):
        assert banned not in lowered, banned
    assert len(page) < 2_000_000  # ~100 dpi PNGs keep the page small


def test_two_levels_single_factor_has_no_cd_or_interaction() -> None:
    r = make_results(spaces=("group",), fronts=False, speed=False, margin=None, loss_margin=None)
    from deltatune.report.analysis import analyse

    a = analyse(r, aso_iterations=ASO_ITERATIONS)
    page = render_html(r, a)
    assert len(_IMG.findall(page)) == 2  # one box plot per metric
    body = page.split("</nav>")[1].split("How to read this report")[0]  # the explanations name every element
    assert "Critical-difference" not in body and "Pareto fronts" not in body
    assert "No timing repeats were recorded." in body
    assert "TOST" not in body  # no margin: no equivalence table
    assert "Factors together" not in body  # one varied factor: no factorial ANOVA


def test_markdown_writes_and_links_its_pngs(three_by_two, tmp_path: Path) -> None:
    results, analysis = three_by_two
    images = tmp_path / "img"
    images.mkdir()
    (images / "stale.png").write_bytes(b"old")
    md = render_markdown(results, analysis, image_dir=images, link_prefix="img")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(links) == 10
    # a folder given by the caller keeps its other files
    assert sorted(p.name for p in images.iterdir()) == sorted(
        [*(Path(link).name for link in links), "stale.png"]
    )
    for link in links:
        assert link.startswith("img/") and (tmp_path / link).stat().st_size > 1000
    for text in (
        "| comparison |",
        "Holm",
        "Hedges' g",
        "TOST",
        "almost stochastic",
        "80 % power",
        "How to read this report",
        "Completed runs: 30 of 30 expected",
        "abc1234",
    ):
        assert text in md, text


def test_write_report_writes_both_atomically(tmp_path: Path) -> None:
    r = make_results(spaces=("group",), loss_margin=None)
    out = tmp_path / "reports"
    a = write_report(
        r, html=out / "study.html", markdown=out / "study.md", seed=0, aso_iterations=ASO_ITERATIONS
    )
    assert a.family_size == 2
    page = (out / "study.html").read_text(encoding="utf-8")
    md = (out / "study.md").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    files = sorted(p.name for p in (out / "study_files").iterdir())
    assert files and all(f.endswith(".png") for f in files)
    assert all(f"study_files/{f}" in md for f in files)
    assert sorted(p.name for p in out.iterdir()) == ["study.html", "study.md", "study_files"]  # no temp files
    # rewriting prunes figures the report no longer has from its own folder
    (out / "study_files" / "old_figure.png").write_bytes(b"old")
    write_report(r, html=None, markdown=out / "study.md", aso_iterations=ASO_ITERATIONS)
    assert sorted(p.name for p in (out / "study_files").iterdir()) == files
    # only one format, or none
    assert (
        write_report(r, html=None, markdown=out / "only.md", aso_iterations=ASO_ITERATIONS).family_size == 2
    )
    assert (out / "only_files").is_dir() and not (out / "only.html").exists()


def test_plot_functions_return_their_axes(two_by_two) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from deltatune.report.plots import box_strip, cd_diagram, fronts_overlay, interaction

    results, _ = two_by_two
    obs = results.observations[results.observations["metric"] == "speedup"]
    ranks = pd.Series([1.2, 1.9, 2.9], index=["a", "b", "c"])
    posthoc = pd.DataFrame(
        [[1.0, 0.3, 0.01], [0.3, 1.0, 0.04], [0.01, 0.04, 1.0]], index=list("abc"), columns=list("abc")
    )
    axes = [
        box_strip(obs, x="strategy", y="value"),
        box_strip(obs, x="strategy", y="value", hue="space"),
        interaction(obs, x="strategy", hue="space", y="value"),
        fronts_overlay(results.fronts, hue="strategy"),
        cd_diagram(ranks, posthoc),
    ]
    try:
        assert all(isinstance(ax, matplotlib.axes.Axes) for ax in axes)
        assert [t.get_text() for t in axes[1].get_legend().get_texts()] == ["group", "layer"]
        assert len(axes[3].get_lines()) >= 20  # one step line per run
        _, ax = plt.subplots()
        assert box_strip(obs, x="space", y="value", ax=ax) is ax
    finally:
        plt.close("all")


def test_a_metric_with_missing_values_says_how_many_under_its_heading(tmp_path: Path) -> None:
    """The count of observations without a value stands under the metric's heading, not only in the
    notes at the end, so a small n in the tables is explained where it is read."""
    r = make_results(margin=None, loss_margin=None, speed=False, fronts=False)
    obs = r.observations.copy()
    obs.loc[(obs["metric"] == "loss") & (obs["strategy"] == "tpe"), "value"] = math.nan
    r = dataclasses.replace(r, observations=obs)
    md = render_markdown(r, analyse(r, aso_iterations=ASO_ITERATIONS), image_dir=tmp_path, link_prefix="img")
    loss = md.index("(loss; lower is better")
    sentence = md.index("No value in 10 of 20 observations")
    assert loss < sentence < md.index("\n## ", loss)  # inside the loss section, before its tables
    assert sentence < md.index("**Per level", loss)
    assert md.count("No value in") == 1
    assert "a search run that found no setting" in md[sentence:]  # runs that search: both causes
    # fixed settings scored on segments search nothing: only the accuracy can be missing there
    seg = dataclasses.replace(r, unit_name="segment")
    analysis = analyse(seg, aso_iterations=ASO_ITERATIONS)
    md = render_markdown(seg, analysis, image_dir=tmp_path, link_prefix="i")
    sentence = md.index("No value in 10 of 20 observations")
    assert md[sentence:].startswith(
        "No value in 10 of 20 observations: accuracy is unknown where the dense model finds nothing to score."
    )


def test_a_metric_with_no_value_at_all_renders_without_plots(tmp_path: Path) -> None:
    """Every accuracy missing (the dense model found no keypoint on any segment, as on carphone's head
    and shoulders): the report still renders, says there is nothing to plot, and draws no box for it
    (seaborn's box plot raised on an all-NaN column)."""
    r = make_results(margin=None, loss_margin=None, speed=False, fronts=False)
    obs = r.observations.copy()
    obs.loc[obs["metric"] == "loss", "value"] = math.nan
    r = dataclasses.replace(r, observations=obs)
    analysis = analyse(r, aso_iterations=ASO_ITERATIONS)
    md = render_markdown(r, analysis, image_dir=tmp_path, link_prefix="img")
    assert "No accuracy loss value was recorded in any run: nothing to plot or test." in md
    assert not (tmp_path / "box_loss.png").exists() and (tmp_path / "box_speedup.png").exists()
    assert "<img" in render_html(r, analysis)


def test_two_crossed_factors_get_one_factorial_anova_and_an_interaction_is_called_out(tmp_path: Path) -> None:
    """Before, a strategy x space study got only per-factor tests that average over the other factor: an
    effect of tpe that exists in one space only was reported as half an effect in both. Now each metric
    also gets the factorial ANOVA (main effects and the interaction, blocked on the seed), and a
    significant interaction is said in words above the per-level tests."""
    r = make_results(spaces=("group", "layer"), seeds=6)
    obs = r.observations.copy()
    boost = (obs["strategy"] == "tpe") & (obs["space"] == "layer") & (obs["metric"] == "speedup")
    obs.loc[boost, "value"] += 1.5  # tpe gains much more in the layer space
    r = dataclasses.replace(r, observations=obs)
    analysis = analyse(r, aso_iterations=ASO_ITERATIONS)
    speed = next(m for m in analysis.metrics if m.spec.name == "speedup")
    assert speed.factorial is not None and speed.factorial.block == "unit"
    terms = {t.term: t for t in speed.factorial.terms}
    assert list(terms) == ["strategy", "space", "strategy × space"]
    assert terms["strategy × space"].pvalue < 0.001 and terms["strategy"].pvalue < 0.001
    loss = next(m for m in analysis.metrics if m.spec.name == "loss")  # no interaction was added there
    assert loss.factorial is not None and loss.factorial.terms[2].pvalue > 0.05
    md = render_markdown(r, analysis, image_dir=tmp_path, link_prefix="img")
    speed_md = next(s for s in md.split("\n## ") if s.startswith("speed-up (speedup;"))
    assert "**Factors together: " in speed_md
    assert ("each effect tested against its interaction with the seed (df: effect, error); p not corrected**"
            in speed_md)
    assert "| strategy × space | 1, 5 |" in speed_md  # 6 seeds: 5 error df
    assert "strategy and space interact (p < 0.001): the effect of strategy depends on space" in speed_md
    assert md.count("interact (p") == 1


def test_the_primary_comparison_says_when_its_effect_depends_on_another_factor(tmp_path: Path) -> None:
    """The primary comparison's bullet averages over the other factor: a tpe gain of +1.5 in the layer
    space and none in the group space read as +0.75 "on average", the interaction only said further
    down. The primary section names the interaction and gives the difference at each level of the other
    factor (differences of the design-cell means, as the per-cell table has them)."""
    r = make_results(spaces=("group", "layer"), seeds=6, effects={"greedy": 0.0, "tpe": 0.0})
    obs = r.observations.copy()
    boost = (obs["strategy"] == "tpe") & (obs["space"] == "layer") & (obs["metric"] == "speedup")
    obs.loc[boost, "value"] += 1.5
    r = dataclasses.replace(r, observations=obs)
    analysis = analyse(r, aso_iterations=ASO_ITERATIONS)
    md = render_markdown(r, analysis, image_dir=tmp_path, link_prefix="img")
    primary = next(s for s in md.split("\n## ") if s.startswith("Primary comparison"))
    speed = next(m for m in analysis.metrics if m.spec.name == "speedup")
    p = next(t for t in speed.factorial.terms if t.term == "strategy × space").pvalue
    cell = {c.level: c.description.mean for c in speed.cells}
    at = {sp: fmt_signed(cell[f"tpe / {sp}"] - cell[f"greedy / {sp}"]) for sp in ("group", "layer")}
    assert (f"The effect of strategy depends on space (interaction p {'<' if p < 0.001 else '='}"
            in primary)
    assert f"tpe vs greedy {at['group']} speed-up at space = group, {at['layer']} at space = layer" in primary
    assert "The comparison above averages over space's levels." in primary
    plain = make_results(spaces=("group", "layer"), seeds=6)  # the same study without the interaction
    quiet = analyse(plain, aso_iterations=ASO_ITERATIONS)
    assert next(m for m in quiet.metrics if m.spec.name == "speedup").factorial.terms[2].pvalue > 0.05
    md = render_markdown(plain, quiet, image_dir=tmp_path, link_prefix="img")
    assert "depends on" not in next(s for s in md.split("\n## ") if s.startswith("Primary comparison"))


def test_another_alpha_is_carried_into_every_label_that_depends_on_it(tmp_path: Path) -> None:
    """At --alpha 0.1 the equivalence table held TOST's 80 % interval under "90 % CI of difference", and
    the power notes still planned for alpha 0.05."""
    r = make_results(spaces=("group",))
    analysis = analyse(r, alpha=0.1, aso_iterations=ASO_ITERATIONS)
    md = render_markdown(r, analysis, image_dir=tmp_path, link_prefix="img")
    assert "| 80 % CI of difference |" in md and "90 % CI" not in md
    notes = [p.power_note for p in analysis.pairwise if p.power_n is not None]
    assert notes and all(" at alpha 0.1 (" in n for n in notes)
    from deltatune.stats import repeats_for_power

    p = next(p for p in analysis.pairwise if p.power_n is not None)
    g = p.test.effect_sizes[0].value
    assert p.power_n == repeats_for_power(g, paired=True, alpha=0.1) < repeats_for_power(g, paired=True)


def test_a_level_with_one_value_in_every_run_is_called_copies_not_replicates(tmp_path: Path) -> None:
    """A deterministic strategy repeated over seeds gives one number three times (sd 0): the report says
    under the level table that its runs are copies, and names only such levels; a study without one has
    no such note."""
    from deltatune.ablation.table import read_results_table

    table = tmp_path / "runs.csv"
    rows = [f"{s},{st},{v}" for s in range(3) for st, v in
            (("tpe", 1.05 + 0.06 * s), ("greedy", 1.09), ("sweep", 1.10))]
    table.write_text("seed,strategy,speedup\n" + "\n".join(rows) + "\n")
    md = tmp_path / "r.md"
    write_report(read_results_table(table, factors=["strategy"]), html=None, markdown=md,
                 aso_iterations=ASO_ITERATIONS)
    text = md.read_text(encoding="utf-8")
    notes = [ln for ln in text.splitlines() if "the runs are copies, not replicates" in ln]
    assert len(notes) == 1, notes
    assert notes[0].strip("_").startswith("greedy, sweep: the same value in every run."), notes
    table.write_text("seed,strategy,speedup\n" + "\n".join(
        f"{s},{st},{v + 0.01 * s * (st != 'tpe')}" for s in range(3) for st, v in
        (("tpe", 1.05 + 0.06 * s), ("greedy", 1.09), ("sweep", 1.10))) + "\n")
    write_report(read_results_table(table, factors=["strategy"]), html=None, markdown=md,
                 aso_iterations=ASO_ITERATIONS)
    assert "copies, not replicates" not in md.read_text(encoding="utf-8")
    # two factors may share level names: each level is named with its factor
    table.write_text("seed,lr,wd,speedup\n" + "\n".join(
        f"{s},{lr},{wd},{1.0 if lr == '0.1' else 1.0 + 0.1 * s}" for s in range(3) for lr in ("0.1", "0.2")
        for wd in ("0.1", "0.2")) + "\n")
    write_report(read_results_table(table, factors=["lr", "wd"]), html=None, markdown=md,
                 aso_iterations=ASO_ITERATIONS)
    notes = [ln for ln in md.read_text(encoding="utf-8").splitlines() if "copies, not replicates" in ln]
    assert notes and notes[0].strip("_").startswith("lr = 0.1: the same value in every run."), notes


def test_the_aso_table_says_yes_only_where_the_sentence_makes_the_claim(tmp_path: Path) -> None:
    """eps_min 0.41: the sentence says "better more often than not; a confident claim needs eps_min < 0.2",
    and the table beside it answered "yes" to "level almost stochastically better?"."""
    import numpy as np

    from deltatune.ablation.table import read_results_table

    rng = np.random.default_rng(0)
    rows = [f"{s},{lv},{10 + rng.normal(0, 1) + (0.5 if lv == 'b' else 0):.3f}"
            for s in range(6) for lv in ("a", "b")]
    path = tmp_path / "x.csv"
    path.write_text("seed,method,score\n" + "\n".join(rows) + "\n")
    res = read_results_table(path, factors=["method"], baseline=("method", "a"))
    a = analyse(res, aso_iterations=200)
    pw = a.pairwise[0]
    assert pw.aso is not None and pw.aso.a_dominates and 0.2 <= pw.aso.eps_min < 0.5, pw.aso
    md = render_markdown(res, a, image_dir=tmp_path / "img", link_prefix="img")
    assert f"| b vs a | {fmt(pw.aso.eps_min)} | better more often than not (not a confident claim) |" in md
    assert "better more often than not; a confident claim needs eps_min < 0.2" in md


def test_a_difference_with_no_spread_has_no_interval_in_the_tables(tmp_path: Path) -> None:
    """Every seed 0.1 higher: the sentence said no t CI is defined while the tables printed
    "[0.100, 0.100]" as the difference's CI and as TOST's."""
    from deltatune.ablation.table import read_results_table

    rows = [f"{s},{lv},{0.5 + 0.01 * s + (0.1 if lv == 'b' else 0):.3f}"
            for s in range(5) for lv in ("a", "b")]
    path = tmp_path / "flat.csv"
    path.write_text("seed,method,acc\n" + "\n".join(rows) + "\n")
    res = read_results_table(path, factors=["method"], baseline=("method", "a"), higher_is_better=["acc"],
                             margins={"acc": 1.0})
    md = render_markdown(res, analyse(res, aso_iterations=20), image_dir=tmp_path / "img", link_prefix="img")
    assert "| b vs a | 0.100 | – (no spread) |" in md
    assert "[0.100, 0.100]" not in md


def test_a_level_without_values_is_not_counted_in_the_paired_blocks(tmp_path: Path) -> None:
    """A partial study (no loss recorded for tpe yet) said "Paired on 5 seed(s) with every level" above a
    test that found 0 complete blocks."""
    r = make_results(spaces=("group",), margin=None, loss_margin=None, speed=False, fronts=False,
                     keep=lambda row: not (row["strategy"] == "tpe" and row["metric"] == "loss"))
    md = render_markdown(r, analyse(r, aso_iterations=ASO_ITERATIONS), image_dir=tmp_path, link_prefix="img")
    assert "Paired on 5 seed(s) with every level but tpe;" in md
    assert "Paired on 5 seed(s) with every level;" in md  # the speedup metric, where tpe has values


def test_the_html_report_opens_with_links_to_each_of_its_sections() -> None:
    """An 11 000-pixel page had no ids and no links: nothing to jump to the metric sections or the
    glossary at its end."""
    r = make_results(spaces=("group",), margin=None, loss_margin=None, speed=False, fronts=False)
    page = render_html(r, analyse(r, aso_iterations=ASO_ITERATIONS))
    ids = re.findall(r'<h[1-6] id="([^"]+)"', page)
    links = re.findall(r'<a href="#([^"]+)">', page)
    h2 = re.findall(r"<h2[^>]*>", page)
    assert len(ids) == len(set(ids)) and len(links) == len(h2) >= 3
    assert set(links) <= set(ids)
    assert page.index("<nav>") < page.index("<h2")  # the contents come before the first section


def test_box_plots_of_a_paired_study_show_one_value_per_unit_and_say_so(two_by_two, tmp_path: Path) -> None:
    """The boxes pooled every run while the table and tests use one value per seed: the caption said
    "every observation" of a plot the tests never read."""
    results, analysis = two_by_two
    md = render_markdown(results, analysis, image_dir=tmp_path, link_prefix="img")
    assert "box and every observation" not in md
    assert ("speed-up per strategy: box and one value per seed (its runs at the other factors' levels "
            "averaged, as the table and tests use them), a line joining each seed's values") in md
    unpaired = dataclasses.replace(results, pairing="none")
    md = render_markdown(unpaired, analyse(unpaired, aso_iterations=ASO_ITERATIONS), image_dir=tmp_path,
                         link_prefix="img")
    assert "speed-up per strategy: box and one value per run" in md


def test_an_undefined_friedman_test_draws_no_diagram_and_no_post_hoc_matrix(tmp_path: Path) -> None:
    """Three levels tied in every seed: the Friedman statistic is undefined (NaN), yet a Nemenyi matrix of
    1.000 and a critical-difference diagram were drawn as if from a test. Now a note says why neither is."""
    r = make_results(strategies=("greedy", "tpe", "nsga2"), effects={}, noise=0.0, unit_sd=0.0)
    obs = r.observations.copy()
    obs["value"] = obs["value"].round(6)  # each seed's levels tie exactly (no noise, no effect)
    r = dataclasses.replace(r, observations=obs)
    analysis = analyse(r, aso_iterations=ASO_ITERATIONS)
    om = next(c for m in analysis.metrics if m.spec.name == "speedup" for c in m.comparisons
              if c.factor == "strategy").omnibus
    assert om is not None and om.test == "Friedman" and math.isnan(om.pvalue)
    md = render_markdown(r, analysis, image_dir=tmp_path, link_prefix="img")
    section = next(s for s in md.split("\n## ") if s.startswith("speed-up (speedup;"))
    assert "Critical-difference diagram of strategy" not in section
    assert "post-hoc p-values, adjusted" not in section
    assert ("No post-hoc p-values or critical-difference diagram: the Friedman statistic is undefined"
            in section)


def test_the_fronts_plot_names_its_axes_with_what_the_search_measured(two_by_two, tmp_path: Path) -> None:
    """A search study's fronts are each trial's accuracy loss and MAC speed-up on the run's tuning
    frames: the caption and the axis names say so (they read "speedup", not which one)."""
    from deltatune.report.document import FRONT_LOSS, FRONT_SPEED

    results, analysis = two_by_two
    md = render_markdown(results, analysis, image_dir=tmp_path, link_prefix="img")
    assert "Pareto front of every run on its tuning frames, coloured by strategy (a marker per level)" in md
    assert "MAC" in FRONT_SPEED and "tuning frames" in FRONT_SPEED and "points" in FRONT_LOSS


def test_a_report_of_an_incomplete_study_says_so_at_the_top(tmp_path: Path) -> None:
    """A study with runs still to come said so only in its runs section, after the primary comparison
    a reader may stop at: the line under the title says it first."""
    r = make_results(seeds=5, keep=lambda row: not (row["strategy"] == "tpe" and row["seed"] == 4))
    analysis = analyse(r, aso_iterations=ASO_ITERATIONS)
    assert analysis.runs.completed < analysis.runs.expected
    md = render_markdown(r, analysis, image_dir=tmp_path, link_prefix="img")
    top = md.split("\n## ")[0]
    assert (f"Incomplete study: {analysis.runs.completed} of {analysis.runs.expected} runs finished "
            f"({analysis.runs.expected - analysis.runs.completed} missing)") in top
    full = make_results(seeds=5)
    md = render_markdown(full, analyse(full, aso_iterations=ASO_ITERATIONS), image_dir=tmp_path,
                         link_prefix="img")
    assert "Incomplete study" not in md
