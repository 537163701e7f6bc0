"""``bench --plot``'s picture: drawn from a real bench of the tiny HRNet on vtest."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from deltatune.bench import run_bench
from deltatune.cli import main
from deltatune.report.bench_plot import dense_side, heaviest_layers, save_bench_figure


def test_the_figure_shows_the_heaviest_layers_first(vtest_path: Path, tmp_path: Path) -> None:
    r = run_bench("hrnet_tiny", weights=None, frames=4, threshold=0.02, repeats=1)
    rows = heaviest_layers(r, 5)
    assert 0 < len(rows) <= 5
    cost = [max(x.ms or 0.0, dense_side(x) or 0.0) for x in rows]
    assert cost == sorted(cost, reverse=True)
    everything = heaviest_layers(r, 1000)
    assert max(max(x.ms or 0.0, dense_side(x) or 0.0) for x in everything) == cost[0]
    out = save_bench_figure(r, tmp_path / "sub" / "time.png", layers=5)
    with Image.open(out) as im:
        assert im.format == "PNG" and im.width >= 1000
    assert [p.name for p in out.parent.iterdir()] == ["time.png"]  # no temporary file left


def test_bench_plot_refuses_a_bad_file_type_before_any_work(capsys, tmp_path: Path) -> None:
    bad = tmp_path / "time.csv"
    assert main(["bench", "--model", "hrnet_tiny", "--weights", "none", "--plot", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--plot" in err and "unsupported file type '.csv'" in err
    assert not bad.exists()
    good = tmp_path / "time.png"
    argv = ["bench", "--model", "hrnet_tiny", "--weights", "none", "--frames", "3", "--repeats", "1",
            "--threshold", "0.02", "--plot", str(good)]
    assert main(argv) == 0
    assert f"plot: {good}" in capsys.readouterr().out and good.read_bytes()[:4] == b"\x89PNG"
