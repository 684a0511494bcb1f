"""Bad inputs, table-driven: every one is refused with one plain message that names the culprit.

Each case runs the real command line (in process) against one small demo world shared by the
session (the small demo region and a few-epoch student, as ``deepsalt demo --quick`` makes
them) and a map already finished from it. For every case the test checks:

- the exit code (2 for configuration, 1 for inputs, outputs and stores);
- one ``error``/``config error`` line that names the file, field, row or column at fault;
- no traceback;
- the finished map (store, STAC item, quicklooks) is byte for byte what it was, and the case's
  own output was not created (no partial garbage).

Most cases fail before Ray is asked for anything; the few about resources use the session's Ray.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from deepsalt.cli import app
from deepsalt.mapping import MapConfig, run_map
from tests.support.demo_world import DemoWorld
from tests.support.filesystems import full_folder, read_only_folder
from tests.support.services import free_port, stac_api_server

pytestmark = pytest.mark.usefixtures("ray_cluster")


def tree_digest(root: Path) -> str:
    """SHA-256 over every file below ``root`` (relative path and bytes)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def merged(base: dict[str, Any], sections: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out = json.loads(json.dumps(base))
    for name, values in sections.items():
        out[name] = {**out.get(name, {}), **values}
    return out


@dataclass
class World:
    """The shared demo world, its STAC API and a finished map of it."""

    demo: DemoWorld
    stac: str
    finished: Path  # the finished map: store, STAC item, quicklooks
    digest: str = ""

    @property
    def store(self) -> str:
        return str(self.finished / "map.zarr")

    @property
    def region(self) -> Path:
        return Path(self.demo.region.url)

    def settings(self, out: Path | str, **sections: dict[str, Any]) -> dict[str, Any]:
        return merged(self.demo.map_settings(self.stac, str(out)), sections)

    def map_config(self, folder: Path, out: Path | str | None = None, **sections: dict[str, Any]) -> str:
        """A map config file in ``folder`` (output ``folder/map.zarr`` unless given)."""
        path = folder / "map.yaml"
        path.write_text(yaml.safe_dump(self.settings(out or folder / "map.zarr", **sections)))
        return str(path)


@pytest.fixture(scope="module")
def world(demo_world: DemoWorld, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("bad-inputs")
    with stac_api_server(root / "stac", *demo_world.stac_inputs()) as stac:
        shared = World(demo_world, stac, root / "finished")
        config = MapConfig.model_validate(
            shared.settings(shared.store, output={"quicklook_dir": str(shared.finished / "ql")})
        )
        assert run_map(config).ok
        shared.digest = tree_digest(shared.finished)
        yield shared


@dataclass
class Expect:
    argv: list[str]
    code: int
    names: tuple[str, ...]
    """What the error line must contain: the file, field, row or column at fault."""
    absent: tuple[Path, ...] = ()
    """Outputs the refused run must not have created."""
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Case:
    world: World
    tmp: Path
    stack: contextlib.ExitStack

    def map(self, code: int, names: tuple[str, ...], *extra: str, **sections: dict[str, Any]) -> Expect:
        """``deepsalt map`` with the world's config changed by ``sections`` and ``--set``s in ``extra``."""
        out = self.tmp / "map.zarr"
        config = self.world.map_config(self.tmp, **sections)
        url = sections.get("output", {}).get("url")
        return Expect(["map", "-c", config, *extra], code, names, absent=() if url else (out,))

    def copy_of(self, source: str | Path, name: str) -> Path:
        target = self.tmp / name
        shutil.copytree(source, target)
        return target

    def region_with_lab(self, edit: Callable[[list[list[str]]], list[list[str]]]) -> Path:
        """A copy of the region (links to its files) whose lab table went through ``edit``."""
        region = self.tmp / "region"
        region.mkdir()
        for entry in self.world.region.iterdir():
            if entry.name != "lab":
                (region / entry.name).symlink_to(entry)
        (region / "lab").mkdir()
        rows = [
            line.split(",") for line in (self.world.region / "lab/lab_samples.csv").read_text().splitlines()
        ]
        (region / "lab/lab_samples.csv").write_text("\n".join(",".join(r) for r in edit(rows)) + "\n")
        return region

    def train(self, region: Path | str, code: int, names: tuple[str, ...]) -> Expect:
        config = self.tmp / "train.yaml"
        runs = self.tmp / "runs"
        config.write_text(yaml.safe_dump({"regions": [str(region)], "output": str(runs), "preset": "quick"}))
        return Expect(["train", "all", "-c", str(config)], code, names, absent=(runs,))


CASES: dict[str, Callable[[Case], Expect]] = {}


def case(fn: Callable[[Case], Expect]) -> Callable[[Case], Expect]:
    CASES[fn.__name__] = fn
    return fn


def unreachable_s3() -> dict[str, str]:
    """An object store nobody answers at (a free port), with dummy keys and no retries."""
    return {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
        "AWS_ACCESS_KEY_ID": "dummy",
        "AWS_SECRET_ACCESS_KEY": "dummy",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_MAX_ATTEMPTS": "1",
    }


# ---------------------------------------------------------------- configuration (exit 2)


@case
def datetime_that_is_not_a_date(c: Case) -> Expect:
    return c.map(2, ("region.datetime", "2024-13-45"), region={"datetime": "2024-13-45"})


@case
def datetime_range_ending_before_it_starts(c: Case) -> Expect:
    return c.map(
        2, ("region.datetime", "ends before it starts"), region={"datetime": "2024-12-31/2024-01-01"}
    )


@case
def datetime_in_words(c: Case) -> Expect:
    return c.map(2, ("region.datetime", "last summer"), region={"datetime": "last summer"})


@case
def stac_url_that_is_not_a_url(c: Case) -> Expect:
    return c.map(2, ("inputs.stac_url", "not a url"), inputs={"stac_url": "not a url"})


@case
def stac_url_with_ftp_scheme(c: Case) -> Expect:
    return c.map(
        2, ("inputs.stac_url", "ftp://example.org/stac"), inputs={"stac_url": "ftp://example.org/stac"}
    )


@case
def bounds_reversed(c: Case) -> Expect:
    # the message's brackets are text, not markup: they reach the terminal
    return c.map(2, ("region", "[min_x, min_y, max_x, max_y]"), region={"bounds": [3.0, 2.0, 1.0, 0.0]})


@case
def bbox_in_metres(c: Case) -> Expect:
    return c.map(
        2, ("region.bbox", "[-180, -90, 180, 90]"), region={"bounds": None, "bbox": [5e5, 4e6, 5.1e5, 4.01e6]}
    )


@case
def bbox_and_bounds_both(c: Case) -> Expect:
    return c.map(2, ("region", "exactly one"), region={"bbox": [-120.4, 36.4, -120.3, 36.5]})


@case
def grid_crs_geographic(c: Case) -> Expect:
    return c.map(2, ("grid", "EPSG:4326", "geographic"), grid={"crs": "EPSG:4326"})


@case
def grid_crs_unknown(c: Case) -> Expect:
    return c.map(2, ("grid", "EPSG:999999"), grid={"crs": "EPSG:999999"})


@case
def shard_not_a_multiple_of_chunk(c: Case) -> Expect:
    return c.map(2, ("grid", "grid.shard (100)", "grid.chunk (64)"), grid={"shard": 100})


@case
def negative_cpus(c: Case) -> Expect:
    return c.map(2, ("ray.num_cpus",), ray={"num_cpus": -1})


@case
def misspelt_field(c: Case) -> Expect:
    return c.map(2, ("output.urll", "unknown field"), output={"urll": "x.zarr"})


@case
def override_without_a_value(c: Case) -> Expect:
    return c.map(2, ("region", "key.sub=value"), "--set", "region")


@case
def config_file_missing(c: Case) -> Expect:
    missing = c.tmp / "no-such.yaml"
    return Expect(["map", "-c", str(missing)], 2, (str(missing), "not found"))


@case
def config_file_not_yaml(c: Case) -> Expect:
    broken = c.tmp / "broken.yaml"
    broken.write_text("region: [unclosed\n")
    return Expect(["map", "-c", str(broken)], 2, (str(broken), "not valid YAML"))


@case
def config_file_a_list(c: Case) -> Expect:
    listed = c.tmp / "list.yaml"
    listed.write_text("- region\n- grid\n")
    return Expect(["map", "-c", str(listed)], 2, (str(listed), "mapping"))


@case
def predictor_that_does_not_import(c: Case) -> Expect:
    return c.map(2, ("model.predictor", "nope.module:Nope"), model={"predictor": "nope.module:Nope"})


@case
def predictor_that_is_not_a_predictor(c: Case) -> Expect:
    spec = "deepsalt.mapping.grid:Grid"
    return c.map(2, ("model.predictor", spec, "not a predictor"), model={"predictor": spec})


@case
def cpus_beyond_any_node(c: Case) -> Expect:
    return c.map(2, ("ray.num_cpus", "64 CPU", "largest node"), ray={"num_cpus": 64})


@case
def gpus_beyond_any_node(c: Case) -> Expect:
    return c.map(2, ("ray.num_gpus", "8 GPU", "largest node"), ray={"num_gpus": 8})


@case
def actors_beyond_the_cluster(c: Case) -> Expect:
    return c.map(2, ("ray.num_cpus", "2 workers", "do not fit"), ray={"num_actors": 2, "num_cpus": 1.5})


# ---------------------------------------------------------------- inputs (exit 1)


@case
def student_missing(c: Case) -> Expect:
    missing = c.tmp / "no-student"
    return c.map(1, (str(missing), "no checkpoint here"), model={"student_url": str(missing)})


@case
def student_metadata_not_json(c: Case) -> Expect:
    student = c.copy_of(c.world.demo.student, "student")
    (student / "meta.json").write_text("{not json")
    return c.map(
        1, (f"{student}/meta.json", "invalid checkpoint metadata"), model={"student_url": str(student)}
    )


@case
def student_band_axis_edited(c: Case) -> Expect:
    student = c.copy_of(c.world.demo.student, "student")
    meta = json.loads((student / "meta.json").read_text())
    meta["band_axis"]["wavelength"] = meta["band_axis"]["wavelength"][:-3]
    (student / "meta.json").write_text(json.dumps(meta))
    return c.map(1, (f"{student}/meta.json", "band_axis.wavelength"), model={"student_url": str(student)})


@case
def student_weights_not_its_own(c: Case) -> Expect:
    student = c.copy_of(c.world.demo.student, "student")
    shutil.copy(Path(c.world.demo.checkpoints["teacher"], "weights.pt"), student / "weights.pt")
    return c.map(1, (str(student), "weights.pt hashes to"), model={"student_url": str(student)})


@case
def teacher_given_as_student(c: Case) -> Expect:
    teacher = c.world.demo.checkpoints["teacher"]
    return c.map(1, (teacher, "'teacher' checkpoint"), model={"student_url": teacher})


@case
def student_on_an_unreachable_object_store(c: Case) -> Expect:
    expect = c.map(
        1,
        ("model.student_url", "s3://models/student", "cannot be reached"),
        model={"student_url": "s3://models/student"},
    )
    expect.env = unreachable_s3()
    return expect


@case
def covariate_folder_missing(c: Case) -> Expect:
    missing = c.tmp / "no-covariates"
    return c.map(1, (f"{missing}/sand.tif", "missing"), inputs={"covariates_url": str(missing)})


@case
def one_covariate_raster_missing(c: Case) -> Expect:
    covariates = c.copy_of(c.world.region / "covariates", "covariates")
    (covariates / "clay.tif").unlink()
    return c.map(
        1,
        (f"{covariates}/clay.tif", "'clay' covariate raster is missing"),
        inputs={"covariates_url": str(covariates)},
    )


@case
def stac_api_unreachable(c: Case) -> Expect:
    url = f"http://127.0.0.1:{free_port()}/"
    return c.map(1, (url, "STAC search failed"), inputs={"stac_url": url})


@case
def stac_url_that_is_no_stac_api(c: Case) -> Expect:
    url = f"{c.world.stac}/no/such/api"
    return c.map(1, (url,), inputs={"stac_url": url})


@case
def no_scene_in_the_dates(c: Case) -> Expect:
    return c.map(
        1, (c.world.stac, "no scene", "1990-01-01/1990-12-31"), region={"datetime": "1990-01-01/1990-12-31"}
    )


@case
def region_away_from_every_scene(c: Case) -> Expect:
    left, bottom, right, top = c.world.settings("x")["region"]["bounds"]
    far = [left + 2e5, bottom + 2e5, right + 2e5, top + 2e5]
    return c.map(1, (c.world.stac, "no scene"), region={"bounds": far})


# ---------------------------------------------------------------- outputs (exit 1)


@case
def output_that_is_a_file(c: Case) -> Expect:
    target = c.tmp / "taken"
    target.write_text("someone's notes")
    return c.map(1, (str(target), "is a file"), output={"url": str(target)})


@case
def output_that_is_a_foreign_folder(c: Case) -> Expect:
    target = c.tmp / "photos"
    target.mkdir()
    (target / "holiday.jpg").write_bytes(b"\xff\xd8")
    return c.map(1, (str(target), "not a DeepSalt map", "holiday.jpg"), output={"url": str(target)})


@case
def paths_with_brackets(c: Case) -> Expect:
    # rich would read "[/x]" as a closing tag; the message must carry it as written
    student = c.tmp / "models[/x]" / "student"
    return c.map(
        1,
        (str(student), "[/x]"),
        model={"student_url": str(student)},
        output={"url": str(c.tmp / "maps[/x]" / "m.zarr")},
    )


@case
def output_read_only(c: Case) -> Expect:
    folder = c.stack.enter_context(read_only_folder(c.tmp / "read-only"))
    target = folder / "map.zarr"
    return c.map(1, (str(target), "output.url"), output={"url": str(target)})


@case
def output_on_a_full_disk(c: Case) -> Expect:
    folder = c.stack.enter_context(full_folder(c.tmp / "full"))
    target = folder / "map.zarr"
    return c.map(1, (str(target), "output.url", "no space left"), output={"url": str(target)})


@case
def output_on_an_unreachable_object_store(c: Case) -> Expect:
    expect = c.map(
        1,
        ("output.url", "s3://maps/region.zarr", "cannot be reached"),
        output={"url": "s3://maps/region.zarr"},
    )
    expect.env = unreachable_s3()
    return expect


@case
def config_on_an_unreachable_object_store(c: Case) -> Expect:
    return Expect(
        ["map", "-c", "s3://configs/map.yaml"],
        1,
        ("configs/map.yaml", "cannot be reached"),
        env=unreachable_s3(),
    )


@case
def stac_item_path_is_a_folder(c: Case) -> Expect:
    folder = c.tmp / "item-folder"
    folder.mkdir()
    return c.map(
        1, (str(folder), "output.stac_item_url", "is a folder"), output={"stac_item_url": str(folder)}
    )


@case
def quicklook_folder_is_a_file(c: Case) -> Expect:
    taken = c.tmp / "ql"
    taken.write_text("x")
    return c.map(1, (str(taken), "output.quicklook_dir", "is a file"), output={"quicklook_dir": str(taken)})


# ---------------------------------------------------------------- the finished store (exit 1, untouched)


@case
def finished_store_with_another_model(c: Case) -> Expect:
    student = c.copy_of(c.world.demo.student, "retrained")
    meta = json.loads((student / "meta.json").read_text())
    meta["metrics"]["val_mae"] = meta["metrics"].get("val_mae", 0.0) + 1.0  # another run's checkpoint
    (student / "meta.json").write_text(json.dumps(meta))
    names = (c.world.store, "model.student_url (checkpoint content)", "--restart")
    return c.map(1, names, model={"student_url": str(student)}, output={"url": c.world.store})


@case
def finished_store_with_another_resolution(c: Case) -> Expect:
    return c.map(
        1,
        (c.world.store, "grid.shape", "grid.transform"),
        grid={"resolution": 60.0},
        output={"url": c.world.store},
    )


@case
def finished_store_with_other_covariates(c: Case) -> Expect:
    covariates = c.copy_of(c.world.region / "covariates", "covariates")
    (covariates / "tmax.tif").write_bytes((covariates / "tmin.tif").read_bytes())
    names = (c.world.store, "inputs.covariates_url (file content)")
    return c.map(1, names, inputs={"covariates_url": str(covariates)}, output={"url": c.world.store})


@case
def store_being_written_by_another_run(c: Case) -> Expect:
    import os
    import socket
    import time

    busy = c.copy_of(c.world.store, "busy.zarr")
    lease = {
        "run_id": "other",
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "renewed": time.time(),
        "ttl_s": 120,
    }
    (busy / "_lease.json").write_text(json.dumps(lease))
    return c.map(
        1, (str(busy), "another run is writing this store", f"pid {os.getpid()}"), output={"url": str(busy)}
    )


# ---------------------------------------------------------------- export and quicklook


@case
def export_of_a_missing_store(c: Case) -> Expect:
    missing = c.tmp / "missing.zarr"
    return Expect(
        ["export", str(missing), str(c.tmp / "cog")],
        1,
        (str(missing), "no DeepSalt map"),
        absent=(c.tmp / "cog",),
    )


@case
def export_of_an_unknown_variable(c: Case) -> Expect:
    return Expect(
        ["export", c.world.store, str(c.tmp / "cog"), "--var", "salt"],
        2,
        ("--var", "'salt'"),
        absent=(c.tmp / "cog",),
    )


@case
def export_of_a_missing_level(c: Case) -> Expect:
    return Expect(
        ["export", c.world.store, str(c.tmp / "cog"), "--level", "9"],
        1,
        (c.world.store, "pyramid levels 0 to", "not 9"),
    )


@case
def export_into_a_file(c: Case) -> Expect:
    taken = c.tmp / "cog"
    taken.write_text("x")
    return Expect(["export", c.world.store, str(taken)], 1, (str(taken),))


@case
def quicklook_of_a_missing_store(c: Case) -> Expect:
    missing = c.tmp / "missing.zarr"
    return Expect(["quicklook", str(missing), str(c.tmp / "ql")], 1, (str(missing),), absent=(c.tmp / "ql",))


@case
def quicklook_into_a_file(c: Case) -> Expect:
    taken = c.tmp / "ql"
    taken.write_text("x")
    return Expect(["quicklook", c.world.store, str(taken)], 1, (str(taken),))


# ---------------------------------------------------------------- lab data (deepsalt train; exit 1)

ECE, LAT, LON = 4, 1, 2  # columns of the demo lab table: id, lat, lon, depth, ece, wavenumbers...


def _set(row: int, column: int, value: str) -> Callable[[list[list[str]]], list[list[str]]]:
    def edit(rows: list[list[str]]) -> list[list[str]]:
        rows[row][column] = value
        return rows

    return edit


def _lab(c: Case) -> str:
    return str(c.tmp / "region/lab/lab_samples.csv")


@case
def lab_negative_ece(c: Case) -> Expect:
    region = c.region_with_lab(_set(3, ECE, "-1.5"))
    return c.train(region, 1, (_lab(c), "row 3", "column 'ece'", "-1.5 is negative"))


@case
def lab_ece_in_words(c: Case) -> Expect:
    region = c.region_with_lab(_set(2, ECE, "high"))
    return c.train(region, 1, (_lab(c), "row 2", "column 'ece'", "'high' is not a number"))


@case
def lab_ece_twice(c: Case) -> Expect:
    region = c.region_with_lab(
        lambda rows: [[*r[:5], r[ECE] if i else "ECe", *r[5:]] for i, r in enumerate(rows)]
    )
    return c.train(region, 1, (_lab(c), "'ece'", "'ECe'"))


@case
def lab_latitude_blank(c: Case) -> Expect:
    region = c.region_with_lab(_set(4, LAT, ""))
    return c.train(region, 1, (_lab(c), "row 4", "column 'lat'", "missing"))


@case
def lab_longitude_out_of_range(c: Case) -> Expect:
    region = c.region_with_lab(_set(1, LON, "400"))
    return c.train(region, 1, (_lab(c), "row 1", "column 'lon'", "400"))


@case
def lab_latitude_twice(c: Case) -> Expect:
    region = c.region_with_lab(
        lambda rows: [[*r[:2], r[LAT] if i else "Latitude", *r[2:]] for i, r in enumerate(rows)]
    )
    return c.train(region, 1, (_lab(c), "'lat'", "'Latitude'"))


@case
def lab_table_empty(c: Case) -> Expect:
    region = c.region_with_lab(lambda rows: [])
    return c.train(region, 1, (_lab(c), "not a readable CSV"))


@case
def region_missing(c: Case) -> Expect:
    missing = c.tmp / "no-region"
    return c.train(missing, 1, (f"{missing}/region.json", "no region manifest"))


@case
def synth_into_a_file(c: Case) -> Expect:
    taken = c.tmp / "regions"
    taken.write_text("x")
    return Expect(["synth", str(taken), "--set", "size=small"], 1, (str(taken),))


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(("error ", "config error "))]


def test_the_table_covers_at_least_forty_bad_inputs() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_refused_with_one_plain_message_naming_it(
    name: str, world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with contextlib.ExitStack() as stack:
        expect = CASES[name](Case(world, tmp_path, stack))
        for key, value in expect.env.items():
            monkeypatch.setenv(key, value)
        if expect.env:
            import s3fs

            s3fs.S3FileSystem.clear_instance_cache()  # no client made for another endpoint
        result = CliRunner().invoke(app, expect.argv)

        errors = error_lines(result.output)
        assert result.exit_code == expect.code, result.output
        assert isinstance(result.exception, SystemExit), result.output
        assert "Traceback" not in result.output
        assert len(errors) == 1, result.output
        for culprit in expect.names:
            assert culprit in errors[0], errors[0]
        for path in expect.absent:
            assert not path.exists(), f"{path} was created"
    assert tree_digest(world.finished) == world.digest
