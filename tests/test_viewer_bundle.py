"""The page shipped in the package is what the locked npm sources build (``web/``: npm ci, npm run build)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from deepsalt.viewer.server import STATIC

WEB = Path(__file__).parents[1] / "web"


@pytest.mark.skipif(
    shutil.which("node") is None or not (WEB / "node_modules" / ".bin" / "esbuild").exists(),
    reason="needs node and web/node_modules (cd web && npm ci); .ci/run installs them",
)
def test_shipped_bundle_is_the_build_of_the_locked_sources(tmp_path: Path):
    subprocess.run(["node", "build.mjs", str(tmp_path)], cwd=WEB, check=True, capture_output=True)
    built = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    shipped = {p.name: p.read_bytes() for p in STATIC.iterdir() if p.is_file()}
    assert sorted(built) == sorted(shipped), "rebuild the page: cd web && npm ci && npm run build"
    stale = [name for name in built if built[name] != shipped[name]]
    assert not stale, f"{stale} differ from a fresh build: cd web && npm ci && npm run build, then commit"


def test_page_files_are_package_data():
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert '"viewer/static/*"' in pyproject
    assert {"index.html", "viewer.js", "viewer.css", "THIRD_PARTY_LICENSES.txt"} <= {
        p.name for p in STATIC.iterdir()
    }
