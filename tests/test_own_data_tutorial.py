"""docs/own_data.md, run as written: a user's own files → ``deepsalt train`` → ``deepsalt map``.

The files are real formats (an OSSL-style lab CSV with blank ECe for unmeasured samples, a lab
library, EnMAP L2A scenes behind a real STAC API, covariate COGs, a Web Soil Survey SSURGO export),
taken from a small generated world and laid out the way the tutorial names them. The tutorial's
YAML blocks are parsed and only their paths, URL and extent are pointed at these files; its
commands run verbatim (plus settings that keep the test short).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import xarray as xr
import yaml
from typer.testing import CliRunner

from deepsalt.cli import app
from deepsalt.training.data import PairingStatus
from tests.support.services import stac_api_server

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_cluster")]

TUTORIAL = Path(__file__).parents[1] / "docs" / "own_data.md"
QUICK = [
    "--set",
    "data.pool_size=1500",
    "--set",
    "sau.epochs=3",
    "--set",
    "teacher.epochs=10",
    "--set",
    "student.epochs=4",
]


def _blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", TUTORIAL.read_text(), flags=re.S)


def _yaml_block(name: str) -> dict:
    for block in _blocks("yaml"):
        if block.startswith(f"# {name}"):
            return yaml.safe_load(block)
    raise AssertionError(f"the tutorial has no {name} block")


def _commands() -> list[list[str]]:
    lines = [line.split("#")[0].split() for block in _blocks("bash") for line in block.splitlines()]
    return [words[1:] for words in lines if words and words[0] == "deepsalt"]


@pytest.fixture(scope="module")
def own_files(demo_region, tmp_path_factory) -> tuple[Path, dict]:
    """The user's folder: ``mydata/`` as the tutorial names it, copied from the small demo region
    (the session's, see ``tests/conftest.py``; the tutorial's commands read the region's scenes)."""
    region = demo_region
    root = tmp_path_factory.mktemp("user")
    data = root / "mydata"
    (data / "lab").mkdir(parents=True)
    shutil.copy(region.lab_url, data / "lab" / "samples.csv")
    shutil.copy(region.href(region.files.library), data / "lab" / "library.csv")
    shutil.copytree(region.href("covariates"), data / "covariates")
    shutil.copytree(region.href(region.files.survey["export"]), data / "ssurgo")
    return root, region


def test_the_tutorial_trains_and_maps_from_own_files(own_files, monkeypatch):
    root, region = own_files
    monkeypatch.chdir(root)
    collection = json.loads(Path(region.href(region.files.stac_collection)).read_text())
    items = [json.loads(line) for line in Path(region.href(region.files.stac_items)).read_text().splitlines()]
    commands = _commands()
    assert [c[0] for c in commands] == ["survey", "train", "map", "view"]
    with stac_api_server(root / "stac", collection, items) as api:
        inputs = _yaml_block("inputs.yaml") | {"stac_url": api}
        (root / "inputs.yaml").write_text(yaml.safe_dump(inputs))
        (root / "train.yaml").write_text(yaml.safe_dump(_yaml_block("train.yaml")))
        mapping = _yaml_block("map.yaml")
        mapping["region"]["bbox"] = list(region.bbox_lonlat)
        mapping["grid"] |= {"chunk": 64, "shard": 128}
        (root / "map.yaml").write_text(yaml.safe_dump(mapping))
        runner = CliRunner()
        outputs = {}
        for command in commands[:3]:  # `deepsalt view` serves the map until stopped
            extra = QUICK if command[0] == "train" else []
            result = runner.invoke(app, [*command, *extra])
            assert result.exit_code == 0, (command, result.output)
            outputs[command[0]] = result.output

    assert {p.name for p in (root / "mydata" / "survey-rasters").iterdir()} >= {
        "ece.tif",
        "sand.tif",
        "clay.tif",
    }
    train = _yaml_block("train.yaml")
    report = pd.read_csv(root / train["output"] / "pairing_report.csv", keep_default_na=False)
    samples = pd.read_csv(root / "mydata" / "lab" / "samples.csv", usecols=["id"])
    assert list(report["sample_id"]) == list(samples["id"])  # every sample, in the table's order
    assert set(report["status"]) <= {s.value for s in PairingStatus}
    skipped = report[report["status"] != PairingStatus.PAIRED.value]
    assert len(skipped) and (report["status"] == PairingStatus.PAIRED.value).mean() > 0.8
    for row in skipped.itertuples():  # the command names each skipped sample and why
        assert f"{row.sample_id}: {row.status}" in " ".join(outputs["train"].split())
    for stage in ("sau", "teacher", "student"):
        assert (root / train["output"] / stage / "meta.json").exists()

    store = root / mapping["output"]["url"]
    ds = xr.open_zarr(store, decode_coords="all")
    land = (ds.quality.values & 4) == 0  # not water
    assert ds.ece.notnull().values[land].mean() > 0.6
    assert "0 failed" in outputs["map"]
