"""Threshold maps (priority, scale, None), threshold files, DeltaCNN format."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from deltatune.delta import ThresholdMap, convert, from_deltacnn, to_deltacnn
from deltatune.delta.thresholds import ThresholdFile, TruncationPoint, check_thresholds_file, load_thresholds
from deltatune.errors import ThresholdError
from tests.delta.nets import AllOps, moving_square_clip, randomize_bn

STUDIES = Path(__file__).resolve().parents[2] / "studies"


@pytest.fixture(scope="module")
def net():
    return convert(randomize_bn(AllOps()))


def test_priority_global_kind_pattern_name(net) -> None:
    m = ThresholdMap(
        default=0.1,
        by_kind={"relu": 0.2, "input": 0.01},
        by_pattern=[(r"^block\.", 0.3), (r"relu#1$", 0.4)],
        by_name={"block.relu#1": None},
        scale=2.0,
    )
    got = net.set_thresholds(m)
    assert got["input"] == pytest.approx(0.02)  # kind, scaled
    assert got["act1"] == pytest.approx(0.2)  # default 0.1 * 2
    assert got[":relu"] == pytest.approx(0.4)  # kind relu
    assert got["block.relu"] == pytest.approx(0.6)  # pattern beats kind
    assert got["block.relu#1"] is None  # exact name beats the later pattern
    assert net.thresholds == got
    assert ThresholdMap.from_dict(json.loads(json.dumps(m.to_dict()))) == m


def test_overlapping_patterns_last_match_wins_anywhere_in_the_name() -> None:
    """The regex tier's documented rule (ThresholdMap docstring): the last matching pattern wins and
    patterns match anywhere (re.search), unlike QConfigMapping's first match with re.match."""
    pts = [
        TruncationPoint(n, "relu", i)
        for i, n in enumerate(["stage3.0.branches.1.0.relu", "stage3.0.relu", "stage4.0.branches.1.0.relu"])
    ]
    broad_then_narrow = ThresholdMap(default=0.0, by_pattern=[(r"^stage3\.", 0.1), (r"branches\.1\.", 0.02)])
    assert broad_then_narrow.resolve(pts) == {
        "stage3.0.branches.1.0.relu": 0.02,  # both match: the later pattern
        "stage3.0.relu": 0.1,
        "stage4.0.branches.1.0.relu": 0.02,  # matched mid-name (re.match would not)
    }
    narrow_then_broad = ThresholdMap(default=0.0, by_pattern=[(r"branches\.1\.", 0.02), (r"^stage3\.", 0.1)])
    assert narrow_then_broad.resolve(pts)["stage3.0.branches.1.0.relu"] == 0.1  # order decides


def test_threshold_file_is_the_trial_setting_and_reads_stored_files() -> None:
    """One type for a file and a search trial: the trial attributes round-trip, old trial attributes
    without dilation/mode get the defaults, and every shipped thresholds file loads and saves unchanged."""
    tf = ThresholdFile({"input": 0.1, "a": None}, mode="rms", input_dilation=3, model="m", meta={"k": 1})
    assert tf.to_attrs() == {"thresholds": {"input": 0.1, "a": None}, "input_dilation": 3, "mode": "rms"}
    assert ThresholdFile.from_attrs(tf.to_attrs(), model="m") == ThresholdFile(
        tf.thresholds, mode="rms", input_dilation=3, model="m"
    )
    assert ThresholdFile.from_attrs({"thresholds": {"input": 0.0}, "strategy": "tpe"}) == ThresholdFile(
        {"input": 0.0}
    )
    shipped = sorted(STUDIES.glob("thresholds/**/*.json"))
    assert shipped
    for path in shipped:
        assert load_thresholds(path).to_dict() == json.loads(path.read_text()), path


