"""pyproject's ``dependencies`` are the third-party packages tuner/ and models/ import, no more, no less.

Imports are read with :mod:`ast` (nothing is imported), including function-local and ``TYPE_CHECKING``
ones: a package imported only lazily is still needed by the code path that imports it.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The source folders whose imports must be declared (installed as deltatune and deltatune_models).
PACKAGES = ("tuner", "models")
FIRST_PARTY = {"deltatune", "deltatune_models"}
#: Import names whose distribution is named differently; every other import name is its own
#: distribution name (after PEP 503 normalisation: ``scikit_posthocs`` -> ``scikit-posthocs``).
DISTRIBUTION_OF = {
    "PIL": "pillow",
    "sklearn": "scikit-learn",
    "yaml": "pyyaml",
    "cv2": "opencv-python",
    "psycopg2": "psycopg2-binary",
}
#: Declared dependencies nothing imports, and why they are needed anyway.
NOT_IMPORTED = {
    "ninja": "torch.utils.cpp_extension needs it to build the C++ kernels (deltatune/delta/csrc)",
}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[str]:
    """Distribution names in ``[project] dependencies`` (version specifiers and markers dropped)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {_normalise(re.split(r"[\s<>=!~;\[(]", req, maxsplit=1)[0]) for req in project["dependencies"]}


def _top_level_imports(path: Path) -> set[str]:
    """Top-level module names of the absolute imports in one source file."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _third_party_imports() -> dict[str, list[str]]:
    """``{distribution: [files importing it]}`` over :data:`PACKAGES`."""
    used: dict[str, list[str]] = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            for mod in _top_level_imports(path):
                if mod in sys.stdlib_module_names or mod in FIRST_PARTY or mod == "__future__":
                    continue
                dist = _normalise(DISTRIBUTION_OF.get(mod, mod))
                used.setdefault(dist, []).append(str(path.relative_to(ROOT)))
    return used


def test_every_imported_package_is_declared() -> None:
    used, declared = _third_party_imports(), _declared()
    missing = {dist: files[:3] for dist, files in used.items() if dist not in declared}
    assert not missing, f"imported but not in pyproject dependencies: {missing}"


def test_every_declared_package_is_imported_or_explained() -> None:
    used, declared = _third_party_imports(), _declared()
    unused = sorted(declared - set(used) - set(NOT_IMPORTED))
    assert not unused, f"declared in pyproject dependencies but imported nowhere in {PACKAGES}: {unused}"
    assert set(NOT_IMPORTED) <= declared


def test_the_scan_sees_lazy_and_aliased_imports(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text(
        "import os\nfrom . import sibling\nimport PIL.Image as I\n"
        "def f():\n    from scikit_posthocs import posthoc_nemenyi\n"
    )
    assert _top_level_imports(src) == {"os", "PIL", "scikit_posthocs"}
    assert (
        _normalise(DISTRIBUTION_OF["PIL"]) == "pillow" and _normalise("scikit_posthocs") == "scikit-posthocs"
    )
