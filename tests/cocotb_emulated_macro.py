"""cocotb bench of the emulated macro's Verilog (`rram-cim verilog --block emulated_macro`), driven through
its analog port as the chip drives it, answer for answer against its Python reference
`fpga.emulation.EmulatedMacroModel`.

Run by tests/test_cocotb_emulated_macro.py on Icarus and Verilator. One session on the reference chip:
after the cell memory's clearing, random SET, RESET and FORM pulses and senses on a few cells (every
sensed code must equal the reference's), then SET pulses on many cells so that rows carry weight, then
time steps of inference in IF, LIF and ADC modes with a refractory period (every spike flag must equal
the reference's), then, if the build has the MVM (`ChipConfig.mvm`), trims written over the port and a
one-bit MVM each way on core 1 with a SAR conversion (every conversion step's flags equal the reference's).
"""

from __future__ import annotations

import dataclasses

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, FallingEdge

from rram_cim.fpga.emulation import EmulatedMacroModel
from rram_cim.models.macro import NeuronCodes
from rram_cim.models.mvm import MVMModel, inputs
from rram_cim.models.neurons import NeuronMode
from rram_cim.protocol import pack_neuron_cores
from rram_cim.protocol import Direction
from rram_cim.rtl.analog_port import Op
from rram_cim.sim.chip_bench import config_from_env, seed_from_env
from rram_cim.sim.clock import start_clock
from rram_cim.sim.macro_scripts import CallRecorder, apply_cell_ops, flags_of, random_cell_ops, random_steps

#: Cycles the macro may take to answer a request: the first waits for the 8,192-cycle cell clearing.
ANSWER_LIMIT = 20_000
V_READ = 6
#: Inference runs: (mode, leak, refractory), a few steps each, one after another on the same cells.
RUNS = ((NeuronMode.IF, 0, 2), (NeuronMode.LIF, 40, 0), (NeuronMode.ADC, 0, 0))
STEPS_PER_RUN = 4
#: The MVM sample: one-bit inputs (one integrate a phase), three output bits by successive approximation.
MVM_CORE, MVM_OUT_BITS = 1, 3


class MacroPort:
    """The chip's side of the port. Inputs change at falling edges; outputs are read there, after the
    rising edge that produced them."""

    def __init__(self, dut):
        self.dut = dut

    def set(self, **values):
        for name, value in values.items():
            getattr(self.dut, f"port__{name}").value = int(getattr(value, "value", value))   # enums too

    def get(self, name: str) -> int:
        return int(getattr(self.dut, f"port__{name}").value)

    async def cycles(self, count=1):
        for _ in range(count):
            await FallingEdge(self.dut.clk)

    async def pulse(self, op, core, row, column, wl, bl, sl):
        self.set(op=op, core=core, row=row, column=column)
        await self.cycles()
        for w, b, s in zip(wl, bl, sl):
            self.set(wl_code=w, bl_code=b, sl_code=s, pulse=1)
            await self.cycles()
        self.set(pulse=0)
        await self.cycles(2)

    async def sense(self, core, row, column) -> int:
        self.set(op=Op.READ, core=core, row=row, column=column, sense_req=1)
        for _ in range(ANSWER_LIMIT):
            await self.cycles()
            if self.get("sense_valid"):
                code = self.get("sense_code")
                self.set(sense_req=0, op=Op.IDLE)
                await self.cycles()
                return code
        raise AssertionError("no sense answer")

    async def row(self, core, row):
        self.set(op=Op.INFER, row_core=core, row_index=row, row_strobe=1)
        await self.cycles()
        self.set(row_strobe=0)

    async def line(self, core, direction, line, negative):
        self.set(op=Op.INFER, mvm=1, direction=direction, row_core=core, row_index=line,
                 line_negative=int(negative), row_strobe=1)
        await self.cycles()
        self.set(row_strobe=0)

    async def trim(self, index, code):
        self.set(op=Op.TRIM, trim_index=index, trim_code=code & 0xFF)
        await self.cycles()
        self.set(op=Op.IDLE)

    async def strobe(self, name, codes: NeuronCodes, mvm=0, **request) -> tuple[int, int]:
        # The same settings in every page of neuron settings the build has.
        pages = [dataclasses.asdict(codes)] * config_from_env().neuron_pages
        self.set(op=Op.INFER, neuron_cores=pack_neuron_cores(pages), v_read_code=V_READ, mvm=mvm, **request,
                 **{name: 1})
        for _ in range(ANSWER_LIMIT):
            await self.cycles()
            if self.get("neuron_ack"):
                flags = self.get("spike_pos"), self.get("spike_neg")
                self.set(**{name: 0})
                await self.cycles()
                return flags
        raise AssertionError(f"no acknowledge of {name}")


