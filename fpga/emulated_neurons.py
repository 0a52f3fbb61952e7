"""The emulated macro's neuron unit: a time step's integrate, fire and a run's reset, in fixed point
(`emulation.EmulatedMacroModel.integrate`, `fire`, `reset_neurons`).

Per neuron and per column of its pair it sums the driven rows' cell codes, divides by the column's total
(a restoring division, one quotient bit a cycle), and moves the membrane by the difference of the two
quotients times the read voltage's gain: about 2 x (driven rows + 16) cycles a neuron. A fire compares
each membrane with the thresholds, 2 cycles a neuron.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..config import ChipConfig
from ..protocol import NeuronMode, NeuronReset
from ..rtl.analog_port import AnalogPort
from ..rtl.block_ram import block_ram, read_port
from .emulated_cells import cell_address
from .emulated_rows import RowLists
from .emulation import GAIN_FRACTION, MEMBRANE_BITS, MEMBRANE_FRACTION, QUOTIENT_BITS, EmulationParams

__all__ = ["Lookup", "SETTINGS_ON_PORT", "neuron_settings", "NeuronUnit"]

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


class NeuronUnit(wiring.Component):
    """Runs one neuron command from `start` (one cycle, with `clear`, `integrate` or `fire` saying which,
    in that priority) to `done` (one cycle); `spike_pos`/`spike_neg` hold the last fire's flags, neuron n of
    core c at bit c x neurons + n. It reads the cell codes (`cells`), the column totals (`totals`) and the
    driven rows (`rows`); it owns the membranes and refractory counters (block RAM)."""

    def __init__(self, config: ChipConfig, params: EmulationParams):
        self._config, self._params = config, params
        cells = config.cores * config.rows * config.columns
        neurons = config.cores * config.neurons
        column_sum = range(config.rows * params.code_top + 1)
        super().__init__({
            "start": In(1), "clear": In(1), "integrate": In(1), "fire": In(1),
            "settings": In(neuron_settings(config)),
            "cells": Out(Lookup(range(cells), config.adc_bits)),
            "totals": Out(Lookup(range(config.cores * config.columns), column_sum)),
            "rows": Out(RowLists(config)),
            "done": Out(1), "spike_pos": Out(neurons), "spike_neg": Out(neurons),
        })

    def elaborate(self, platform):
        m = Module()
        config, p, s = self._config, self._params, self.settings
        # The settings of the core being worked on: its own page, or the one page of a build that has one.
        here = s.cores[self.rows.core] if config.neuron_pages > 1 else s.cores[0]
        neurons = config.cores * config.neurons
        column_sum = range(config.rows * p.code_top + 1)
        m.submodules.membranes = membrane_mem = block_ram(shape=signed(MEMBRANE_BITS), depth=neurons)
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

        # ---- integrate's arithmetic: the sum, the division, the membrane's move
        acc = Signal(column_sum)
        remainder = Signal(range(2 * (column_sum.stop - 1) + 2))
        total = Signal(column_sum)
        bits = Signal(range(QUOTIENT_BITS + 1))
        q, q_plus = Signal(QUOTIENT_BITS + 1), Signal(QUOTIENT_BITS + 1)
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

        # ---- fire's comparison
        up_level, down_level = Signal(signed(MEMBRANE_BITS + 2)), Signal(signed(MEMBRANE_BITS + 2))
        m.d.comb += [up_level.eq(here.thresh_pos << MEMBRANE_FRACTION),
                     down_level.eq(-(here.thresh_neg << MEMBRANE_FRACTION))]
        ready = refractory_rd.data == 0
        fire_up = ready & (membrane_now >= up_level)
        fire_down = ready & ~fire_up & (membrane_now <= down_level)

        def next_neuron(done_state: str, loop_state: str):
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

        with m.FSM():
            with m.State("Idle"):
                m.d.sync += [core.eq(0), neuron.eq(0), side.eq(0)]
                with m.If(self.start & self.clear):
                    m.next = "Clear"
                with m.Elif(self.start & self.integrate):
                    m.d.sync += [scale.eq(s.v_read * p.gain16),
                                 index.eq(0), stage1.eq(0), stage2.eq(0), acc.eq(0)]
                    m.next = "Sum"
                with m.Elif(self.start):
                    m.next = "Fire-Read"

            # ---- integrate: per neuron, per column of its pair, sum the driven rows, divide by the total
            with m.State("Sum"):
                # Stage 0 reads the list entry `index`, stage 1 the cell, stage 2 accumulates.
                m.d.comb += self.cells.addr.eq(cell_address(config, core, self.rows.row, column))
                issue = index < self.rows.count
                m.d.sync += [stage1.eq(issue), stage2.eq(stage1), index.eq(Mux(issue, index + 1, index))]
                with m.If(stage2):
                    m.d.sync += acc.eq(acc + self.cells.data)
                with m.If(~issue & ~stage1 & ~stage2):
                    m.d.sync += [total.eq(self.totals.data), bits.eq(0)]
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
