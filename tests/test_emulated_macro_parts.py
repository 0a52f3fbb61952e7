"""The emulated macro's parts (fpga/emulated_cells.py, emulated_rows.py, emulated_neurons.py) one by one in
Amaranth's simulator, each against its piece of the Python reference (fpga/emulation.py)."""

import dataclasses

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.sim import Simulator

from rram_cim.config import REFERENCE
from rram_cim.fpga.emulated_cells import LfsrGenerator, PulseCapture, PulseOutcome, SenseNoise, cell_address
from rram_cim.fpga.emulated_neurons import NeuronUnit
from rram_cim.fpga.emulated_rows import RowTracker
from rram_cim.fpga.emulation import (EmulatedMacroModel, EmulationParams, Lfsr, reset_result, sensed,
                                     set_result)
from rram_cim.models.macro import NeuronCodes
from rram_cim.models.neurons import NeuronMode
from rram_cim.protocol import pack_neuron_cores
from rram_cim.rtl.analog_port import Op

CONFIG = REFERENCE.replace(name="emulation-test", rows=8, columns=8, neurons=4)
DAC10 = CONFIG.replace(name="emulation-10-bit-dac", dac_bits=10, wl_volts_per_lsb=0.0025,
                       bl_volts_per_lsb=0.00375, sl_volts_per_lsb=0.00375)
ADC6 = CONFIG.replace(name="emulation-6-bit-adc", adc_bits=6, us_per_adc_lsb=2.0)
WIDTHS = pytest.mark.parametrize("config", [CONFIG, DAC10, ADC6], ids=["reference", "10-bit-dac", "6-bit-adc"])


def simulate(dut, bench, config=CONFIG):
    sim = Simulator(dut)
    sim.add_clock(1 / config.sys_clk_hz, if_exists=True)          # none in a combinational part
    sim.add_testbench(bench)
    sim.run()


def test_lfsr_steps_as_the_reference_and_holds_between_steps():
    dut, model, rng = LfsrGenerator(), Lfsr(), np.random.default_rng(0)

    async def bench(ctx):
        assert ctx.get(dut.value) == model.state
        for _ in range(400):
            advance = int(rng.integers(2))
            ctx.set(dut.advance, advance)
            await ctx.tick()
            if advance:
                model.step()
            assert ctx.get(dut.value) == model.state
    simulate(dut, bench)


@WIDTHS
def test_pulse_capture_holds_the_first_cycles_target_and_the_peak_codes(config):
    dut, rng = PulseCapture(config), np.random.default_rng(1)
    cells, columns = config.cores * config.rows * config.columns, config.cores * config.columns

    async def bench(ctx):
        for _ in range(40):
            cycles = [dict(op=Op(int(rng.choice([2, 3, 4]))), cell=int(rng.integers(cells)),
                           column=int(rng.integers(columns)),
                           **{code: int(rng.integers(1 << config.dac_bits)) for code in ("wl", "bl", "sl")})
                      for _ in range(int(rng.integers(1, 6)))]
            for fields in cycles:
                ctx.set(dut.strobe, 1)
                for name, value in fields.items():
                    ctx.set(getattr(dut.now, name), value)
                await ctx.tick()
                assert ctx.get(dut.pending)
            ctx.set(dut.strobe, 0)
            held = ctx.get(dut.held)
            assert (held.op, held.cell, held.column) == (cycles[0]["op"], cycles[0]["cell"], cycles[0]["column"])
            for code in ("wl", "bl", "sl"):
                assert getattr(held, code) == max(fields[code] for fields in cycles)
            ctx.set(dut.taken, 1)
            await ctx.tick()
            ctx.set(dut.taken, 0)
            assert not ctx.get(dut.pending)
    simulate(dut, bench, config)


@WIDTHS
def test_pulse_outcome_equals_set_and_reset_results(config):
    p, rng = EmulationParams.derive(config), np.random.default_rng(2)
    dut = PulseOutcome(config, p)
    dac_top = 1 << config.dac_bits
    changed = 0

    async def bench(ctx):
        nonlocal changed
        for _ in range(600):
            op = Op(int(rng.choice([0, 1, 2, 3, 4])))
            # Codes around V_set and V_reset, where the decisions are.
            wl, bl, sl = (int(rng.integers(dac_top)) for _ in range(3))
            bl = bl if rng.random() < 0.5 else min(dac_top - 1, p.set_code - 2 + int(rng.integers(5)))
            sl = sl if rng.random() < 0.5 else min(dac_top - 1, p.reset_code - 2 + int(rng.integers(5)))
            old, random = int(rng.integers(p.code_top + 1)), int(rng.integers(1 << 16))
            for name, value in dict(op=op, wl=wl, bl=bl, sl=sl, old=old, random=random).items():
                ctx.set(getattr(dut, name), value)
            await ctx.tick()                       # the compliance table's read
            if op in (Op.SET, Op.FORM):
                expected = set_result(p, old, bl, wl, random)
            elif op == Op.RESET:
                expected = reset_result(p, old, sl, random)
            else:
                expected = old
            assert ctx.get(dut.new) == expected, (op, wl, bl, sl, old, random)
            changed += expected != old
    simulate(dut, bench, config)
    assert changed > 100


