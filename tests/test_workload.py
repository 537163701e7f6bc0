"""``load_workload``: random weights are reproducible from their seed and leave the caller's RNG alone;
a crop stretched to a clearly different aspect ratio is warned about."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from PIL import Image

from deltatune.data import CropWindow, read_frames
from deltatune.workload import load_workload, shared_frames


def test_random_weights_come_from_the_seed_not_the_global_rng() -> None:
    torch.manual_seed(123)
    untouched = torch.rand(3)
    torch.manual_seed(123)
    a = load_workload("hrnet_tiny", weights=None, frames=2)
    assert torch.equal(torch.rand(3), untouched)  # building the model did not move the caller's stream
    torch.manual_seed(123)
    torch.rand(5)  # a different global state: the weights must not depend on it
    b = load_workload("hrnet_tiny", weights=None, frames=2)
    c = load_workload("hrnet_tiny", weights=None, frames=2, seed=1)
    sa, sb, sc = a.model.state_dict(), b.model.state_dict(), c.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa if sa[k].is_floating_point())
    assert a.random_weights and a.weights == "random"


def test_a_stretched_crop_is_warned_about(
    tmp_path: Path, vtest_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Real vtest frames saved as a 16:9 image folder: fed whole to a 3:4 pose model they are squeezed
    # 2.4x, which a user should hear about; a 3:4 window of the same frames, and the sample's own
    # windows, are not worth a word.
    wide = tmp_path / "wide"
    wide.mkdir()
    for i, f in enumerate(read_frames(vtest_path, count=2)):
        Image.fromarray(f[:432, :768]).save(wide / f"{i}.png")
    with caplog.at_level(logging.WARNING, logger="deltatune.workload"):
        load_workload("hrnet_tiny", weights=None, frames=2, video=wide)
        load_workload("hrnet_tiny", weights=None, frames=2, video=wide)  # the same clip again: said once
    stretched = [r.getMessage() for r in caplog.records if "stretched" in r.getMessage()]
    assert len(stretched) == 1
    assert "the whole frame (768x432)" in stretched[0] and "2.4x" in stretched[0] and "3:4" in stretched[0]
    assert "(--window X,Y,W,H; windows in a study file)" in stretched[0]  # the fix on either route
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="deltatune.workload"):
        load_workload("hrnet_tiny", weights=None, frames=2, video=wide, windows=[CropWindow(0, 0, 240, 320)])
        load_workload("hrnet_tiny", weights=None, frames=2, video="vtest")
        load_workload("mobilenet_v2", weights=None, frames=2, video="vtest")  # 240x320 windows into 224x224
    assert not [r for r in caplog.records if "stretched" in r.getMessage()]
    caplog.clear()
    # every stretched window is named (only the worst was)
    wins = [CropWindow(0, 0, 300, 100), CropWindow(10, 10, 240, 320), CropWindow(20, 20, 50, 200)]
    with caplog.at_level(logging.WARNING, logger="deltatune.workload"):
        load_workload("hrnet_tiny", weights=None, frames=2, video=wide, windows=wins)
    said = [r.getMessage() for r in caplog.records if "stretched" in r.getMessage()]
    assert len(said) == 1, said
    assert "window 0,0,300,100 (300x100) 4.0x; window 20,20,50,200 (50x200) 3.0x;" in said[0], said


def test_windows_may_be_written_as_text_or_numbers(vtest_path: Path) -> None:
    """``load_workload(windows=["x,y,w,h"])`` or ``[(x, y, w, h)]``, as a Python caller writes them, load the
    same crops as CropWindow objects (both failed with an AttributeError); anything else is one error."""
    from deltatune.errors import VideoError

    kw = dict(weights=None, video="vtest", frames=3)
    want = load_workload("hrnet_tiny", windows=[CropWindow(96, 96, 240, 320)], **kw).frames
    for windows in (["96,96,240,320"], [(96, 96, 240, 320)], [[96, 96, 240, 320]]):
        assert torch.equal(load_workload("hrnet_tiny", windows=windows, **kw).frames, want)
    with pytest.raises(VideoError, match=r"crop window 5: give 'x,y,w,h', four integers or a CropWindow"):
        load_workload("hrnet_tiny", windows=[5], **kw)


def test_a_video_of_ones_own_named_like_a_sample_is_its_own(vtest_path: Path, tmp_path: Path) -> None:
    """``--video ~/my/vtest.avi`` ran on vtest's three default crops (outside a smaller frame, or on the
    wrong places of another scene); only the sample's own file (by path, a link to it too) gets them, and
    a folder named after it (its exported frames: tests/test_export_frames.py)."""
    import shutil

    own = tmp_path / vtest_path.name
    shutil.copyfile(vtest_path, own)  # the same bytes, but the user's file: the whole frame, one stream
    assert load_workload("hrnet_tiny", weights=None, video=own, frames=2).windows == []
    link = tmp_path / "link.avi"
    link.symlink_to(vtest_path)
    for sample in ("vtest", vtest_path, link):
        assert len(load_workload("hrnet_tiny", weights=None, video=sample, frames=2).windows) == 3


def test_the_weights_label_names_the_architecture_a_default_really_runs() -> None:
    """`inspect --model hrnet` said "weights: default" though the default runs HRNet-W18-small-v2
    (1.5 GMACs), not the 7.6-GMAC W32 its name suggests."""
    from deltatune.workload import weights_label

    assert "hrnet_w18_small_v2" in weights_label("hrnet", "default")
    assert weights_label("mobilenet_v2", "default") == "default"
    assert weights_label("hrnet", "w.pth") == "w.pth"
    assert weights_label("no-such-model", "default") == "default"


def test_shared_frames_of_stepped_ranges() -> None:
    """The frames two frame ranges share (``search --train-frames`` vs the scored frames, ``distill
    --heldout`` vs ``--frames``) are a range themselves."""
    assert shared_frames(range(0, 8), range(0, 8)) == range(0, 8)
    assert shared_frames(range(0, 600, 3), range(0, 21, 2)) == range(0, 19, 6)
    assert shared_frames(range(0, 600, 3), range(6, 8)) == range(6, 7)
    assert not shared_frames(range(0, 600, 2), range(1, 10, 2))
    assert not shared_frames(range(90, 130), range(130, 136))


def test_a_plan_builds_the_model_and_reads_no_frame(tmp_path: Path, vtest_path: Path) -> None:
    """``plan_workload`` checks the clip against what the container states and builds the model without
    decoding: on vtest cut after its second frame (its header, stating 795 frames, intact) the plan
    succeeds, with the streams the clip will have; reading the clip is what meets the cut."""
    from deltatune.errors import VideoError
    from deltatune.workload import plan_workload

    cut = tmp_path / "cut.avi"
    cut.write_bytes(vtest_path.read_bytes()[:100_000])
    plan = plan_workload("hrnet_tiny", weights=None, video=cut, frames=10, start=5,
                         windows=["0,0,96,128", "100,0,96,128"])
    assert plan.n_streams == 2 and isinstance(plan.model, torch.nn.Module)
    with pytest.raises(VideoError, match=f"video {cut} ends after frame 1, though its container states 795"):
        plan.decode()
    plan = plan_workload("hrnet_tiny", weights=None, video=vtest_path, frames=3)  # the sample's 3 windows
    whole = plan.decode()
    assert whole.n_frames == 3 and whole.n_streams == plan.n_streams == 3 and whole.model is plan.model
