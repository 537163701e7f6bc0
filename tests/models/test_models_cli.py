"""``deltatune models`` through its own parser (the lead registers it in deltatune.cli.COMMANDS)."""

from __future__ import annotations

import argparse
import json

from deltatune.cli import models as models_cmd
from deltatune_models import model_info


def _run(argv: list[str], capsys) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="deltatune models")
    models_cmd.add_arguments(parser)
    code = models_cmd.run(parser.parse_args(argv))
    return code, capsys.readouterr().out


def test_json_lists_every_model_with_required_fields(capsys):
    code, out = _run(["--json"], capsys)
    assert code == 0
    records = json.loads(out)
    by_name = {r["name"]: r for r in records}
    assert {"hrnet", "pose_resnet50", "mobilenet_v2"} <= set(by_name)
    assert "hrnet_tiny" not in by_name
    for r in records:
        assert {"name", "input_size", "outputs", "macs", "weights", "provenance"} <= set(r)
    assert by_name["hrnet"]["input_size"] == [256, 192]
    assert by_name["hrnet_w48"]["weights"] == "none"
    assert by_name["hrnet"]["weights"] == "available (as hrnet_w18_small_v2)"
    assert by_name["pose_resnet50"]["macs"] == model_info("pose_resnet50").macs
    assert by_name["pose_resnet50"]["gmacs"] == round(model_info("pose_resnet50").macs / 1e9, 3)


def test_all_includes_tiny_variants_and_table_has_one_row_per_model(capsys):
    code, out = _run(["--all"], capsys)
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].split()[:3] == ["name", "task", "input"]
    names = [ln.split()[0] for ln in lines[1:]]
    assert "hrnet_tiny" in names and "pose_resnet_tiny" in names
    row = next(ln for ln in lines if ln.startswith("hrnet_w32_mpii "))
    assert "256x256" in row and "[N,16,64,64]" in row
