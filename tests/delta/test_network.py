"""DeltaNetwork's execution paths: direct op calls when nothing watches them, hooked calls otherwise."""

from __future__ import annotations

import torch
from torch.utils._pytree import tree_flatten

from deltatune.delta import convert
from deltatune.delta.linear import ConvOp
from tests.delta.nets import AllOps, diagonal_clip, moving_square_clip, randomize_bn


def _net(backend: str = "sparse"):
    model = randomize_bn(AllOps()).eval()
    return convert(model, thresholds=0.05, backend=backend)


def test_direct_calls_equal_hooked_calls_and_hooks_see_every_call() -> None:
    clip = list(moving_square_clip(6))
    net = _net()
    with torch.no_grad():
        direct = net.run_stream(clip)
        assert net._direct is not None  # no hook: the direct graph ran
        calls = []
        conv = next(op for op in net.ops if isinstance(op, ConvOp))
        handle = conv.register_forward_hook(lambda m, i, o: calls.append(m.name))
        hooked = net.run_stream(clip)
        handle.remove()
    assert calls == [conv.name] * len(clip)  # the hooked path calls every op through its module
    graph_calls = []
    with torch.no_grad():
        handle = net.graph_module.register_forward_hook(lambda *_: graph_calls.append(1))
        net.run_stream(clip)
        handle.remove()
    assert len(graph_calls) == len(clip)  # a hook on the graph module sees every graph run
    flat_direct, flat_hooked = tree_flatten(direct)[0], tree_flatten(hooked)[0]
    assert len(flat_direct) == len(flat_hooked) > len(clip)
    for a, b in zip(flat_direct, flat_hooked, strict=True):
        assert torch.equal(a, b)


def test_direct_graph_follows_the_network_to_another_dtype() -> None:
    clip = list(moving_square_clip(4))
    net = _net("reference")
    with torch.no_grad():
        net.run_stream(clip)
        first = net._direct
        net.double()
        assert net._direct is None  # rebuilt on use: it refers to the graph's constants
        out = net.run_stream([f.double() for f in clip])
    assert net._direct is not None and net._direct is not first
    assert all(t.dtype == torch.float64 for t in tree_flatten(out[-1])[0])


def _max_err(a: object, b: object) -> float:
    fa, fb = tree_flatten(a)[0], tree_flatten(b)[0]
    return max(float((x - y).abs().max()) for x, y in zip(fa, fb, strict=True))


def test_key_frames_run_dense_and_cost_a_dense_frame() -> None:
    """Every ``interval``-th frame equals the dense model (the accumulated error is gone), the frames
    between do not (thresholds 0.05 truncate), and a key frame costs its dense MACs."""
    clip = list(moving_square_clip(9))
    net = _net("reference")
    model = net._source
    with torch.no_grad():
        dense = [model(x) for x in clip]
        plain = net.run_stream(clip)
        plain_speedup = net.mac_speedup()
        net.keyframe_interval = 4
        net.stats.clear()
        keyed = net.run_stream(clip)
        keyed_speedup = net.mac_speedup()
    errs = [_max_err(k, d) for k, d in zip(keyed, dense, strict=True)]
    plain_errs = [_max_err(p, d) for p, d in zip(plain, dense, strict=True)]
    assert errs[4] < 1e-5 and errs[8] < 1e-5  # key frames: dense
    assert plain_errs[4] > 1e-4 and plain_errs[8] > 1e-4  # without them these frames carry error
    assert all(_max_err(a, b) == 0 for a, b in zip(keyed[:4], plain[:4], strict=True))  # same before
    assert keyed_speedup < plain_speedup  # two dense frames in the count
    net.keyframe_interval = 1  # every frame a key frame: the dense model at dense cost
    net.stats.clear()
    with torch.no_grad():
        every = net.run_stream(clip)
    assert max(_max_err(e, d) for e, d in zip(every, dense, strict=True)) < 1e-5
    assert abs(net.mac_speedup() - 1.0) < 1e-9


