"""Headless Chromium for the report tests: load a page, collect its console messages, take a screenshot.

Chromium (Debian's ``/usr/bin/chromium``) is run as a command line, without a driver: ``--screenshot``
writes a PNG once the page has loaded, and ``--enable-logging=stderr --v=0`` prints every console message
of the page as a line ``...:INFO:CONSOLE:<line>] "<message>", source: <url> (<line>)`` — the same for
``console.log``, ``console.error`` and uncaught exceptions (this Chromium does not print the level).

A broken ``<img>`` prints nothing on that channel, so the page is checked through a copy with a probe
script appended: after the ``load`` event it logs ``console.error("broken image ...")`` for every image
that did not decode and then one sentinel line. The report itself has no script, so every console line
other than the sentinel is an error, and a missing sentinel means the check itself did not work.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["chromium_or_skip", "check_page", "coloured_pixels", "PageCheck", "SENTINEL"]

SENTINEL = "deltatune-probe images="

#: Where Chromium is looked for when it is not on ``PATH`` (Debian's package).
CANDIDATES: tuple[str, ...] = ("/usr/bin/chromium",)

_PROBE = """
<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  for (const img of images) {
    if (!(img.complete && img.naturalWidth > 0)) {
      console.error("broken image: " + img.src.slice(0, 60));
    }
  }
  console.log("SENTINEL" + images.length);
});
</script>
""".replace("SENTINEL", SENTINEL)

_CONSOLE = re.compile(r':INFO:CONSOLE(?::\d+)?\] "(?P<msg>.*)", source: (?P<src>.*) \((?P<line>\d+)\)$')

_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
    # wait (in virtual time, not wall time) for the page to settle before the screenshot: on a loaded
    # machine the plots' images could still be decoding when it was taken
    "--virtual-time-budget=5000",
)


def chromium_or_skip() -> str:
    """Path of the Chromium binary; skips the test when there is none, fails instead when ``CI=true``."""
    path = shutil.which("chromium") or next((c for c in CANDIDATES if Path(c).is_file()), None)
    if path is not None:
        return path
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is not installed, but CI=true: the browser check must run in CI")
    pytest.skip("chromium is not installed (apt-get install chromium)")


@dataclass(frozen=True)
class PageCheck:
    """What Chromium reported for a page: console messages, the screenshot, the image count."""

    messages: tuple[str, ...]
    screenshot: Path
    stderr: str

    @property
    def images(self) -> int | None:
        """The number of images the probe saw; ``None`` when the probe did not run."""
        for m in self.messages:
            if m.startswith(SENTINEL):
                return int(m[len(SENTINEL) :])
        return None

    @property
    def errors(self) -> list[str]:
        """Every console message except the probe's sentinel (the report has no script of its own)."""
        return [m for m in self.messages if not m.startswith(SENTINEL)]


def check_page(
    page: Path, workdir: Path, *, window: tuple[int, int] = (1400, 3000), timeout_s: float = 120.0
) -> PageCheck:
    """Load a probed copy of ``page`` in headless Chromium; return its console messages and screenshot.

    The copy sits next to ``page`` so that relative links resolve as they would for the original.
    """
    binary = chromium_or_skip()
    text = page.read_text(encoding="utf-8")
    probed = text.replace("</body>", _PROBE + "</body>") if "</body>" in text else text + _PROBE
    copy = page.with_name(f".probed-{page.name}")
    copy.write_text(probed, encoding="utf-8")
    shot = workdir / f"{page.stem}.png"
    cmd = [
        binary,
        *_FLAGS,
        f"--user-data-dir={workdir / f'chromium-profile-{page.stem}'}",  # one per page: calls share none
        f"--screenshot={shot}",
        f"--window-size={window[0]},{window[1]}",
        copy.resolve().as_uri(),
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        _, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # Chromium's own process group (start_new_session)
        _, err = proc.communicate()
        raise AssertionError(f"chromium did not finish within {timeout_s} s:\n{err[-3000:]}") from None
    finally:
        copy.unlink(missing_ok=True)
    assert proc.returncode == 0, f"chromium exited with {proc.returncode}:\n{err[-3000:]}"
    assert shot.is_file(), f"chromium wrote no screenshot:\n{err[-3000:]}"
    messages = tuple(m.group("msg") for line in err.splitlines() if (m := _CONSOLE.search(line)))
    return PageCheck(messages=messages, screenshot=shot, stderr=err)


def coloured_pixels(png: Path, *, min_chroma: int = 60) -> int:
    """Pixels whose channels spread by at least ``min_chroma`` (max - min of R, G, B).

    Text, rules and table shading are black, grey or near-white (chroma below ~45 in the report's CSS);
    seaborn's palette colours (e.g. (76, 114, 176), (221, 132, 82)) are well above, so the count measures
    how much of the screenshot is plot.
    """
    import numpy as np
    from PIL import Image

    with Image.open(png) as im:
        rgb = np.asarray(im.convert("RGB"), dtype=np.int16)
    chroma = rgb.max(axis=2) - rgb.min(axis=2)
    return int((chroma >= min_chroma).sum())
