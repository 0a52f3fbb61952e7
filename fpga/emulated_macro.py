"""The emulated analog macro: logic behind the analog port, so the chip runs on an FPGA unchanged.

The behaviour and its integer arithmetic are specified by `fpga/emulation.py` (the Python reference this
component is tested against, operation for operation). Summary:
  - cells are `adc_bits`-wide codes (at most 8: one byte of cell RAM), pulses carry `dac_bits`-wide
    codes, both from the `ChipConfig`;
  - SET raises a cell to a compliance table entry, RESET keeps a fraction above the floor, a sense adds
    read noise, with the jitter from one LFSR;
  - neurons are the voltage-mode rule in fixed point: a restoring division per column, a multiply per
    neuron.

Resources: the cell codes (one memory, a single address for reads and writes, so it can map to a
single-port RAM such as the iCE40UP5K's SPRAM), the column totals, the driven-row lists, the membranes
and refractory counters, and which rows each step listed, in block RAM; the spike flags and the
sequencing in logic.
Timing: after reset, one cycle per cell to clear the cell memory. A sense or a neuron strobe waits for
the clearing; a pulse cannot wait (it is a timed strobe), and pulses that end during the clearing are
not applied one by one. The chip never sends one then: the P&V engine senses every cell before it pulses
it. A pulse is applied 2 cycles after its strobe drops, a sense answered `sense_latency` cycles
after the request. A time step's integrate takes about cores x neurons x 2 x (driven rows + 16) cycles,
a fire 2 cycles per neuron.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In

from ..config import REFERENCE, ChipConfig
from ..models.neurons import NeuronMode
from ..rtl.analog_port import AnalogPort, Op
from ..rtl.block_ram import block_ram, read_port
from ..rtl.single_port_ram import SinglePortRAM
from .emulation import (GAIN_FRACTION, KEEP_SLOPE_BITS, LFSR_SEED, LFSR_TAPS, MEMBRANE_BITS, MEMBRANE_FRACTION,
                        QUOTIENT_BITS, RESET_KEEP_BASE, RESET_KEEP_SLOPE, EmulationParams)

__all__ = ["EmulatedMacro"]

#: Cycles from a sense request to the answer (the macro's settling and conversion, as the bridge's).
SENSE_LATENCY = 4
JITTER_CENTRE = 16            # 5-bit LFSR sample, centred: -16..15
NOISE_CENTRE = 8              # 4-bit LFSR sample, centred: -8..7
EPOCH_BITS = 16               # steps a row entry can tell apart: NEURON.timesteps is 16 bits


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
        self.cell_ram = SinglePortRAM(cells, init=None if clear_cells else [self.params.init_code] * cells)
        self.total_memory = block_ram(shape=range(config.rows * self.params.code_top + 1), depth=columns,
                                      init=[config.rows * self.params.init_code] * columns)
        super().__init__({"port": In(AnalogPort(config))})

    def elaborate(self, platform):
        m = Module()
        config, p, port = self.config, self.params, self.port
        cells = config.cores * config.rows * config.columns
        neurons = config.cores * config.neurons
        dac, code, code_top = config.dac_bits, config.adc_bits, p.code_top
        column_sum = range(config.rows * code_top + 1)

        # ---- memories ------------------------------------------------------------------------------------
        m.submodules.cells = cell_ram = self.cell_ram
        cell_addr = cell_ram.addr
        columns_total = config.cores * config.columns
        m.submodules.totals = total_mem = self.total_memory
        # Collisions (`block_ram`): a state that writes an entry of these memories reads that same entry
        # in that cycle and never uses the result (the next state reads again or addresses another).
        total_rd, total_wr = read_port(m, total_mem, name="total_read"), total_mem.write_port()
        m.submodules.compliance = compliance_mem = Memory(shape=code, depth=len(p.compliance), init=p.compliance)
        compliance_rd = compliance_mem.read_port()
        m.submodules.membranes = membrane_mem = block_ram(shape=signed(MEMBRANE_BITS), depth=neurons)
        membrane_rd, membrane_wr = read_port(m, membrane_mem, name="membrane_read"), membrane_mem.write_port()
        m.submodules.refractory = refractory_mem = block_ram(shape=8, depth=neurons)
        refractory_rd, refractory_wr = read_port(m, refractory_mem, name="refractory_read"), refractory_mem.write_port()
        lists, list_rds, counts = [], [], []
        for core in range(config.cores):
            # Listed while rows are strobed, read while integrating: never both in one cycle.
            lst = block_ram(shape=range(config.rows), depth=config.rows)
            m.submodules[f"driven{core}"] = lst
            lists.append(lst.write_port())
            list_rds.append(read_port(m, lst, name=f"driven{core}_read"))
            counts.append(Signal(range(config.rows + 1), name=f"driven_count{core}"))
        # Which rows this step has listed already: each row's entry holds the step (epoch) that listed it.
        row_slots = config.cores * config.rows
        m.submodules.seen = seen_mem = block_ram(shape=EPOCH_BITS, depth=row_slots)
        seen_wr = seen_mem.write_port()
        seen_rd = read_port(m, seen_mem, name="seen_read")
        epoch = Signal(EPOCH_BITS, init=1)

        def cell_index(core, row, column):
            return (core * config.rows + row) * config.columns + column

        # ---- the LFSR -------------------------------------------------------------------------------------
        lfsr = Signal(16, init=LFSR_SEED)
        lfsr_next = Signal(16)
        m.d.comb += lfsr_next.eq(Mux(lfsr[0], (lfsr >> 1) ^ LFSR_TAPS, lfsr >> 1))

        # ---- row events (any time the sequencer owns the port) ------------------------------------------
        # A row named twice in a step is driven once. A strobe looks its row up; a cycle later, if the
        # entry is not this step's, the row is listed and its entry tagged. A repeat in the very next
        # cycle reads the entry as that tag is written, so the slot tagged last is compared instead (a
        # bypass of two registers, where a transparent read port would cost a data-wide one).
        clear_rows = Signal()
        strobe = (port.op == Op.INFER) & port.row_strobe
        seen_core, seen_row, seen_valid = Signal.like(port.row_core), Signal.like(port.row_index), Signal()
        m.d.comb += seen_rd.addr.eq(port.row_core * config.rows + port.row_index)
        m.d.sync += [seen_valid.eq(strobe), seen_core.eq(port.row_core), seen_row.eq(port.row_index)]
        looked_up = Signal(range(row_slots))
        tagged_slot, tagged = Signal.like(looked_up), Signal()
        m.d.comb += looked_up.eq(seen_core * config.rows + seen_row)
        fresh = seen_valid & (seen_rd.data != epoch) & ~(tagged & (tagged_slot == looked_up))
        m.d.sync += [tagged.eq(fresh), tagged_slot.eq(looked_up)]
        m.d.comb += [seen_wr.addr.eq(looked_up), seen_wr.data.eq(epoch), seen_wr.en.eq(fresh)]
        for core in range(config.cores):
            take = fresh & (seen_core == core)
            m.d.comb += [lists[core].addr.eq(counts[core]), lists[core].data.eq(seen_row),
                         lists[core].en.eq(take)]
            with m.If(clear_rows):
                m.d.sync += counts[core].eq(0)
            with m.Elif(take):
                m.d.sync += counts[core].eq(counts[core] + 1)
        with m.If(clear_rows):
            m.d.sync += epoch.eq(epoch + 1)

        # ---- cell operations -------------------------------------------------------------------------------
        pulsing = Signal()
        peak_wl, peak_bl, peak_sl = Signal(dac), Signal(dac), Signal(dac)
        pulse_op = Signal(Op)
        pulse_at = Signal(range(cells))
        pulse_column = Signal(range(columns_total))
        with m.If(port.pulse):
            m.d.sync += pulsing.eq(1)
            with m.If(~pulsing):
                m.d.sync += [peak_wl.eq(port.wl_code), peak_bl.eq(port.bl_code), peak_sl.eq(port.sl_code),
                             pulse_op.eq(port.op), pulse_at.eq(cell_index(port.core, port.row, port.column)),
                             pulse_column.eq(port.core * config.columns + port.column)]
            with m.Else():
                m.d.sync += [peak_wl.eq(Mux(port.wl_code > peak_wl, port.wl_code, peak_wl)),
                             peak_bl.eq(Mux(port.bl_code > peak_bl, port.bl_code, peak_bl)),
                             peak_sl.eq(Mux(port.sl_code > peak_sl, port.sl_code, peak_sl))]

        old = Signal(code)
        new = Signal(code)
        random = Signal(16)
        m.d.comb += compliance_rd.addr.eq(peak_wl)
        target = compliance_rd.data
        jitter = Signal(signed(16))
        m.d.comb += jitter.eq((target * (random[:5] - JITTER_CENTRE)) >> 8)
        raised = Signal(signed(12))
        m.d.comb += raised.eq(target + jitter)
        set_code = Mux(raised < p.floor_code, p.floor_code, Mux(raised > code_top, code_top, raised))
        # Overdrive in 8-bit DAC codes: the keep falls by the same amount per volt at any DAC width. Only
        # used at or above V_reset, where the overdrive is not negative.
        fall = Signal(range((RESET_KEEP_SLOPE << KEEP_SLOPE_BITS) + 1))     # the overdrive is below 2**dac
        m.d.comb += fall.eq((RESET_KEEP_SLOPE * (peak_sl - p.reset_code) << KEEP_SLOPE_BITS) >> dac)
        keep_raw = Signal(signed(fall.shape().width + 2))
        m.d.comb += keep_raw.eq(RESET_KEEP_BASE - fall + (random[:5] - JITTER_CENTRE))
        keep = Mux(keep_raw < 0, 0, Mux(keep_raw > 255, 255, keep_raw))
        reset_code = p.floor_code + (((old - p.floor_code) * keep[:8]) >> 8)
        is_set = (pulse_op == Op.SET) | (pulse_op == Op.FORM)
        with m.If(is_set & (peak_bl >= p.set_code) & (target > old)):
            m.d.comb += new.eq(set_code)
        with m.Elif((pulse_op == Op.RESET) & (peak_sl >= p.reset_code) & (old > p.floor_code)):
            m.d.comb += new.eq(reset_code)
        with m.Else():
            m.d.comb += new.eq(old)

        noise = Signal(signed(16))
        m.d.comb += noise.eq((cell_ram.r_data * (random[:4] - NOISE_CENTRE)) >> 8)
        noisy = Signal(signed(12))
        m.d.comb += noisy.eq(cell_ram.r_data + noise)
        sense_code = Signal(code)
        wait = Signal(range(SENSE_LATENCY + 1))

        # ---- neuron sequencing state --------------------------------------------------------------------------
        core = Signal(range(max(config.cores, 2)))
        neuron = Signal(range(max(config.neurons, 2)))
        side = Signal()
        index = Signal(range(config.rows + 1))
        stage1, stage2 = Signal(), Signal()
        acc = Signal(column_sum)
        remainder = Signal(range(2 * (column_sum.stop - 1) + 2))
        total = Signal(column_sum)
        bits = Signal(range(QUOTIENT_BITS + 1))
        q = Signal(QUOTIENT_BITS + 1)
        q_plus = Signal(QUOTIENT_BITS + 1)
        scale = Signal(range(((1 << dac) - 1) * p.gain16 + 1))
        mode = Signal(2)
        flags_pos, flags_neg = Signal(neurons), Signal(neurons)
        neuron_at = Signal(range(max(neurons, 2)))
        m.d.comb += neuron_at.eq(core * config.neurons + neuron)
        m.d.comb += [membrane_rd.addr.eq(neuron_at), membrane_wr.addr.eq(neuron_at),
                     refractory_rd.addr.eq(neuron_at), refractory_wr.addr.eq(neuron_at)]
        count_now = Signal.like(counts[0])
        list_row = Signal(range(config.rows))
        m.d.comb += [count_now.eq(counts[0]), list_row.eq(list_rds[0].data)]
        for c in range(1, config.cores):
            with m.If(core == c):
                m.d.comb += [count_now.eq(counts[c]), list_row.eq(list_rds[c].data)]
        for c in range(config.cores):
            m.d.comb += list_rds[c].addr.eq(index)
        column = Cat(side, neuron)
        m.d.comb += total_rd.addr.eq(core * config.columns + column)

        leaked = Signal(signed(MEMBRANE_BITS + 2))
        membrane_now = membrane_rd.data
        m.d.comb += leaked.eq(Mux(mode == NeuronMode.LIF,
                                  membrane_now - ((membrane_now * port.leak) >> 8), membrane_now))
        diff = Signal(signed(QUOTIENT_BITS + 3))
        m.d.comb += diff.eq(q_plus - q)
        increment = Signal(signed(len(scale) + QUOTIENT_BITS + 3))
        m.d.comb += increment.eq((scale * diff) >> (QUOTIENT_BITS + GAIN_FRACTION - MEMBRANE_FRACTION))
        summed = Signal(signed(max(len(increment), MEMBRANE_BITS + 2) + 1))
        m.d.comb += summed.eq(leaked + increment)
        top = 1 << (MEMBRANE_BITS - 1)
        saturated = Mux(summed < -top, -top, Mux(summed > top - 1, top - 1, summed))

        up_level = Signal(signed(MEMBRANE_BITS + 2))
        down_level = Signal(signed(MEMBRANE_BITS + 2))
        m.d.comb += [up_level.eq(port.thresh_pos << MEMBRANE_FRACTION),
                     down_level.eq(-(port.thresh_neg << MEMBRANE_FRACTION))]
        ready = refractory_rd.data == 0
        fire_up = ready & (membrane_now >= up_level)
        fire_down = ready & ~fire_up & (membrane_now <= down_level)
        # The flags the sequencer latches with a fire's acknowledge. A fire visits the neurons in flag
        # order, so each decision shifts in at the top: after the last, neuron i's flag is bit i (no decoder).
        m.d.comb += [port.spike_pos.eq(flags_pos), port.spike_neg.eq(flags_neg)]

        def next_neuron(m, done_state: str, loop_state: str):
            with m.If(neuron == config.neurons - 1):
                m.d.sync += neuron.eq(0)
                with m.If(core == config.cores - 1):
                    m.d.sync += core.eq(0)
                    m.next = done_state
                with m.Else():
                    m.d.sync += core.eq(core + 1)
                    m.next = loop_state
            with m.Else():
                m.d.sync += neuron.eq(neuron + 1)
                m.next = loop_state

        with m.FSM(init="Init" if self.clear_cells else "Idle"):
            with m.State("Init"):
                clearing = Signal(range(cells))
                m.d.comb += [cell_addr.eq(clearing), cell_ram.w_data.eq(p.init_code), cell_ram.w_en.eq(1)]
                m.d.sync += clearing.eq(clearing + 1)
                with m.If(clearing == cells - 1):
                    m.next = "Idle"

            with m.State("Idle"):
                m.d.sync += [core.eq(0), neuron.eq(0), side.eq(0)]
                m.d.comb += cell_addr.eq(cell_index(port.core, port.row, port.column))
                infer = port.op == Op.INFER
                with m.If(pulsing & ~port.pulse):
                    m.d.sync += [pulsing.eq(0), random.eq(lfsr_next), lfsr.eq(lfsr_next)]
                    m.next = "Apply"
                with m.Elif(port.sense_req & ~port.pulse):
                    m.d.sync += [random.eq(lfsr_next), lfsr.eq(lfsr_next), wait.eq(0)]
                    m.next = "Sense"
                with m.Elif(infer & port.neuron_reset):
                    m.next = "Clear"
                with m.Elif(infer & port.integrate):
                    m.d.sync += [scale.eq(port.v_read_code * p.gain16), mode.eq(port.neuron_mode),
                                 index.eq(0), stage1.eq(0), stage2.eq(0), acc.eq(0)]
                    m.next = "Sum"
                with m.Elif(infer & port.fire):
                    m.next = "Fire-Read"

            # A pulse: read the cell and its column's total, then write both back.
            with m.State("Apply"):
                m.d.comb += [cell_addr.eq(pulse_at), total_rd.addr.eq(pulse_column)]
                m.next = "Apply-Write"
            with m.State("Apply-Write"):
                m.d.comb += [cell_addr.eq(pulse_at), total_rd.addr.eq(pulse_column), old.eq(cell_ram.r_data),
                             cell_ram.w_data.eq(new), cell_ram.w_en.eq(1),
                             total_wr.addr.eq(pulse_column), total_wr.data.eq(total_rd.data + new - old),
                             total_wr.en.eq(1)]
                m.next = "Idle"

            with m.State("Sense"):
                m.d.comb += cell_addr.eq(cell_index(port.core, port.row, port.column))
                m.next = "Sense-Code"
            with m.State("Sense-Code"):
                m.d.sync += sense_code.eq(Mux(noisy < 0, 0, Mux(noisy > code_top, code_top, noisy)))
                m.next = "Sense-Wait"
            with m.State("Sense-Wait"):
                m.d.sync += wait.eq(wait + 1)
                with m.If(wait >= SENSE_LATENCY - 3):
                    m.next = "Sense-Answer"
            with m.State("Sense-Answer"):
                m.d.comb += [port.sense_valid.eq(1), port.sense_code.eq(sense_code)]
                m.next = "Idle"

            # ---- integrate: per neuron, per column of its pair, sum the driven rows, divide by the total
            with m.State("Sum"):
                # Stage 0 reads the list entry `index`, stage 1 the cell, stage 2 accumulates.
                m.d.comb += cell_addr.eq(cell_index(core, list_row, column))
                issue = index < count_now
                m.d.sync += [stage1.eq(issue), stage2.eq(stage1), index.eq(Mux(issue, index + 1, index))]
                with m.If(stage2):
                    m.d.sync += acc.eq(acc + cell_ram.r_data)
                with m.If(~issue & ~stage1 & ~stage2):
                    m.d.sync += [total.eq(total_rd.data), bits.eq(0)]
                    m.next = "Divide-Start"
            with m.State("Divide-Start"):
                whole = (acc >= total) & (total != 0)
                m.d.sync += [q.eq(Mux(whole, 1, 0)), remainder.eq(Mux(whole, acc - total, acc))]
                m.next = "Divide"
            with m.State("Divide"):
                shifted = remainder << 1
                take = (shifted >= total) & (total != 0)
                m.d.sync += [remainder.eq(Mux(take, shifted - total, shifted)), q.eq(Cat(take, q)),
                             bits.eq(bits + 1)]
                with m.If(bits == QUOTIENT_BITS - 1):
                    m.next = "Divided"
            with m.State("Divided"):
                m.d.sync += [index.eq(0), stage1.eq(0), stage2.eq(0), acc.eq(0)]
                with m.If(side == 0):
                    m.d.sync += [q_plus.eq(Mux(total != 0, q, 0)), side.eq(1)]
                    m.next = "Sum"
                with m.Else():
                    m.d.sync += [side.eq(0), q.eq(Mux(total != 0, q, 0))]
                    m.next = "Update"
            with m.State("Update"):              # the membrane read was addressed last cycle
                m.d.comb += [membrane_wr.data.eq(saturated), membrane_wr.en.eq(1)]
                next_neuron(m, "Integrated", "Sum")
            with m.State("Integrated"):
                m.d.comb += [clear_rows.eq(1), port.neuron_ack.eq(1)]
                m.next = "Idle"

            # ---- fire: compare, reset or subtract, refractory
            with m.State("Fire-Read"):
                m.next = "Fire"
            with m.State("Fire"):
                subtract = port.neuron_mode == NeuronMode.ADC
                fired = fire_up | fire_down
                m.d.comb += [membrane_wr.en.eq(1), refractory_wr.en.eq(1)]
                with m.If(subtract):
                    m.d.comb += [membrane_wr.data.eq(Mux(fire_up, membrane_now - up_level,
                                                         Mux(fire_down, membrane_now - down_level, membrane_now))),
                                 refractory_wr.data.eq(refractory_rd.data)]
                with m.Else():
                    m.d.comb += [membrane_wr.data.eq(Mux(fired, 0, membrane_now)),
                                 refractory_wr.data.eq(Mux(fired, port.refractory,
                                                           Mux(ready, 0, refractory_rd.data - 1)))]
                m.d.sync += [flags_pos.eq(Cat(flags_pos[1:], fire_up)), flags_neg.eq(Cat(flags_neg[1:], fire_down))]
                next_neuron(m, "Fired", "Fire-Read")
            with m.State("Fired"):
                m.d.comb += port.neuron_ack.eq(1)
                m.next = "Idle"

            with m.State("Clear"):
                m.d.comb += [membrane_wr.data.eq(0), membrane_wr.en.eq(1), refractory_wr.data.eq(0),
                             refractory_wr.en.eq(1)]
                next_neuron(m, "Clear-Rows", "Clear")
            # A new run: every row entry back to 0 and the epoch to 1 (a run's steps never wrap it:
            # NEURON.timesteps is 16 bits).
            with m.State("Clear-Rows"):
                slot = Signal(range(row_slots))
                m.d.comb += [seen_wr.addr.eq(slot), seen_wr.data.eq(0), seen_wr.en.eq(1)]
                m.d.sync += slot.eq(slot + 1)
                with m.If(slot == row_slots - 1):
                    m.d.sync += slot.eq(0)
                    m.next = "Cleared"
            with m.State("Cleared"):
                m.d.comb += [clear_rows.eq(1), port.neuron_ack.eq(1)]
                m.d.sync += epoch.eq(1)
                m.next = "Idle"
        return m
