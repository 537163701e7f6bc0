"""Faster R-CNN + MobileNetV2: matcher and sampler, eval outputs, training, weights, MACs, and the
delta-converted backbone feeding the detector."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from deltatune.data import DEFAULT_WINDOWS, read_frames
from deltatune.delta import convert
from deltatune.errors import ConfigError, DataFetchError
from deltatune_models import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    count_dense_macs,
    create_model,
    list_models,
    model_info,
)
from deltatune_models.faster_rcnn import FasterRCNNMobileNetV2, match_boxes, sample_fg_bg

NAME = "fasterrcnn_mobilenet_v2"


def _asset(name: str):
    from deltatune.data.assets import asset_path

    try:
        return asset_path(name, fetch=True)
    except DataFetchError as exc:
        pytest.skip(f"asset {name!r} unavailable: {exc}")


def _model(seed: int = 0, weights=None) -> FasterRCNNMobileNetV2:
    torch.manual_seed(seed)
    return create_model(NAME, weights=weights)  # type: ignore[return-value]


def _synthetic(seed: int) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
    """Two dark 128x128 noise frames with bright upright rectangles ("persons") where the boxes are."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, 128, 128, generator=g) * 0.3 - 1.0
    boxes = [
        torch.tensor([[20.0, 30.0, 44.0, 90.0], [80.0, 16.0, 100.0, 70.0]]),
        torch.tensor([[50.0, 40.0, 74.0, 110.0]]),
    ]
    for i, b in enumerate(boxes):
        for x1, y1, x2, y2 in b.int().tolist():
            x[i, :, y1:y2, x1:x2] += 2.0
    return x, [{"boxes": b, "labels": torch.ones(len(b), dtype=torch.int64)} for b in boxes]


# -- matcher and sampler ---------------------------------------------------------------------------------


def test_matcher_thresholds_and_low_quality_matches_by_hand():
    iou = torch.tensor([[0.8, 0.5, 0.2, 0.1], [0.1, 0.6, 0.25, 0.0]])  # [G=2, P=4]
    # best per prediction: 0.8 (g0) >= 0.7; 0.6 (g1) between; 0.25 (g1) below 0.3; 0.1 below
    assert match_boxes(iou, 0.7, 0.3, allow_low_quality=False).tolist() == [0, -2, -1, -1]
    # g1's best prediction (1, at 0.6) is claimed by g1 anyway; g0's best (0) already matches
    assert match_boxes(iou, 0.7, 0.3, allow_low_quality=True).tolist() == [0, 1, -1, -1]
    assert match_boxes(torch.zeros(0, 3), 0.7, 0.3, allow_low_quality=True).tolist() == [-1, -1, -1]


def test_sampler_caps_positives_and_fills_with_negatives():
    torch.manual_seed(0)
    labels = torch.tensor([1] * 10 + [0] * 20 + [-1] * 5)
    pos, neg = sample_fg_bg(labels, 16, 0.25)
    assert int(pos.sum()) == 4 and int(neg.sum()) == 12
    assert bool((labels[pos] == 1).all()) and bool((labels[neg] == 0).all())
    pos, neg = sample_fg_bg(torch.tensor([1, 0, 0, -1]), 16, 0.5)
    assert pos.tolist() == [True, False, False, False] and neg.tolist() == [False, True, True, False]


# -- the model -------------------------------------------------------------------------------------------


def test_registered_as_a_detection_model_with_meta_device_macs():
    info = model_info(NAME)
    assert NAME in list_models(task="detection") and info.task == "detection" and info.num_classes == 2
    model = _model()
    backbone = count_dense_macs(model.backbone, (1, 3, 320, 320))
    cells, k = 10 * 10, model.cfg.rpn_post_nms_top_n_test  # stride 32; the nominal number of RoIs
    neck = cells * 1280 * 256
    rpn = cells * (256 * 256 * 9 + 256 * 12 + 256 * 48)
    head = k * (256 * 49 * 256 + 256 * 256 + 256 * 2 + 256 * 8)
    assert info.macs == backbone + neck + rpn + head


def test_eval_outputs_per_image_boxes_scores_labels():
    model = _model()
    x = torch.randn(2, 3, 128, 96)
    with torch.no_grad():
        out = model(x)
        again = model.detect_from_features(model.backbone(x), (128, 96))
    assert len(out) == 2
    for det, det2 in zip(out, again, strict=True):
        boxes, scores, labels = det["boxes"], det["scores"], det["labels"]
        assert (
            boxes.shape == (len(scores), 4) and labels.shape == scores.shape and labels.dtype == torch.int64
        )
        assert 0 < len(scores) <= model.cfg.detections_per_img
        assert bool((labels == 1).all()) and bool((scores > model.cfg.box_score_thresh).all())
        assert torch.equal(scores, scores.sort(descending=True).values)
        assert bool(
            (boxes[:, 0::2] >= 0).all() and (boxes[:, 0::2] <= 96).all() and (boxes[:, 1::2] <= 128).all()
        )
        torch.testing.assert_close(det2["boxes"], boxes)


def test_an_image_without_proposals_gets_no_detections():
    torch.manual_seed(0)
    model = create_model(NAME, weights=None, rpn_score_thresh=1.1)  # no objectness probability reaches it
    with torch.no_grad():
        out = model(torch.randn(1, 3, 96, 96))
    assert out[0]["boxes"].shape == (0, 4) and out[0]["scores"].shape == (0,)


