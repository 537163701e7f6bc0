"""BlazePose-full converted from MediaPipe's .tflite: matches the TFLite runtime, traces with FX, caches.

The reference outputs in ``fixtures/blazepose_reference.npz`` were produced by the TFLite runtime
(ai-edge-litert, see ``fixtures/blazepose_make_reference.py``) on three real vtest.avi crops, so these
tests do not need the runtime; where it is installed, :func:`test_matches_live_runtime` also compares live.
"""

from __future__ import annotations

import json
import operator
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from deltatune.errors import DataFetchError
from deltatune_models import blazepose as bp
from deltatune_models._tflite import TFLiteModule, parse_tflite

FIXTURE = Path(__file__).parent / "fixtures" / "blazepose_reference.npz"
COCO17 = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
# Allowed |torch - runtime|: 2e-3 absolute, plus a fraction of the output's largest magnitude for the
# two outputs on a pixel/logit scale of hundreds to ~1500 (landmarks in px, segmentation logits). There
# the runtime's own kernels disagree by more than 2e-3 (XNNPACK vs reference kernels: 2.5e-3 px on
# landmarks, 0.24 on segmentation logits), so an absolute 2e-3 is below fp32 reproducibility.
RANGE_RTOL = {"landmarks": 1e-5, "segmentation": 1e-3}


@pytest.fixture(scope="module")
def tflite_path() -> Path:
    try:
        from deltatune.data.assets import asset_path

        return asset_path("blazepose_tflite", fetch=True)
    except DataFetchError as exc:
        pytest.skip(f"pose_landmark_full.tflite cannot be had here: {exc}")


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(FIXTURE) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def full_model(tflite_path: Path) -> bp.BlazePoseFull:
    return bp.build_blazepose(tflite_path, cache=False, full=True, refine=False)


