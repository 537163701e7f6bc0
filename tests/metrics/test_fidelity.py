"""Fidelity scores count only the dense keypoints that are present (docs/design.md#metrics), and say so."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deltatune.metrics import decode_heatmaps, fidelity, pck, present_joints


def _person() -> tuple[np.ndarray, np.ndarray]:
    ref = np.array([[[0.0, 0.0], [20.0, 0.0], [20.0, 10.0], [0.0, 10.0], [10.0, 5.0]]])  # box size 20
    conf = np.array([[0.9, 0.6, 0.3, 0.2, 0.05]])  # 0.2 is not above 0.2: the last two are not present
    return ref, conf


def test_only_present_keypoints_count_and_every_keypoint_is_reported_beside() -> None:
    ref, conf = _person()
    pred = ref.copy()
    pred[0, 3] += 15.0  # far off, not present
    pred[0, 4] += 15.0  # far off, not present
    s = fidelity(pred, ref, conf, min_confidence=0.2)
    assert s.loss == 0.0 and s.present_fraction == pytest.approx(0.6) and s.min_confidence == 0.2
    assert s.loss_all_joints == pytest.approx(40.0)  # 2 of 5 wrong
    pred[0, 1] += 15.0  # now a present joint is wrong too: 1 of the 3 present
    s = fidelity(pred, ref, conf, min_confidence=0.2)
    assert s.loss == pytest.approx(100.0 / 3) and s.loss_all_joints == pytest.approx(60.0)


def test_without_a_threshold_every_keypoint_counts() -> None:
    ref, conf = _person()
    pred = ref + np.array([0.0, 15.0])
    s = fidelity(pred, ref, conf, min_confidence=None)
    assert s.present_fraction == 1.0 and s.loss == s.loss_all_joints
    assert s.loss == pytest.approx(100.0 * (1.0 - pck(pred, ref).value))
    assert present_joints(conf, None) is None


def test_nothing_present_is_no_loss() -> None:
    ref, conf = _person()
    s = fidelity(ref + 50.0, ref, conf * 0.0, min_confidence=0.2)
    assert s.loss == 0.0 and s.present_fraction == 0.0 and s.loss_all_joints == 100.0


def test_real_hrnet_heatmaps_have_present_and_absent_keypoints(vtest_path) -> None:
    """On real vtest crops the shipped HRNet's peaks straddle the threshold: the rule selects, it does not
    keep or drop everything (the reason it exists; see deltatune.metrics.fidelity)."""
    from deltatune.workload import load_workload

    wl = load_workload("hrnet", weights="default", frames=2)
    with torch.no_grad():
        hm = wl.model(wl.frames[0])
    _, peaks = decode_heatmaps(hm)
    present = present_joints(peaks, wl.info.present_confidence)
    assert present is not None and 0.0 < present.mean() < 1.0
