"""The demo region: a synthetic world built from real spectra, written in real product formats.

``generate_region(config, out_url)`` writes ``<out_url>/<region>/`` (truth, covariates, EnMAP L2A
scenes in DLR's layout, lab samples, STAC); ``load_region(url)`` reads its manifest back.
"""

from deepsalt.synth.config import SynthConfig
from deepsalt.synth.generate import generate_region
from deepsalt.synth.manifest import RegionManifest, load_region

__all__ = ["RegionManifest", "SynthConfig", "generate_region", "load_region"]
