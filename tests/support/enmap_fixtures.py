"""The real EnMAP L2A fixtures (``tests/fixtures/enmap``, sources in its README), named once for every test."""

from __future__ import annotations

from tests.conftest import FIXTURES

ENMAP = FIXTURES / "enmap"
TILE = ENMAP / "enmap_potsdam_tile_128_0.tif"
"""32×32 px of the Potsdam scene with its per-band ``wavelength``/``fwhm``/``bbl`` tags."""
METADATA_XML = next(ENMAP.glob("*-METADATA.XML.gz"))
STAC_ITEM = next(ENMAP.glob("*.stac_item.json"))