def test_unknown_name_and_bad_values_are_errors(net, caplog) -> None:
    with pytest.raises(ThresholdError, match="nope"):
        net.set_thresholds(ThresholdMap(by_name={"nope": 0.1}))
    with pytest.raises(ThresholdError, match="must be a finite number"):
        net.set_thresholds(-0.5)
    with pytest.raises(ThresholdError, match="missing"):
        net.set_thresholds({"input": 0.1})
    # a misspelt kind would leave its points at the default without a word
    with pytest.raises(ThresholdError, match=r"kind\(s\) 'ReLU': no truncation point has that kind.*relu6"):
        net.set_thresholds(ThresholdMap(default=0.1, by_kind={"input": 0.0, "ReLU": 0.2}))
    # a kind this network lacks is fine: one map serves several networks
    assert set(net.set_thresholds(ThresholdMap(default=0.1, by_kind={"mish": 0.2})).values()) == {0.1}
    # a pattern that matches nothing may be a typo, or a stage this network lacks: said, not refused
    with caplog.at_level("WARNING", logger="deltatune.delta.thresholds"):
        got = net.set_thresholds(ThresholdMap(default=0.1, by_pattern=[("stgae3", 0.3), ("relu", 0.2)]))
    assert set(got.values()) <= {0.1, 0.2}
    said = [r.getMessage() for r in caplog.records]
    assert any("threshold pattern(s) 'stgae3' match no truncation point" in m for m in said), said
    assert not any("'relu'" in m for m in said)
    with pytest.raises(ThresholdError, match=r"a file is loaded with net\.load_thresholds\('t\.json'\)"):
        net.set_thresholds("t.json")  # type: ignore[arg-type]
    for flag in (True, False):  # False is no "off" (None is), True no threshold
        with pytest.raises(ThresholdError, match=f"threshold {flag} is not a number"):
            net.set_thresholds(flag)


def test_file_round_trip_and_mismatch(net, tmp_path) -> None:
    net.set_thresholds(ThresholdMap(default=0.05, by_kind={"input": 0.01}))
    net.mode = "rms"
    path = net.save_thresholds(tmp_path / "t.json", model="allops")
    other = convert(randomize_bn(AllOps()))
    other.load_thresholds(path)
    assert other.thresholds == net.thresholds and other.mode == "rms"
    net.mode = "max"

    data = json.loads(path.read_text())
    data["thresholds"]["ghost.relu"] = 0.1
    del data["thresholds"]["act1"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ThresholdError) as exc:
        other.load_thresholds(bad)
    msg = str(exc.value)
    assert "missing 1: act1" in msg and "extra 1: ghost.relu" in msg and "\n" not in msg
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(ThresholdError, match="not valid JSON"):
        other.load_thresholds(tmp_path / "junk.json")


def test_saved_file_reproduces_outputs(net, tmp_path) -> None:
    net.set_thresholds(0.08)
    clip = moving_square_clip(6)
    ref = [o[0] for o in net.run_stream(clip)]
    path = net.save_thresholds(tmp_path / "t.json")
    again = convert(net.dense_model)
    again.load_thresholds(path)
    for a, b in zip(again.run_stream(clip), ref, strict=True):
        assert torch.equal(a[0], b)


def test_a_zoo_models_file_names_its_model_without_being_told(tmp_path) -> None:
    """A network converted from ``create_model`` wrote ``"model": null`` unless ``model=`` was passed; the
    name the model carries is the default now (a plain module still writes none)."""
    from deltatune_models import create_model

    net = convert(create_model("hrnet_tiny", weights=None))
    assert load_thresholds(net.save_thresholds(tmp_path / "t.json")).model == "hrnet_tiny"
    assert load_thresholds(net.save_thresholds(tmp_path / "o.json", model="other")).model == "other"
    assert load_thresholds(convert(randomize_bn(AllOps())).save_thresholds(tmp_path / "p.json")).model is None