def test_key_frame_interval_travels_with_threshold_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    import pytest

    from deltatune.errors import ConfigError, ThresholdError

    net = _net()
    net.keyframe_interval = 16
    path = net.save_thresholds(tmp_path / "t.json")
    assert json.loads(path.read_text())["keyframe_interval"] == 16
    other = _net()
    assert other.keyframe_interval == 0
    other.load_thresholds(path)
    assert other.keyframe_interval == 16
    assert other.threshold_file().to_attrs()["keyframe_interval"] == 16
    net.keyframe_interval = 0  # no key frames: the file has no such key (files stay as they were)
    assert "keyframe_interval" not in json.loads(net.save_thresholds(tmp_path / "u.json").read_text())
    data = json.loads(path.read_text())
    data["keyframe_interval"] = -3
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(ThresholdError, match="keyframe_interval must be an integer >= 0, got -3"):
        other.load_thresholds(tmp_path / "bad.json")
    for bad in (-1, 2.5, True):
        with pytest.raises(ConfigError, match="key-frame interval"):
            net.keyframe_interval = bad  # type: ignore[assignment]


def _cut_clip() -> list[torch.Tensor]:
    """A moving square without noise (few pixels change a frame), with scene cuts at frames 4, 7 and 8:
    the top 26 of 32 rows brighten well above the thresholds, the rest by less than them (so a key frame
    must run on the frame itself, not on the partly updated reference)."""
    clip = moving_square_clip(10, noise=0.0)
    for t, shift in ((4, 0.3), (5, 0.3), (6, 0.3), (7, 0.6), (8, 0.9), (9, 0.9)):
        bump = torch.full_like(clip[t], 0.04)
        bump[:, :, :26] = shift
        clip[t] = clip[t] + bump
    return clip


def test_key_frames_on_change_restart_the_stream_at_scene_cuts() -> None:
    """With ``keyframe_change`` a frame whose input changed at that share of its pixels restarts the
    stream: it equals the dense model, and the frames after it equal a fresh stream started there
    (consecutive cuts take the lazy path, running the original dense model). Frames with few changed
    pixels run as before, and thresholds 0 keep the exact dense refresh instead."""
    import pytest

    from deltatune.errors import ConfigError

    clip = _cut_clip()
    for backend in ("reference", "sparse"):
        net = _net(backend)
        model = net._source
        with torch.no_grad():
            dense = [model(x) for x in clip]
            plain = net.run_stream(clip)
            net.keyframe_change = 0.5
            with net.stats.paused():  # nothing observes the ops: consecutive cuts run lazily
                keyed = net.run_stream(clip)
            assert net.refreshed_frames == 3  # frames 4, 7, 8
            recorded = net.run_stream(clip)  # statistics on: every frame through the delta graph
            fresh4 = net.run_stream(clip[4:7])
            fresh8 = net.run_stream(clip[8:])
        for out in (keyed, recorded):
            assert all(_max_err(a, b) == 0 for a, b in zip(out[:4], plain[:4], strict=True))  # as before
            assert max(_max_err(out[t], dense[t]) for t in (4, 7, 8)) < 1e-5  # cuts: dense, exact
            assert max(_max_err(a, b) for a, b in zip(out[4:7], fresh4, strict=True)) < 1e-5
            assert max(_max_err(a, b) for a, b in zip(out[8:], fresh8, strict=True)) < 1e-5
        assert _max_err(plain[4], dense[4]) > 1e-4  # without it the cut frame carries truncation error
        assert _max_err(keyed[9], recorded[9]) < 1e-5  # the lazy path rebuilt the buffers it skipped
    net = _net()
    net.keyframe_change = 0.5
    net.set_thresholds(0.0)  # exact: the dense refresh (on the reference) applies, not a restart
    with torch.no_grad():
        net.run_stream(clip)
    assert net._ctx.restart_allowed is False and net._ctx.refresh_allowed is True
    for bad in (0.0, 1.5, True, "half"):
        with pytest.raises(ConfigError, match="key frames on change"):
            net.keyframe_change = bad  # type: ignore[assignment]


