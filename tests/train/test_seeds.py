"""Derived training seeds: unchanged where torch takes them, reduced where an ordinary ``--seed`` made the
combination overflow (a traceback after a minute of decoding)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from deltatune.train.seeds import derived_seed, seeded_generator


def test_seeds_torch_takes_are_kept_and_others_reduced() -> None:
    for v in (0, 1, 20261207 * 1_000_003, 2**63 - 1):
        assert derived_seed(v) == v
    big = (20261207 * 1_000_003 + 3) * 1_000_033 + 7  # distill's per-sample seed of --seed 20261207
    with pytest.raises((RuntimeError, ValueError, OverflowError)):
        torch.Generator().manual_seed(big)
    assert derived_seed(big) == big % 2**63 and derived_seed(-5) == 2**63 - 5
    a, b = seeded_generator(big), seeded_generator(big)
    assert torch.equal(torch.rand(4, generator=a), torch.rand(4, generator=b))
    assert torch.equal(torch.rand(3, generator=seeded_generator(42)),
                       torch.rand(3, generator=torch.Generator().manual_seed(42)))  # runs made before


def test_finetune_takes_a_large_seed_and_refuses_to_overwrite_its_video(
    tmp_path: Path, carphone_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from deltatune.cli import main

    base = ["finetune", "--model", "hrnet_tiny", "--weights", "none", "--video", "carphone",
            "--frames", "0:4", "--steps", "1", "--batch-size", "1", "--weight-decay", "1e-4"]
    assert main([*base, "--seed", "100000000000000", "-o", str(tmp_path / "w.pt")]) == 0
    assert (tmp_path / "w.pt").is_file()
    clip = tmp_path / "clip.mp4"
    shutil.copy(carphone_path, clip)
    before = clip.read_bytes()
    argv = [*base[:5], "--video", str(clip), *base[7:], "-o", str(clip)]
    assert main(argv) == 2
    said = capsys.readouterr().err.strip()
    assert said.endswith(f"--out {clip}: is the input video (--video {clip}); give another file name")
    assert clip.read_bytes() == before