def test_deltacnn_round_trip(net, tmp_path) -> None:
    names = net.threshold_names
    th = {n: 0.01 * (i + 1) for i, n in enumerate(names)}
    d = to_deltacnn(names, th)
    assert list(d) == [str(i) for i in range(len(names))]
    p = tmp_path / "thresholds_allops.json"
    p.write_text(json.dumps(d))
    assert from_deltacnn(p, names) == pytest.approx(th)
    # a fused conv+activation in DeltaCNN registers one extra key before the activation's own
    fused = to_deltacnn(names, th, fused_conv_keys=["act1"])
    assert len(fused) == len(names) + 1
    p.write_text(json.dumps(fused))
    assert from_deltacnn(p, names, fused_conv_keys=["act1"]) == pytest.approx(th)
    with pytest.raises(ThresholdError, match="entries"):
        from_deltacnn(p, names)


@pytest.mark.parametrize(
    ("keys", "needle"),
    [(["0", "1", "3"], "missing 2; not expected 3"), (["1", "2", "3"], "missing 0; not expected 3"),
     (["0", "1", "01"], "missing 2; not expected 01")],
)
def test_deltacnn_keys_must_be_0_to_n_minus_1(net, tmp_path, keys, needle) -> None:
    """A DeltaCNN file is mapped by position: a missing or doubled index would put its values on the
    wrong truncation points, so it is refused (when checked alone and when loaded)."""
    names = net.threshold_names[:3]
    p = tmp_path / "thresholds_gap.json"
    p.write_text(json.dumps({k: 0.01 * (i + 1) for i, k in enumerate(keys)}))
    with pytest.raises(ThresholdError, match=f'keys must be "0".."2".*{needle}'):
        from_deltacnn(p, names)
    with pytest.raises(ThresholdError, match=needle):
        check_thresholds_file(p)