@cocotb.test()
async def emulated_macro_answers_as_its_reference(dut):
    config = config_from_env()
    seed = seed_from_env()
    rng = np.random.default_rng(seed)
    model = EmulatedMacroModel(config)
    port = MacroPort(dut)
    # Every input is driven before reset ends, so no X reaches the design.
    port.set(op=Op.IDLE, core=0, row=0, column=0, wl_code=0, bl_code=0, sl_code=0, pulse=0, sense_req=0,
             row_strobe=0, row_core=0, row_index=0, v_read_code=0, neuron_reset=0, integrate=0, fire=0,
             neuron_cores=0, mvm=0, direction=0, line_negative=0, phase=0, convert=0, convert_shift=0,
             trim_index=0, trim_code=0)
    start_clock(dut, config)
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await port.cycles()

    # Programming: pulses pile up on a few cells; every sensed code must be the reference's.
    cells = [(int(rng.integers(config.cores)), int(rng.integers(config.rows)), int(rng.integers(config.columns)))
             for _ in range(6)]
    ops = random_cell_ops(rng, config, cells, 150)
    answers = []
    for kind, args in ops:
        if kind == "sense":
            answers.append(await port.sense(*args))
        else:
            await port.pulse(*args)
    expected = apply_cell_ops(model, ops)
    assert answers == expected, f"sensed codes differ (seed {seed})"
    assert len(set(expected)) > 10, "the cells did not move"

    # Weights: one SET on a quarter of the cells, at random gates, so driven rows move the neurons.
    for core in range(config.cores):
        for row in range(config.rows):
            for column in np.flatnonzero(rng.random(config.columns) < 0.25):
                gate = int(rng.integers(90, 200))
                args = (Op.SET, core, row, int(column), [gate], [120], [0])
                await port.pulse(*args)
                model.pulse(*args)

    spikes = 0
    for mode, leak, refractory in RUNS:
        codes = NeuronCodes(thresh_pos=4, thresh_neg=3, leak=leak, refractory=refractory, mode=mode)
        await port.strobe("neuron_reset", codes)
        model.reset_neurons()
        for step, rows in enumerate(random_steps(rng, config, STEPS_PER_RUN, 12)):
            for core, row in rows:
                await port.row(core, row)
                model.drive_row(core, row)
            await port.strobe("integrate", codes)
            model.integrate(V_READ, codes)
            positive, negative = await port.strobe("fire", codes)
            up, down = model.fire(codes)
            assert np.array_equal(flags_of(positive, config), up), f"{mode.name} step {step}: + flags (seed {seed})"
            assert np.array_equal(flags_of(negative, config), down), f"{mode.name} step {step}: - flags (seed {seed})"
            spikes += int(up.sum() + down.sum())
    assert spikes > 20, f"only {spikes} spikes: the inference check saw too little"
    dut._log.info("%d senses equal, %d spikes equal over %d steps", len(answers), spikes,
                  len(RUNS) * STEPS_PER_RUN)
    if config.mvm:
        decisions = await mvm_sample(port, model, config, rng, seed)
        dut._log.info("MVM: %d conversion decisions equal, both directions, trims on", decisions)


async def mvm_sample(port: MacroPort, model, config, rng, seed) -> int:
    """Trims on every neuron, then a one-bit MVM each way on the cells as the session left them; every
    conversion step's flags equal the reference's. Returns the decisions (+1 or -1) seen."""
    codes = NeuronCodes(thresh_pos=2, thresh_neg=2)
    for index in range(config.cores * config.neurons):
        code = int(rng.integers(-6, 7))
        await port.trim(index, code)
        model.set_trim(*divmod(index, config.neurons), code)
    decisions = 0
    for direction in (Direction.FORWARD, Direction.BACKWARD):
        recorder = CallRecorder(model)
        x = rng.integers(-1, 2, inputs(config, direction))
        MVMModel(recorder, codes, V_READ).run(MVM_CORE, x, direction, 1, MVM_OUT_BITS, "sar")
        for name, args, answer in recorder.calls:
            if name == "reset_neurons":
                await port.strobe("neuron_reset", codes)
            elif name == "drive_line":
                await port.line(*args)
            elif name == "integrate_lines":
                core, direction, _, _, phase = args
                await port.strobe("integrate", codes, mvm=1, row_core=core, direction=direction, phase=phase)
            elif name == "convert_step":
                core, shift, _ = args
                positive, negative = await port.strobe("convert", codes, mvm=1, row_core=core, convert_shift=shift)
                up, down = answer
                for flags, expected, sign in ((positive, up, "+"), (negative, down, "-")):
                    got = flags_of(flags, config)
                    assert np.array_equal(got[core], expected) and not np.delete(got, core, axis=0).any(), \
                        f"{direction.name} MVM, step at 2^{shift}: {sign} flags (seed {seed})"
                decisions += int(up.sum() + down.sum())
    assert decisions > 10, f"only {decisions} conversion decisions: the MVM check saw too little"
    return decisions
