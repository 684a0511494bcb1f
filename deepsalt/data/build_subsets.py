"""Rebuild the spectral subsets shipped in ``deepsalt/data`` from the real libraries.

Run once by a maintainer (``python -m deepsalt.data.build_subsets <shared-data-folder>``); the
generator itself never reads outside the package. Recorded here so that every shipped number can
be traced back to its source file (see SOURCES.md).
"""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd

from deepsalt.spectra import KSSL_WAVENUMBERS, interpolate_mir

OUT = Path(__file__).parent
SEED = 20261124
SOILS_PER_POOL = 700

# USGS splib07 (AVIRIS-convolved) records by their exact names: salts and carbonate, green
# vegetation, dry vegetation (NPV), water.
USGS_RECORDS = {
    "salt": {
        "halite": "Halite HS433.3B              ASDFRa AREF",
        "gypsum": "Gypsum SU2202                 BECKa AREF",
        "thenardite": "Thenardite GDS146             BECKc AREF",
        "mirabilite": "Mirabilite GDS150 Na2SO4      BECKa AREF",
        "bloedite": "Bloedite GDS147               BECKa AREF",
        "epsomite": "Epsomite GDS149               BECKc AREF",
        "trona": "Trona GDS148                  BECKa AREF",
        "calcite": "Calcite WS272                ASDNGa AREF",
    },
    "green": {
        "lawn_grass": "Lawn_Grass GDS91 green        BECKa AREF",
        "saltbush": "Saltbrush ANP92-31A           BECKa AREF",
        "sagebrush": "Sagebrush IH91-1B             BECKa AREF",
        "cheatgrass": "Cheatgrass ANP92-11A          BECKa AREF",
    },
    "npv": {
        "dry_grass": "Grass_Golden_Dry GDS480      ASDFRa AREF",
        "dry_sage_leaves": "Sagebrush Sage-Leaves-1 dry  ASDFRa AREF",
        "dry_oak_leaves": "Oak Oak-Leaf-2 dried         ASDFRa AREF",
    },
    "water": {"coastal_water": "Seawater_Coast_Chl SW1        BECKa AREF"},
}


