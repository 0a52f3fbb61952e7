"""The MVM sequencer: one matrix-vector multiplication on one core, in either direction, with multi-bit
signed inputs and outputs (docs/mvm.md; `models.mvm.MVMModel` sends the same port strobes in the same
order, so with the neurons' noise off the outputs are equal bit for bit, and with it on the draws are).

Per phase (backward MVMs sense the rows `neurons` at a time):

1. reset the neurons (`neuron_reset`, held until acknowledged);
2. for each input bit b, most significant first, 2^b samples: each sample reads the inputs (16-bit
   little-endian two's complement, one per input line, from the `x` read port), strobes every line whose
   magnitude has bit b set onto the port (`row_strobe` with `mvm`, its sign as `line_negative`), then
   strobes `integrate`;
3. convert: 2^out_bits - 1 `convert` steps of one threshold (COUNT), or out_bits steps of 2^b thresholds
   (SAR), each answered by the spike flags of the core's neurons, which the sequencer counts;
4. write the phase's outputs, 16-bit little-endian two's complement, through the `y` write port.

In decide mode (`settings.decide`, a build with ChipConfig.mvm_stochastic) each output y of line i is
written as 0 or 1 instead: the sequencer reads line i's bias b (`bias`, 2 bytes) and LFSR state
(`lfsr_read`, 4 bytes), steps the LFSR K + 1 times, one step a cycle, writes the state back
(`lfsr_write`) and writes whether 2 (y + b) + 2 M (d_1 + ... + d_K) + e > 0 (`models.stochastic`).

A step costs about 3 cycles per input line and sample plus the macro's answers, never a scan of the
array. `halt` (the chip's watchdog: the macro stopped answering) ends the run where it waits.
"""

from amaranth.hdl import Array, Cat, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.memory import ReadPort, WritePort
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..config import ChipConfig
from ..protocol import LFSR32_MASK, Conversion, Direction, NeuronMode, NeuronReset
from .analog_port import NeuronPort, mvm_phases

__all__ = ["MVMSequencer", "MVMSettings", "ENTRY_BYTES", "mvm_lines"]

#: Bytes of one input or output entry: a 16-bit little-endian two's complement integer.
ENTRY_BYTES = 2
#: Bits of the magnitude of an input or output (1 to 8, docs/mvm.md).
BITS_MAX = 8
#: Bytes of a stochastic neuron's bias (16-bit two's complement) and LFSR state (32 bits), little-endian.
BIAS_BYTES = 2
LFSR_BYTES = 4


def mvm_lines(config: ChipConfig) -> int:
    """Entries of the input and of the output buffer: the most inputs or outputs either direction has."""
    return max(config.rows, config.neurons)


def MVMSettings(config: ChipConfig) -> data.StructLayout:
    return data.StructLayout({"direction": Direction, "conversion": Conversion, "decide": 1,
                              "in_bits": range(BITS_MAX + 1), "out_bits": range(BITS_MAX + 1),
                              "core": range(config.cores), "draws": 4, "magnitude": 4,
                              "v_read": config.dac_bits, "threshold": 16})


