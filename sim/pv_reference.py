"""Both sides' pulses of an RTL-vs-model P&V run in one comparable form (every cycle's DAC codes).

The recipe for a set of P&V register values, and the levels the benches program, are the models'
(`models/recipes.py`).
"""

from __future__ import annotations

from ..models.device import Shape
from ..models.pulses import pulse_codes
from ..models.pv import PVResult
from ..protocol import Op

__all__ = ["port_pulses", "reference_pulses"]


def port_pulses(log, row: int, column: int) -> list[tuple]:
    """One cell's pulses as the port carried them: (op, wl codes, bl codes, sl codes) per pulse, from
    a log of (op, core, row, column, wl codes, bl codes, sl codes) entries (the bridge's `pulse_log`)."""
    return [(int(Op(entry[0])), *(tuple(int(c) for c in codes) for codes in entry[4:7]))
            for entry in log if (entry[2], entry[3]) == (row, column)]


def reference_pulses(outcome: PVResult, row: int, column: int, shape: Shape) -> list[tuple]:
    """The same cell's pulses from the reference log, each DAC's codes expanded cycle by cycle: the
    driven one (top electrode for SET/FORM, source line for RESET) shaped, the gate held."""
    pulses = []
    for entry in outcome.sequence(row, column):
        width, kind = int(entry["width"]), int(entry["kind"])
        driven = "sl" if kind == Op.RESET else "bl"
        codes = {name: (int(entry[name]),) * width for name in ("wl", "bl", "sl")}
        codes[driven] = tuple(pulse_codes(int(entry[driven]), width, shape).tolist())
        pulses.append((kind, codes["wl"], codes["bl"], codes["sl"]))
    return pulses
