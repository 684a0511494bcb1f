"""The SSURGO 2.3.3 layout of the three tables the survey reader uses: column order, files, value kinds.

Source: the table and column metadata that every Web Soil Survey export ships in its ``tabular/``
folder, ``mstab.txt`` (table → file name: ``component`` lives in ``comp.txt``) and ``mstabcol.txt``
(``tabphyname | colsequence | colphyname | … | logicaldatatype | …``), here of the AZ649 export
(SSURGO 2.3.3, survey version 23 of 2025-08-27), whose rows for these three tables are copied into
``tests/fixtures/ssurgo/wss_AZ649/tabular/``; a test checks the specs below against it. The same
column orders appear in ncss-tech/soilDB (``R/get_SDA_property.R``, ``.valid_chorizon_columns``) and
in the SDA "Tables and Columns Report". An export that carries its own ``mstabcol.txt`` is read by
that file; these specs are the fallback and the layout ``write_ssurgo`` writes.

Kinds (from ``logicaldatatype``): ``t`` String, Choice or Vtext (double-quoted in the pipe files),
``i`` Integer, ``f`` Float, ``b`` Boolean (``Yes``/``No``, unquoted).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

SSURGO_VERSION = "2.3.3"


class SsurgoTable(StrEnum):
    MAPUNIT = "mapunit"
    COMPONENT = "component"
    CHORIZON = "chorizon"


class ColumnKind(StrEnum):
    TEXT = "t"
    INTEGER = "i"
    FLOAT = "f"
    BOOLEAN = "b"


@dataclass(frozen=True)
class TableSchema:
    """One table: its physical name, its file in a WSS export, its columns in file order."""

    table: SsurgoTable
    pipe_file: str
    columns: tuple[str, ...]
    kinds: dict[str, ColumnKind]


_MAPUNIT_SPEC = """
musym/t muname/t mukind/t mustatus/t muacres/i mapunitlfw_l/i mapunitlfw_r/i mapunitlfw_h/i
mapunitpfa_l/f mapunitpfa_r/f mapunitpfa_h/f farmlndcl/t muhelcl/t muwathelcl/t muwndhelcl/t
interpfocus/t invesintens/t iacornsr/i nhiforsoigrp/t nhspiagr/f vtsepticsyscl/t mucertstat/t lkey/t
mukey/t
"""
_COMPONENT_SPEC = """
comppct_l/i comppct_r/i comppct_h/i compname/t compkind/t majcompflag/b otherph/t localphase/t slope_l/f
slope_r/f slope_h/f slopelenusle_l/i slopelenusle_r/i slopelenusle_h/i runoff/t tfact/i wei/t weg/t
erocl/t earthcovkind1/t earthcovkind2/t hydricon/t hydricrating/t drainagecl/t elev_l/f elev_r/f
elev_h/f aspectccwise/i aspectrep/i aspectcwise/i geomdesc/t albedodry_l/f albedodry_r/f albedodry_h/f
airtempa_l/f airtempa_r/f airtempa_h/f map_l/i map_r/i map_h/i reannualprecip_l/i reannualprecip_r/i
reannualprecip_h/i ffd_l/i ffd_r/i ffd_h/i nirrcapcl/t nirrcapscl/t nirrcapunit/i irrcapcl/t irrcapscl/t
irrcapunit/i cropprodindex/i constreeshrubgrp/t wndbrksuitgrp/t rsprod_l/i rsprod_r/i rsprod_h/i
foragesuitgrpid/t wlgrain/t wlgrass/t wlherbaceous/t wlshrub/t wlconiferous/t wlhardwood/t wlwetplant/t
wlshallowwat/t wlrangeland/t wlopenland/t wlwoodland/t wlwetland/t soilslippot/t frostact/t initsub_l/i
initsub_r/i initsub_h/i totalsub_l/i totalsub_r/i totalsub_h/i hydgrp/t corcon/t corsteel/t taxclname/t
taxorder/t taxsuborder/t taxgrtgroup/t taxsubgrp/t taxpartsize/t taxpartsizemod/t taxceactcl/t
taxreaction/t taxtempcl/t taxmoistscl/t taxtempregime/t soiltaxedition/t castorieindex/i flecolcomnum/t
flhe/t flphe/t flsoilleachpot/t flsoirunoffpot/t fltemik2use/t fltriumph2use/t indraingrp/t
innitrateleachi/i misoimgmtgrp/t vasoimgtgrp/t mukey/t cokey/t
"""
_CHORIZON_SPEC = """
hzname/t desgndisc/i desgnmaster/t desgnmasterprime/t desgnvert/i hzdept_l/i hzdept_r/i hzdept_h/i
hzdepb_l/i hzdepb_r/i hzdepb_h/i hzthk_l/i hzthk_r/i hzthk_h/i fraggt10_l/i fraggt10_r/i fraggt10_h/i
frag3to10_l/i frag3to10_r/i frag3to10_h/i sieveno4_l/f sieveno4_r/f sieveno4_h/f sieveno10_l/f
sieveno10_r/f sieveno10_h/f sieveno40_l/f sieveno40_r/f sieveno40_h/f sieveno200_l/f sieveno200_r/f
sieveno200_h/f sandtotal_l/f sandtotal_r/f sandtotal_h/f sandvc_l/f sandvc_r/f sandvc_h/f sandco_l/f
sandco_r/f sandco_h/f sandmed_l/f sandmed_r/f sandmed_h/f sandfine_l/f sandfine_r/f sandfine_h/f
sandvf_l/f sandvf_r/f sandvf_h/f silttotal_l/f silttotal_r/f silttotal_h/f siltco_l/f siltco_r/f
siltco_h/f siltfine_l/f siltfine_r/f siltfine_h/f claytotal_l/f claytotal_r/f claytotal_h/f
claysizedcarb_l/f claysizedcarb_r/f claysizedcarb_h/f om_l/f om_r/f om_h/f dbtenthbar_l/f dbtenthbar_r/f
dbtenthbar_h/f dbthirdbar_l/f dbthirdbar_r/f dbthirdbar_h/f dbfifteenbar_l/f dbfifteenbar_r/f
dbfifteenbar_h/f dbovendry_l/f dbovendry_r/f dbovendry_h/f partdensity/f ksat_l/f ksat_r/f ksat_h/f
awc_l/f awc_r/f awc_h/f wtenthbar_l/f wtenthbar_r/f wtenthbar_h/f wthirdbar_l/f wthirdbar_r/f
wthirdbar_h/f wfifteenbar_l/f wfifteenbar_r/f wfifteenbar_h/f wsatiated_l/i wsatiated_r/i wsatiated_h/i
lep_l/f lep_r/f lep_h/f ll_l/f ll_r/f ll_h/f pi_l/f pi_r/f pi_h/f aashind_l/i aashind_r/i aashind_h/i
kwfact/t kffact/t caco3_l/i caco3_r/i caco3_h/i gypsum_l/i gypsum_r/i gypsum_h/i sar_l/f sar_r/f sar_h/f
ec_l/f ec_r/f ec_h/f cec7_l/f cec7_r/f cec7_h/f ecec_l/f ecec_r/f ecec_h/f sumbases_l/f sumbases_r/f
sumbases_h/f ph1to1h2o_l/f ph1to1h2o_r/f ph1to1h2o_h/f ph01mcacl2_l/f ph01mcacl2_r/f ph01mcacl2_h/f
freeiron_l/f freeiron_r/f freeiron_h/f feoxalate_l/f feoxalate_r/f feoxalate_h/f extracid_l/f
extracid_r/f extracid_h/f extral_l/f extral_r/f extral_h/f aloxalate_l/f aloxalate_r/f aloxalate_h/f
pbray1_l/f pbray1_r/f pbray1_h/f poxalate_l/f poxalate_r/f poxalate_h/f ph2osoluble_l/f ph2osoluble_r/f
ph2osoluble_h/f ptotal_l/f ptotal_r/f ptotal_h/f excavdifcl/t excavdifms/t cokey/t chkey/t
"""


def _schema(table: SsurgoTable, pipe_file: str, spec: str) -> TableSchema:
    pairs = [token.split("/") for token in spec.split()]
    return TableSchema(
        table=table,
        pipe_file=pipe_file,
        columns=tuple(name for name, _ in pairs),
        kinds={name: ColumnKind(kind) for name, kind in pairs},
    )


SCHEMAS: dict[SsurgoTable, TableSchema] = {
    SsurgoTable.MAPUNIT: _schema(SsurgoTable.MAPUNIT, "mapunit.txt", _MAPUNIT_SPEC),
    SsurgoTable.COMPONENT: _schema(SsurgoTable.COMPONENT, "comp.txt", _COMPONENT_SPEC),
    SsurgoTable.CHORIZON: _schema(SsurgoTable.CHORIZON, "chorizon.txt", _CHORIZON_SPEC),
}

# The columns the survey reader needs from each table (all others are read past).
KEY_COLUMNS: dict[SsurgoTable, tuple[str, ...]] = {
    SsurgoTable.MAPUNIT: ("mukey",),
    SsurgoTable.COMPONENT: ("mukey", "cokey"),
    SsurgoTable.CHORIZON: ("cokey",),
}
NUMBER_COLUMNS: dict[SsurgoTable, tuple[str, ...]] = {
    SsurgoTable.MAPUNIT: (),
    SsurgoTable.COMPONENT: ("comppct_r",),
    SsurgoTable.CHORIZON: ("hzdept_r", "hzdepb_r", "ec_r", "sandtotal_r", "claytotal_r"),
}
# Domain limits of the numeric columns (mstabcol.txt ``minimum``/``maximum``).
NUMBER_RANGES: dict[str, tuple[float, float]] = {
    "comppct_r": (0.0, 100.0),
    "hzdept_r": (0.0, 9999.0),
    "hzdepb_r": (0.0, 9999.0),
    "ec_r": (0.0, 15000.0),
    "sandtotal_r": (0.0, 100.0),
    "claytotal_r": (0.0, 100.0),
}