def test_bad_targets_are_config_errors():
    model = _model().train()
    x = torch.randn(1, 3, 96, 96)
    with pytest.raises(ConfigError, match="needs targets"):
        model(x)
    with pytest.raises(ConfigError, match=r"labels must lie in \[1, 1\]"):
        model(x, [{"boxes": torch.tensor([[0.0, 0, 10, 10]]), "labels": torch.tensor([2])}])
    with pytest.raises(ConfigError, match="x2 <= x1"):
        model(x, [{"boxes": torch.tensor([[10.0, 0, 5, 10]]), "labels": torch.tensor([1])}])
    with pytest.raises(ConfigError, match="2 entries for a batch of 1"):
        model(x, [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0)}] * 2)


def test_training_losses_include_images_without_boxes():
    model = _model().train()
    torch.manual_seed(1)
    losses = model(torch.randn(2, 3, 96, 96), [
        {"boxes": torch.tensor([[10.0, 20.0, 40.0, 90.0]]), "labels": torch.tensor([1])},
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)},
    ])  # fmt: skip
    assert set(losses) == {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"}
    assert all(bool(torch.isfinite(v)) and v.requires_grad for v in losses.values())
    assert losses["loss_box_reg"].item() > 0 and losses["loss_rpn_box_reg"].item() > 0  # the box matched


def test_a_few_adam_steps_lower_the_loss_and_keep_backbone_batchnorm_frozen():
    model = _model(seed=3).train()
    x, targets = _synthetic(3)
    bn = model.backbone[1].conv[0][1]
    running_mean = bn.running_mean.clone()
    params = [p for p in model.parameters() if p.requires_grad]
    assert not any(p is bn.weight for p in params)
    opt = torch.optim.Adam(params, lr=1e-3)
    history = []
    for _ in range(6):
        torch.manual_seed(100)  # the same fg/bg sampling draws every step
        losses = model(x, targets)
        total = sum(losses.values())
        history.append({k: v.item() for k, v in losses.items()} | {"total": total.item()})
        opt.zero_grad()
        total.backward()
        opt.step()
    assert history[-1]["total"] < 0.8 * history[0]["total"], history
    assert history[-1]["loss_objectness"] < history[0]["loss_objectness"], history
    assert torch.equal(bn.running_mean, running_mean)


def test_a_stride_16_backbone_is_mobilenet_v2_features_cut_after_the_96_channel_block():
    _asset("mobilenet_v2_imagenet")
    mnv2 = create_model("mobilenet_v2")
    det = create_model(NAME, stride=16)  # weights="default": the ImageNet blocks it keeps
    assert isinstance(det.backbone, torch.nn.Sequential) and len(det.backbone) == 14
    assert det.backbone.state_dict().keys() <= mnv2.features.state_dict().keys()
    for k, v in det.backbone.state_dict().items():
        assert torch.equal(v, mnv2.features.state_dict()[k]), k
    with torch.no_grad():
        assert det.backbone(torch.zeros(1, 3, 160, 128)).shape == (1, 96, 10, 8)
    with pytest.raises(ConfigError, match="stride"):
        create_model(NAME, stride=4)


def test_whole_detector_checkpoint_round_trips(tmp_path):
    trained = _model(seed=4)
    path = tmp_path / "det.pth"
    torch.save(trained.state_dict(), path)
    loaded = create_model(NAME, weights=path)
    for (k, a), b in zip(trained.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


def test_default_weights_put_imagenet_mobilenet_into_the_backbone_only():
    _asset("mobilenet_v2_imagenet")
    mnv2 = create_model("mobilenet_v2")
    torch.manual_seed(5)
    reference_head = _model(seed=5).rpn.conv.weight
    torch.manual_seed(5)
    det = create_model(NAME)  # weights="default"
    for k, v in mnv2.features.state_dict().items():
        assert torch.equal(det.backbone.state_dict()[k], v), k
    assert torch.equal(det.rpn.conv.weight, reference_head)  # the RPN keeps its seeded random init


# -- with the delta engine -------------------------------------------------------------------------------


@pytest.mark.parametrize("stride", [32, 16])
def test_delta_backbone_at_threshold_zero_gives_the_dense_detections_on_two_frames(stride):
    _asset("mobilenet_v2_imagenet")
    window = DEFAULT_WINDOWS["vtest"][0]
    raw = [window.crop(f) for f in read_frames(_asset("vtest"), start=100, count=2)]
    x = torch.stack([torch.from_numpy(f.copy()).permute(2, 0, 1).float() / 255 for f in raw])
    x = F.interpolate(x, size=(160, 128), mode="bilinear", align_corners=False)
    x = (x - torch.tensor(IMAGENET_MEAN)[:, None, None]) / torch.tensor(IMAGENET_STD)[:, None, None]
    torch.manual_seed(6)
    model = create_model(NAME, weights="default", stride=stride)  # 16: the cut backbone features[:14]
    net = convert(model.backbone, thresholds=0.0, record_stats=False, dense_refresh=None)
    with torch.no_grad():
        for frame in x[:, None]:  # frame 0 dense, frame 1 through the delta path: one stream
            dense = model(frame)[0]
            delta = model(frame, features=net(frame))[0]
            assert len(dense["boxes"]) > 0 and dense["boxes"].shape == delta["boxes"].shape
            torch.testing.assert_close(delta["boxes"], dense["boxes"], atol=1e-4, rtol=0)
            torch.testing.assert_close(delta["scores"], dense["scores"], atol=1e-4, rtol=0)
            assert torch.equal(delta["labels"], dense["labels"])
    assert not torch.equal(x[0], x[1])
