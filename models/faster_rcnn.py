"""Faster R-CNN (Ren et al., NeurIPS 2015) on a MobileNetV2 backbone, in plain torch, for person detection.

Shaped like torchvision's ``fasterrcnn_mobilenet_v3_large_320_fpn`` without the FPN (torchvision's
``mobilenet_backbone(fpn=False)``): one feature map of stride 32, reduced from 1280 to 256 channels by a
1x1 conv (``neck``) (``FasterRCNNCfg.stride=16``: MobileNetV2's ``features`` cut after the 96-channel
stride-16 block, ``features[:14]``, for small objects; the person-detector trainer's default), then

* **RPN**: 3x3 conv + ReLU, a 1x1 objectness conv (``A`` logits per cell) and a 1x1 box-delta conv
  (``4 A``); ``A = len(anchor_sizes) * len(aspect_ratios)`` anchors per cell (``deltatune_models._anchors``).
  Proposals: decode the deltas, keep the ``pre_nms_top_n`` best, clip, drop boxes under 1e-3 px, drop
  objectness probabilities below ``rpn_score_thresh``, NMS at 0.7, keep ``post_nms_top_n``.
* **Box head**: RoIAlign 7x7 (sampling ratio 2, ``aligned=False`` as torchvision's Faster R-CNN), two
  fully connected layers with ReLU (``representation_size``), class logits and per-class box deltas
  (weights 10, 10, 5, 5).

Training (``model.train()``, ``forward(images, targets)``) returns torchvision's four losses:
``loss_objectness`` (BCE on the sampled anchors), ``loss_rpn_box_reg`` (smooth-L1, beta 1/9, summed over
positives / sampled anchors), ``loss_classifier`` (CE on the sampled RoIs) and ``loss_box_reg`` (smooth-L1
of the ground-truth class's deltas, beta 1/9, summed / sampled RoIs). Anchors match a box at IoU >= 0.7,
are background below 0.3 and ignored in between, and every box also takes its best anchors; RoIs (the
proposals plus the ground-truth boxes) match at IoU >= 0.5 and are background below. Sampling: 256
anchors per image, half positive at most; ``box_batch_size_per_image`` RoIs, a quarter positive at most.
The only randomness is that sampling (``torch.randperm`` with torch's global generator).

Evaluation returns one dict per image: ``boxes [D, 4]`` (x1, y1, x2, y2 in input pixels), ``scores [D]``
and ``labels [D]`` (1 = person), after a score threshold, per-class NMS at 0.5 and the top 100.

Inputs are ``[N, 3, H, W]`` RGB images normalised with ImageNet's mean and std (the zoo's convention; no
resizing happens inside). The backbone (``self.backbone``, MobileNetV2's ``features``) is a plain module
that the delta engine converts on its own; a converted backbone's output goes in through
``forward(images, features=...)`` or :meth:`FasterRCNNMobileNetV2.detect_from_features`. The backbone's
BatchNorms stay frozen (eval statistics, affine parameters not trained), as torchvision's
``FrozenBatchNorm2d``: detection batches are far too small for batch statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from deltatune.errors import ConfigError

from ._anchors import base_anchors, grid_anchors
from ._boxes import batched_nms, box_iou, clip_boxes, decode_boxes, encode_boxes, nms, remove_small_boxes
from ._registry import IMAGENET_MEAN, IMAGENET_STD, ModelCard, register_model
from ._roi_align import roi_align
from .mobilenet_v2 import MobileNetV2, MobileNetV2Cfg

__all__ = [
    "FasterRCNNCfg",
    "FasterRCNNMobileNetV2",
    "Detections",
    "backbone_cut",
    "match_boxes",
    "sample_fg_bg",
    "checkpoint_filter_fn",
    "fasterrcnn_mobilenet_v2",
]

#: One image's detections: ``{"boxes": [D, 4], "scores": [D], "labels": [D] int64}``.
Detections = dict[str, torch.Tensor]
#: Matcher codes (torchvision's ``Matcher``): IoU below the low threshold, and between the two thresholds.
BELOW_LOW_THRESHOLD = -1
BETWEEN_THRESHOLDS = -2
RPN_BOX_WEIGHTS = (1.0, 1.0, 1.0, 1.0)
HEAD_BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)


@dataclass(frozen=True)
class FasterRCNNCfg:
    """Architecture and detection settings (torchvision's names and defaults, sized down for small CPU
    inputs of 96x96 to 320x320: fewer proposals and sampled RoIs, a 256-d box head)."""

    num_classes: int = 2  # background + person
    width_mult: float = 1.0
    #: Output stride of the backbone (8, 16 or 32), also the RoIAlign scale 1/stride: 32 keeps all of
    #: MobileNetV2's ``features`` (1280 channels); 16 / 8 cut them after the last block of that stride
    #: (``features[:14]``, 96 channels / ``features[:7]``, 32 channels at width 1.0).
    stride: int = 32
    neck_channels: int = 256
    anchor_sizes: tuple[float, ...] = (32.0, 64.0, 128.0, 256.0)
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)  # height / width
    rpn_pre_nms_top_n_train: int = 1000
    rpn_pre_nms_top_n_test: int = 300
    rpn_post_nms_top_n_train: int = 300
    rpn_post_nms_top_n_test: int = 100
    rpn_nms_thresh: float = 0.7
    rpn_fg_iou_thresh: float = 0.7
    rpn_bg_iou_thresh: float = 0.3
    rpn_batch_size_per_image: int = 256
    rpn_positive_fraction: float = 0.5
    rpn_score_thresh: float = 0.0
    roi_output_size: int = 7
    roi_sampling_ratio: int = 2
    roi_aligned: bool = False
    representation_size: int = 256
    box_fg_iou_thresh: float = 0.5
    box_bg_iou_thresh: float = 0.5
    box_batch_size_per_image: int = 128
    box_positive_fraction: float = 0.25
    box_score_thresh: float = 0.05
    box_nms_thresh: float = 0.5
    detections_per_img: int = 100


def backbone_cut(mcfg: MobileNetV2Cfg, stride: int) -> tuple[int, int]:
    """``(blocks, channels)``: how many of MobileNetV2's ``features`` blocks make a backbone of output
    ``stride`` (8, 16 or 32), and its output channels. 32 is the whole ``features`` (with the last 1x1
    conv); 8 and 16 end at the last inverted-residual block of that stride."""
    from .mobilenet_v2 import _make_divisible

    blocks, current = 1, 2  # features[0]: the stride-2 stem
    channels = _make_divisible(32 * mcfg.width_mult, mcfg.round_nearest)
    cuts: dict[int, tuple[int, int]] = {}
    for _t, c, n, s in mcfg.inverted_residual_setting:
        for i in range(n):
            current *= s if i == 0 else 1
            blocks += 1
            channels = _make_divisible(c * mcfg.width_mult, mcfg.round_nearest)
            cuts[current] = (blocks, channels)
    if stride == current:
        return blocks + 1, _make_divisible(1280 * max(1.0, mcfg.width_mult), mcfg.round_nearest)
    if stride not in cuts or stride < 8:
        raise ConfigError(f"FasterRCNNCfg.stride={stride}: choose 8, 16 or {current}")
    return cuts[stride]


def match_boxes(iou: torch.Tensor, high: float, low: float, *, allow_low_quality: bool) -> torch.Tensor:
    """For every prediction (column of ``iou [G, P]``), the index of its best ground truth, or
    ``-1`` (best IoU < ``low``) / ``-2`` (``low <= IoU < high``); torchvision's ``Matcher``.

    ``allow_low_quality``: every ground truth also claims the predictions of its highest IoU (all ties),
    even below ``high``, so that no box is left without a positive anchor.
    """
    if iou.shape[0] == 0:
        return torch.full((iou.shape[1],), BELOW_LOW_THRESHOLD, dtype=torch.int64, device=iou.device)
    best, matches = iou.max(dim=0)
    all_matches = matches.clone()
    matches[best < low] = BELOW_LOW_THRESHOLD
    matches[(best >= low) & (best < high)] = BETWEEN_THRESHOLDS
    if allow_low_quality:
        highest = iou.max(dim=1).values
        preds = torch.where(iou == highest[:, None])[1]
        matches[preds] = all_matches[preds]
    return matches


def sample_fg_bg(
    labels: torch.Tensor, batch_size: int, positive_fraction: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean masks of sampled positives (``labels >= 1``) and negatives (``labels == 0``) of one image:
    at most ``batch_size * positive_fraction`` positives, negatives fill up to ``batch_size``; random
    picks use ``torch.randperm`` on the global generator (torchvision's ``BalancedPositiveNegativeSampler``).
    """
    positive = torch.where(labels >= 1)[0]
    negative = torch.where(labels == 0)[0]
    num_pos = min(int(batch_size * positive_fraction), positive.numel())
    num_neg = min(batch_size - num_pos, negative.numel())
    pos_idx = positive[torch.randperm(positive.numel(), device=positive.device)[:num_pos]]
    neg_idx = negative[torch.randperm(negative.numel(), device=negative.device)[:num_neg]]
    pos_mask = torch.zeros_like(labels, dtype=torch.bool)
    neg_mask = torch.zeros_like(labels, dtype=torch.bool)
    pos_mask[pos_idx] = True
    neg_mask[neg_idx] = True
    return pos_mask, neg_mask


