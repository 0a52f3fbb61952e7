"""The analog macro port: the only way the digital control plane touches the analog side (DESIGN.md seam 1).

Three things answer it: the Python analog models through the cocotb bridge (`sim/analog_bridge.py`),
the FPGA emulated macro, and silicon. Every cycle it carries:

* programming: the operation, the selected core, row and column, the word-line (gate), bit-line (top
  electrode) and source-line DAC codes and a pulse strobe. A pulse lasts as many cycles as `pulse` is
  high; its shape is the sequence of DAC codes it steps through (`models.pulses`).
* sensing: `sense_req` asks for the ADC code of the selected cell; the macro answers with `sense_valid`
  and `sense_code` some cycles later (its settling and conversion time).

* inference: row events (`row_strobe` with the core and row to put at the input read voltage
  `v_read_code` this time step), the neuron bank's strobes (`neuron_reset`, `integrate`, `fire`, each
  held until the macro answers `neuron_ack` for one cycle) and parameter codes (thresholds, leak,
  refractory period, mode), answered by positive and negative spike flags per neuron, held from a
  fire's acknowledge to the next. `op` reads INFER while the inference or the MVM sequencer owns the macro.
* MVM (docs/mvm.md): signed input lines, integrations and conversion steps, the same handshake.
* trims: for one cycle `op` reads TRIM and `trim_index` / `trim_code` give a neuron its comparator trim;
  nothing answers it.

The row/column drivers drive the cell members (`CellPort`), the inference sequencer the neuron
members (`NeuronPort`); the chip joins them into one `AnalogPort`.
"""

from amaranth.hdl import signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..config import ChipConfig
# The port's operation and neuron mode are wire formats, defined once in the protocol module (re-exported
# here for the code that imports them with the port).
from ..protocol import Direction, NeuronCore, NeuronMode, Op

__all__ = ["Op", "NeuronMode", "AnalogPort", "CellPort", "NeuronPort", "neuron_cores_layout", "mvm_phases"]


def mvm_phases(config: ChipConfig) -> int:
    """Sensing phases of a backward MVM: the core's neurons take its rows `neurons` at a time."""
    return -(-config.rows // config.neurons)


def neuron_cores_layout(config: ChipConfig) -> data.ArrayLayout:
    """The port's `neuron_cores`: one NeuronCore per page of neuron settings."""
    return data.ArrayLayout(NeuronCore, config.neuron_pages)


def _cell_members(config: ChipConfig) -> dict:
    return {
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
    }


def _neuron_members(config: ChipConfig) -> dict:
    neurons = config.cores * config.neurons
    return {
        "row_strobe":   Out(1),
        "row_core":     Out(range(config.cores)),
        "row_index":    Out(range(config.rows)),
        "v_read_code":  Out(config.dac_bits),
        "neuron_reset": Out(1),
        "integrate":    Out(1),
        "fire":         Out(1),
        "neuron_cores": Out(neuron_cores_layout(config)),
        # MVM (rtl/mvm.py, docs/mvm.md): with `mvm` high a row strobe drives input line `row_index` of
        # `row_core` (a row forward, a column pair backward; `line_negative`: at -V_read), `integrate` samples
        # those lines and releases them (backward: neuron k senses row phase * neurons + k), and `convert`
        # is one conversion step against +-2^convert_shift thresholds, answered by the spike flags.
        "mvm":           Out(1),
        "direction":     Out(Direction),
        "line_negative": Out(1),
        "phase":         Out(range(max(mvm_phases(config), 2))),
        "convert":       Out(1),
        "convert_shift": Out(range(8)),
        # A trim write (op reads TRIM for that one cycle, no answer): neuron n of core c, index c * NEURONS + n,
        # gets comparator trim `trim_code` (signed, threshold LSBs, docs/mvm.md).
        "trim_index":    Out(range(max(neurons, 2))),
        "trim_code":     Out(signed(8)),
        "neuron_ack":   In(1),
        # Neuron n of core c is bit c * NEURONS + n.
        "spike_pos":    In(neurons),
        "spike_neg":    In(neurons),
    }


class CellPort(wiring.Signature):
    """The programming and sensing members, as the row/column drivers drive them."""

    def __init__(self, config: ChipConfig):
        self.config = config
        super().__init__(_cell_members(config))


class NeuronPort(wiring.Signature):
    """The inference members, as the inference sequencer drives them."""

    def __init__(self, config: ChipConfig):
        self.config = config
        super().__init__(_neuron_members(config))


class AnalogPort(wiring.Signature):
    """Seen from the digital side (`Out(AnalogPort(config))`); the macro holds the flipped side."""

    def __init__(self, config: ChipConfig):
        self.config = config
        super().__init__(_cell_members(config) | _neuron_members(config))
