"""The emulated macro's neuron unit: a time step's integrate, fire and a run's reset, in fixed point
(`emulation.EmulatedMacroModel.integrate`, `fire`, `reset_neurons`), and in a build with `ChipConfig.mvm`
an MVM's integrate, its conversion steps and the comparator trims (`integrate_lines`, `convert_step`,
`set_trim`).

Per neuron and per column of its pair it sums the driven rows' cell codes, divides by the column's total
(a restoring division, one quotient bit a cycle), and moves the membrane by the difference of the two
quotients times the read voltage's gain: about 2 x (driven rows + 16) cycles a neuron. An MVM integrate
does the same on one core with signed lines (forward), or sums its row's column pairs over the driven
lines, both columns in turn, and divides once by the row's total (backward: 2 x driven lines + 21
cycles a neuron). A fire, or a conversion step, compares each membrane (plus its trim) with the
thresholds, 2 cycles a neuron of every core.
"""

from __future__ import annotations

from amaranth.hdl import C, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..config import ChipConfig
from ..protocol import Direction, NeuronMode, NeuronReset
from ..rtl.analog_port import AnalogPort, mvm_phases
from ..rtl.block_ram import block_ram, read_port
from .emulated_cells import cell_address
from .emulated_rows import RowLists
from .emulation import GAIN_FRACTION, MEMBRANE_BITS, MEMBRANE_FRACTION, QUOTIENT_BITS, EmulationParams

__all__ = ["Lookup", "SETTINGS_ON_PORT", "neuron_settings", "mvm_request", "trim_write", "NeuronUnit"]

#: The neuron unit's settings, and the analog port members that carry them.
SETTINGS_ON_PORT = {"cores": "neuron_cores", "v_read": "v_read_code"}


class Lookup(wiring.Signature):
    """A synchronous read of a memory the unit shares: `data` is the entry at `addr` of the cycle before."""

    def __init__(self, addr_shape, data_shape):
        super().__init__({"addr": Out(addr_shape), "data": In(data_shape)})


def neuron_settings(config: ChipConfig) -> data.StructLayout:
    """The parameter codes the analog port carries to the neurons (each core's page and the read code),
    in the port's shapes."""
    members = AnalogPort(config).members
    return data.StructLayout({name: members[on_port].shape for name, on_port in SETTINGS_ON_PORT.items()})


def mvm_request(config: ChipConfig) -> data.StructLayout:
    """What an MVM command says besides the strobe (the port's `mvm`, `direction`, `row_core`, `phase`,
    `convert_shift`): `on` makes an integrate one of MVM lines on core `core` alone."""
    return data.StructLayout({"on": 1, "direction": Direction, "core": range(max(config.cores, 2)),
                              "phase": range(max(mvm_phases(config), 2)), "shift": range(8)})


def trim_write(config: ChipConfig) -> data.StructLayout:
    """A trim write (the port's TRIM cycle): neuron `index` (core * neurons + neuron) gets `code`."""
    return data.StructLayout({"write": 1, "index": range(max(config.cores * config.neurons, 2)),
                              "code": signed(8)})


def column_sum(config: ChipConfig, params: EmulationParams) -> range:
    """The values a line's sum of codes takes: a column's over its rows, and in an MVM build a row's over
    its columns too."""
    cells = max(config.rows, config.columns) if config.mvm else config.rows
    return range(cells * params.code_top + 1)


