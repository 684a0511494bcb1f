"""SSURGO soil survey exports: per-pixel survey ECe and texture from map units, and writing exports.

Reads any SSURGO export in its real layout (a gSSURGO/gNATSGO map-unit key GeoTIFF plus the
``mapunit``/``component``/``chorizon`` tables as a Web Soil Survey pipe-delimited download or as CSV
with headers), aggregates ``ec_r``, ``sandtotal_r`` and ``claytotal_r`` per map unit by
component-weighted depth averaging, and samples them on any grid or at points.
"""

from deepsalt.io.ssurgo.aggregate import (
    DEFAULT_BOTTOM_CM,
    DEFAULT_TOP_CM,
    SURVEY_PROPERTIES,
    mapunit_properties,
)
from deepsalt.io.ssurgo.schema import SCHEMAS, SSURGO_VERSION, SsurgoTable
from deepsalt.io.ssurgo.survey import (
    NO_MAPUNIT,
    Survey,
    SurveyLayers,
    find_mukey_raster,
    load_survey,
    sample_survey,
    survey_on_grid,
    write_survey_cogs,
)
from deepsalt.io.ssurgo.tables import SsurgoTables, TableForm, read_tables, tables_from_frames
from deepsalt.io.ssurgo.writer import MUKEY_NODATA, SsurgoExportFiles, write_ssurgo

__all__ = [
    "DEFAULT_BOTTOM_CM",
    "DEFAULT_TOP_CM",
    "MUKEY_NODATA",
    "NO_MAPUNIT",
    "SCHEMAS",
    "SSURGO_VERSION",
    "SURVEY_PROPERTIES",
    "SsurgoExportFiles",
    "SsurgoTable",
    "SsurgoTables",
    "Survey",
    "SurveyLayers",
    "TableForm",
    "find_mukey_raster",
    "load_survey",
    "mapunit_properties",
    "read_tables",
    "sample_survey",
    "survey_on_grid",
    "tables_from_frames",
    "write_ssurgo",
    "write_survey_cogs",
]
