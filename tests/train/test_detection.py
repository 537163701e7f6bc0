"""Training and scoring the person detector on real vtest frames with pseudo-label boxes: the loss goes
down, runs are deterministic and resumable, delta features are the stream's, and at thresholds 0 the
delta backbone gives the dense detections through the evaluation path."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from deltatune.data import read_frames
from deltatune.data.pseudo_boxes import pseudo_person_boxes
from deltatune.errors import ConfigError, DataFetchError
from deltatune.train.detection import DetectionTrainConfig, build_detector, train_detector
from deltatune.train.detection_data import (
    DetectionData,
    backbone_features,
    make_detection_data,
    normalize,
)
from deltatune.train.detection_eval import evaluate_detector, load_detector
from deltatune.train.persons import background_model

SIZE = (96, 96)


@pytest.fixture(scope="module", autouse=True)
def _imagenet_weights() -> None:
    from deltatune.data.assets import asset_path

    try:
        asset_path("mobilenet_v2_imagenet", fetch=True)
    except DataFetchError as exc:
        pytest.skip(f"MobileNetV2 ImageNet weights unavailable: {exc}")


def _data(vtest_path: Path, start: int, count: int) -> DetectionData:
    """``count`` consecutive vtest frames from ``start`` at :data:`SIZE`, with pseudo-label boxes against
    the median of every 3rd of the first 120 frames."""
    bg = background_model(
        torch.stack(
            [torch.from_numpy(f).permute(2, 0, 1) for f in read_frames(vtest_path, count=120, step=3)]
        )
    )
    raw = list(read_frames(vtest_path, start=start, count=count))
    boxes = [pseudo_person_boxes(torch.from_numpy(f).permute(2, 0, 1), bg) for f in raw]
    frames = range(start, start + count)
    return make_detection_data(raw, boxes, (576, 768), SIZE, source="vtest", frames=frames, label_id="test")


@pytest.fixture(scope="module")
def train_data(vtest_path: Path) -> DetectionData:
    return _data(vtest_path, 0, 16)


@pytest.fixture(scope="module")
def eval_data(vtest_path: Path) -> DetectionData:
    return _data(vtest_path, 60, 6)


def _cfg(**kw) -> DetectionTrainConfig:
    return replace(DetectionTrainConfig(size=SIZE, epochs=3, batch_size=4), **kw)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["model"]


@pytest.fixture(scope="module")
def trained(train_data: DetectionData, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    folder = tmp_path_factory.mktemp("det")
    r = train_detector(_cfg(epochs=4), folder / "det.pt", data=train_data, cache_dir=folder / "features")
    return folder, r


def test_data_scales_boxes_to_the_input_size(train_data: DetectionData) -> None:
    assert train_data.images.shape == (16, 3, *SIZE) and train_data.images.dtype == torch.uint8
    boxes = torch.cat(train_data.boxes)
    assert len(boxes) >= 16  # several pedestrians per frame
    assert bool(
        (boxes >= 0).all() and (boxes[:, 0::2] <= SIZE[1]).all() and (boxes[:, 1::2] <= SIZE[0]).all()
    )
    t = train_data.targets([0, 3])
    assert (
        len(t) == 2 and torch.equal(t[1]["boxes"], train_data.boxes[3]) and bool((t[0]["labels"] == 1).all())
    )


def test_a_short_run_lowers_the_loss_and_writes_loadable_weights(trained) -> None:
    folder, r = trained
    assert r.steps == 16 and r.epochs == 4 and len(r.epoch_losses) == 4
    assert r.epoch_losses[-1] < 0.8 * r.epoch_losses[0], r.epoch_losses
    model, cfg = load_detector(r.weights)
    assert cfg == _cfg(epochs=4) and not model.training
    for k, v in _weights(r.weights).items():
        assert torch.equal(model.state_dict()[k], v), k


def test_frozen_backbone_keeps_its_imagenet_weights(trained) -> None:
    _folder, r = trained
    model, cfg = load_detector(r.weights)
    untrained = build_detector(cfg)
    for k, v in untrained.backbone.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[k], v), k
    assert not torch.equal(model.rpn.conv.weight, untrained.rpn.conv.weight)


def test_same_seed_same_weights_and_resume_gives_the_same_weights(
    trained, train_data, tmp_path: Path
) -> None:
    folder, r = trained
    cfg = _cfg(epochs=4)
    again = train_detector(cfg, tmp_path / "again.pt", data=train_data, cache_dir=folder / "features")
    assert again.step_losses == r.step_losses
    part = train_detector(
        cfg, tmp_path / "part.pt", data=train_data, cache_dir=folder / "features", stop_after=6
    )
    assert part.steps == 6 and part.epochs == 1 and not (tmp_path / "part.pt").exists()
    done = train_detector(
        cfg, tmp_path / "part.pt", data=train_data, cache_dir=folder / "features", resume=True
    )
    assert done.steps == 16 and done.step_losses == r.step_losses
    ref = _weights(r.weights)
    for name in (again.weights, done.weights):
        for k, v in _weights(name).items():
            assert torch.equal(ref[k], v), (name, k)
    with pytest.raises(ConfigError, match=r"different detector training configuration \(lr 0.001 there"):
        train_detector(replace(cfg, lr=2e-3), tmp_path / "part.pt", data=train_data, resume=True)


def test_a_finished_training_resumed_with_more_epochs_is_the_longer_training(
    trained, train_data, tmp_path: Path
) -> None:
    """Each epoch's order is drawn from the seed and the epoch, each step's sampling from the step, and
    there is no schedule: 2 epochs resumed to 4 are the 4-epoch training. Fewer epochs are refused."""
    folder, r = trained
    cache = folder / "features"
    short = train_detector(_cfg(epochs=2), tmp_path / "ext.pt", data=train_data, cache_dir=cache)
    assert short.step_losses == r.step_losses[:8]
    longer = train_detector(_cfg(epochs=4), tmp_path / "ext.pt", data=train_data, cache_dir=cache,
                            resume=True)
    assert longer.epochs == 4 and longer.step_losses == r.step_losses
    ref = _weights(r.weights)
    assert all(torch.equal(ref[k], v) for k, v in _weights(longer.weights).items())
    with pytest.raises(ConfigError, match=r"has done 4 epochs already, more than --epochs 3"):
        train_detector(_cfg(), tmp_path / "ext.pt", data=train_data, cache_dir=cache, resume=True)


def test_another_seed_gives_other_weights(trained, train_data, tmp_path: Path) -> None:
    folder, r = trained
    other = train_detector(
        _cfg(epochs=1, seed=1), tmp_path / "s1.pt", data=train_data, cache_dir=folder / "features"
    )
    assert not torch.equal(_weights(other.weights)["rpn.conv.weight"], _weights(r.weights)["rpn.conv.weight"])


def test_delta_features_follow_the_stream(train_data: DetectionData, tmp_path: Path) -> None:
    model = build_detector(_cfg())
    data = replace(train_data, images=train_data.images[:6], boxes=train_data.boxes[:6])
    dense = backbone_features(model.backbone, data, "dense", cache_dir=tmp_path)
    exact = backbone_features(model.backbone, data, "delta", threshold=0.0, cache_dir=tmp_path)
    coarse = backbone_features(model.backbone, data, "delta", threshold=0.3, cache_dir=tmp_path)
    # the default stride-16 backbone (MobileNetV2 features[:14], 96 channels) at 96x96
    assert dense.shape == (6, 96, 6, 6) and len(list(tmp_path.glob("*.pt"))) == 3
    torch.testing.assert_close(exact, dense, atol=1e-4 * float(dense.abs().max()), rtol=0)
    torch.testing.assert_close(coarse[0], dense[0], atol=1e-4 * float(dense.abs().max()), rtol=0)  # frame 0
    assert float((coarse[1:] - dense[1:]).abs().max()) > 1e-3  # truncation errors on later frames
    with torch.no_grad():
        torch.testing.assert_close(dense[:2], model.backbone(normalize(data.images[:2])))


def test_training_on_delta_features_runs_and_differs(trained, train_data, tmp_path: Path) -> None:
    folder, r = trained
    cfg = _cfg(epochs=1, head_features="delta", threshold=0.3)
    delta = train_detector(cfg, tmp_path / "d.pt", data=train_data, cache_dir=folder / "features")
    assert delta.step_losses[0] != r.step_losses[0] and all(v == v for v in delta.step_losses)


def test_dense_and_delta_backbones_at_threshold_zero_give_the_same_detections(trained, eval_data) -> None:
    _folder, r = trained
    model, _cfg_ = load_detector(r.weights)
    result = evaluate_detector(model, eval_data, backbone="delta", threshold=0.0, calibrate=False, repeats=1)
    assert result.delta is not None and result.scored_frames == 5 and result.n_gt > 0
    for d, s in zip(result.dense.detections, result.delta.detections, strict=True):
        assert d["boxes"].shape == s["boxes"].shape
        torch.testing.assert_close(s["boxes"], d["boxes"], atol=1e-3, rtol=0)
        torch.testing.assert_close(s["scores"], d["scores"], atol=1e-4, rtol=0)
    assert result.delta.avg_iou == pytest.approx(result.dense.avg_iou, abs=1e-4)
    assert result.delta.map50 == pytest.approx(result.dense.map50, abs=1e-4)
    assert 0 <= result.dense.avg_iou <= 1 and result.dense.ms_per_frame > 0 and result.delta.fps > 0
    classic = evaluate_detector(model, eval_data, backbone="dense", repeats=1)
    assert classic.delta is None and classic.dense.avg_iou == result.dense.avg_iou


def test_configs_of_older_weights_files_read_as_the_stride_32_detector() -> None:
    import json

    old = json.loads(_cfg().to_json())
    for k in ("stride", "neck_channels", "box_batch_size_per_image", "rpn_pre_nms_top_n_train",
              "rpn_post_nms_top_n_train"):  # fmt: skip
        del old[k]
    cfg = DetectionTrainConfig.from_json(json.dumps(old))
    assert (cfg.stride, cfg.neck_channels, cfg.box_batch_size_per_image) == (32, 256, 128)
    assert (cfg.rpn_pre_nms_top_n_train, cfg.rpn_post_nms_top_n_train) == (1000, 300)
    assert DetectionTrainConfig.from_json(_cfg().to_json()) == _cfg()
    model = build_detector(replace(cfg, backbone_weights="none"))
    assert len(model.backbone) == 19 and model.neck.in_channels == 1280 and model.cfg.stride == 32


def test_bad_settings_are_config_errors(train_data: DetectionData, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs a frozen backbone"):
        _cfg(head_features="delta", train_backbone=True).validate()
    with pytest.raises(ConfigError, match="--optimizer"):
        _cfg(optimizer="rmsprop").validate()
    with pytest.raises(ConfigError, match=r"--epochs 0 \(must be at least 1\); --batch-size 0"):
        _cfg(epochs=0, batch_size=0).validate()
    with pytest.raises(ConfigError, match=r"--weight-decay inf \(must be a finite number >= 0\)"):
        _cfg(weight_decay=float("inf")).validate()
    with pytest.raises(ConfigError, match="stride"):
        _cfg(stride=4).validate()
    with pytest.raises(ConfigError, match="data of size"):
        train_detector(_cfg(size=(128, 128)), tmp_path / "x.pt", data=train_data)
