"""The FPGA's emulated macro (fpga/emulated_macro.py) in Amaranth's simulator, driven through the analog
port as the drivers and the inference sequencer drive it, answer for answer equal to its Python
reference (fpga/emulation.py); and that reference close to the analog models it stands in for."""

import dataclasses

import numpy as np
import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from rram_cim.config import REFERENCE
from rram_cim.fpga.emulated_macro import EmulatedMacro
from rram_cim.fpga.emulation import MEMBRANE_FRACTION, EmulatedMacroModel, EmulationParams, Lfsr, reset_result
from rram_cim.models.macro import AnalogMacro, NeuronCodes, codes_per_core
from rram_cim.models.neurons import NeuronMode, NeuronParams
from rram_cim.protocol import Direction, pack_neuron_cores
from rram_cim.rtl.analog_port import Op
from rram_cim.sim.macro_scripts import CallRecorder, apply_cell_ops, flags_of, random_cell_ops, random_steps

CONFIG = REFERENCE.replace(name="emulation-test", rows=8, columns=8, neurons=4)
#: The same voltages on a 10-bit DAC (a quarter of the volts per code), and a coarser 6-bit ADC.
DAC10 = CONFIG.replace(name="emulation-10-bit-dac", dac_bits=10, wl_volts_per_lsb=0.0025,
                       bl_volts_per_lsb=0.00375, sl_volts_per_lsb=0.00375)
ADC6 = CONFIG.replace(name="emulation-6-bit-adc", adc_bits=6, us_per_adc_lsb=2.0)
#: The iCEBreaker's reduced set: one page of neuron settings, no MVM.
LITE = CONFIG.replace(name="emulation-lite", per_core_neurons=False, mvm=False)


def widened(ops, config, rng):
    """`random_cell_ops`'s 8-bit DAC codes at the same voltages on `config`'s DAC."""
    shift = config.dac_bits - 8
    out = []
    for kind, args in ops:
        if kind == "pulse":
            op, core, row, column, *codes = args
            codes = [[(c << shift) + int(rng.integers(1 << shift)) for c in side] for side in codes]
            args = (op, core, row, column, *codes)
        out.append((kind, args))
    return out


def test_lfsr_has_the_full_period():
    lfsr, seen = Lfsr(), set()
    for _ in range((1 << 16) - 1):
        seen.add(lfsr.step())
    assert len(seen) == (1 << 16) - 1 and 0 not in seen


def test_compliance_table_follows_the_device_model():
    p = EmulationParams.derive(REFERENCE)
    assert p.set_code == 80 and p.reset_code == 67 and p.floor_code == 2       # 1.2 V, 1.0 V, 1 uS
    assert list(p.compliance) == sorted(p.compliance)                           # rises with the gate
    # At V_G = 1.3 V: I_C = 50 uA/V^2 x 0.7^2 = 24.5 uA over 0.4 V = 61.25 uS = 122.5 codes.
    assert p.compliance[130] in (122, 123)


def test_model_neurons_match_the_voltage_mode_analog_neurons():
    """With the same conductances, rows and codes, the emulation's membrane equals the analog model's
    noise-free voltage-mode neuron to the fixed point's precision."""
    rng = np.random.default_rng(0)
    model = EmulatedMacroModel(REFERENCE)
    analog = AnalogMacro(REFERENCE, 0, neuron_noise=False)
    model.codes[:] = rng.integers(20, 230, model.codes.shape)
    for array, codes in zip(analog.cores, model.codes):
        array.g_us[:] = codes * REFERENCE.us_per_adc_lsb
    codes = NeuronCodes(thresh_pos=60000, thresh_neg=60000, mode=NeuronMode.IF)
    for _ in range(5):
        for core in range(2):
            for row in rng.choice(64, 20, replace=False):
                model.drive_row(core, int(row))
                analog.drive_row(core, int(row))
        model.integrate(6, codes)
        analog.integrate(6, codes)
    emulated = model.membrane / (1 << MEMBRANE_FRACTION) * REFERENCE.threshold_volts_per_lsb
    analog_v = np.stack([bank.v_mem for bank in analog.banks])
    assert np.abs(emulated - analog_v).max() < 0.01 * np.abs(analog_v).max() + 2e-5