def test_key_frames_on_change_travel_with_threshold_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    import pytest

    from deltatune.delta.thresholds import ThresholdFile
    from deltatune.errors import ThresholdError

    net = _net()
    assert "keyframe_change" not in json.loads(net.save_thresholds(tmp_path / "off.json").read_text())
    net.keyframe_change = 0.4
    path = net.save_thresholds(tmp_path / "t.json")
    assert json.loads(path.read_text())["keyframe_change"] == 0.4
    other = _net()
    other.load_thresholds(path)
    assert other.keyframe_change == 0.4
    attrs = other.threshold_file().to_attrs()
    assert attrs["keyframe_change"] == 0.4 and ThresholdFile.from_attrs(attrs).keyframe_change == 0.4
    data = json.loads(path.read_text())
    data["keyframe_change"] = 2
    (tmp_path / "bad.json").write_text(json.dumps(data))
    bad = r"keyframe_change must be a fraction in \(0, 1\] or null, got 2$"
    with pytest.raises(ThresholdError, match=bad):
        other.load_thresholds(tmp_path / "bad.json")


def test_frames_run_without_autograd_whatever_the_callers_grad_mode() -> None:
    """Called without ``torch.no_grad()`` (the usual slip), a frame must not record a graph: the buffers
    carry every frame into the next, so each output's graph would reach back to frame 0 and memory would
    grow with the stream. The outputs are those of a no-grad run, and no tensor the network keeps needs a
    gradient."""
    clip = list(moving_square_clip(6))
    for backend in ("reference", "sparse"):
        net = _net(backend)
        with torch.no_grad():
            expected = net.run_stream(clip)
        net.reset()
        assert torch.is_grad_enabled()
        outputs = [net(frame) for frame in clip]
        for got, want in zip(outputs, expected, strict=True):
            for a, b in zip(tree_flatten(got)[0], tree_flatten(want)[0], strict=True):
                assert not a.requires_grad and a.grad_fn is None
                assert torch.equal(a, b)
        kept = [
            t
            for t in (*net.buffers(), *net.parameters(), *vars(net._ctx).values())
            if isinstance(t, torch.Tensor)
        ]
        assert kept and not any(t.requires_grad and t.grad_fn is not None for t in kept), backend


def test_a_bare_layer_converts_like_a_one_layer_network() -> None:
    """``convert(nn.Conv2d(...))``, the way one times a single conv: the layer is the model. Traced as it
    is, its forward is the functional ``conv2d`` the builder does not convert (it was refused as 'operation
    conv2d is not supported')."""
    from torch import nn

    for layer, channels in (
        (nn.Conv2d(3, 4, 3, padding=1), 3),
        (nn.Conv2d(8, 8, 3, padding=1, groups=8), 8),
        (nn.ReLU(), 3),
    ):
        for backend in ("reference", "sparse"):
            net = convert(layer, thresholds=0.0, backend=backend)
            with torch.no_grad():
                for x in diagonal_clip(torch.randn(1, channels, 8, 8), 3, step=1.0):
                    torch.testing.assert_close(net(x), layer(x), rtol=1e-5, atol=1e-6)


def test_mac_speedup_with_statistics_off_is_an_error_not_one() -> None:
    """``record_stats=False`` (for timing) counts nothing; ``mac_speedup()`` said 1.0, 'nothing saved'."""
    import pytest

    from deltatune.errors import ConfigError

    clip = list(moving_square_clip(4))
    model = randomize_bn(AllOps()).eval()
    with torch.no_grad():
        counted = convert(model, thresholds=0.05)
        counted.run_stream(clip)
        assert counted.mac_speedup() > 1.0
        off = convert(model, thresholds=0.05, record_stats=False)
        off.run_stream(clip)
    with pytest.raises(ConfigError, match=r"statistics are off \(convert\(\.\.\., record_stats=False\)\)"):
        off.mac_speedup()


