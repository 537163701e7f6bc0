"""``deltatune calibrate``: the explicit step that measures this machine's layer costs, writing the table."""

from __future__ import annotations

import json
from pathlib import Path

from deltatune.cli import main


def test_calibrate_writes_every_sparse_layer_shape_of_the_model(capsys, vtest_path) -> None:
    from deltatune.delta import convert
    from deltatune.delta._sparse_kernels import sparse_supported
    from deltatune.delta.linear import ConvOp
    from deltatune_models import create_model

    assert main(["calibrate", "--model", "hrnet_tiny", "--weights", "none", "--repeats", "1", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    table = json.loads(Path(d["table"]).read_text())["layers"]
    sigs = [c["signature"] for c in d["layers"]]
    assert sigs and set(sigs) <= set(table)
    for c in d["layers"]:
        assert c["dense_ms"] > 0 and 0.0 <= c["break_even"] <= 1.0
    net = convert(create_model("hrnet_tiny", weights=None))
    supported = [op for op in net.ops if isinstance(op, ConvOp) and sparse_supported(op.conv)]
    # one entry per distinct (layer geometry, input shape): never more than the supported convs
    assert 0 < len(sigs) <= len(supported) and len(set(sigs)) == len(sigs)
    assert main(["calibrate", "--model", "hrnet_tiny", "--weights", "none", "--repeats", "1"]) == 0
    out, err = capsys.readouterr()
    assert "layer shape" not in err  # the passing progress bar is for terminals only, not for logs
    assert f"{len(sigs)} conv layer shapes of hrnet_tiny" in out and "break-even" in out
    # the columns are said, not left to the README: what a + b f and the break-even fraction are
    assert "sparse ms at f: the sparse kernel's cost a + b f" in out
    assert "break-even: the updated fraction of a layer's output pixels below which" in out
    # the second call measured nothing and said nothing about it; now it says where the costs came from
    assert f": 0 measured now, {len(sigs)} as the table held them (--force measures them again)" in out
    assert main(["calibrate", "--model", "hrnet_tiny", "--weights", "none", "--repeats", "1", "--force"]) == 0
    out = capsys.readouterr().out
    assert f": {len(sigs)} measured now\n" in out and "as the table held" not in out