class _ResNetStem(nn.Module):
    """conv-bn-relu -> max pool -> conv-bn-relu, as ResNet (and pose_resnet) begin."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1, self.relu = nn.Conv2d(3, 8, 7, 2, 3), nn.BatchNorm2d(8), nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.conv2, self.bn2, self.relu2 = nn.Conv2d(8, 8, 3, 1, 1), nn.BatchNorm2d(8), nn.ReLU()

    def forward(self, x):
        return self.relu2(self.bn2(self.conv2(self.maxpool(self.relu(self.bn1(self.conv1(x)))))))


def test_max_pooling_is_no_truncation_point_as_in_deltacnn(tmp_path) -> None:
    # DeltaCNN (src/deltacnn/sparse_layers.py) registers a threshold key in DCSparsify.forward and
    # DCActivation.forward, and none in DCMaxPooling.forward: this stem registers input, relu, relu2.
    net = convert(_ResNetStem().eval(), torch.rand(1, 3, 32, 32), thresholds=0.05)
    assert net.threshold_names == ["input", "relu", "relu2"]
    keys = to_deltacnn(net.threshold_names, net.thresholds)
    assert list(keys) == ["0", "1", "2"]
    path = tmp_path / "thresholds_stem.json"
    path.write_text(json.dumps({"0": 0.1, "1": 0.2, "2": 0.3}))
    assert from_deltacnn(path, net.threshold_names) == {"input": 0.1, "relu": 0.2, "relu2": 0.3}
    # a network loads a DeltaCNN file as it is (bench, inspect, predict, study files): a setting tuned
    # with DeltaCNN's own library runs here
    tf = net.load_thresholds(path)
    assert net.thresholds == {"input": 0.1, "relu": 0.2, "relu2": 0.3} and tf.mode == "max"
    path.write_text(json.dumps({"0": 0.1, "1": 0.2}))  # one value short
    with pytest.raises(ThresholdError, match="has 2 entries but the model has 3 truncation points"):
        net.load_thresholds(path)
    path.write_text(json.dumps({"input": 0.1}))  # neither format
    with pytest.raises(ThresholdError, match="not a deltatune thresholds file .* or DeltaCNN's"):
        net.load_thresholds(path)
    # the pool stays exact whatever the thresholds: a global threshold does not reach it
    pool = next(op for op in net.ops if op.kind == "maxpool")
    assert pool.threshold == 0.0 and not pool.is_point
    # on request it is a truncation point of its own (never exported to DeltaCNN's format by default)
    extra = convert(_ResNetStem().eval(), torch.rand(1, 3, 32, 32), thresholds=0.05, truncate_maxpool=True)
    assert extra.threshold_names == ["input", "relu", "maxpool", "relu2"]
    assert extra.thresholds["maxpool"] == 0.05


def test_max_pooling_stays_exact_at_threshold_zero() -> None:
    torch.manual_seed(0)
    model = _ResNetStem().eval()
    net = convert(model, thresholds=0.0)
    frames = torch.rand(6, 1, 3, 32, 32)
    frames[1:] = frames[:1] + 0.05 * (torch.rand(5, 1, 3, 32, 32) > 0.9)  # sparse changes
    with torch.no_grad():
        for f in frames:
            assert torch.allclose(net(f), model(f), atol=1e-5)


def test_file_records_its_weights_and_other_weights_are_named_on_load(net, tmp_path, caplog) -> None:
    net.set_thresholds(0.05)
    path = net.save_thresholds(tmp_path / "t.json", model="allops")
    assert load_thresholds(path).weights == net.weights_fingerprint
    same = convert(net.dense_model)
    with caplog.at_level("WARNING", logger="deltatune.delta.network"):
        same.load_thresholds(path)
    assert not caplog.records
    other = convert(randomize_bn(AllOps()))  # same architecture, other weights: loads, with a warning
    with caplog.at_level("WARNING", logger="deltatune.delta.network"):
        other.load_thresholds(path)
    assert other.thresholds == net.thresholds
    [rec] = caplog.records
    msg = rec.getMessage()
    assert str(path) in msg and net.weights_fingerprint in msg and other.weights_fingerprint in msg

    data = json.loads(path.read_text())
    del data["weights"]  # files written before the fingerprint was recorded load silently
    old = tmp_path / "old.json"
    old.write_text(json.dumps(data))
    caplog.clear()
    with caplog.at_level("WARNING", logger="deltatune.delta.network"):
        assert other.load_thresholds(old).weights is None
    assert not caplog.records
    data["weights"] = 7
    old.write_text(json.dumps(data))
    with pytest.raises(ThresholdError, match="weights must be a fingerprint string"):
        load_thresholds(old)


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("mode", "maxx", "mode must be one of max, norm, rms, got 'maxx'"),
        ("input_dilation", 4, "input_dilation must be a positive odd integer, got 4"),
        ("input_dilation", "3", "input_dilation must be a positive odd integer, got '3'"),
    ],
)
def test_a_files_bad_setting_is_refused_naming_the_file(
    tmp_path, field: str, value: object, said: str
) -> None:
    """`"mode": "maxx"` was refused only when applied, as "truncation mode 'maxx' is unknown", naming no
    file (and `check_thresholds_file` let it through)."""
    from deltatune.delta.thresholds import FORMAT, check_thresholds_file

    path = tmp_path / "t.json"
    path.write_text(json.dumps({"format": FORMAT, "thresholds": {"input": 0.1}, field: value}))
    with pytest.raises(ThresholdError, match=re.escape(f"thresholds file {path}: {said}")):
        check_thresholds_file(path)


def test_a_threshold_written_as_text_is_refused(tmp_path) -> None:
    from deltatune.delta.thresholds import FORMAT, load_thresholds

    path = tmp_path / "t.json"
    path.write_text(json.dumps({"format": FORMAT, "thresholds": {"input": "0.1"}}))
    with pytest.raises(ThresholdError, match=r"t.json: input: threshold '0.1' is not a number"):
        load_thresholds(path)


def test_a_submodule_named_input_does_not_share_the_input_sparsifiers_name() -> None:
    """``self.input = nn.ReLU()`` was called ``input``, as the input sparsifier is: two truncation points
    under one name, set together by ``{"input": v}`` and a thresholds file. The module is ``input#1``."""

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.input, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(self.input(self.a(x)))

    net = convert(Net().eval())
    assert net.threshold_names == ["input", "input#1"]
    net.set_thresholds({"input": 0.5, "input#1": 0.25})
    assert [op.threshold for op in net.ops if op.name in ("input", "input#1")] == [0.5, 0.25]