def read_envi_sli(sli_path: Path, hdr_path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(spectra [n, bands], wavelength nm, names) of an ENVI spectral library."""
    text = hdr_path.read_text()

    def field(key: str) -> str:
        match = re.search(rf"^{key}\s*=\s*(\{{.*?\}}|[^\n]*)", text, re.S | re.M)
        if match is None:
            raise ValueError(f"{hdr_path}: no '{key}'")
        return match.group(1).strip().strip("{}")

    samples, lines = int(field("samples")), int(field("lines"))
    order = ">" if int(field("byte order")) else "<"
    wavelength = np.array([float(v) for v in field("wavelength").split(",")])
    if field("wavelength units").lower().startswith("micro"):
        wavelength = wavelength * 1000.0
    names = [n.strip() for n in field("spectra names").split(",")]
    data = np.fromfile(sli_path, dtype=f"{order}f4").reshape(lines, samples)
    data = np.where((data < 0) | (data > 2), np.nan, data)  # USGS "deleted" = -1.23e34
    return data.astype(np.float32), wavelength, names


def build_usgs(shared: Path) -> None:
    data, wavelength, names = read_envi_sli(
        shared / "speclib/usgs_splib07/s07_AV95_envi.sli", shared / "speclib/usgs_splib07/s07_AV95_envi.hdr"
    )
    arrays: dict[str, np.ndarray] = {"wavelength": wavelength}
    for group, records in USGS_RECORDS.items():
        arrays[f"{group}_names"] = np.array(list(records))
        arrays[group] = np.stack([data[names.index(full)] for full in records.values()])
    np.savez_compressed(OUT / "usgs_endmembers.npz", **arrays)


def build_soils(shared: Path) -> None:
    """ICRAF-ISRIC soils from earthlib in two geographic pools (seen: Africa/Europe, unseen: rest)."""
    data, wavelength, names = read_envi_sli(
        shared / "speclib/earthlib/spectra.sli", shared / "speclib/earthlib/spectra.sli.hdr"
    )
    index = pd.read_csv(shared / "speclib/earthlib/spectra.csv")
    soils = index[index.SOURCE.str.startswith("icraf") & (index.LEVEL_3 == "soil")]
    rng = np.random.default_rng(SEED)
    arrays: dict[str, np.ndarray] = {"wavelength": wavelength}
    pools = {"africa_europe": soils.LON.between(-30, 60), "americas_asia": ~soils.LON.between(-30, 60)}
    for pool, mask in pools.items():
        chosen = soils[mask].iloc[np.sort(rng.choice(int(mask.sum()), SOILS_PER_POOL, replace=False))]
        rows = [names.index(n) for n in chosen.NAME]
        arrays[pool] = data[rows]
        arrays[f"{pool}_names"] = chosen.NAME.to_numpy(dtype=str)
        arrays[f"{pool}_lonlat"] = chosen[["LON", "LAT"]].to_numpy(dtype=np.float32)
    np.savez_compressed(OUT / "icraf_soils_vnir.npz", **arrays)


def build_mir(shared: Path) -> None:
    """Real soil MIR absorbance on the KSSL grid: YAMSYS (replicate scans averaged) and OSSL/KSSL."""
    yamsys = pd.read_csv(shared / "lab/yamsys/yamsys_mir_absorbance.csv.gz")
    labels = pd.read_csv(shared / "lab/yamsys/yamsys_labels.csv").set_index("file_id")
    wavenumbers = yamsys.columns[1:].astype(float).to_numpy()
    sample = labels.loc[yamsys.file_id, "sample_id"].to_numpy()
    spectra = yamsys.iloc[:, 1:].groupby(sample).mean()
    on_grid = interpolate_mir(spectra.to_numpy(), wavenumbers)
    # YAMSYS stops at 3997.4 cm⁻¹: carry the last measured value over the 4 cm⁻¹ edge.
    first = np.argmax(np.isfinite(on_grid[0]))
    on_grid[:, :first] = on_grid[:, [first]]
    country = np.array([s.split("_")[0] for s in spectra.index])
    ossl = pd.read_csv(shared / "lab/ossl_sample/sample_mir_data.csv")
    ossl_grid = interpolate_mir(ossl.iloc[:, 1:].to_numpy(float), ossl.columns[1:].astype(float).to_numpy())
    np.savez_compressed(
        OUT / "soil_mir_kssl.npz",
        wavenumber=KSSL_WAVENUMBERS.astype(np.float64),
        absorbance=np.concatenate([on_grid, ossl_grid]).astype(np.float32),
        source=np.array([f"yamsys_{c}" for c in country] + ["ossl_kssl"] * len(ossl)),
        names=np.array([*spectra.index.astype(str), *ossl.sample_id.astype(str)], dtype=str),
    )


def build_band_table(shared: Path) -> None:
    """The real L2A band table (``bandCharacterisation``) of a DLR METADATA.XML, nothing else."""
    source = next((shared / "enmap").glob("*-METADATA.XML"))
    element = ET.parse(source).getroot().find(".//bandCharacterisation")
    root = ET.Element("level_X")
    ET.SubElement(root, "source").text = source.name
    ET.SubElement(ET.SubElement(root, "specific"), "bandCharacterisation").extend(list(element))
    ET.indent(root)
    ET.ElementTree(root).write(OUT / "enmap_l2a_band_table.xml", encoding="utf-8", xml_declaration=True)


def main(shared: str) -> None:
    root = Path(shared)
    build_usgs(root)
    build_soils(root)
    build_mir(root)
    build_band_table(root)


if __name__ == "__main__":
    main(sys.argv[1])
