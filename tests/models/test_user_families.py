"""The user's own models: families named by ``$DELTATUNE_MODELS`` (files or modules) or by installed
packages' ``deltatune.models`` entry points, used by name everywhere a built-in model is."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from deltatune.errors import ModelNotFoundError
from deltatune_models import _registry, create_model, list_models, model_info

FAMILY = textwrap.dedent('''\
    """A user's own CNNs: a four-conv pose net and a two-conv classifier."""
    from torch import nn
    from deltatune_models import ModelCard, register_model

    MODEL_CARDS = {
        "{pose}": ModelCard(family="mine", task="pose", input_size=(128, 96), outputs="heatmaps [N,17,32,24]",
                            num_joints=17, present_confidence=0.2),
        "{cls}": ModelCard(family="mine", task="classification", input_size=(96, 96), outputs="logits [N,10]",
                           num_classes=10),
    }


    class PoseNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(3, 16, 3, 2, 1), nn.BatchNorm2d(16), nn.ReLU(),
                nn.Conv2d(16, 32, 3, 2, 1), nn.BatchNorm2d(32), nn.ReLU(),
                nn.Conv2d(32, 32, 3, 1, 1), nn.BatchNorm2d(32), nn.ReLU(), nn.Conv2d(32, 17, 1))

        def forward(self, x):
            return self.body(x)


    class Classifier(nn.Module):
        def __init__(self, num_classes=10):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 16, 3, 2, 1), nn.ReLU(), nn.Conv2d(16, 32, 3, 2, 1), nn.ReLU())
            self.head = nn.Linear(32, num_classes)

        def forward(self, x):
            return self.head(self.features(x).mean((2, 3)))


    @register_model
    def {pose}() -> PoseNet:
        """A four-conv pose net of my own."""
        return PoseNet()


    @register_model
    def {cls}(num_classes: int = 10) -> Classifier:
        """A two-conv classifier of my own."""
        return Classifier(num_classes)
    ''')


def _write_family(folder: Path, stem: str, pose: str, cls: str) -> Path:
    path = folder / f"{stem}.py"
    path.write_text(FAMILY.replace("{pose}", pose).replace("{cls}", cls))
    return path


@pytest.fixture()
def forget_user_models() -> Iterator[None]:
    """Leave the registry as it was: user entries and the record of imported sources are removed."""
    before = set(_registry._REGISTRY)
    yield
    for name in set(_registry._REGISTRY) - before:
        del _registry._REGISTRY[name]
    _registry._user_families_loaded.clear()
    _registry._cached_macs.cache_clear()


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "deltatune", *args], cwd=cwd, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=600)


def test_a_family_file_named_by_the_environment_registers_its_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forget_user_models: None
) -> None:
    path = _write_family(tmp_path, "my-nets", "ut_pose_a", "ut_cls_a")
    monkeypatch.setenv(_registry.MODELS_ENV, str(path))
    assert {"ut_pose_a", "ut_cls_a"} <= set(list_models())
    assert set(list_models(task="classification")) >= {"ut_cls_a"}
    info = model_info("ut_pose_a")
    # dense MACs of the four convs at 128x96, counted as for the zoo
    assert info.macs == 64 * 48 * 16 * 27 + 32 * 24 * (32 * 16 * 9 + 32 * 32 * 9 + 17 * 32)
    assert info.description == "A four-conv pose net of my own." and info.weights == "none"
    model = create_model("ut_cls_a", weights=None, num_classes=4)
    assert model(torch.zeros(1, 3, 96, 96)).shape == (1, 4)
    # the file is imported once, as a module of its own (register_model finds its MODEL_CARDS there)
    assert type(model).__module__ == "deltatune_user_my_nets"
    assert sys.modules["deltatune_user_my_nets"].__file__ == str(path)


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        ("missing_family.py", "model family file 'missing_family.py' does not exist"),
        ("no_such_module_xyz", "model family module 'no_such_module_xyz' is not installed"),
        ("broken.py", "model family 'broken.py' failed to import: ValueError: bad config"),
        ("needs_missing.py", "failed to import: ModuleNotFoundError: No module named 'not_a_dep_xyz'"),
        # the file it should define MODEL_CARDS in, not the module name it is imported under
        ("no_card.py", "TypeError: register_model: no ModelCard for 'mine'; define MODEL_CARDS['mine'] in "
                       "{tmp}/no_card.py before the entry point"),
    ],
)
def test_a_family_that_cannot_be_imported_is_named_in_one_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forget_user_models: None, source: str, needle: str
) -> None:
    (tmp_path / "broken.py").write_text("raise ValueError('bad config')\n")
    (tmp_path / "needs_missing.py").write_text("import not_a_dep_xyz\n")
    (tmp_path / "no_card.py").write_text(
        "from torch import nn\nfrom deltatune_models import register_model\n\n\n"
        "@register_model\ndef mine() -> nn.Module:\n    return nn.Conv2d(3, 3, 1)\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(_registry.MODELS_ENV, source)
    needle = re.escape(needle.format(tmp=tmp_path.resolve()))
    with pytest.raises(ModelNotFoundError, match=needle):
        list_models()
    with pytest.raises(ModelNotFoundError, match="DELTATUNE_MODELS"):  # not swallowed after the first time
        model_info("hrnet")


def test_bad_family_on_the_command_line_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("raise ValueError('bad config')\n")
    done = _cli(["inspect", "--model", "hrnet"], {_registry.MODELS_ENV: "broken.py"}, tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "deltatune inspect: error: DELTATUNE_MODELS: model family 'broken.py' failed to import: "
        "ValueError: bad config"
    ]


def test_two_families_registering_one_name_is_one_line_naming_both(tmp_path: Path) -> None:
    """Two DELTATUNE_MODELS files registering 'ut_pose_x': a raw UserWarning with a source line, then
    "b.py registers no model" (its one model replaced a.py's), exit 0, and the name meant the file listed
    last. Now one line naming both files and the model, as for a zoo model's name; one file named twice
    is one family."""
    _write_family(tmp_path, "a", "ut_pose_x", "ut_cls_a")
    _write_family(tmp_path, "b", "ut_pose_x", "ut_cls_b")
    both = os.pathsep.join(["a.py", str(tmp_path / "b.py")])
    done = _cli(["models"], {_registry.MODELS_ENV: both}, tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"deltatune models: error: DELTATUNE_MODELS: model family '{tmp_path / 'b.py'}' failed to import: "
        "TypeError: register_model: 'ut_pose_x' is registered by 'a.py' already; give one of them another "
        "name"
    ]
    done = _cli(["models"], {_registry.MODELS_ENV: os.pathsep.join(["a.py", "./a.py"])}, tmp_path)
    assert done.returncode == 0 and not done.stderr and "ut_pose_x" in done.stdout, done.stderr


@pytest.mark.slow
def test_an_installed_package_registers_models_through_its_entry_point(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "ut_pkg").mkdir(parents=True)
    _write_family(site / "ut_pkg", "nets", "ut_pose_ep", "ut_cls_ep")
    (site / "ut_pkg" / "__init__.py").write_text("")
    dist = site / "ut_pkg-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ut-pkg\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[deltatune.models]\nnets = ut_pkg.nets\n")
    done = _cli(["models", "--json"], {"PYTHONPATH": str(site)}, tmp_path)
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    assert rows["ut_pose_ep"]["task"] == "pose" and rows["ut_cls_ep"]["num_classes"] == 10
    assert "hrnet" in rows


@pytest.mark.slow
def test_a_users_model_is_searched_exported_and_benched_by_name(tmp_path: Path) -> None:
    """The whole path on the user's own checkpoint and real vtest frames: a search with two worker
    processes (each imports the family from the environment), export of its recommendation, bench."""
    family = _write_family(tmp_path, "nets", "ut_pose_cli", "ut_cls_cli")
    sys.path.insert(0, str(tmp_path))
    try:
        import nets  # the user's own file, as the user would import it to save their weights

        torch.manual_seed(0)
        torch.save(nets.PoseNet().state_dict(), tmp_path / "pose.pth")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("nets", None)
        for name in ("ut_pose_cli", "ut_cls_cli"):
            _registry._REGISTRY.pop(name, None)
    env = {_registry.MODELS_ENV: str(family), "DELTATUNE_RESULTS": str(tmp_path / "res")}
    search = _cli(["search", "--model", "ut_pose_cli", "--weights", "pose.pth", "--video", "vtest",
                   "--frames", "8", "--trials", "4", "--jobs", "2", "--speed", "macs", "--retime", "0",
                   "--study", "mine", "--json", "--no-progress"], env, tmp_path)
    assert search.returncode == 0, search.stderr
    result = json.loads(search.stdout)
    assert result["n_trials"] == 4 and result["best_feasible"] is not None
    trial = str(result["best_feasible"]["trial"])
    export = _cli(["export", "--study", "mine", "--trial", trial, "-o", "t.json"], env, tmp_path)
    assert export.returncode == 0, export.stderr
    assert json.loads((tmp_path / "t.json").read_text())["model"] == "ut_pose_cli"
    bench = _cli(["bench", "--model", "ut_pose_cli", "--weights", "pose.pth", "--thresholds", "t.json",
                  "--frames", "6", "--repeats", "2", "--json"], env, tmp_path)
    assert bench.returncode == 0, bench.stderr
    report = json.loads(bench.stdout)
    assert report["model"] == "ut_pose_cli" and report["mac_speedup"] >= 1.0


GROUPNORM_FAMILY = textwrap.dedent('''\
    from torch import nn
    from deltatune_models import ModelCard, register_model

    MODEL_CARDS = {"ut_gn_pose": ModelCard(family="mine", task="pose", input_size=(64, 48),
                                           outputs="heatmaps [N,17,16,12]", num_joints=17)}


    @register_model
    def ut_gn_pose() -> nn.Module:
        """A pose net with a GroupNorm, which the delta engine runs only densely."""
        return nn.Sequential(
            nn.Conv2d(3, 8, 3, 2, 1), nn.GroupNorm(2, 8), nn.ReLU(), nn.Conv2d(8, 17, 3, 2, 1))
    ''')


def test_search_runs_an_unsupported_op_densely_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    forget_user_models: None,
) -> None:
    from deltatune.cli import main

    (tmp_path / "gn.py").write_text(GROUPNORM_FAMILY)
    monkeypatch.setenv(_registry.MODELS_ENV, str(tmp_path / "gn.py"))
    monkeypatch.setenv("DELTATUNE_RESULTS", str(tmp_path / "res"))
    argv = ["search", "--model", "ut_gn_pose", "--weights", "none", "--video", "vtest", "--frames", "6",
            "--trials", "2", "--speed", "macs", "--retime", "0", "--no-progress", "--json"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--fallback" in err[0]
    assert "module '1': module type GroupNorm is not supported" in err[0], err[0]  # was "1: module type"
    assert main([*argv, "--fallback", "--study", "gn"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n_trials"] == 2
    text = [a for a in argv if a != "--json"]
    assert main([*text, "--fallback", "--study", "gn2", "--retime", "1"]) == 0
    out = capsys.readouterr().out  # the predict line carries --fallback too
    assert "deltatune predict --model ut_gn_pose --weights none --video vtest --fallback" in out
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    storage = JournalStorage(JournalFileBackend(str(tmp_path / "res" / "gn.journal")))
    attrs = optuna.load_study(study_name="gn", storage=storage).user_attrs["deltatune"]
    assert attrs["workload"]["fallback"] is True  # a resumed search and its workers run it the same way


GRAY_FAMILY = textwrap.dedent('''\
    """A grayscale classifier (one mean, one std) and a colour card on a one-channel network."""
    from torch import nn
    from deltatune_models import ModelCard, register_model

    MODEL_CARDS = {
        "ut_gray_cls": ModelCard(family="mine", task="classification", input_size=(64, 64),
                                 outputs="logits [N,4]", num_classes=4, mean=(0.45,), std=(0.25,)),
        "ut_gray_miscard": ModelCard(family="mine", task="classification", input_size=(64, 64),
                                     outputs="logits [N,4]", num_classes=4),
    }


    def _net():
        return nn.Sequential(nn.Conv2d(1, 8, 3, 1, 1), nn.ReLU(), nn.Conv2d(8, 8, 3, 2, 1), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))


    @register_model
    def ut_gray_cls():
        """A grayscale classifier."""
        return _net()


    @register_model
    def ut_gray_miscard():
        """A one-channel network whose card says colour."""
        return _net()
    ''')


def test_a_grayscale_model_reads_the_frames_luma_and_a_card_that_does_not_fit_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    forget_user_models: None,
) -> None:
    """One mean and one std declare a one-channel model: every command feeds it the frames' luma (BT.601),
    and the delta network is exact at thresholds 0. A card whose input the network cannot take (three
    channels into a one-channel conv) is one line naming the model, not a traceback."""
    from deltatune.cli import main
    from deltatune.workload import LUMA, load_workload, preprocess

    (tmp_path / "gray.py").write_text(GRAY_FAMILY)
    monkeypatch.setenv(_registry.MODELS_ENV, str(tmp_path / "gray.py"))
    monkeypatch.setenv("DELTATUNE_RESULTS", str(tmp_path / "res"))
    info = model_info("ut_gray_cls")
    assert info.in_channels == 1 and info.macs == 64 * 64 * 8 * 9 + 32 * 32 * 8 * 72 + 8 * 4  # convs + linear
    rgb = torch.rand(2, 3, 5, 4)
    luma = sum(w * rgb[:, i] for i, w in enumerate(LUMA))
    torch.testing.assert_close(preprocess(rgb, info), ((luma - 0.45) / 0.25).unsqueeze(1))
    wl = load_workload("ut_gray_cls", weights=None, frames=3)
    assert wl.frames.shape[2] == 1
    assert main(["inspect", "--model", "ut_gray_cls", "--weights", "none", "--frames", "4", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["max_rel_error_vs_dense"] < 1e-5
    argv = ["search", "--model", "ut_gray_cls", "--weights", "none", "--frames", "6", "--trials", "2",
            "--speed", "macs", "--retime", "0", "--no-progress", "--json"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["n_trials"] == 2
    assert main(["inspect", "--model", "ut_gray_miscard", "--weights", "none", "--frames", "4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model 'ut_gray_miscard' fails on the input its ModelCard declares, " \
        "[1, 3, 64, 64]" in err[0], err
    # the listing shows every other model (the grayscale one as such) and names the broken one, exit 2
    assert main(["models"]) == 2
    captured = capsys.readouterr()
    row = next(ln for ln in captured.out.splitlines() if ln.startswith("ut_gray_cls "))
    assert " gray " in row and "ut_gray_miscard" not in captured.out and "hrnet " in captured.out
    assert captured.err.strip().splitlines() == [
        next(ln for ln in captured.err.splitlines() if "model 'ut_gray_miscard' fails" in ln)
    ]


def test_inspect_plots_a_grayscale_models_last_frame_as_the_gray_image_it_saw(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forget_user_models: None,
) -> None:
    """``inspect --plot`` undoes the model's normalisation to show each crop; it did so with three mean
    values whatever the card declared, and a grayscale model's plot ended in a RuntimeError traceback.
    Its crops are now the luma the model was fed, as a gray picture (three equal channels)."""
    from deltatune.cli import main
    from deltatune.inspection import inspect_model
    from deltatune.workload import load_workload

    (tmp_path / "gray.py").write_text(GRAY_FAMILY)
    monkeypatch.setenv(_registry.MODELS_ENV, str(tmp_path / "gray.py"))
    r = inspect_model("ut_gray_cls", weights=None, frames=3, keep_last=True)
    assert r.last_frame is not None
    images = r.last_frame.images
    assert images.shape == (3, 64, 64, 3)
    fed = load_workload("ut_gray_cls", weights=None, frames=3).frames[-1]  # [B, 1, H, W], normalised
    luma = (fed[:, 0] * 0.25 + 0.45).clamp(0, 1).numpy()
    for c in range(3):
        np.testing.assert_allclose(images[..., c], luma, atol=1e-6)
    plot = tmp_path / "gray.png"
    assert main(["inspect", "--model", "ut_gray_cls", "--weights", "none", "--frames", "3", "--no-progress",
                 "--plot", str(plot)]) == 0
    assert plot.stat().st_size > 0


COUNT_FAMILY = textwrap.dedent('''\
    """Cards whose joint or class count is not what the network outputs."""
    from torch import nn
    from deltatune_models import ModelCard, register_model

    MODEL_CARDS = {
        "ut_joints_miscard": ModelCard(family="mine", task="pose", input_size=(64, 48),
                                       outputs="heatmaps [N,17,16,12]", num_joints=17),
        "ut_classes_miscard": ModelCard(family="mine", task="classification", input_size=(32, 32),
                                        outputs="logits [N,10]", num_classes=10),
        "ut_logits_as_pose": ModelCard(family="mine", task="pose", input_size=(32, 32),
                                       outputs="heatmaps [N,17,8,8]", num_joints=17),
    }


    @register_model
    def ut_joints_miscard():
        """A pose net with a 5-channel head under a 17-joint card."""
        return nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 5, 3, 2, 1))


    @register_model
    def ut_classes_miscard():
        """A 4-class classifier under a 10-class card."""
        return nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(8, 4))


    @register_model
    def ut_logits_as_pose():
        """A 10-logit classifier under a pose card."""
        return nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(8, 10))
    ''')


def test_a_card_whose_joint_or_class_count_the_network_does_not_output_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    forget_user_models: None,
) -> None:
    """A card declaring 17 joints over a 5-channel heatmap head (or 10 classes over 4 logits) is refused
    where the model is first described, naming both counts: every command reads the card's count (the
    keypoint rows ``predict`` writes, the labels' joints), so it would otherwise decode wrong keypoints
    silently."""
    from deltatune.cli import main
    from deltatune.errors import ConfigError

    (tmp_path / "counts.py").write_text(COUNT_FAMILY)
    monkeypatch.setenv(_registry.MODELS_ENV, str(tmp_path / "counts.py"))
    with pytest.raises(ConfigError, match=r"model 'ut_joints_miscard': its ModelCard declares 17 joints, but "
                       r"the network outputs 5 heatmap channels \(\[1, 5, 16, 12\] on the declared input "
                       r"\[1, 3, 64, 48\]\); fix the card's num_joints"):
        model_info("ut_joints_miscard")
    with pytest.raises(ConfigError, match=r"declares 10 classes, but the network outputs 4 logits per image"):
        model_info("ut_classes_miscard")
    # logits under a pose card: not "10 heatmap channels", but no heatmaps at all
    with pytest.raises(ConfigError, match=r"model 'ut_logits_as_pose': its ModelCard says task 'pose', but "
                       r"the network outputs \[1, 10\] on the declared input \[1, 3, 32, 32\], not heatmaps"):
        model_info("ut_logits_as_pose")
    out = tmp_path / "k.csv"
    assert main(["predict", "--model", "ut_joints_miscard", "--weights", "none", "--video", "vtest",
                 "--frames", "3", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "declares 17 joints" in err[0], err
    assert not out.exists()


DICT_CLS = textwrap.dedent('''
    from torch import nn

    from deltatune_models import ModelCard, register_model

    MODEL_CARDS = {
        "ut_dict_cls": ModelCard(family="mine", task="classification", input_size=(64, 64),
                                 outputs="{'logits': [N,5], 'feat': [N,8]}"),
        "ut_keyless_cls": ModelCard(family="mine", task="classification", input_size=(64, 64),
                                    outputs="{'scores': [N,5]}"),
    }


    class DictClassifier(nn.Module):
        def __init__(self, key):
            super().__init__()
            self.key = key
            self.body = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                      nn.Flatten())
            self.head = nn.Linear(8, 5)

        def forward(self, x):
            feat = self.body(x)
            return {self.key: self.head(feat), "feat": feat}


    @register_model
    def ut_dict_cls():
        return DictClassifier("logits")


    @register_model
    def ut_keyless_cls():
        return DictClassifier("scores")
