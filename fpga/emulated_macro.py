"""The emulated analog macro: logic behind the analog port, so the chip runs on an FPGA unchanged.

The behaviour and its integer arithmetic are specified by `fpga/emulation.py` (the Python reference this
component is tested against, operation for operation). Summary:
  - cells are `adc_bits`-wide codes (at most 8: one byte of cell RAM), pulses carry `dac_bits`-wide
    codes, both from the `ChipConfig`;
  - SET raises a cell to a compliance table entry, RESET keeps a fraction above the floor, a sense adds
    read noise, with the jitter from one LFSR;
  - neurons are the voltage-mode rule in fixed point: a restoring division per column, a multiply per
    neuron;
  - with `ChipConfig.mvm`, an MVM's signed input lines in either direction (the row totals kept beside
    the column totals for the backward one), its conversion steps and the comparator trims; without it,
    none of that logic is elaborated.

Parts (each tested against its piece of the reference): the LFSR, the pulse capture, the pulse's
outcome and the sense noise (`emulated_cells.py`), the row tracker (`emulated_rows.py`) and the neuron
unit (`emulated_neurons.py`); this component sequences the cell memory between them.

Resources: the cell codes (one memory, a single address for reads and writes, so it can map to a
single-port RAM such as the iCE40UP5K's SPRAM), the column totals, the driven-row lists, the membranes
and refractory counters, and which rows each step listed, in block RAM; the spike flags and the
sequencing in logic.
Timing: after reset, one cycle per cell to clear the cell memory. A sense or a neuron strobe waits for
the clearing; a pulse cannot wait (it is a timed strobe), and pulses that end during the clearing are
not applied one by one. The chip never sends one then: the P&V engine senses every cell before it pulses
it. A pulse is applied 3 cycles after its strobe drops, a sense answered `sense_latency` cycles
after the request. A time step's integrate takes about cores x neurons x 2 x (driven rows + 16) cycles,
a fire 2 cycles per neuron; an MVM integrate neurons x (2 x driven lines + 35) cycles forward and
neurons x (2 x driven lines + 21) backward, a conversion step 2 cycles per neuron of every core.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from ..config import REFERENCE, ChipConfig
from ..rtl.analog_port import AnalogPort, Op
from ..rtl.block_ram import block_ram, read_port
from .spram import SinglePortSPRAM
from .emulated_cells import LfsrGenerator, PulseCapture, PulseOutcome, SenseNoise, cell_address
from .emulated_neurons import SETTINGS_ON_PORT, NeuronUnit, column_sum
from .emulated_rows import RowTracker
from .emulation import EmulationParams

__all__ = ["EmulatedMacro"]

#: Cycles from a sense request to the answer (the macro's settling and conversion, as the bridge's).
SENSE_LATENCY = 4


class EmulatedMacro(wiring.Component):
    """The macro side of the analog port (`port`), for an FPGA build of the chip."""

    def __init__(self, config: ChipConfig = REFERENCE, params: EmulationParams | None = None,
                 clear_cells: bool = True):
        """`clear_cells`: write every cell's initial code after reset (a single-port RAM such as the
        iCE40UP5K's SPRAM has no initial contents; it takes one cycle per cell, during which senses and
        neuron strobes wait). Without it the cell memory starts initialized, as a test that preloads it wants."""
        self.config = config
        self.params = params or EmulationParams.derive(config)
        if self.params.dac_bits != config.dac_bits or self.params.code_top != (1 << config.adc_bits) - 1:
            raise ValueError(f"emulation params for a {self.params.dac_bits}-bit DAC and codes up to "
                             f"{self.params.code_top} do not fit config {config.name!r} ({config.dac_bits}-bit "
                             f"DAC, {config.adc_bits}-bit ADC): derive them from it")
        self.clear_cells = clear_cells
        cells = config.cores * config.rows * config.columns
        columns = config.cores * config.columns
        #: Every cell's code, and every column's total (reachable, for tests that preload a state).
        self.cell_ram = SinglePortSPRAM(cells, init=None if clear_cells else [self.params.init_code] * cells)
        self.total_memory = block_ram(shape=column_sum(config, self.params), depth=columns,
                                      init=[config.rows * self.params.init_code] * columns)
        #: Every row's total over its columns (the backward MVM's divisor), in an MVM build.
        row_slots = config.cores * config.rows
        self.row_total_memory = block_ram(shape=column_sum(config, self.params), depth=row_slots,
                                          init=[config.columns * self.params.init_code] * row_slots
                                          ) if config.mvm else None
        #: The neuron unit (its `membrane_memory` reachable for tests).
        self.neurons = NeuronUnit(config, self.params)
        super().__init__({"port": In(AnalogPort(config))})

    def elaborate(self, platform):
        m = Module()
        config, p, port = self.config, self.params, self.port
        cells = config.cores * config.rows * config.columns
        m.submodules.cells = cell_ram = self.cell_ram
        m.submodules.totals = total_mem = self.total_memory
        # Collisions (`block_ram`): a state that writes an entry of the totals reads that same entry in
        # that cycle and never uses the result (the next state reads again or addresses another).
        total_rd, total_wr = read_port(m, total_mem, name="total_read"), total_mem.write_port()
        if config.mvm:
            m.submodules.row_totals = row_total_mem = self.row_total_memory
            row_total_rd = read_port(m, row_total_mem, name="row_total_read")
            row_total_wr = row_total_mem.write_port()
        m.submodules.lfsr = lfsr = LfsrGenerator()
        m.submodules.pulse = pulse = PulseCapture(config)
        m.submodules.outcome = outcome = PulseOutcome(config, p)
        m.submodules.sense_noise = noise = SenseNoise(config)
        m.submodules.rows = rows = RowTracker(config)
        m.submodules.neurons = neurons = self.neurons
        wiring.connect(m, neurons.rows, rows.lists)
        port_cell = cell_address(config, port.core, port.row, port.column)       # the cell the port addresses

        # ---- the port's row events and pulses, into the parts that keep them
        m.d.comb += [rows.strobe.eq((port.op == Op.INFER) & port.row_strobe),
                     rows.core.eq(port.row_core), rows.row.eq(port.row_index)]
        if config.mvm:
            m.d.comb += rows.negative.eq(port.mvm & port.line_negative)
        m.d.comb += [pulse.strobe.eq(port.pulse), pulse.now.op.eq(port.op), pulse.now.wl.eq(port.wl_code),
                     pulse.now.bl.eq(port.bl_code), pulse.now.sl.eq(port.sl_code),
                     pulse.now.cell.eq(port_cell),
                     pulse.now.column.eq(port.core * config.columns + port.column)]
        # ---- the cell operations' arithmetic on what the cell memory reads
        m.d.comb += [outcome.op.eq(pulse.held.op), outcome.wl.eq(pulse.held.wl), outcome.bl.eq(pulse.held.bl),
                     outcome.sl.eq(pulse.held.sl), outcome.old.eq(cell_ram.r_data), outcome.random.eq(lfsr.value),
                     noise.code.eq(cell_ram.r_data), noise.random.eq(lfsr.value)]
        # ---- the neurons: the port's settings in, the totals (unless a pulse has them) and flags out
        m.d.comb += [getattr(neurons.settings, name).eq(getattr(port, on_port))
                     for name, on_port in SETTINGS_ON_PORT.items()]
        m.d.comb += [neurons.clear.eq(port.neuron_reset), neurons.integrate.eq(port.integrate),
                     neurons.fire.eq(port.fire), neurons.cells.data.eq(cell_ram.r_data),
                     total_rd.addr.eq(neurons.totals.addr), neurons.totals.data.eq(total_rd.data),
                     port.neuron_ack.eq(neurons.done), port.spike_pos.eq(neurons.spike_pos),
                     port.spike_neg.eq(neurons.spike_neg)]
        if config.mvm:
            # The MVM's request and the trim writes (a TRIM cycle, whatever else is going on: it has no
            # answer to wait for); the row totals, unless a pulse has them.
            m.d.comb += [neurons.convert.eq(port.convert), neurons.mvm.on.eq(port.mvm),
                         neurons.mvm.direction.eq(port.direction), neurons.mvm.core.eq(port.row_core),
                         neurons.mvm.phase.eq(port.phase), neurons.mvm.shift.eq(port.convert_shift),
                         neurons.trim.write.eq(port.op == Op.TRIM), neurons.trim.index.eq(port.trim_index),
                         neurons.trim.code.eq(port.trim_code),
                         row_total_rd.addr.eq(neurons.row_totals.addr),
                         neurons.row_totals.data.eq(row_total_rd.data)]
            # A pulse's row, for its row total: taken in its first cycle, as the pulse capture takes its cell.
            pulse_row = Signal(range(config.cores * config.rows))
            with m.If(port.pulse & ~pulse.pending):
                m.d.sync += pulse_row.eq(port.core * config.rows + port.row)
        strobes = port.neuron_reset | port.integrate | port.fire
        if config.mvm:
            strobes |= port.convert

        sense_code = Signal(config.adc_bits)
        wait = Signal(range(SENSE_LATENCY + 1))
        old_code, new_code = Signal(config.adc_bits), Signal(config.adc_bits)     # a pulse's, registered
        apply_cell, apply_column = Signal.like(pulse.held.cell), Signal.like(pulse.held.column)
        if config.mvm:
            apply_row = Signal.like(pulse_row)
        with m.FSM(init="Init" if self.clear_cells else "Idle"):
            with m.State("Init"):
                clearing = Signal(range(cells))
                m.d.comb += [cell_ram.addr.eq(clearing), cell_ram.w_data.eq(p.init_code), cell_ram.w_en.eq(1)]
                m.d.sync += clearing.eq(clearing + 1)
                with m.If(clearing == cells - 1):
                    m.next = "Idle"

            with m.State("Idle"):
                m.d.comb += cell_ram.addr.eq(port_cell)
                infer = port.op == Op.INFER
                with m.If(pulse.pending & ~port.pulse):
                    m.d.comb += [pulse.taken.eq(1), lfsr.advance.eq(1)]
                    m.next = "Apply"
                with m.Elif(port.sense_req & ~port.pulse):
                    m.d.comb += lfsr.advance.eq(1)
                    m.d.sync += wait.eq(0)
                    m.next = "Sense"
                with m.Elif(infer & strobes):
                    m.d.comb += neurons.start.eq(1)
                    m.next = "Neurons"

            # A pulse: read the cell and its column's total (and row's), register the new code, then write
            # them back. The register splits the cell memory's read-to-write path, which grows with the
            # array: on neurram-like (cell codes in 128 ECP5 block RAMs) their output multiplexer, the
            # outcome's arithmetic and the fan-out back to every block's input took 39 ns (25.4 MHz).
            with m.State("Apply"):
                m.d.comb += [cell_ram.addr.eq(pulse.held.cell), total_rd.addr.eq(pulse.held.column)]
                if config.mvm:
                    m.d.comb += row_total_rd.addr.eq(pulse_row)
                m.next = "Apply-Outcome"
            with m.State("Apply-Outcome"):
                m.d.comb += [cell_ram.addr.eq(pulse.held.cell), total_rd.addr.eq(pulse.held.column)]
                if config.mvm:
                    m.d.comb += row_total_rd.addr.eq(pulse_row)
                    m.d.sync += apply_row.eq(pulse_row)
                m.d.sync += [old_code.eq(cell_ram.r_data), new_code.eq(outcome.new),
                             apply_cell.eq(pulse.held.cell), apply_column.eq(pulse.held.column)]
                m.next = "Apply-Write"
            with m.State("Apply-Write"):
                # The cell, column and row as taken: a next pulse may already be held.
                old, new = old_code, new_code
                m.d.comb += [cell_ram.addr.eq(apply_cell), total_rd.addr.eq(apply_column),
                             cell_ram.w_data.eq(new), cell_ram.w_en.eq(1),
                             total_wr.addr.eq(apply_column), total_wr.data.eq(total_rd.data + new - old),
                             total_wr.en.eq(1)]
                if config.mvm:
                    m.d.comb += [row_total_rd.addr.eq(apply_row), row_total_wr.addr.eq(apply_row),
                                 row_total_wr.data.eq(row_total_rd.data + new - old), row_total_wr.en.eq(1)]
                m.next = "Idle"

            with m.State("Sense"):
                m.d.comb += cell_ram.addr.eq(port_cell)
                m.next = "Sense-Code"
            with m.State("Sense-Code"):
                m.d.sync += sense_code.eq(noise.sensed)
                m.next = "Sense-Wait"
            with m.State("Sense-Wait"):
                m.d.sync += wait.eq(wait + 1)
                with m.If(wait >= SENSE_LATENCY - 3):
                    m.next = "Sense-Answer"
            with m.State("Sense-Answer"):
                m.d.comb += [port.sense_valid.eq(1), port.sense_code.eq(sense_code)]
                m.next = "Idle"

            # A neuron command (reset, integrate, fire): the neuron unit has the cell memory until done.
            with m.State("Neurons"):
                m.d.comb += cell_ram.addr.eq(neurons.cells.addr)
                with m.If(neurons.done):
                    m.next = "Idle"
        return m
