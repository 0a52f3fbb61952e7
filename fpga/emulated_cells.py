"""The emulated macro's cells: where a cell is, the LFSR its jitter and noise come from, a pulse held while
it lasts, what the pulse leaves in the cell and what a sense of it reads.

Each part is the gateware of one function of `fpga/emulation.py` and is tested against it
(tests/test_emulated_macro_parts.py); `fpga/emulated_macro.py` sequences them on the cell memory.
"""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..config import ChipConfig
from ..rtl.analog_port import Op
from .emulation import KEEP_SLOPE_BITS, LFSR_SEED, LFSR_TAPS, RESET_KEEP_BASE, RESET_KEEP_SLOPE, EmulationParams

__all__ = ["cell_address", "LfsrGenerator", "pulse_layout", "PulseCapture", "PulseOutcome", "SenseNoise"]

JITTER_CENTRE = 16            # 5-bit LFSR sample, centred: -16..15
NOISE_CENTRE = 8              # 4-bit LFSR sample, centred: -8..7
LFSR_BITS = 16


def cell_address(config: ChipConfig, core, row, column):
    """The cell memory's address of a cell: cores, then rows, then columns."""
    return (core * config.rows + row) * config.columns + column


class LfsrGenerator(wiring.Component):
    """`emulation.Lfsr`: `value` is the state, stepped once in every cycle `advance` is high (one step per
    pulse applied and per sense, so the answers follow the reference's sequence)."""
    advance: In(1)
    value: Out(LFSR_BITS, init=LFSR_SEED)

    def elaborate(self, platform):
        m = Module()
        state = self.value
        with m.If(self.advance):
            m.d.sync += state.eq(Mux(state[0], (state >> 1) ^ LFSR_TAPS, state >> 1))
        return m


def pulse_layout(config: ChipConfig) -> data.StructLayout:
    """A pulse as the cells see it: its operation, its cell and that cell's column (core-wide index),
    and its word-line, bit-line and source-line DAC codes."""
    return data.StructLayout({
        "op": Op, "wl": config.dac_bits, "bl": config.dac_bits, "sl": config.dac_bits,
        "cell": range(config.cores * config.rows * config.columns),
        "column": range(config.cores * config.columns)})


class PulseCapture(wiring.Component):
    """Holds a pulse while `strobe` is high: its operation, cell and column from the first cycle, the peak
    of each DAC code over all of them (a pulse's shape steps its codes; the emulation acts on the peaks).
    `pending` from the first cycle until the cycle after `taken`."""

    def __init__(self, config: ChipConfig):
        layout = pulse_layout(config)
        super().__init__({"strobe": In(1), "now": In(layout), "held": Out(layout),
                          "pending": Out(1), "taken": In(1)})

    def elaborate(self, platform):
        m = Module()
        now, held = self.now, self.held
        with m.If(self.strobe):
            m.d.sync += self.pending.eq(1)
            with m.If(~self.pending):
                m.d.sync += held.eq(now)
            with m.Else():
                m.d.sync += [getattr(held, code).eq(Mux(getattr(now, code) > getattr(held, code),
                                                        getattr(now, code), getattr(held, code)))
                             for code in ("wl", "bl", "sl")]
        with m.Elif(self.taken):
            m.d.sync += self.pending.eq(0)
        return m


class PulseOutcome(wiring.Component):
    """The code a pulse leaves in a cell (`emulation.set_result`, `reset_result`) from the cell's `old`
    code, the pulse's operation and peak codes and an LFSR sample. Combinational, except the compliance
    table's read: `new` follows `wl` of the previous cycle (a held pulse's peak, so never a late one)."""

    def __init__(self, config: ChipConfig, params: EmulationParams):
        self._config, self._params = config, params
        dac, code = config.dac_bits, config.adc_bits
        super().__init__({"op": In(Op), "wl": In(dac), "bl": In(dac), "sl": In(dac), "old": In(code),
                          "random": In(LFSR_BITS), "new": Out(code)})

    def elaborate(self, platform):
        m = Module()
        p, dac, code_top = self._params, self._config.dac_bits, self._params.code_top
        old, random = self.old, self.random
        m.submodules.compliance = compliance = Memory(shape=self._config.adc_bits, depth=len(p.compliance),
                                                      init=p.compliance)
        compliance_rd = compliance.read_port()
        m.d.comb += compliance_rd.addr.eq(self.wl)
        target = compliance_rd.data
        jitter = Signal(signed(16))
        m.d.comb += jitter.eq((target * (random[:5] - JITTER_CENTRE)) >> 8)
        raised = Signal(signed(12))
        m.d.comb += raised.eq(target + jitter)
        set_code = Mux(raised < p.floor_code, p.floor_code, Mux(raised > code_top, code_top, raised))
        # Overdrive in 8-bit DAC codes: the keep falls by the same amount per volt at any DAC width. Only
        # used at or above V_reset, where the overdrive is not negative.
        fall = Signal(range((RESET_KEEP_SLOPE << KEEP_SLOPE_BITS) + 1))     # the overdrive is below 2**dac
        m.d.comb += fall.eq((RESET_KEEP_SLOPE * (self.sl - p.reset_code) << KEEP_SLOPE_BITS) >> dac)
        keep_raw = Signal(signed(fall.shape().width + 2))
        m.d.comb += keep_raw.eq(RESET_KEEP_BASE - fall + (random[:5] - JITTER_CENTRE))
        keep = Mux(keep_raw < 0, 0, Mux(keep_raw > 255, 255, keep_raw))
        reset_code = p.floor_code + (((old - p.floor_code) * keep[:8]) >> 8)
        is_set = (self.op == Op.SET) | (self.op == Op.FORM)
        with m.If(is_set & (self.bl >= p.set_code) & (target > old)):
            m.d.comb += self.new.eq(set_code)
        with m.Elif((self.op == Op.RESET) & (self.sl >= p.reset_code) & (old > p.floor_code)):
            m.d.comb += self.new.eq(reset_code)
        with m.Else():
            m.d.comb += self.new.eq(old)
        return m


class SenseNoise(wiring.Component):
    """What a sense of a cell at `code` reads (`emulation.sensed`): the code with +-3 % read noise from an
    LFSR sample, within the ADC's range. Combinational."""

    def __init__(self, config: ChipConfig):
        self._code_top = (1 << config.adc_bits) - 1
        super().__init__({"code": In(config.adc_bits), "random": In(LFSR_BITS), "sensed": Out(config.adc_bits)})

    def elaborate(self, platform):
        m = Module()
        noise = Signal(signed(16))
        m.d.comb += noise.eq((self.code * (self.random[:4] - NOISE_CENTRE)) >> 8)
        noisy = Signal(signed(12))
        m.d.comb += noisy.eq(self.code + noise)
        m.d.comb += self.sensed.eq(Mux(noisy < 0, 0, Mux(noisy > self._code_top, self._code_top, noisy)))
        return m