''')


@pytest.mark.slow
def test_a_classifier_returning_a_dict_of_logits_is_read_alike_by_every_command(tmp_path: Path) -> None:
    """``{"logits": ..., "feat": ...}`` was scored by inspect and bench (their first tensor) and refused by
    search and predict ("must return one logits tensor"); every command now reads ``out["logits"]``, and
    a dict without it is one line everywhere."""
    (tmp_path / "dict_nets.py").write_text(DICT_CLS)
    env = {_registry.MODELS_ENV: str(tmp_path / "dict_nets.py"), "DELTATUNE_RESULTS": str(tmp_path / "res"),
           "OMP_NUM_THREADS": "1"}
    base = ["--weights", "none", "--frames", "4"]
    search = ["search", "--model", "ut_dict_cls", *base, "--trials", "1", "--speed", "macs", "--retime", "0",
              "--no-progress"]
    run = _cli(search, env, tmp_path)
    assert run.returncode == 0, run.stderr
    run = _cli(["predict", "--model", "ut_dict_cls", *base, "-o", "c.csv", "--no-progress"], env, tmp_path)
    assert run.returncode == 0, run.stderr
    assert len((tmp_path / "c.csv").read_text().splitlines()) == 1 + 4 * 3  # vtest's three windows
    run = _cli(["bench", "--model", "ut_keyless_cls", *base, "--repeats", "1"], env, tmp_path)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "has no logits: it returns them as a tensor, the first element of a tuple, or out['logits']" in (
        run.stderr)


def test_a_family_file_that_registers_nothing_is_said_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forget_user_models: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A file that imports but registers no model (the wrong file, a missing @register_model) was taken
    without a word; the user then met "unknown model" with no hint why."""
    (tmp_path / "nothing.py").write_text("x = 1\n")
    monkeypatch.setenv(_registry.MODELS_ENV, str(tmp_path / "nothing.py"))
    list_models()
    said = f"{tmp_path / 'nothing.py'} registers no model (decorate each entry point with @register_model"
    assert said in caplog.text
