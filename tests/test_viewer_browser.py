"""The viewer page in a real headless Chromium (WebGL through SwiftShader), on a small map.

It waits for the map to render, checks the canvas shows the map's colours, reads a pixel by clicking
it and compares with the store, switches variables, zooms through the pyramid and saves a screenshot.
The page may fetch nothing but its own server.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from PIL import Image

from deepsalt.mapping.legend import SALINITY_CLASSES, ramp_colours
from deepsalt.viewer.page import page_settings
from deepsalt.viewer.server import STORE_PREFIX, Request, StoreFiles, ViewerServer
from tests.support.browser import CHROMIUM, TIMEOUT_MS, VIEWPORT, browser_context, wait_rendered
from tests.support.small_map import write_small_map

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="needs Debian's chromium (apt-get install -y chromium); .ci/run installs it"
)
MAP_AREA = (0, 0, 760, 750)  # left of the side panel


def rgb(hex_colour: str) -> np.ndarray:
    return np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])


def share_of(image: np.ndarray, colours: list[str], tolerance: int = 3) -> float:
    """Share of the image's pixels drawn in one of ``colours``."""
    hits = np.zeros(image.shape[:2], dtype=bool)
    for colour in colours:
        hits |= (np.abs(image[..., :3].astype(int) - rgb(colour)) <= tolerance).all(axis=-1)
    return float(hits.mean())


@pytest.fixture(scope="module")
def viewer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    url = write_small_map(str(tmp_path_factory.mktemp("viewer") / "map.zarr"), finish=True)
    files = StoreFiles(url)
    settings = page_settings(files.url, STORE_PREFIX.strip("/") + "/").to_json()
    requests: list[Request] = []
    with ViewerServer(files, lambda: settings, "127.0.0.1", 0, on_request=requests.append) as server:
        yield {"url": url, "server": server, "requests": requests, "page_errors": []}