class RPNHead(nn.Module):
    """3x3 conv + ReLU, then 1x1 convs for ``A`` objectness logits and ``4 A`` box deltas per cell."""

    def __init__(self, channels: int, num_anchors: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.cls_logits = nn.Conv2d(channels, num_anchors, 1)
        self.bbox_pred = nn.Conv2d(channels, 4 * num_anchors, 1)
        for layer in (self.conv, self.cls_logits, self.bbox_pred):
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.zeros_(layer.bias)  # type: ignore[arg-type]  # every conv here has a bias

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = F.relu(self.conv(x))
        return self.cls_logits(t), self.bbox_pred(t)


class BoxHead(nn.Module):
    """Two fully connected layers with ReLU, then class logits and per-class box deltas."""

    def __init__(self, in_features: int, representation: int, num_classes: int) -> None:
        super().__init__()
        self.fc6 = nn.Linear(in_features, representation)
        self.fc7 = nn.Linear(representation, representation)
        self.cls_score = nn.Linear(representation, num_classes)
        self.bbox_pred = nn.Linear(representation, 4 * num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.relu(self.fc7(F.relu(self.fc6(x.flatten(1)))))
        return self.cls_score(x), self.bbox_pred(x)


class FasterRCNNMobileNetV2(nn.Module):
    """Faster R-CNN with a MobileNetV2 backbone (module docstring: structure, losses, outputs)."""

    cell_anchors: torch.Tensor

    def __init__(self, cfg: FasterRCNNCfg | None = None) -> None:
        super().__init__()
        cfg = cfg or FasterRCNNCfg()
        if cfg.num_classes < 2:
            raise ConfigError(f"FasterRCNNCfg.num_classes={cfg.num_classes}: needs background + >= 1 class")
        self.cfg = cfg
        mcfg = MobileNetV2Cfg(width_mult=cfg.width_mult)
        mnv2 = MobileNetV2(mcfg)
        blocks, channels = backbone_cut(mcfg, cfg.stride)
        self.backbone: nn.Module = mnv2.features if blocks == len(mnv2.features) else mnv2.features[:blocks]
        self.neck = nn.Conv2d(channels, cfg.neck_channels, 1)
        self.register_buffer(
            "cell_anchors", base_anchors(cfg.anchor_sizes, cfg.aspect_ratios), persistent=False
        )
        self.num_anchors = len(cfg.anchor_sizes) * len(cfg.aspect_ratios)
        self.rpn = RPNHead(cfg.neck_channels, self.num_anchors)
        pooled = cfg.neck_channels * cfg.roi_output_size**2
        self.box_head = BoxHead(pooled, cfg.representation_size, cfg.num_classes)
        for m in self.backbone.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.requires_grad_(False)

    def train(self, mode: bool = True) -> FasterRCNNMobileNetV2:
        """Set train/eval mode, keeping the backbone's BatchNorms in eval (frozen statistics)."""
        super().train(mode)
        for m in self.backbone.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self

    # -- public entry points -------------------------------------------------------------------------

    def forward(
        self,
        images: torch.Tensor,
        targets: Sequence[dict[str, torch.Tensor]] | None = None,
        *,
        features: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor] | list[Detections]:
        """Train mode: the loss dict for ``targets`` (one ``{"boxes": [G, 4], "labels": [G]}`` per image).
        Eval mode: one :data:`Detections` per image. ``features``: the backbone's output for ``images``
        (e.g. from a delta-converted backbone); the backbone is then not run."""
        if images.dim() != 4:
            raise ConfigError(f"images: expected [N, 3, H, W], got shape {list(images.shape)}")
        image_size = (int(images.shape[-2]), int(images.shape[-1]))
        if features is None:
            features = self.backbone(images)
        if self.training:
            if targets is None:
                raise ConfigError(
                    "FasterRCNNMobileNetV2 in train mode needs targets (call .eval() to detect)"
                )
            self._check_targets(targets, features.shape[0])
            return self._losses(features, image_size, targets)
        return self.detect_from_features(features, image_size)

    def detect_from_features(self, features: torch.Tensor, image_size: tuple[int, int]) -> list[Detections]:
        """Detections for backbone ``features [N, 1280, h, w]`` of images of ``image_size = (H, W)``."""
        x = self.neck(features)
        if x.device.type == "meta":
            return self._meta_pass(x)
        objectness, deltas, anchors = self._rpn_outputs(x)
        proposals = self._proposals(objectness.detach(), deltas.detach(), anchors, image_size, training=False)
        logits, box_deltas = self._box_head(x, proposals)
        return self._postprocess(logits, box_deltas, proposals, image_size)

    # -- RPN -----------------------------------------------------------------------------------------

    def _rpn_outputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Objectness ``[N, h*w*A]``, deltas ``[N, h*w*A, 4]`` and anchors ``[h*w*A, 4]``, location-major."""
        n, _, h, w = x.shape
        logits, deltas = self.rpn(x)
        objectness = logits.permute(0, 2, 3, 1).reshape(n, -1)
        deltas = deltas.view(n, self.num_anchors, 4, h, w).permute(0, 3, 4, 1, 2).reshape(n, -1, 4)
        stride = self.cfg.stride
        anchors = grid_anchors(self.cell_anchors.to(x.dtype), (h, w), (stride, stride))
        return objectness, deltas, anchors

    def _proposals(
        self,
        objectness: torch.Tensor,
        deltas: torch.Tensor,
        anchors: torch.Tensor,
        image_size: tuple[int, int],
        *,
        training: bool,
    ) -> list[torch.Tensor]:
        """Per image, the proposal boxes ``[P, 4]`` that survive top-n, clipping, size, score and NMS."""
        cfg = self.cfg
        pre = cfg.rpn_pre_nms_top_n_train if training else cfg.rpn_pre_nms_top_n_test
        post = cfg.rpn_post_nms_top_n_train if training else cfg.rpn_post_nms_top_n_test
        boxes = decode_boxes(deltas, anchors[None], RPN_BOX_WEIGHTS)
        top_scores, top_idx = objectness.topk(min(pre, objectness.shape[1]), dim=1)
        out = []
        for img_boxes, idx, scores in zip(boxes, top_idx, top_scores, strict=True):
            b = clip_boxes(img_boxes[idx], image_size)
            keep = remove_small_boxes(b, 1e-3)
            b, prob = b[keep], torch.sigmoid(scores[keep])
            keep = torch.where(prob >= cfg.rpn_score_thresh)[0]
            b, prob = b[keep], prob[keep]
            out.append(b[nms(b, prob, cfg.rpn_nms_thresh)[:post]])
        return out

    def _rpn_losses(
        self,
        objectness: torch.Tensor,
        deltas: torch.Tensor,
        anchors: torch.Tensor,
        targets: Sequence[dict[str, torch.Tensor]],
    ) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        labels, reg_targets, pos_masks, neg_masks = [], [], [], []
        for t in targets:
            gt = t["boxes"].to(anchors)
            matches = match_boxes(
                box_iou(gt, anchors), cfg.rpn_fg_iou_thresh, cfg.rpn_bg_iou_thresh, allow_low_quality=True
            )
            lab = (matches >= 0).to(anchors.dtype)
            lab[matches == BETWEEN_THRESHOLDS] = -1.0
            matched = gt[matches.clamp(min=0)] if gt.shape[0] else anchors
            reg_targets.append(encode_boxes(matched, anchors, RPN_BOX_WEIGHTS))
            pos, neg = sample_fg_bg(lab, cfg.rpn_batch_size_per_image, cfg.rpn_positive_fraction)
            labels.append(lab)
            pos_masks.append(pos)
            neg_masks.append(neg)
        pos = torch.cat(pos_masks)
        sampled = pos | torch.cat(neg_masks)
        n_sampled = max(int(sampled.sum()), 1)
        box_loss = (
            F.smooth_l1_loss(
                deltas.reshape(-1, 4)[pos], torch.cat(reg_targets)[pos], beta=1 / 9, reduction="sum"
            )
            / n_sampled
        )
        obj_loss = F.binary_cross_entropy_with_logits(
            objectness.reshape(-1)[sampled], torch.cat(labels)[sampled]
        )
        return {"loss_objectness": obj_loss, "loss_rpn_box_reg": box_loss}

    # -- box head ------------------------------------------------------------------------------------

    def _box_head(self, x: torch.Tensor, proposals: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Class logits ``[K, C]`` and box deltas ``[K, 4 C]`` for all images' proposals, concatenated."""
        cfg = self.cfg
        rois = torch.cat(
            [torch.cat([torch.full_like(p[:, :1], i), p], dim=1) for i, p in enumerate(proposals)]
        )
        pooled = roi_align(
            x, rois, cfg.roi_output_size, 1.0 / cfg.stride, cfg.roi_sampling_ratio, aligned=cfg.roi_aligned
        )
        return self.box_head(pooled)

    def _sample_rois(
        self, proposals: list[torch.Tensor], targets: Sequence[dict[str, torch.Tensor]]
    ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """Sampled RoIs per image (proposals + ground truth), their labels and regression targets."""
        cfg = self.cfg
        rois, labels, reg = [], [], []
        for props, t in zip(proposals, targets, strict=True):
            gt, gt_labels = t["boxes"].to(props), t["labels"].to(torch.int64)
            props = torch.cat([props, gt])
            if gt.shape[0]:
                matches = match_boxes(
                    box_iou(gt, props), cfg.box_fg_iou_thresh, cfg.box_bg_iou_thresh, allow_low_quality=False
                )
                lab = gt_labels[matches.clamp(min=0)]
                lab[matches == BELOW_LOW_THRESHOLD] = 0
                lab[matches == BETWEEN_THRESHOLDS] = -1
                matched = gt[matches.clamp(min=0)]
            else:
                lab = torch.zeros(props.shape[0], dtype=torch.int64, device=props.device)
                matched = props
            pos, neg = sample_fg_bg(lab, cfg.box_batch_size_per_image, cfg.box_positive_fraction)
            keep = torch.where(pos | neg)[0]
            rois.append(props[keep])
            labels.append(lab[keep])
            reg.append(encode_boxes(matched[keep], props[keep], HEAD_BOX_WEIGHTS))
        return rois, torch.cat(labels), torch.cat(reg)

    def _losses(
        self, features: torch.Tensor, image_size: tuple[int, int], targets: Sequence[dict[str, torch.Tensor]]
    ) -> dict[str, torch.Tensor]:
        x = self.neck(features)
        objectness, deltas, anchors = self._rpn_outputs(x)
        losses = self._rpn_losses(objectness, deltas, anchors, targets)
        proposals = self._proposals(objectness.detach(), deltas.detach(), anchors, image_size, training=True)
        rois, labels, reg_targets = self._sample_rois(proposals, targets)
        logits, box_deltas = self._box_head(x, rois)
        losses["loss_classifier"] = F.cross_entropy(logits, labels)
        pos = torch.where(labels > 0)[0]
        per_class = box_deltas.reshape(labels.shape[0], -1, 4)
        losses["loss_box_reg"] = F.smooth_l1_loss(
            per_class[pos, labels[pos]], reg_targets[pos], beta=1 / 9, reduction="sum"
        ) / max(labels.numel(), 1)
        return losses

    def _postprocess(
        self,
        logits: torch.Tensor,
        box_deltas: torch.Tensor,
        proposals: list[torch.Tensor],
        image_size: tuple[int, int],
    ) -> list[Detections]:
        """Per image: class-specific boxes, score threshold, small-box removal, per-class NMS, top-n."""
        cfg = self.cfg
        c = cfg.num_classes
        out: list[Detections] = []
        for img_logits, img_deltas, props in zip(
            logits.split([len(p) for p in proposals]),
            box_deltas.split([len(p) for p in proposals]),
            proposals,
            strict=True,
        ):
            boxes = decode_boxes(img_deltas.reshape(-1, c, 4), props[:, None, :], HEAD_BOX_WEIGHTS)
            boxes = clip_boxes(boxes, image_size)[:, 1:].reshape(-1, 4)
            scores = F.softmax(img_logits, dim=-1)[:, 1:].reshape(-1)
            labels = torch.arange(1, c, device=scores.device).repeat(props.shape[0])
            keep = torch.where(scores > cfg.box_score_thresh)[0]
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
            keep = remove_small_boxes(boxes, 1e-2)
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
            keep = batched_nms(boxes, scores, labels, cfg.box_nms_thresh)[: cfg.detections_per_img]
            out.append({"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]})
        return out

    def _meta_pass(self, x: torch.Tensor) -> list[Detections]:
        """Shape-only pass on the ``meta`` device (the registry's MAC count): proposal selection depends on
        values, so the box head runs on the nominal ``rpn_post_nms_top_n_test`` RoIs per image (the most
        it can get) and no detections come out."""
        cfg = self.cfg
        self.rpn(x)
        k = x.shape[0] * cfg.rpn_post_nms_top_n_test
        self.box_head(x.new_zeros(k, x.shape[1], cfg.roi_output_size, cfg.roi_output_size))
        empty = {"boxes": x.new_zeros(0, 4), "scores": x.new_zeros(0), "labels": x.new_zeros(0).long()}
        return [dict(empty) for _ in range(x.shape[0])]

    def _check_targets(self, targets: Sequence[dict[str, torch.Tensor]], batch: int) -> None:
        if len(targets) != batch:
            raise ConfigError(f"targets: {len(targets)} entries for a batch of {batch} images")
        for i, t in enumerate(targets):
            boxes, labels = t.get("boxes"), t.get("labels")
            if boxes is None or labels is None:
                raise ConfigError(f"targets[{i}]: needs 'boxes' [G, 4] and 'labels' [G]")
            if boxes.dim() != 2 or boxes.shape[1] != 4 or labels.shape != (boxes.shape[0],):
                shapes = f"boxes {list(boxes.shape)}, labels {list(labels.shape)}"
                raise ConfigError(f"targets[{i}]: {shapes}: expected [G, 4], [G]")
            if labels.numel() and (int(labels.min()) < 1 or int(labels.max()) >= self.cfg.num_classes):
                raise ConfigError(f"targets[{i}]: labels must lie in [1, {self.cfg.num_classes - 1}]")
            if boxes.numel() and bool((boxes[:, 2:] <= boxes[:, :2]).any()):
                raise ConfigError(f"targets[{i}]: a box has x2 <= x1 or y2 <= y1")


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Accept a whole detector checkpoint as is, or an ImageNet MobileNetV2 file for the backbone only.

    For a classifier file (``features.*`` keys, no ``backbone.*``) the ``features.*`` tensors become
    ``backbone.*`` (those of the blocks a cut backbone keeps), its classifier is dropped, and every
    other tensor keeps the model's current (random) value, so that the strict load checks the backbone
    keys and shapes exactly.
    """
    if any(k.startswith("backbone.") for k in state_dict) or not any(
        k.startswith("features.") for k in state_dict
    ):
        return state_dict
    own = model.state_dict()
    out = {k: v for k, v in own.items() if not k.startswith("backbone.")}
    out.update(
        {
            "backbone." + k[len("features.") :]: v
            for k, v in state_dict.items()
            if k.startswith("features.") and "backbone." + k[len("features.") :] in own
        }
    )  # a cut backbone (stride 8 / 16) takes only the blocks it has
    return out


def _create(cfg: FasterRCNNCfg, **kwargs: Any) -> FasterRCNNMobileNetV2:
    for key in kwargs:
        if not hasattr(cfg, key):
            raise TypeError(f"fasterrcnn_mobilenet_v2: unknown argument {key!r}")
    return FasterRCNNMobileNetV2(replace(cfg, **kwargs))


MODEL_CARDS: dict[str, ModelCard] = {
    "fasterrcnn_mobilenet_v2": ModelCard(
        family="faster_rcnn",
        task="detection",
        input_size=(320, 320),
        outputs="per image: boxes [D,4] (x1,y1,x2,y2 px), scores [D], labels [D] (1 = person)",
        num_classes=2,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        color_order="RGB",
        default_weights="mobilenet_v2_imagenet",
        weights_hint="the default weights cover the backbone only; train the RPN and box head first",
        provenance=(
            "backbone: torchvision MobileNet_V2_Weights.IMAGENET1K_V1 (BSD-3-Clause); "
            "RPN and box head: random init (untrained)"
        ),
        filter_fn=checkpoint_filter_fn,
    ),
}


@register_model
def fasterrcnn_mobilenet_v2(**kwargs: Any) -> FasterRCNNMobileNetV2:
    """Faster R-CNN, MobileNetV2 backbone (stride 32), person detector, 320x320 RGB."""
    return _create(FasterRCNNCfg(), **kwargs)