@WIDTHS
def test_sense_noise_equals_the_sensed_code(config):
    p, dut = EmulationParams.derive(config), SenseNoise(config)
    codes = range(p.code_top + 1)

    async def bench(ctx):
        for code in codes:
            for random in (0, 7, 8, 15, 0x1230, 0xFFFF):
                ctx.set(dut.code, code)
                ctx.set(dut.random, random)
                assert ctx.get(dut.sensed) == sensed(p, code, random), (code, random)
    simulate(dut, bench, config)


async def strobe_rows(ctx, dut, rows):
    for core, row in rows:
        ctx.set(dut.strobe, 1)
        ctx.set(dut.core, core)
        ctx.set(dut.row, row)
        await ctx.tick()
    ctx.set(dut.strobe, 0)
    await ctx.tick()


async def read_lists(ctx, lists, config):
    out = []
    for core in range(config.cores):
        ctx.set(lists.core, core)
        listed = []
        for index in range(ctx.get(lists.count)):
            ctx.set(lists.index, index)
            await ctx.tick()
            listed.append(ctx.get(lists.row))
        out.append(listed)
    return out


async def pulse(ctx, strobe):
    ctx.set(strobe, 1)
    await ctx.tick()
    ctx.set(strobe, 0)


def test_row_tracker_lists_each_row_once_per_step_and_forgets_them_in_a_new_run():
    config, rng = CONFIG, np.random.default_rng(3)
    dut = RowTracker(config)
    runs = []
    for _ in range(2):
        steps = []
        for _ in range(5):
            rows = [(int(rng.integers(config.cores)), int(rng.integers(config.rows))) for _ in range(12)]
            rows += rows[-2:] + [rows[0], rows[0]]             # repeats, also in consecutive cycles
            steps.append(rows)
        runs.append(steps)
    runs[1][0] = runs[0][0]                   # the same rows in a new run's first step: listed again

    async def bench(ctx):
        lists = dut.lists
        for steps in runs:
            ctx.set(lists.wipe, 1)
            while not ctx.get(lists.wiped):
                await ctx.tick()
            await ctx.tick()
            ctx.set(lists.wipe, 0)
            await pulse(ctx, lists.new_run)
            for rows in steps:
                await strobe_rows(ctx, dut, rows)
                model = EmulatedMacroModel(config)
                for core, row in rows:
                    model.drive_row(core, row)
                assert await read_lists(ctx, lists, config) == model.driven
                await pulse(ctx, lists.end_step)
                assert await read_lists(ctx, lists, config) == [[] for _ in range(config.cores)]
    simulate(dut, bench, config)


def test_row_tracker_lists_mvm_lines_once_with_their_first_sign():
    config, rng = CONFIG, np.random.default_rng(5)
    dut = RowTracker(config)
    steps = []
    for _ in range(4):
        lines = [(int(rng.integers(config.cores)), int(rng.integers(config.neurons)), bool(rng.integers(2)))
                 for _ in range(8)]
        steps.append(lines + [(*lines[-1][:2], not lines[-1][2]), (*lines[0][:2], not lines[0][2])])

    async def bench(ctx):
        lists = dut.lists
        ctx.set(lists.wipe, 1)
        while not ctx.get(lists.wiped):
            await ctx.tick()
        await ctx.tick()
        ctx.set(lists.wipe, 0)
        await pulse(ctx, lists.new_run)
        for lines in steps:
            for core, line, negative in lines:
                ctx.set(dut.strobe, 1)
                ctx.set(dut.core, core)
                ctx.set(dut.row, line)
                ctx.set(dut.negative, negative)
                await ctx.tick()
            ctx.set(dut.strobe, 0)
            await ctx.tick()
            model = EmulatedMacroModel(config)
            for core, line, negative in lines:
                model.drive_line(core, 0, line, negative)
            for core in range(config.cores):
                ctx.set(lists.core, core)
                listed = []
                for index in range(ctx.get(lists.count)):
                    ctx.set(lists.index, index)
                    await ctx.tick()
                    listed.append((ctx.get(lists.row), bool(ctx.get(lists.negative))))
                assert listed == model.lines[core]
            await pulse(ctx, lists.end_step)
    simulate(dut, bench, config)