class PortDriver:
    """Drives the macro side of the port like the chip does and records every answer."""

    def __init__(self, ctx, port):
        self.ctx, self.port = ctx, port

    async def idle(self, cycles=1):
        for _ in range(cycles):
            await self.ctx.tick()

    async def pulse(self, op, core, row, column, wl, bl, sl):
        ctx, port = self.ctx, self.port
        for name, value in dict(op=op, core=core, row=row, column=column).items():
            ctx.set(getattr(port, name), value)
        await self.idle()
        for w, b, s in zip(wl, bl, sl):
            ctx.set(port.wl_code, w)
            ctx.set(port.bl_code, b)
            ctx.set(port.sl_code, s)
            ctx.set(port.pulse, 1)
            await self.idle()
        ctx.set(port.pulse, 0)
        await self.idle(2)

    async def sense(self, core, row, column) -> int:
        ctx, port = self.ctx, self.port
        for name, value in dict(op=Op.READ, core=core, row=row, column=column, sense_req=1).items():
            ctx.set(getattr(port, name), value)
        for _ in range(20_000):                           # the first may wait for the cells' clearing
            await self.idle()
            if ctx.get(port.sense_valid):
                code = ctx.get(port.sense_code)
                ctx.set(port.sense_req, 0)
                ctx.set(port.op, Op.IDLE)
                await self.idle()
                return code
        raise AssertionError("no sense answer")

    async def row(self, core, row):
        ctx, port = self.ctx, self.port
        ctx.set(port.op, Op.INFER)
        ctx.set(port.row_core, core)
        ctx.set(port.row_index, row)
        ctx.set(port.row_strobe, 1)
        await self.idle()
        ctx.set(port.row_strobe, 0)

    async def line(self, core, direction, line, negative):
        """An MVM input line for the next integrate."""
        ctx, port = self.ctx, self.port
        for name, value in dict(op=Op.INFER, mvm=1, direction=direction, row_core=core, row_index=line,
                                line_negative=int(negative), row_strobe=1).items():
            ctx.set(getattr(port, name), value)
        await self.idle()
        ctx.set(port.row_strobe, 0)

    async def trim(self, index, code):
        """One trim write: a single TRIM cycle, no answer."""
        ctx, port = self.ctx, self.port
        for name, value in dict(op=Op.TRIM, trim_index=index, trim_code=code).items():
            ctx.set(getattr(port, name), value)
        await self.idle()
        ctx.set(port.op, Op.IDLE)

    async def strobe(self, name, codes: NeuronCodes, v_read=6, mvm=0, **request):
        """A neuron strobe held until its acknowledge (`mvm` and `request`: the MVM members with it)."""
        ctx, port = self.ctx, self.port
        ctx.set(port.op, Op.INFER)
        ctx.set(port.v_read_code, v_read)
        ctx.set(port.mvm, mvm)
        for member, value in request.items():
            ctx.set(getattr(port, member), value)
        pages = codes_per_core(codes, port.neuron_cores.shape().length)
        ctx.set(port.neuron_cores.as_value(), pack_neuron_cores([dataclasses.asdict(page) for page in pages]))
        ctx.set(getattr(port, name), 1)
        for cycle in range(100_000):
            await self.idle()
            if ctx.get(port.neuron_ack):
                flags = ctx.get(port.spike_pos), ctx.get(port.spike_neg)
                ctx.set(getattr(port, name), 0)
                await self.idle()
                return flags, cycle
        raise AssertionError(f"no acknowledge of {name}")


def run_port(config, script):
    """Run `script(driver)` against the emulated macro in Amaranth's simulator."""
    dut = EmulatedMacro(config)
    sim = Simulator(dut)
    sim.add_clock(1 / config.sys_clk_hz)
    out = {}

    async def bench(ctx):
        out["result"] = await script(PortDriver(ctx, dut.port))
    sim.add_testbench(bench)
    sim.run()
    return out["result"]


def test_a_wider_dac_sets_and_resets_at_the_same_volts():
    """A 10-bit DAC's codes are finer, not different: V_set, V_reset, the compliance at a gate voltage
    and the conductance a RESET keeps at an overdrive match the 8-bit reference's."""
    p8, p10 = EmulationParams.derive(CONFIG), EmulationParams.derive(DAC10)
    assert (p10.set_code, p10.reset_code, p10.dac_bits) == (4 * p8.set_code, 4 * p8.reset_code - 1, 10)
    assert len(p10.compliance) == 1024 and all(p10.compliance[4 * g] == p8.compliance[g] for g in range(256))
    for overdrive in range(0, 60, 7):
        for random in (0, 17, 31):
            assert (reset_result(p10, 200, p10.reset_code + 4 * overdrive, random)
                    == reset_result(p8, 200, p8.reset_code + overdrive, random))