def _inputs(crops: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255.0


def _raw_nhwc(model: bp.BlazePoseFull, crops: np.ndarray) -> dict[str, np.ndarray]:
    """The five raw graph outputs, 4-D ones back in the runtime's NHWC layout."""
    with torch.no_grad():
        outs = model.net(_inputs(crops))
    names = ("landmarks", "pose_flag", "segmentation", "heatmaps", "world_landmarks")
    return {
        n: (y.permute(0, 2, 3, 1) if y.ndim == 4 else y).numpy() for n, y in zip(names, outs, strict=True)
    }


def _assert_close(name: str, got: np.ndarray, ref: np.ndarray) -> None:
    tol = 2e-3 + RANGE_RTOL.get(name, 0.0) * float(np.abs(ref).max())
    diff = float(np.abs(got - ref).max())
    assert diff <= tol, f"{name}: max |torch - tflite| = {diff:.3g} > {tol:.3g}"


def test_matches_stored_runtime_outputs(full_model, reference):
    got = _raw_nhwc(full_model, reference["crops"])
    got["segmentation_s4"] = got.pop("segmentation")[:, ::4, ::4, 0]
    for name in ("landmarks", "pose_flag", "heatmaps", "world_landmarks"):
        _assert_close(name, got[name], reference[name])
    _assert_close("segmentation", got["segmentation_s4"], reference["segmentation_s4"])
    # vtest's pedestrians are found, as by MediaPipe.
    assert (got["pose_flag"] > 0.99).all()


def test_matches_live_runtime(full_model, reference, tflite_path):
    pytest.importorskip("ai_edge_litert", reason="the TFLite runtime (ai-edge-litert) is not installed")
    import importlib.util

    script = FIXTURE.with_name("blazepose_make_reference.py")
    spec = importlib.util.spec_from_file_location("blazepose_make_reference", script)
    maker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(maker)
    live = maker.run_runtime(tflite_path, reference["crops"])
    got = _raw_nhwc(full_model, reference["crops"])
    names = {
        "Identity": "landmarks",
        "Identity_1": "pose_flag",
        "Identity_2": "segmentation",
        "Identity_3": "heatmaps",
        "Identity_4": "world_landmarks",
    }
    for tensor, name in names.items():
        _assert_close(name, got[name], live[tensor])


def test_heatmap_model_is_fx_traceable_from_standard_layers(tflite_path, reference):
    model = bp.build_blazepose(tflite_path, cache=False)
    gm = torch.fx.symbolic_trace(model)
    allowed = (nn.Conv2d, nn.ReLU, nn.ReLU6, nn.ZeroPad2d, nn.MaxPool2d, nn.Upsample, nn.Sigmoid)
    modules = dict(gm.named_modules())
    for node in gm.graph.nodes:
        if node.op == "call_module":
            assert isinstance(modules[node.target], allowed), node.target
        elif node.op == "call_function":
            assert node.target in (operator.add, torch.cat), node.target
        else:
            assert node.op in ("placeholder", "output"), node.op
    targets = [n.target for n in gm.graph.nodes if n.op == "call_module"]
    assert {"heatmap.conv", "conv2d_3.conv", "zero_padding2d_1"} <= set(targets)  # readable names
    x = _inputs(reference["crops"][:1])
    with torch.no_grad():
        out = gm(x)
        assert out.shape == (1, 39, 64, 64)
        torch.testing.assert_close(out, model(x), rtol=0, atol=0)


def test_cached_load_equals_fresh_conversion(tflite_path, tmp_path, monkeypatch):
    monkeypatch.setenv("DELTATUNE_DATA", str(tmp_path))
    spec_fresh, fresh = bp.converted_state(tflite_path, cache=False)
    assert not (tmp_path / "converted").exists()
    bp.converted_state(tflite_path, cache=True)  # converts and writes the cache
    (cache_file,) = (tmp_path / "converted").glob("*.pt")
    blob = torch.load(cache_file, weights_only=True)
    assert json.loads(blob["spec"]) == spec_fresh
    spec_cached, cached = bp.converted_state(tflite_path, cache=True)  # reads it back
    assert spec_cached == spec_fresh and cached.keys() == fresh.keys()
    for key in fresh:
        assert torch.equal(cached[key], fresh[key]), key


def test_shipped_graph_description_matches_tflite(tflite_path):
    spec, state = parse_tflite(tflite_path, rename=bp._RENAME)
    assert json.loads(json.dumps(spec)) == json.loads(bp.SPEC_FILE.read_text())
    convs = [n for n in spec["nodes"] if n["op"] in ("conv", "dwconv")]
    assert len(convs) == 96 and all(v.dtype == torch.float32 for v in state.values())


def test_registered_model_loads_default_weights(tflite_path, reference):
    from deltatune_models import create_model, model_info

    model = create_model("blazepose")
    assert isinstance(model, TFLiteModule)
    x = _inputs(reference["crops"][:2])
    with torch.no_grad():
        got = model(x).permute(0, 2, 3, 1).numpy()
    _assert_close("heatmaps", got, reference["heatmaps"][:2])
    info = model_info("blazepose")
    assert info.input_size == (256, 256) and info.num_joints == 39 and info.macs > 0


def test_decoded_landmarks_agree_with_heatmaps(tflite_path, reference):
    model = bp.build_blazepose(tflite_path, full=True)
    with torch.no_grad():
        out = model(_inputs(reference["crops"]))
    assert out.landmarks.shape == (3, 39, 5) and out.world_landmarks.shape == (3, 39, 3)
    assert out.pose_flag.shape == (3,)
    coco = bp.blazepose_to_coco17(out.landmarks)
    from_heatmaps = bp.blazepose_to_coco17(bp.heatmap_keypoints(out.heatmaps))
    dist = (coco[..., :2] - from_heatmaps[..., :2]).norm(dim=-1)
    visible = coco[..., 3] > 0.5
    assert visible.sum() > 20 and dist[visible].median() < 6.0, dist[visible]


def test_coco17_table_names_the_coco_joints():
    assert tuple(bp.LANDMARK_NAMES[i] for i in bp.BLAZEPOSE_TO_COCO17) == COCO17
    arr = np.arange(39 * 2).reshape(39, 2)
    np.testing.assert_array_equal(bp.blazepose_to_coco17(arr)[:, 0], 2 * np.array(bp.BLAZEPOSE_TO_COCO17))
    for a, b in bp.BLAZEPOSE_FLIP_PAIRS:
        assert bp.LANDMARK_NAMES[a].replace("left", "right") == bp.LANDMARK_NAMES[b]


def test_non_tflite_file_is_a_one_line_weights_error(tmp_path):
    from deltatune.errors import WeightsError

    bad = tmp_path / "not_a_model.tflite"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(WeightsError, match="not_a_model.tflite: not a readable .tflite file"):
        parse_tflite(bad)
    with pytest.raises(WeightsError, match="not found"):
        bp.build_blazepose(tmp_path / "missing.tflite")