@pytest.fixture(scope="module")
def page(viewer: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    profile = tmp_path_factory.mktemp("chromium-profile")
    with browser_context(str(profile)) as context:
        origin = viewer["server"].url.rstrip("/")
        elsewhere: list[str] = []

        def only_our_server(route: Any) -> None:
            if route.request.url.startswith(origin):
                route.continue_()
            else:
                elsewhere.append(route.request.url)
                route.abort()

        context.route("**/*", only_our_server)
        tab = context.new_page()
        tab.on("pageerror", lambda error: viewer["page_errors"].append(str(error)))
        tab.goto(viewer["server"].url)
        viewer["elsewhere"] = elsewhere
        yield tab


def map_pixels(page: Any) -> np.ndarray:
    left, top, right, bottom = MAP_AREA
    shot = page.screenshot(clip={"x": left, "y": top, "width": right - left, "height": bottom - top})
    return np.asarray(Image.open(io.BytesIO(shot)).convert("RGB"))


def click_pixel(page: Any, row: int, col: int) -> dict[str, str]:
    """Click the centre of full-resolution pixel (row, col); returns the panel's values by row name."""
    x, y = pixel_position(page, row, col)
    page.mouse.click(x, y)
    page.wait_for_function(f"document.body.dataset.pixel === '{row},{col}'", timeout=TIMEOUT_MS)
    cells = page.locator("#pixel-values tr")
    values = {}
    for i in range(cells.count()):
        name = cells.nth(i).get_attribute("data-name")
        cell = cells.nth(i).locator("td")
        values[name] = cell.get_attribute("data-value") or cell.inner_text()
        values[f"{name}:text"] = cell.inner_text()
    return values


def pixel_position(page: Any, row: int, col: int) -> tuple[float, float]:
    return page.evaluate(
        """async ([row, col]) => {
            const response = await fetch('store/zarr.json');
            const layout = (await response.json()).attributes.multiscales.layout;
            const [a, , c, , e, f] = layout.find((entry) => entry.asset === '.')['spatial:transform'];
            const coordinate = [c + a * (col + 0.5), f + e * (row + 0.5)];
            return window.deepsaltViewer.map.getPixelFromCoordinate(coordinate);
        }""",
        [row, col],
    )


def test_map_renders_in_the_salinity_classes(page: Any, viewer: dict[str, Any]):
    wait_rendered(page, "ece", "0")
    # the first view is full resolution, drawn from the root's own arrays (the layout's asset ".", which
    # the page must make OpenLayers read), not from level 1; no click has read a pixel yet
    tiles = {r.path for r in viewer["requests"] if "/c/" in r.path}
    assert any(path.startswith("/store/ece/c/") for path in tiles), tiles
    assert not any(path.startswith("/store/1/") for path in tiles), tiles
    image = map_pixels(page)
    classes = [c.colour for c in SALINITY_CLASSES]
    assert share_of(image, classes) > 0.3, "the map canvas does not show the ECe classes"
    # ECe = row + col/1000 spans every class from the top rows down: each class appears
    assert all(share_of(image, [colour]) > 0.001 for colour in classes)
    assert page.inner_text("#legend h2") == "ECe (dS/m)"


def test_clicking_a_pixel_shows_the_stored_values(page: Any, viewer: dict[str, Any]):
    wait_rendered(page, "ece")
    stored = xr.open_zarr(viewer["url"])
    row, col = 37, 42
    shown = click_pixel(page, row, col)
    for name in ("ece", "ece_std", "domain_score"):
        assert float(shown[name]) == float(stored[name][row, col])  # float32 read exactly
    assert shown["ece:text"] == "37.0 dS/m"  # row 37, col 42: 37.042 to three significant digits
    assert float(shown["ece:text"].split()[0]) == pytest.approx(float(stored.ece[row, col]), rel=5e-3)
    assert shown["quality:text"] == "ok" and shown["pixel:text"] == f"{row}, {col}"
    # the page read each variable's shard index with a suffix range, answered with its last bytes
    shard_indexes = [r for r in viewer["requests"] if (r.range or "").startswith("bytes=-")]
    assert {r.path for r in shard_indexes} >= {f"/store/{name}/c/0/0" for name in ("ece", "quality")}
    assert all(r.status == 206 for r in shard_indexes)
    water = click_pixel(page, 20, 50)  # every 50th column is water: no prediction
    assert water["ece:text"] == "no prediction" and water["quality:text"] == "water"
    assert int(water["quality"]) == int(stored.quality[20, 50]) == 4


def test_switching_variables_recolours_the_map_with_its_legend(page: Any):
    wait_rendered(page, "ece")
    page.check("input[value=ece_std]")
    wait_rendered(page, "ece_std")
    assert page.inner_text("#legend h2") == "ECe uncertainty (std) (dS/m)"
    image = map_pixels(page)
    assert share_of(image, [c.colour for c in SALINITY_CLASSES]) < 0.01
    assert share_of(image, ramp_colours("ece_std", 256), tolerance=4) > 0.3
    page.check("input[value=domain_score]")
    wait_rendered(page, "domain_score")
    assert page.inner_text("#legend h2") == "Domain score"
    page.check("input[value=ece]")
    wait_rendered(page, "ece")


def test_zooming_out_reads_coarser_levels_with_suffix_ranges(page: Any, viewer: dict[str, Any]):
    wait_rendered(page, "ece")

    def chunks_read() -> set[str]:
        """Arrays whose chunks were requested: the root's (/store/ece/c/...) or a level's (/store/1/...)."""
        return {
            r.path.split("/")[2]
            for r in viewer["requests"]
            if r.path.startswith("/store/") and "/c/" in r.path
        }

    for resolution, level, array in ((30, "0", "ece"), (60, "1", "1"), (240, "3", "3")):
        # A frame drawn just before the zoom is reported complete just after it (OpenLayers reports
        # in a timeout): the page must not take that report for the new level's, so by the time it
        # says the level is drawn, the level's chunks have been read.
        page.evaluate(
            f"window.deepsaltViewer.map.renderSync(); window.deepsaltViewer.view.setResolution({resolution})"
        )
        wait_rendered(page, "ece", level)
        assert f"pyramid level {level}" in page.inner_text("#level")
        assert array in chunks_read()
    # OpenLayers' source sizes a shard with HEAD before reading its index: Content-Length must be right
    heads = [r for r in viewer["requests"] if r.method == "HEAD" and "/c/" in r.path]
    assert heads and all(r.status in (200, 404) for r in heads)
    page.evaluate("window.deepsaltViewer.view.fit([-1000020, 1995510, -994020, 2000010])")


def test_screenshot_is_saved_and_nothing_left_this_machine(page: Any, viewer: dict[str, Any], tmp_path: Path):
    wait_rendered(page, "ece")
    path = tmp_path / "viewer.png"
    page.screenshot(path=str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert Image.open(path).size == (VIEWPORT["width"], VIEWPORT["height"])
    assert viewer["elsewhere"] == [] and viewer["page_errors"] == []
