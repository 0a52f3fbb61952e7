"""Public measurements the device model is compared with, as small derived summaries, and the
`DeviceParams` presets fitted to them.

* `radar_2bpc.json`: pulse counts of ISPP (15 word-line steps), FPPV and RADAR on 2-bit-per-cell
  1T1R HfO2 arrays, and conductance against gate voltage (Levy et al., IEEE TED 2021).
* `relaxation.json`: variance of conductance against log time after programming, technologies B and C
  of the RRAM relaxation master model (MIT licence).

Both were written by `derive.py` from the public repositories; each carries a "source" naming paper,
repository, commit and the file every number came from.
"""

from .data import load_radar, load_relaxation
from .presets import RADAR_1T1R, fit_gate_law, fit_spreads

__all__ = ["load_radar", "load_relaxation", "RADAR_1T1R", "fit_gate_law", "fit_spreads"]