class MVMSequencer(wiring.Component):
    """Runs one MVM (module docstring). What it owns: the neuron members of the analog port while it
    runs, the outputs' counters, the read port of the input buffer and the write port of the output buffer.
    How it is verified: in Amaranth's simulator against `models.mvm.MVMModel` through the same analog-port
    responder the other engines are held to (tests/test_mvm_sequencer.py), both directions, 1-8 bits."""

    def __init__(self, config: ChipConfig):
        self._config = config
        addr = ceil_log2(mvm_lines(config) * ENTRY_BYTES)
        # Decide mode's windows, in a build that has it: the biases, the LFSRs read and written back.
        decide = {"bias":       In(ReadPort.Signature(addr_width=ceil_log2(mvm_lines(config) * BIAS_BYTES), shape=8)),
                  "lfsr_read":  In(ReadPort.Signature(addr_width=ceil_log2(mvm_lines(config) * LFSR_BYTES), shape=8)),
                  "lfsr_write": In(WritePort.Signature(addr_width=ceil_log2(mvm_lines(config) * LFSR_BYTES), shape=8)),
                  } if config.mvm_decide else {}
        super().__init__({
            "settings": In(MVMSettings(config)),
            "start":    In(1),
            "halt":     In(1),
            "busy":     Out(1),
            "done":     Out(1),
            # What the run cost, counted from its start: system cycles, integrations, conversion steps.
            "cycles":   Out(32),
            "samples":  Out(32),
            "steps":    Out(32),
            "x":        In(ReadPort.Signature(addr_width=addr, shape=8)),
            "y":        In(WritePort.Signature(addr_width=addr, shape=8)),
            "port":     Out(NeuronPort(config)),
            **decide,
        })

    def elaborate(self, platform):
        config, s, port = self._config, self.settings, self.port
        neurons = config.neurons
        m = Module()
        backward = s.direction == Direction.BACKWARD
        inputs = Signal(range(mvm_lines(config) + 1))
        outputs = Signal(range(mvm_lines(config) + 1))
        m.d.comb += [inputs.eq(Mux(backward, neurons, config.rows)),
                     outputs.eq(Mux(backward, config.rows, neurons))]

        phase = Signal(range(max(mvm_phases(config), 2)))
        bit = Signal(range(BITS_MAX))                  # the input bit of the frame
        repeat = Signal(range(1 << BITS_MAX))          # samples of the frame taken
        line = Signal(range(mvm_lines(config) + 1))
        low = Signal(8)                                # the input's low byte, fetched a cycle ahead
        steps_left = Signal(range(1 << BITS_MAX))
        shift = Signal(range(BITS_MAX))
        k = Signal(range(mvm_lines(config) + 1))       # output being written
        high = Signal()                                # its high byte next
        counts = Array(Signal(signed(BITS_MAX + 2), name=f"count{n}") for n in range(neurons))
        decided = Signal()                             # decide mode: output k's decision is made
        load = Signal(range(BIAS_BYTES + LFSR_BYTES + 1))   # bytes of its bias and LFSR fetched
        fire = Signal()

        # The neurons see the MVM's threshold (the output LSB) on both sides, in ADC mode: no leak, no
        # refractory period; the CORE pages keep the spiking inference's settings untouched.
        for page in range(config.neuron_pages):
            ours = port.neuron_cores[page]
            m.d.comb += [ours.thresh_pos.eq(s.threshold), ours.thresh_neg.eq(s.threshold),
                         ours.mode.eq(NeuronMode.ADC), ours.reset.eq(NeuronReset.SUBTRACT)]
        m.d.comb += [port.v_read_code.eq(s.v_read), port.direction.eq(s.direction),
                     port.row_core.eq(s.core), port.phase.eq(phase), port.convert_shift.eq(shift)]
        value = Signal(signed(16))
        m.d.comb += value.eq(Cat(low, self.x.data))
        magnitude = Signal(16)
        m.d.comb += magnitude.eq(Mux(value < 0, -value, value))
        # The core's flags: neuron k of core c is bit c * neurons + k.
        pos = Signal(neurons)
        neg = Signal(neurons)
        m.d.comb += [pos.eq(port.spike_pos.word_select(s.core, neurons)),
                     neg.eq(port.spike_neg.word_select(s.core, neurons))]
        output_index = Signal(range(mvm_lines(config) + neurons + 1))
        m.d.comb += output_index.eq(phase * neurons + k)

        def next_frame():
            """After a sample: another of the frame, the next lower bit, or the conversion."""
            m.d.sync += line.eq(0)
            with m.If(repeat + 1 < (1 << bit)):
                m.d.sync += repeat.eq(repeat + 1)
                m.next = "Fetch"
            with m.Elif(bit != 0):
                m.d.sync += [repeat.eq(0), bit.eq(bit - 1)]
                m.next = "Fetch"
            with m.Else():
                sar = s.conversion == Conversion.SAR
                m.d.sync += [steps_left.eq(Mux(sar, s.out_bits, (1 << s.out_bits) - 1)),
                             shift.eq(Mux(sar, s.out_bits - 1, 0))]
                m.next = "Convert"

        with m.FSM() as fsm:
            with m.State("Idle"):
                with m.If(self.start):
                    m.d.sync += [self.done.eq(0), phase.eq(0), self.cycles.eq(0), self.samples.eq(0),
                                 self.steps.eq(0)]
                    m.next = "Reset"

            with m.State("Reset"):
                m.d.comb += port.neuron_reset.eq(1)
                m.d.sync += [count.eq(0) for count in counts]
                m.d.sync += [bit.eq(s.in_bits - 1), repeat.eq(0), line.eq(0)]
                with m.If(port.neuron_ack):
                    m.next = "Fetch"
                with m.Elif(self.halt):
                    m.next = "Finished"

            # An input's two bytes: the low one addressed here, the high one in "Drive".
            with m.State("Fetch"):
                m.d.comb += self.x.addr.eq(line * ENTRY_BYTES)
                m.next = "Fetch-High"
            with m.State("Fetch-High"):
                m.d.comb += self.x.addr.eq(line * ENTRY_BYTES + 1)
                m.d.sync += low.eq(self.x.data)
                m.next = "Drive"
            with m.State("Drive"):
                m.d.comb += [port.mvm.eq(1), port.row_index.eq(line), port.line_negative.eq(value < 0),
                             port.row_strobe.eq(magnitude.bit_select(bit, 1))]
                m.d.sync += line.eq(line + 1)
                with m.If(line + 1 == inputs):
                    m.next = "Integrate"
                with m.Else():
                    m.next = "Fetch"

            with m.State("Integrate"):
                m.d.comb += [port.mvm.eq(1), port.integrate.eq(1)]
                with m.If(port.neuron_ack):
                    m.d.sync += self.samples.eq(self.samples + 1)
                    next_frame()
                with m.Elif(self.halt):
                    m.next = "Finished"

            with m.State("Convert"):
                m.d.comb += [port.mvm.eq(1), port.convert.eq(1)]
                with m.If(port.neuron_ack):
                    for n in range(neurons):         # +-2^shift for each neuron that decided
                        m.d.sync += counts[n].eq(counts[n] + (Mux(pos[n], 1, Mux(neg[n], -1, 0)) << shift))
                    m.d.sync += [steps_left.eq(steps_left - 1), self.steps.eq(self.steps + 1)]
                    with m.If(s.conversion == Conversion.SAR):
                        m.d.sync += shift.eq(shift - 1)
                    with m.If(steps_left == 1):
                        m.d.sync += [k.eq(0), high.eq(0), decided.eq(0)]
                        m.next = "Write"
                with m.Elif(self.halt):
                    m.next = "Finished"

            # The phase's outputs, two bytes each; rows past the last of a backward MVM are not written.
            # In decide mode an output is first decided ("Noise-Load" .. "Noise-Store"), then written.
            with m.State("Write"):
                entry = Signal(signed(16))
                m.d.comb += entry.eq(counts[k])
                undecided = Signal()                 # decide mode, an output not decided yet
                if config.mvm_decide:
                    with m.If(s.decide):
                        m.d.comb += entry.eq(fire)
                    m.d.comb += undecided.eq(s.decide & ~decided & (output_index < outputs))
                with m.If(undecided):
                    m.d.sync += load.eq(0)
                    if config.mvm_decide:
                        m.next = "Noise-Load"
                with m.Else():
                    m.d.comb += [self.y.addr.eq(output_index * ENTRY_BYTES + high),
                                 self.y.data.eq(Mux(high, entry[8:], entry[:8])),
                                 self.y.en.eq(output_index < outputs)]
                    m.d.sync += high.eq(~high)
                    with m.If(high):
                        m.d.sync += [k.eq(k + 1), decided.eq(0)]
                        with m.If(k == neurons - 1):
                            with m.If(backward & ((phase + 1) * neurons < config.rows)):
                                m.d.sync += phase.eq(phase + 1)
                                m.next = "Reset"
                            with m.Else():
                                m.next = "Finished"

            if config.mvm_decide:
                self._decide_states(m, counts[k], output_index, decided, load, fire)

            with m.State("Finished"):
                m.d.sync += self.done.eq(1)
                m.next = "Idle"
        m.d.comb += self.busy.eq(~fsm.ongoing("Idle"))
        with m.If(self.busy):
            m.d.sync += self.cycles.eq(self.cycles + 1)
        return m

    def _decide_states(self, m, count, line, decided, load, fire):
        """Decide mode's states, within the FSM: output `line`'s stochastic neuron, its `count` in, `fire`
        out (held until the next), `decided` set when it is; `load` counts the bytes fetched."""
        s = self.settings
        bias = Signal(8 * BIAS_BYTES)
        state = Signal(8 * LFSR_BYTES)
        # 2 (y + b) + 2 M (d_1 + ... + d_K) + e: at most 2 (2^9 + 2^15) + 2 * 15 * 15 + 1 in magnitude.
        total = Signal(signed(20))
        draw = Signal(range(16 + 1))
        m.d.comb += fire.eq(total > 0)
        # A byte a cycle, read ports synchronous: byte n is addressed at load n, shifted in at load n + 1.
        with m.State("Noise-Load"):
            m.d.comb += [self.bias.addr.eq(line * BIAS_BYTES + load),
                         self.lfsr_read.addr.eq(line * LFSR_BYTES + load - BIAS_BYTES)]
            with m.If((load >= 1) & (load <= BIAS_BYTES)):
                m.d.sync += bias.eq(Cat(bias[8:], self.bias.data))
            with m.If(load > BIAS_BYTES):
                m.d.sync += state.eq(Cat(state[8:], self.lfsr_read.data))
            m.d.sync += load.eq(load + 1)
            with m.If(load == BIAS_BYTES + LFSR_BYTES):
                m.d.sync += [total.eq(2 * (count + bias.as_signed())), draw.eq(0)]
                m.next = "Noise-Step"
        # One LFSR step a cycle: K draws of +-2M half-LSBs, then the half-LSB dither e.
        with m.State("Noise-Step"):
            out = state[0]
            m.d.sync += [state.eq((state >> 1) ^ Mux(out, LFSR32_MASK, 0)), draw.eq(draw + 1)]
            with m.If(draw == s.draws):
                m.d.sync += [total.eq(total + Mux(out, 1, -1)), load.eq(0)]
                m.next = "Noise-Store"
            with m.Else():
                step = Signal(signed(6))
                m.d.comb += step.eq(s.magnitude << 1)
                m.d.sync += total.eq(total + Mux(out, step, -step))
        with m.State("Noise-Store"):
            m.d.comb += [self.lfsr_write.addr.eq(line * LFSR_BYTES + load),
                         self.lfsr_write.data.eq(state.word_select(load[:2], 8)), self.lfsr_write.en.eq(1)]
            m.d.sync += load.eq(load + 1)
            with m.If(load == LFSR_BYTES - 1):
                m.d.sync += decided.eq(1)
                m.next = "Write"