def test_a_narrower_adc_caps_the_codes():
    p = EmulationParams.derive(ADC6)
    assert p.code_top == 63 and max(p.compliance) == 63


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")     # refused in __init__
def test_params_of_another_width_are_refused():
    with pytest.raises(ValueError, match=r"8-bit DAC and codes up to 255 do not fit config "
                                         r"'emulation-10-bit-dac' \(10-bit DAC, 8-bit ADC\)"):
        EmulatedMacro(DAC10, params=EmulationParams.derive(CONFIG))


@pytest.mark.parametrize("config,seed", [(CONFIG, 0), (CONFIG, 1), (CONFIG, 2), (DAC10, 3), (ADC6, 4)],
                         ids=["seed0", "seed1", "seed2", "10-bit-dac", "6-bit-adc"])
def test_pulses_and_senses_equal_the_reference(config, seed):
    """Also at other widths: an 8-bit peak register would have truncated a 10-bit DAC's SET codes
    (V_set is code 320) and the emulation would never SET."""
    rng = np.random.default_rng(seed)
    model = EmulatedMacroModel(config)
    cells = [(int(rng.integers(config.cores)), int(rng.integers(config.rows)), int(rng.integers(config.columns)))
             for _ in range(6)]                            # few cells, so pulses pile up on them
    ops = widened(random_cell_ops(rng, config, cells, 150), config, rng)

    async def script(driver):
        answers = []
        for kind, args in ops:
            if kind == "sense":
                answers.append(await driver.sense(*args))
            else:
                await driver.pulse(*args)
        return answers
    answers = run_port(config, script)
    expected = apply_cell_ops(model, ops)
    assert answers == expected
    assert len(set(expected)) > 10                         # the cells really moved
    assert max(expected) <= model.p.code_top


@pytest.mark.parametrize("config,mode,leak,refractory",
                         [(CONFIG, NeuronMode.IF, 0, 0), (CONFIG, NeuronMode.IF, 0, 2),
                          (CONFIG, NeuronMode.LIF, 40, 1), (CONFIG, NeuronMode.ADC, 0, 0),
                          (DAC10, NeuronMode.LIF, 40, 1), (LITE, NeuronMode.LIF, 40, 1)],
                         ids=["if", "if-refractory", "lif", "adc", "lif-10-bit-dac", "lif-without-mvm"])
def test_inference_steps_equal_the_reference(config, mode, leak, refractory):
    rng = np.random.default_rng(int(mode) * 10 + leak + refractory)
    model = EmulatedMacroModel(config)
    model.codes[:] = rng.integers(2, 240, model.codes.shape)
    v_read = 6 << (config.dac_bits - 8)                   # the same read voltage at any DAC width
    codes = NeuronCodes(thresh_pos=12, thresh_neg=9, leak=leak, refractory=refractory, mode=mode)
    steps = random_steps(rng, config, 12, 6)
    writes = [(c, r, k) for c in range(config.cores) for r in range(config.rows) for k in range(config.columns)]

    async def script(driver):
        flags = []
        await driver.strobe("neuron_reset", codes)
        for step in steps:
            for core, row in step:
                await driver.row(core, row)
            await driver.strobe("integrate", codes, v_read)
            (pos, neg), _ = await driver.strobe("fire", codes)
            flags.append((pos, neg))
        return flags

    # The conductances as P&V would leave them, loaded straight into the RAMs.
    dut_codes = model.codes.copy()
    dut = EmulatedMacro(config, clear_cells=False)
    sim = Simulator(dut)
    sim.add_clock(1 / config.sys_clk_hz)
    got = {}

    async def bench(ctx):
        for c, r, k in writes:
            ctx.set(dut.cell_ram.memory.data[(c * config.rows + r) * config.columns + k], int(dut_codes[c, r, k]))
        for c in range(config.cores):
            for k in range(config.columns):
                ctx.set(dut.total_memory.data[c * config.columns + k], int(dut_codes[c, :, k].sum()))
        got["flags"] = await script(PortDriver(ctx, dut.port))
    sim.add_testbench(bench)
    sim.run()

    model.reset_neurons()
    spikes = 0
    for step, (pos, neg) in zip(steps, got["flags"]):
        for core, row in step:
            model.drive_row(core, row)
        model.integrate(v_read, codes)
        up, down = model.fire(codes)
        assert np.array_equal(flags_of(pos, config), up) and np.array_equal(flags_of(neg, config), down)
        spikes += up.sum() + down.sum()
    assert spikes > 5


# ---- matrix-vector multiplication and trims -------------------------------------------------------------

