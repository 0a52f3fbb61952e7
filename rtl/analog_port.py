"""The analog macro port: the only way the digital control plane touches the analog side (DESIGN.md seam 1).

Three things answer it: the Python analog models through the cocotb bridge (`sim/analog_bridge.py`),
the FPGA emulated macro, and silicon. Every cycle it carries:

* programming: the operation, the selected core, row and column, the word-line (gate), bit-line (top
  electrode) and source-line DAC codes and a pulse strobe. A pulse lasts as many cycles as `pulse` is
  high; its shape is the sequence of DAC codes it steps through (`models.pulses`).
* sensing: `sense_req` asks for the ADC code of the selected cell; the macro answers with `sense_valid`
  and `sense_code` some cycles later (its settling and conversion time).

The inference members (input rows, integrate/fire strobes, neuron parameters, spike flags) join with
the inference sequencer.
"""

from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

from ..config import ChipConfig

__all__ = ["Op", "AnalogPort"]


class Op(enum.Enum, shape=3):
    IDLE = 0
    READ = 1       # bit line at a read voltage, no pulse: what a verify senses through
    SET = 2        # top electrode pulsed, gate sets the compliance
    RESET = 3      # source line pulsed, gate on
    FORM = 4       # first SET of a pristine cell, at forming voltage


class AnalogPort(wiring.Signature):
    """Seen from the digital side (`Out(AnalogPort(config))`); the macro holds the flipped side."""

    def __init__(self, config: ChipConfig):
        self.config = config
        super().__init__({
            "op":          Out(Op),
            "core":        Out(range(config.cores)),
            "row":         Out(range(config.rows)),
            "column":      Out(range(config.columns)),
            "wl_code":     Out(config.dac_bits),
            "bl_code":     Out(config.dac_bits),
            "sl_code":     Out(config.dac_bits),
            "pulse":       Out(1),
            "sense_req":   Out(1),
            "sense_valid": In(1),
            "sense_code":  In(config.adc_bits),
        })
