"""Loading the derived measurement summaries of this folder (see `derive.py` for how they were made)."""

from __future__ import annotations

import functools
import json
import pathlib

HERE = pathlib.Path(__file__).parent


@functools.cache
def _load(name: str) -> dict:
    return json.loads((HERE / name).read_text())


def load_radar() -> dict:
    """RADAR's 2-bit-per-cell measurements (Levy et al., IEEE TED 2021, doi 10.1109/TED.2021.3097975):
    "ispp_wl_step_sweep" (per word-line step: pulse counts per level), "algorithm_evaluation_2bpc"
    (ISPP, FPPV, RADAR on the same array) and "gate_sweep" (conductance against gate voltage)."""
    return _load("radar_2bpc.json")


def load_relaxation() -> dict:
    """Variance of conductance against time after programming, per initial-conductance range, of
    technologies B and C (akashlevy/RRAM-Relaxation-Master-Model, MIT licence)."""
    return _load("relaxation.json")
