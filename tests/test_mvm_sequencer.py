"""The MVM sequencer (rtl/mvm.py) in Amaranth's simulator, the analog-port responder answering from the
Python macro, against the MVM golden model (models/mvm.py): outputs equal bit for bit in both directions,
1, 4 and 8-bit inputs and outputs, both conversions; with the neurons' noise on, the same draws; in decide
mode, the same stochastic neurons' decisions and LFSR states."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from rram_cim.config import ChipConfig, REFERENCE
from rram_cim.models.macro import AnalogMacro, NeuronCodes
from rram_cim.models.mvm import MVMModel, effective_weights
from rram_cim.models.neurons import NeuronParams
from rram_cim.models.stochastic import StochasticLines
from rram_cim.protocol import Conversion, Direction, Op
from rram_cim.rtl.mvm import ENTRY_BYTES, MVMSequencer, mvm_lines
from rram_cim.sim.amaranth_responder import port_responder_process
from rram_cim.sim.port_responder import PortResponder

V_READ = 6
#: A small core keeps the 8-bit runs (255 samples of every line) to seconds in the simulator.
SMALL = ChipConfig(name="mvm-small", cores=2, rows=16, columns=16, neurons=8)


def macro(config, seed, noise=False):
    made = AnalogMacro(config, seed, neuron_noise=noise)
    rng = np.random.default_rng(seed)
    for array in made.cores:
        array.g_us[:] = rng.uniform(2.0, 110.0, array.g_us.shape)
    return made


def run_rtl(config, made, core, x, direction, in_bits, out_bits, conversion, codes, noise=None):
    """The sequencer's outputs, cycles and responder; with `noise` (StochasticLines), a decide MVM whose
    bias and LFSR windows `noise` holds (its states updated from what the sequencer writes back)."""
    dut = MVMSequencer(config)
    responder = PortResponder(made, neuron_latency=2)
    x_bytes = b"".join(int(v).to_bytes(ENTRY_BYTES, "little", signed=True) for v in x)
    written = bytearray(mvm_lines(config) * ENTRY_BYTES)
    outputs = config.neurons if direction is Direction.FORWARD else config.rows
    result = {}

    async def memories(ctx):
        async for _, _, addr in ctx.tick().sample(dut.x.addr):      # a synchronous read port
            ctx.set(dut.x.data, x_bytes[addr] if addr < len(x_bytes) else 0)

    async def writes(ctx):
        async for _, _, en, addr, data in ctx.tick().sample(dut.y.en, dut.y.addr, dut.y.data):
            if en:
                written[addr] = data

    lines = mvm_lines(config)
    bias = b"".join(int(v).to_bytes(2, "little", signed=True) for v in noise.bias) if noise else b""
    lfsr = bytearray(b"".join(int(v).to_bytes(4, "little") for v in noise.states) if noise else b"")

    async def noise_windows(ctx):
        async for _, _, b_addr, l_addr, en, w_addr, data in ctx.tick().sample(
                dut.bias.addr, dut.lfsr_read.addr, dut.lfsr_write.en, dut.lfsr_write.addr, dut.lfsr_write.data):
            ctx.set(dut.bias.data, bias[b_addr] if b_addr < len(bias) else 0)
            ctx.set(dut.lfsr_read.data, lfsr[l_addr] if l_addr < len(lfsr) else 0)
            if en:
                lfsr[w_addr] = data

    async def bench(ctx):
        for name, value in dict(direction=direction, conversion=conversion, in_bits=in_bits, out_bits=out_bits,
                                core=core, v_read=V_READ, threshold=codes.thresh_pos, decide=noise is not None,
                                draws=noise.draws if noise else 8, magnitude=noise.magnitude if noise else 2).items():
            ctx.set(getattr(dut.settings, name), value)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        cycles = 0
        while not ctx.get(dut.done):
            await ctx.tick()
            cycles += 1
            assert cycles < 2_000_000, "the sequencer never finished"
        result["cycles"] = cycles

    sim = Simulator(dut)
    sim.add_clock(1 / config.sys_clk_hz)
    sim.add_process(memories)
    sim.add_process(writes)
    if noise is not None:
        sim.add_process(noise_windows)
    sim.add_process(port_responder_process(responder, dut.port, op=Op.INFER))
    sim.add_testbench(bench)
    sim.run()
    got = [int.from_bytes(written[i * ENTRY_BYTES:(i + 1) * ENTRY_BYTES], "little", signed=True)
           for i in range(outputs)]
    if noise is not None:
        noise.states[:] = [int.from_bytes(lfsr[4 * i:4 * i + 4], "little") for i in range(lines)]
    return np.array(got), result["cycles"], responder


CASES = [("forward", 1, 1, "count"), ("forward", 4, 4, "sar"), ("forward", 4, 4, "count"),
         ("backward", 1, 4, "count"), ("backward", 4, 4, "sar"), ("forward", 8, 8, "sar"),
         ("backward", 8, 8, "sar"), ("forward", 2, 3, "count")]


@pytest.mark.parametrize("direction,in_bits,out_bits,conversion", CASES,
                         ids=[f"{d}-{i}in-{o}out-{c}" for d, i, o, c in CASES])
def test_outputs_equal_the_golden_model_bit_for_bit(direction, in_bits, out_bits, conversion):
    seed = in_bits * 16 + out_bits
    direction, conversion = Direction[direction.upper()], Conversion[conversion.upper()]
    rng = np.random.default_rng(seed)
    count = SMALL.rows if direction is Direction.FORWARD else SMALL.neurons
    x = rng.integers(-((1 << in_bits) - 1), 1 << in_bits, count)
    # Thresholds that put a quarter of the outputs at the top code: the conversion is exercised in full.
    weights = effective_weights(macro(SMALL, seed).cores[1].g_us, direction, SMALL.neurons)
    charge = NeuronParams().gain * V_READ * SMALL.bl_volts_per_lsb * np.abs(x @ weights)
    top = int(np.percentile(charge, 75) / SMALL.threshold_volts_per_lsb / ((1 << out_bits) - 1))
    codes = NeuronCodes(thresh_pos=max(1, top), thresh_neg=max(1, top))
    got, cycles, _ = run_rtl(SMALL, macro(SMALL, seed), 1, x, direction, in_bits, out_bits, conversion, codes)
    golden = MVMModel(macro(SMALL, seed), codes, V_READ).run(1, x, direction, in_bits, out_bits, conversion)
    assert np.array_equal(got, golden.outputs), (got, golden.outputs)
    assert np.count_nonzero(golden.outputs) >= len(golden.outputs) // 4     # the comparison means something
    assert cycles > golden.samples


def test_with_noise_on_the_rtl_makes_the_models_draws():
    codes = NeuronCodes(thresh_pos=6, thresh_neg=6)
    x = np.random.default_rng(9).integers(-7, 8, SMALL.rows)
    got, _, _ = run_rtl(SMALL, macro(SMALL, 9, noise=True), 0, x, Direction.FORWARD, 3, 4, Conversion.COUNT, codes)
    golden = MVMModel(macro(SMALL, 9, noise=True), codes, V_READ).run(0, x, "forward", 3, 4, "count")
    clean = MVMModel(macro(SMALL, 9), codes, V_READ).run(0, x, "forward", 3, 4, "count")
    assert np.array_equal(got, golden.outputs) and not np.array_equal(golden.outputs, clean.outputs)


def test_the_reference_core_backward_in_two_phases():
    codes = NeuronCodes(thresh_pos=3, thresh_neg=3)
    y = np.random.default_rng(4).integers(-1, 2, REFERENCE.neurons)
    got, _, responder = run_rtl(REFERENCE, macro(REFERENCE, 4), 0, y, Direction.BACKWARD, 1, 2, Conversion.SAR, codes)
    golden = MVMModel(macro(REFERENCE, 4), codes, V_READ).run(0, y, "backward", 1, 2, "sar")
    assert np.array_equal(got, golden.outputs) and np.count_nonzero(got[REFERENCE.neurons:])
    assert [entry for entry, _ in responder.neuron_log].count("reset") == 2


# Decide mode: (direction, in_bits, out_bits, conversion, K draws, M magnitude, bias spread in LSBs).
DECIDE_CASES = [("forward", 4, 4, "sar", 8, 2, 6), ("backward", 4, 4, "count", 3, 5, 20),
                ("forward", 2, 3, "count", 15, 15, 300), ("backward", 1, 2, "sar", 1, 1, 2)]


@pytest.mark.parametrize("direction,in_bits,out_bits,conversion,draws,magnitude,spread", DECIDE_CASES,
                         ids=[f"{d}-K{k}-M{m}" for d, _, _, _, k, m, _ in DECIDE_CASES])
def test_decide_mode_decides_and_steps_the_lfsrs_as_the_model(direction, in_bits, out_bits, conversion, draws,
                                                               magnitude, spread):
    seed = 40 + draws
    direction, conversion = Direction[direction.upper()], Conversion[conversion.upper()]
    rng = np.random.default_rng(seed)
    count = SMALL.rows if direction is Direction.FORWARD else SMALL.neurons
    x = rng.integers(-((1 << in_bits) - 1), 1 << in_bits, count)
    codes = NeuronCodes(thresh_pos=6, thresh_neg=6)
    lines = mvm_lines(SMALL)

    def noise():
        # Biases of both signs, near the outputs so that both decisions occur; one line left unseeded (0).
        seeds = np.random.default_rng(seed).integers(1, 1 << 32, lines, dtype=np.uint64)
        seeds[3] = 0
        return StochasticLines(np.random.default_rng(seed).integers(-spread, spread + 1, lines),
                               seeds, draws, magnitude)

    rtl_noise, model_noise = noise(), noise()
    got, _, _ = run_rtl(SMALL, macro(SMALL, seed), 1, x, direction, in_bits, out_bits, conversion, codes, rtl_noise)
    golden = MVMModel(macro(SMALL, seed), codes, V_READ).run(1, x, direction, in_bits, out_bits, conversion,
                                                             decide=model_noise)
    assert np.array_equal(got, golden.outputs), (got, golden.outputs)
    assert np.array_equal(rtl_noise.states, model_noise.states)
    assert set(np.unique(got)) == {0, 1}                                   # both decisions were made
    outputs = len(golden.outputs)
    stepped = model_noise.states != noise().states
    assert stepped[:outputs].sum() == outputs - (3 < outputs) and not stepped[outputs:].any()
