"""keep_freed_memory(): glibc's allocator settings, applied once per process, off with DELTATUNE_MALLOPT=0,
and importable without torch (the command applies them before every command)."""

from __future__ import annotations

import subprocess
import sys

from deltatune import _malloc


def test_keep_freed_memory_is_applied_once_and_can_be_turned_off(monkeypatch) -> None:
    import platform

    monkeypatch.delitem(_malloc._state, "malloc", raising=False)
    monkeypatch.setenv(_malloc.MALLOPT_ENV, "0")
    assert _malloc.keep_freed_memory() is False
    assert _malloc.keep_freed_memory() is False  # decided once per process
    monkeypatch.delitem(_malloc._state, "malloc")
    monkeypatch.delenv(_malloc.MALLOPT_ENV)
    applied = _malloc.keep_freed_memory()
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert applied is True


def test_applying_them_imports_no_torch() -> None:
    """``deltatune --help`` and ``report`` of a CSV table never need torch (about a second to import)."""
    code = "import sys\nfrom deltatune import _malloc\n_malloc.keep_freed_memory()\n"
    code += "print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         check=True)
    assert out.stdout.strip() == "False"