def test_a_network_pickles_mid_stream_and_the_copy_goes_on_with_it() -> None:
    """What ``joblib`` does to send a network to a worker: after a frame, pickling failed inside torch.fx
    (the direct-call graph refers to bound methods). The copy continues the stream exactly."""
    import pickle

    clip = list(moving_square_clip(6))
    for backend in ("reference", "sparse"):
        net = _net(backend)
        with torch.no_grad():
            for frame in clip[:3]:
                net(frame)
            twin = pickle.loads(pickle.dumps(net))
            for frame in clip[3:]:
                for a, b in zip(tree_flatten(net(frame))[0], tree_flatten(twin(frame))[0], strict=True):
                    assert torch.equal(a, b), backend


def test_a_thresholds_file_of_another_model_with_the_same_names_warns(tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    """A file's ``model`` was read only when its names did not match: another model whose truncation
    points are named alike took it without a word. It now runs with a warning naming both models, the
    one asked for by the name the user gave (``hrnet``, whose default weights build hrnet_w18_small_v2),
    and a file made for that name is not another model's."""
    import json
    import logging

    from deltatune_models import create_model

    hrnet = convert(create_model("hrnet"))
    assert create_model("hrnet").model_name == "hrnet_w18_small_v2"
    path = hrnet.save_thresholds(tmp_path / "t.json", model="hrnet")
    with caplog.at_level(logging.WARNING, logger="deltatune.delta.network"):
        hrnet.load_thresholds(path)
    assert "made for model" not in caplog.text  # its own name, or the name it was asked for by
    data = json.loads(path.read_text())
    data["model"] = "hrnet_w32"
    (tmp_path / "w32.json").write_text(json.dumps(data))
    with caplog.at_level(logging.WARNING, logger="deltatune.delta.network"):
        hrnet.load_thresholds(tmp_path / "w32.json")
    assert (
        "made for model hrnet_w32, not hrnet (hrnet_w18_small_v2); its truncation points have the same"
        in caplog.text
    )


class _ThreeInputs(torch.nn.Module):
    """A frame, a depth map and a conditioning vector, merged by adds and a cat (random weights)."""

    def __init__(self) -> None:
        super().__init__()
        from torch import nn

        torch.manual_seed(0)
        self.rgb = nn.Conv2d(3, 4, 3, padding=1)
        self.depth = nn.Conv2d(1, 4, 3, padding=1)
        self.cond = nn.Linear(5, 4)
        self.head = nn.Conv2d(8, 2, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        a = torch.relu(self.rgb(x) + self.depth(y))
        cond = torch.nn.functional.interpolate(self.cond(c).view(-1, 4, 1, 1), size=(12, 12))
        b = torch.relu(self.depth(y) + cond)
        return self.head(torch.cat([a, b], dim=1))


def _three_input_frames() -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Frames where one input changes almost everywhere while the others change at a patch or not at all
    (and a static frame between), so a per-input decision would refresh one branch only."""
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 12, 12, generator=g)
    y = torch.rand(2, 1, 12, 12, generator=g)
    c = torch.rand(2, 5, generator=g)
    frames = [(x, y, c)]
    x1 = torch.rand(2, 3, 12, 12, generator=g)  # the frame changes everywhere
    y1 = y.clone()
    y1[..., 3:5, 3:5] += 0.5  # the depth map at a patch
    frames += [(x1, y1, c), (x1, y1, c)]
    y2 = torch.rand(2, 1, 12, 12, generator=g)  # the depth map everywhere, the frame at a patch
    x2 = x1.clone()
    x2[..., 6:8, 1:3] -= 0.4
    frames += [(x2, y2, c)]
    c3 = c.clone()
    c3[1] += 0.3  # the conditioning vector of one stream: that stream changed as a whole
    x3 = x2.clone()
    x3[..., 0:2, 0:2] += 0.2
    frames += [(x3, y2, c3), (x3, y2, c3)]
    return frames


def test_a_frame_of_a_network_with_several_inputs_runs_dense_for_all_its_inputs_or_none() -> None:
    """With several inputs, the dense refresh (thresholds 0) and the key frame on change (thresholds
    above 0) are decided once per frame: when any input changed at the fraction or more, every input runs
    the frame densely. Per input, a dense value met a delta in the add and the network stayed 0.4 off from
    the dense model on every later frame."""
    frames = _three_input_frames()
    model = _ThreeInputs().eval()
    with torch.no_grad():
        dense = [model(*f) for f in frames]
    for backend in ("reference", "sparse"):
        net = convert(model, thresholds=0.0, backend=backend, dense_refresh=0.25)
        with torch.no_grad():
            outs = [net(*f) for f in frames]
        assert max(_max_err(o, d) for o, d in zip(outs, dense, strict=True)) < 1e-4, backend
        assert net.refreshed_frames == 3  # frames 1, 3 and 4, each counted once
        net = convert(model, thresholds=0.05, backend=backend)
        net.keyframe_change = 0.3
        with torch.no_grad():
            outs = [net(*f) for f in frames]
        assert net.refreshed_frames == 3
        for t in (1, 3, 4):  # key frames: the dense model
            assert _max_err(outs[t], dense[t]) < 1e-5, (backend, t)
        assert _max_err(outs[2], dense[2]) < 1e-5  # a static frame after a key frame stays there


def test_consecutive_dense_frames_of_a_network_with_several_inputs_run_the_dense_model() -> None:
    """With several inputs, a dense frame after a dense frame runs the original model on every input's
    reference (dense refresh) or frame (key frame on change) instead of the delta graph, leaving the
    buffers stale until a delta frame rebuilds them; the outputs are the delta graph's, and the dense
    model's. Such frames always ran the delta graph: the lazy path took one input only."""
    g = torch.Generator().manual_seed(5)
    frames = _three_input_frames()  # frames 3 and 4 run dense
    x, y, c = frames[-1]
    for t in range(6):  # dense, dense, dense, delta, delta, dense
        if t < 3 or t == 5:
            x = torch.rand(2, 3, 12, 12, generator=g) if t % 2 == 0 else x
            y = torch.rand(2, 1, 12, 12, generator=g) if t % 2 == 1 else y
        else:
            x = x.clone()
            x[..., 2 * t : 2 * t + 2, 4:6] += 0.3
        frames.append((x, y, c))
    model = _ThreeInputs().eval()
    with torch.no_grad():
        dense = [model(*f) for f in frames]
    for backend in ("reference", "sparse"):
        for thresholds, change in ((0.0, None), (0.05, 0.3)):
            outs: dict[bool, list[torch.Tensor]] = {}
            stale: dict[bool, list[bool]] = {}
            for lazy in (True, False):
                net = convert(
                    model, thresholds=thresholds, backend=backend, dense_refresh=0.25, record_stats=False
                )  # recorded statistics would need every op to run
                net.keyframe_change = change
                net.lazy_refresh = lazy
                outs[lazy], stale[lazy] = [], []
                with torch.no_grad():
                    for f in frames:
                        outs[lazy].append(net(*f))
                        stale[lazy].append(net._stale)  # this frame skipped the delta graph
                assert net.refreshed_frames == 7, (backend, thresholds)  # frames 1, 3, 4, 6, 7, 8, 11
            where = (backend, thresholds)
            assert [t for t, s in enumerate(stale[True]) if s] == [4, 7, 8], where
            assert not any(stale[False])
            assert max(_max_err(a, b) for a, b in zip(outs[True], outs[False], strict=True)) < 1e-5, where
            dense_frames = range(len(frames)) if thresholds == 0 else (1, 3, 4, 6, 7, 8, 11)
            assert max(_max_err(outs[True][t], dense[t]) for t in dense_frames) < 1e-4, where