class NeuronHarness(wiring.Component):
    """The neuron unit on preloaded cell and total memories, with its row tracker, as the macro joins them."""

    def __init__(self, config, codes):
        p = EmulationParams.derive(config)
        self.unit, self.tracker = NeuronUnit(config, p), RowTracker(config)
        self.cells = Memory(shape=config.adc_bits, depth=codes.size, init=[int(c) for c in codes.ravel()])
        totals = codes.sum(axis=1)                                   # cores x columns
        self.totals = Memory(shape=range(config.rows * p.code_top + 1), depth=totals.size,
                             init=[int(t) for t in totals.ravel()])
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.unit, m.submodules.tracker = unit, tracker = self.unit, self.tracker
        m.submodules.cells, m.submodules.totals = self.cells, self.totals
        wiring.connect(m, unit.rows, tracker.lists)
        for memory, lookup in ((self.cells, unit.cells), (self.totals, unit.totals)):
            read = memory.read_port()
            m.d.comb += [read.addr.eq(lookup.addr), lookup.data.eq(read.data)]
        return m


#: Core 1 with its own page: another neuron type, thresholds and refractory period than core 0's.
PER_CORE = "per-core"


@pytest.mark.parametrize("config,mode,leak,refractory",
                         [(CONFIG, NeuronMode.IF, 0, 2), (CONFIG, NeuronMode.LIF, 40, 1),
                          (CONFIG, NeuronMode.ADC, 0, 0), (DAC10, NeuronMode.IF, 0, 0),
                          (CONFIG, NeuronMode.LIF, 40, PER_CORE)],
                         ids=["if-refractory", "lif", "adc", "if-10-bit-dac", "per-core-subtract"])
def test_neuron_unit_integrates_and_fires_as_the_reference(config, mode, leak, refractory):
    per_core = refractory == PER_CORE
    refractory = 0 if per_core else refractory
    rng = np.random.default_rng(int(mode) * 10 + leak + refractory)
    model = EmulatedMacroModel(config)
    model.codes[:] = rng.integers(2, model.p.code_top - 10, model.codes.shape)
    dut = NeuronHarness(config, model.codes)
    unit = dut.unit
    codes = [NeuronCodes(thresh_pos=12, thresh_neg=9, leak=leak, refractory=refractory, mode=mode)] * config.cores
    if per_core:
        # Core 1: IF with reset by subtraction and a refractory period; core 0 LIF resetting to zero.
        codes[1] = NeuronCodes(thresh_pos=7, thresh_neg=15, refractory=2, mode=NeuronMode.IF, reset=1)
    v_read = 6 << (config.dac_bits - 8)
    steps = [[(int(rng.integers(config.cores)), int(rng.integers(config.rows))) for _ in range(6)]
             for _ in range(10)]
    got = []

    async def command(ctx, name):
        ctx.set(unit.start, 1)
        ctx.set(getattr(unit, name), 1)
        await ctx.tick()
        ctx.set(unit.start, 0)
        ctx.set(getattr(unit, name), 0)
        while not ctx.get(unit.done):
            await ctx.tick()
        flags = ctx.get(unit.spike_pos), ctx.get(unit.spike_neg)
        await ctx.tick()
        return flags

    async def bench(ctx):
        ctx.set(unit.settings.v_read, v_read)
        ctx.set(unit.settings.cores.as_value(), pack_neuron_cores([dataclasses.asdict(c) for c in codes]))
        await command(ctx, "clear")
        for rows in steps:
            await strobe_rows(ctx, dut.tracker, rows)
            await command(ctx, "integrate")
            got.append(await command(ctx, "fire"))
    simulate(dut, bench, config)

    model.reset_neurons()
    spikes = 0
    for rows, (pos, neg) in zip(steps, got):
        for core, row in rows:
            model.drive_row(core, row)
        model.integrate(v_read, codes)
        up, down = model.fire(codes)
        bits = np.arange(config.cores * config.neurons).reshape(config.cores, config.neurons)
        assert np.array_equal((pos >> bits) & 1, up.astype(int))
        assert np.array_equal((neg >> bits) & 1, down.astype(int))
        spikes += up.sum() + down.sum()
    assert spikes > 3


def test_cell_addresses_run_cores_then_rows_then_columns():
    addresses = [cell_address(CONFIG, c, r, k) for c in range(CONFIG.cores) for r in range(CONFIG.rows)
                 for k in range(CONFIG.columns)]
    assert addresses == list(range(CONFIG.cores * CONFIG.rows * CONFIG.columns))