async def replay(driver, calls, codes, v_read):
    """The recorded MVM calls as the port carries them; each conversion step's flags and the cycles taken."""
    flags, cycles = [], {"integrate": 0, "convert": 0}
    for name, args, _ in calls:
        if name == "reset_neurons":
            await driver.strobe("neuron_reset", codes)
        elif name == "drive_line":
            await driver.line(*args)
        elif name == "integrate_lines":
            core, direction, _, _, phase = args
            _, cycles["integrate"] = await driver.strobe("integrate", codes, v_read, mvm=1, row_core=core,
                                                         direction=direction, phase=phase)
        elif name == "convert_step":
            core, shift, _ = args
            answer, cycles["convert"] = await driver.strobe("convert", codes, mvm=1, row_core=core,
                                                            convert_shift=shift)
            flags.append(answer)
    return flags, cycles


def preload(ctx, dut, codes):
    """The conductances as P&V would leave them, straight into the cell, column-total and row-total RAMs."""
    config = dut.config
    for c, r, k in np.ndindex(codes.shape):
        ctx.set(dut.cell_ram.memory.data[(c * config.rows + r) * config.columns + k], int(codes[c, r, k]))
    for c in range(config.cores):
        for k in range(config.columns):
            ctx.set(dut.total_memory.data[c * config.columns + k], int(codes[c, :, k].sum()))
        for r in range(config.rows):
            ctx.set(dut.row_total_memory.data[c * config.rows + r], int(codes[c, r, :].sum()))


#: Three neurons on eight rows: a backward MVM's last phase senses rows 6 and 7 and nothing for neuron 2.
THREE_NEURONS = CONFIG.replace(name="emulation-three-neurons", neurons=3)
PAGES = CONFIG.replace(name="emulation-one-page", per_core_neurons=False)


@pytest.mark.parametrize("config,direction,in_bits,out_bits,conversion", [
    (CONFIG, "forward", 2, 3, "count"), (CONFIG, "backward", 3, 3, "sar"), (THREE_NEURONS, "backward", 1, 4, "count"),
    (DAC10, "forward", 3, 4, "sar"), (ADC6, "backward", 2, 2, "count"), (PAGES, "forward", 1, 2, "sar")],
    ids=["forward-count", "backward-sar", "backward-three-phases", "forward-sar-10-bit-dac",
         "backward-count-6-bit-adc", "forward-sar-one-page"])
def test_mvm_with_trims_equals_the_reference(config, direction, in_bits, out_bits, conversion):
    """Signed lines both ways, every conversion step's flags and the membranes left after them equal the
    reference's, with nonzero trims written over the port first; and the reference's outputs are the
    ideal product's to within a step or two of quantization at its fixed point."""
    from rram_cim.models.mvm import MVMModel, ideal_outputs, inputs
    rng = np.random.default_rng(in_bits * 10 + out_bits)
    model = EmulatedMacroModel(config)
    model.codes[:] = rng.integers(2, model.p.code_top - 10, model.codes.shape)
    codes = [NeuronCodes(thresh_pos=int(rng.integers(3, 7)), thresh_neg=int(rng.integers(3, 7)))
             for _ in range(config.neuron_pages)]
    v_read = 6 << (config.dac_bits - 8)
    trims = [(index, int(rng.integers(-12, 13))) for index in range(config.cores * config.neurons)]
    for index, code in trims:
        model.set_trim(*divmod(index, config.neurons), code)
    core = 1
    x = rng.integers(-(1 << in_bits) + 1, 1 << in_bits, inputs(config, Direction[direction.upper()]))
    recorder = CallRecorder(model)
    mvm = MVMModel(recorder, codes, v_read)
    result = mvm.run(core, x, direction, in_bits, out_bits, conversion)
    membranes = model.membrane.copy()

    dut = EmulatedMacro(config, clear_cells=False)
    sim = Simulator(dut)
    sim.add_clock(1 / config.sys_clk_hz)
    got = {}

    async def bench(ctx):
        preload(ctx, dut, model.codes)
        driver = PortDriver(ctx, dut.port)
        for index, code in trims:
            await driver.trim(index, code)
        got["flags"], got["cycles"] = await replay(driver, recorder.calls, codes, v_read)
        got["membranes"] = [ctx.get(dut.neurons.membrane_memory.data[i]) for i in range(config.cores * config.neurons)]
    sim.add_testbench(bench)
    sim.run()

    steps = [args for name, args, _ in recorder.calls if name == "convert_step"]
    assert len(got["flags"]) == len(steps) == result.conversion_steps
    assert got["membranes"] == membranes.ravel().tolist()
    # The flags of each step, as the reference decided them (rerun from the same start).
    check = EmulatedMacroModel(config)
    check.codes[:] = model.codes
    check.trim[:] = model.trim
    decided = []
    for name, args, _ in recorder.calls:
        answer = getattr(check, name)(*args)
        if name == "convert_step":
            decided.append(answer)
    for (pos, neg), (up, down) in zip(got["flags"], decided):
        word = flags_of(pos, config), flags_of(neg, config)
        assert np.array_equal(word[0][core], up) and np.array_equal(word[1][core], down)
        assert not word[0][1 - core].any() and not word[1][1 - core].any()       # other cores' bits 0
    assert any(up.any() or down.any() for up, down in decided)
    # Near the ideal, trims aside (they shift every neuron's decisions by up to 12 LSB of 2^shift thresholds).
    untrimmed = EmulatedMacroModel(config)
    untrimmed.codes[:] = model.codes
    plain = MVMModel(untrimmed, codes, v_read).run(core, x, direction, in_bits, out_bits, conversion).outputs
    g_us = model.codes[core] * config.us_per_adc_lsb
    ideal = ideal_outputs(g_us, x, direction, config, codes_per_core(codes, config.cores)[core], v_read, out_bits,
                          NeuronParams().gain)
    assert np.abs(plain - ideal).max() <= 1