class NeuronUnit(wiring.Component):
    """Runs one neuron command from `start` (one cycle, with `clear`, `integrate` or `fire` saying which,
    in that priority) to `done` (one cycle); `spike_pos`/`spike_neg` hold the last fire's flags, neuron n of
    core c at bit c x neurons + n. It reads the cell codes (`cells`), the column totals (`totals`) and the
    driven rows (`rows`); it owns the membranes and refractory counters (block RAM).

    With `ChipConfig.mvm` it also takes `convert` (a conversion step, after `integrate` in priority) and
    the MVM request (`mvm`), reads the row totals (`row_totals`) and keeps a trim per neuron (`trim`,
    block RAM, written whenever `trim.write` is high)."""

    def __init__(self, config: ChipConfig, params: EmulationParams):
        self._config, self._params = config, params
        cells = config.cores * config.rows * config.columns
        neurons = config.cores * config.neurons
        sums = column_sum(config, params)
        mvm_members = {
            "convert": In(1), "mvm": In(mvm_request(config)), "trim": In(trim_write(config)),
            "row_totals": Out(Lookup(range(config.cores * config.rows), sums)),
        } if config.mvm else {}
        super().__init__({
            "start": In(1), "clear": In(1), "integrate": In(1), "fire": In(1),
            "settings": In(neuron_settings(config)),
            "cells": Out(Lookup(range(cells), config.adc_bits)),
            "totals": Out(Lookup(range(config.cores * config.columns), sums)),
            "rows": Out(RowLists(config)),
            "done": Out(1), "spike_pos": Out(neurons), "spike_neg": Out(neurons),
        } | mvm_members)
        #: The membranes (threshold LSBs, 8 fractional bits), neuron n of core c at c x neurons + n:
        #: reachable, for tests that compare them.
        self.membrane_memory = block_ram(shape=signed(MEMBRANE_BITS), depth=neurons)

    def elaborate(self, platform):
        m = Module()
        config, p, s = self._config, self._params, self.settings
        mvm = config.mvm
        # The settings of the core being worked on: its own page, or the one page of a build that has one.
        here = s.cores[self.rows.core] if config.neuron_pages > 1 else s.cores[0]
        neurons = config.cores * config.neurons
        sums = column_sum(config, p)
        m.submodules.membranes = membrane_mem = self.membrane_memory
        membrane_rd, membrane_wr = read_port(m, membrane_mem, name="membrane_read"), membrane_mem.write_port()
        m.submodules.refractory = refractory_mem = block_ram(shape=8, depth=neurons)
        refractory_rd, refractory_wr = read_port(m, refractory_mem, name="refractory_read"), refractory_mem.write_port()

        # ---- where the sequence is: core, neuron, side of its column pair, entry of the row list
        core, neuron = self.rows.core, Signal(range(max(config.neurons, 2)))
        side, index = Signal(), self.rows.index
        stage1, stage2 = Signal(), Signal()
        neuron_at = Signal(range(max(neurons, 2)))
        m.d.comb += neuron_at.eq(core * config.neurons + neuron)
        m.d.comb += [membrane_rd.addr.eq(neuron_at), membrane_wr.addr.eq(neuron_at),
                     refractory_rd.addr.eq(neuron_at), refractory_wr.addr.eq(neuron_at)]
        column = Cat(side, neuron)
        m.d.comb += self.totals.addr.eq(core * config.columns + column)
        forward_cell = cell_address(config, core, self.rows.row, column)

        # ---- an MVM's request, held from its start: one core, the direction, the sensed rows' phase
        if mvm:
            single, backward = Signal(), Signal()        # an MVM integrate: one core; backward
            layout = mvm_request(config)
            phase, shift, target = Signal(layout["phase"].shape), Signal(range(8)), Signal(layout["core"].shape)
            # Backward, neuron k senses row phase * neurons + k (none past the last row) and sums the
            # column pairs of the driven lines: both columns, one after the other.
            sensed_row = Signal(range(max(mvm_phases(config), 2) * config.neurons))
            m.d.comb += sensed_row.eq(phase * config.neurons + neuron)
            row_sensed = sensed_row < config.rows
            m.d.comb += self.row_totals.addr.eq(core * config.rows + sensed_row)
            backward_cell = cell_address(config, core, sensed_row, Cat(side, self.rows.row))
            m.d.comb += self.cells.addr.eq(Mux(backward, backward_cell, forward_cell))
            m.submodules.trims = trim_mem = block_ram(shape=signed(8), depth=neurons)
            trim_rd, trim_wr = read_port(m, trim_mem, name="trim_read"), trim_mem.write_port()
            m.d.comb += [trim_rd.addr.eq(neuron_at), trim_wr.addr.eq(self.trim.index),
                         trim_wr.data.eq(self.trim.code), trim_wr.en.eq(self.trim.write)]
            trim_now = trim_rd.data << MEMBRANE_FRACTION
        else:
            single = backward = row_sensed = C(0)
            m.d.comb += self.cells.addr.eq(forward_cell)
            trim_now = C(0)

        # ---- integrate's arithmetic: the sum (signed with MVM lines), the division, the membrane's move
        acc = Signal(signed(len(Const.cast(sums.stop - 1)) + 1) if mvm else sums)
        magnitude = Mux(acc < 0, -acc, acc) if mvm else acc
        remainder = Signal(range(2 * (sums.stop - 1) + 2))
        total = Signal(sums)
        bits = Signal(range(QUOTIENT_BITS + 1))
        quotient_shape = signed(QUOTIENT_BITS + 2) if mvm else QUOTIENT_BITS + 1
        q, q_plus = Signal(quotient_shape), Signal(quotient_shape)
        q_negative = Signal()                            # the sum divided was negative (MVM lines)
        negative2 = Signal()                             # the entry accumulated at stage 2 counts negative
        scale = Signal(range(((1 << config.dac_bits) - 1) * p.gain16 + 1))
        membrane_now = membrane_rd.data
        leaked = Signal(signed(MEMBRANE_BITS + 2))
        m.d.comb += leaked.eq(Mux(here.mode == NeuronMode.LIF, membrane_now - ((membrane_now * here.leak) >> 8), membrane_now))
        diff = Signal(signed(QUOTIENT_BITS + 3))
        m.d.comb += diff.eq(q_plus - q)
        increment = Signal(signed(len(scale) + QUOTIENT_BITS + 3))
        m.d.comb += increment.eq((scale * diff) >> (QUOTIENT_BITS + GAIN_FRACTION - MEMBRANE_FRACTION))
        summed = Signal(signed(max(len(increment), MEMBRANE_BITS + 2) + 1))
        m.d.comb += summed.eq(leaked + increment)
        top = 1 << (MEMBRANE_BITS - 1)
        saturated = Mux(summed < -top, -top, Mux(summed > top - 1, top - 1, summed))

        # ---- fire's comparison (and a conversion step's, at 2^shift thresholds), trims included
        up_level, down_level = Signal(signed(MEMBRANE_BITS + 2)), Signal(signed(MEMBRANE_BITS + 2))
        m.d.comb += [up_level.eq(here.thresh_pos << MEMBRANE_FRACTION),
                     down_level.eq(-(here.thresh_neg << MEMBRANE_FRACTION))]
        compared = membrane_now
        if mvm:
            compared = Signal(signed(MEMBRANE_BITS + 1))
            m.d.comb += compared.eq(membrane_now + trim_now)
        ready = refractory_rd.data == 0
        fire_up = ready & (compared >= up_level)
        fire_down = ready & ~fire_up & (compared <= down_level)

        def next_neuron(done_state: str, loop_state: str):
            with m.If(neuron == config.neurons - 1):
                m.d.sync += neuron.eq(0)
                with m.If((core == config.cores - 1) | single):
                    m.d.sync += core.eq(0)
                    m.next = done_state
                with m.Else():
                    m.d.sync += core.eq(core + 1)
                    m.next = loop_state
            with m.Else():
                m.d.sync += neuron.eq(neuron + 1)
                m.next = loop_state

        with m.FSM():
            with m.State("Idle"):
                m.d.sync += [core.eq(0), neuron.eq(0), side.eq(0)]
                if mvm:
                    m.d.sync += [single.eq(0), backward.eq(0)]
                with m.If(self.start & self.clear):
                    m.next = "Clear"
                with m.Elif(self.start & self.integrate):
                    m.d.sync += [scale.eq(s.v_read * p.gain16),
                                 index.eq(0), stage1.eq(0), stage2.eq(0), acc.eq(0)]
                    if mvm:
                        with m.If(self.mvm.on):
                            m.d.sync += [single.eq(1), core.eq(self.mvm.core), phase.eq(self.mvm.phase),
                                         backward.eq(self.mvm.direction == Direction.BACKWARD)]
                    m.next = "Sum"
                if mvm:
                    with m.Elif(self.start & self.convert):
                        m.d.sync += [target.eq(self.mvm.core), shift.eq(self.mvm.shift)]
                        m.next = "Convert-Read"
                with m.Elif(self.start):
                    m.next = "Fire-Read"

            # ---- integrate: per neuron, per column of its pair, sum the driven rows, divide by the total
            with m.State("Sum"):
                # Stage 0 reads the list entry `index`, stage 1 the cell, stage 2 accumulates.
                issue = (index < self.rows.count) & (~backward | row_sensed)
                m.d.sync += [stage1.eq(issue), stage2.eq(stage1), index.eq(Mux(issue, index + 1, index))]
                if mvm:
                    # A negative line, or backward the G- column of a pair, subtracts its code.
                    m.d.sync += negative2.eq(self.rows.negative ^ (backward & side))
                    with m.If(stage2):
                        m.d.sync += acc.eq(Mux(negative2, acc - self.cells.data, acc + self.cells.data))
                else:
                    with m.If(stage2):
                        m.d.sync += acc.eq(acc + self.cells.data)
                with m.If(~issue & ~stage1 & ~stage2):
                    with m.If(backward & (side == 0)):           # the pairs' G- columns into the same sum
                        m.d.sync += [side.eq(1), index.eq(0)]
                    with m.Else():
                        if mvm:
                            m.d.sync += total.eq(Mux(backward, Mux(row_sensed, self.row_totals.data, 0),
                                                     self.totals.data))
                        else:
                            m.d.sync += total.eq(self.totals.data)
                        m.d.sync += bits.eq(0)
                        m.next = "Divide-Start"
            with m.State("Divide-Start"):
                whole = (magnitude >= total) & (total != 0)
                m.d.sync += [q.eq(Mux(whole, 1, 0)), remainder.eq(Mux(whole, magnitude - total, magnitude))]
                if mvm:
                    m.d.sync += q_negative.eq(acc < 0)
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
                quotient = Mux(total != 0, q[:QUOTIENT_BITS + 1], 0)
                if mvm:
                    quotient = Mux(q_negative, -quotient, quotient)
                with m.If(backward):                             # one quotient: the row's
                    m.d.sync += [q_plus.eq(quotient), q.eq(0), side.eq(0)]
                    m.next = "Update"
                with m.Elif(side == 0):
                    m.d.sync += [q_plus.eq(quotient), side.eq(1)]
                    m.next = "Sum"
                with m.Else():
                    m.d.sync += [side.eq(0), q.eq(quotient)]
                    m.next = "Update"
            with m.State("Update"):              # the membrane read was addressed last cycle
                m.d.comb += [membrane_wr.data.eq(saturated), membrane_wr.en.eq(1)]
                next_neuron("Integrated", "Sum")
            with m.State("Integrated"):
                m.d.comb += [self.rows.end_step.eq(1), self.done.eq(1)]
                m.next = "Idle"

            # ---- fire: compare, reset or subtract, refractory
            with m.State("Fire-Read"):
                m.next = "Fire"
            with m.State("Fire"):
                fired = fire_up | fire_down
                m.d.comb += [membrane_wr.en.eq(1), refractory_wr.en.eq(1)]
                adc = here.mode == NeuronMode.ADC
                subtracted = Mux(fire_up, membrane_now - up_level, Mux(fire_down, membrane_now - down_level, membrane_now))
                # ADC mode and reset by subtraction keep what lay beyond the threshold; else back to zero.
                m.d.comb += membrane_wr.data.eq(Mux(adc | (here.reset == NeuronReset.SUBTRACT), subtracted,
                                                    Mux(fired, 0, membrane_now)))
                with m.If(adc):                                  # no refractory period
                    m.d.comb += refractory_wr.data.eq(refractory_rd.data)
                with m.Else():
                    m.d.comb += refractory_wr.data.eq(Mux(fired, here.refractory, Mux(ready, 0, refractory_rd.data - 1)))
                # A fire visits the neurons in flag order, so each decision shifts in at the top: after
                # the last, neuron i's flag is bit i (no decoder).
                m.d.sync += [self.spike_pos.eq(Cat(self.spike_pos[1:], fire_up)),
                             self.spike_neg.eq(Cat(self.spike_neg[1:], fire_down))]
                next_neuron("Fired", "Fire-Read")
            with m.State("Fired"):
                m.d.comb += self.done.eq(1)
                m.next = "Idle"

            if mvm:
                # ---- a conversion step: every neuron is visited (so the flags shift in as a fire's), the
                # requested core's decide against +-2^shift thresholds and subtract or add them back
                with m.State("Convert-Read"):
                    m.next = "Convert"
                with m.State("Convert"):
                    level_shape = signed(16 + 7 + MEMBRANE_FRACTION + 1)
                    up_at, down_at = Signal(level_shape), Signal(level_shape)
                    m.d.comb += [up_at.eq((here.thresh_pos << shift) << MEMBRANE_FRACTION),
                                 down_at.eq((here.thresh_neg << shift) << MEMBRANE_FRACTION)]
                    deciding = core == target
                    step_up = deciding & (compared >= up_at)
                    step_down = deciding & ~step_up & (compared <= -down_at)
                    m.d.comb += [membrane_wr.en.eq(1),
                                 membrane_wr.data.eq(Mux(step_up, membrane_now - up_at,
                                                         Mux(step_down, membrane_now + down_at, membrane_now)))]
                    m.d.sync += [self.spike_pos.eq(Cat(self.spike_pos[1:], step_up)),
                                 self.spike_neg.eq(Cat(self.spike_neg[1:], step_down))]
                    next_neuron("Converted", "Convert-Read")
                with m.State("Converted"):
                    m.d.comb += self.done.eq(1)
                    m.next = "Idle"

            # ---- a new run: every membrane and refractory counter to 0, the row entries wiped
            with m.State("Clear"):
                m.d.comb += [membrane_wr.data.eq(0), membrane_wr.en.eq(1), refractory_wr.data.eq(0),
                             refractory_wr.en.eq(1)]
                next_neuron("Clear-Rows", "Clear")
            with m.State("Clear-Rows"):
                m.d.comb += self.rows.wipe.eq(1)
                with m.If(self.rows.wiped):
                    m.next = "Cleared"
            with m.State("Cleared"):
                m.d.comb += [self.rows.new_run.eq(1), self.done.eq(1)]
                m.next = "Idle"
        return m