def test_the_reference_answers_the_port_responder_like_the_analog_macro():
    """sim.port_responder drives the reference through trims and an MVM's strobes as it drives
    models.macro.AnalogMacro: the same calls, and the answers the reference gives called directly."""
    from rram_cim.sim.port_responder import PortResponder
    config = CONFIG
    rng = np.random.default_rng(7)
    model, direct = EmulatedMacroModel(config), EmulatedMacroModel(config)
    model.codes[:] = direct.codes[:] = rng.integers(2, 240, model.codes.shape)
    responder = PortResponder(model, neuron_latency=1)
    codes = NeuronCodes(thresh_pos=4, thresh_neg=5)
    idle = dict.fromkeys(("row_strobe", "row_core", "row_index", "neuron_reset", "integrate", "fire", "mvm",
                          "direction", "line_negative", "phase", "convert", "convert_shift", "trim_index",
                          "trim_code", "pulse", "sense_req"), 0)
    idle |= dict(op=Op.IDLE, v_read_code=6, neuron_cores=pack_neuron_cores([dataclasses.asdict(codes)] * 2))
    flags = []

    def cycle(**members):
        changed = responder.step(idle | members)
        if "spike_pos" in changed or "spike_neg" in changed:
            flags.append((responder.drives["spike_pos"], responder.drives["spike_neg"]))

    cycle(op=Op.TRIM, trim_index=5, trim_code=256 - 7)             # neuron 1 of core 1: -7
    direct.set_trim(1, 1, -7)
    cycle(op=Op.INFER, neuron_reset=1)
    cycle(op=Op.INFER)
    direct.reset_neurons()
    for _ in range(3):
        for line in range(config.neurons):
            negative = bool(rng.integers(2))
            cycle(op=Op.INFER, mvm=1, row_strobe=1, row_core=1, row_index=line, direction=Direction.BACKWARD,
                  line_negative=int(negative))
            direct.drive_line(1, Direction.BACKWARD, line, negative)
        cycle(op=Op.INFER, mvm=1, integrate=1, row_core=1, direction=Direction.BACKWARD, phase=1)
        cycle(op=Op.INFER)
        direct.integrate_lines(1, Direction.BACKWARD, 6, codes, 1)
    expected = []
    for shift in (2, 1, 0):
        cycle(op=Op.INFER, mvm=1, convert=1, row_core=1, convert_shift=shift)
        cycle(op=Op.INFER)
        up, down = direct.convert_step(1, shift, codes)
        expected.append((up, down))
    assert np.array_equal(model.membrane, direct.membrane) and model.trims(1)[1] == -7
    assert len(flags) >= 1
    assert (responder.drives["spike_pos"], responder.drives["spike_neg"]) == (
        sum(1 << (config.neurons + k) for k in np.flatnonzero(expected[-1][0])),
        sum(1 << (config.neurons + k) for k in np.flatnonzero(expected[-1][1])))


def test_without_mvm_the_macro_keeps_no_mvm_logic():
    """ChipConfig.mvm off (the iCEBreaker's reduced set): no row totals, no trims, no convert, no line signs
    (its inference is `test_inference_steps_equal_the_reference[lif-without-mvm]`)."""
    dut = EmulatedMacro(LITE)
    assert dut.row_total_memory is None
    assert not {"convert", "mvm", "trim", "row_totals"} & set(dut.neurons.signature.members.keys())
    assert "negative" not in dict(dut.neurons.signature.members["rows"].signature.members)
    Fragment.get(dut, None)                                    # and it elaborates
