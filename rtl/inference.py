"""The inference sequencer and spike router: time steps of address-event spiking inference.

Each time step (the golden model `models.inference` states the same rules):

1. Rows: the events the router queued in the last step, then the host's input events up to its tick,
   each strobed onto the port (`row_strobe`, one cycle per event). Events naming a core or row outside
   the chip are dropped and counted.
2. Integrate, then fire: strobes on the neuron bank, each held until the macro acknowledges.
3. Route: a priority encoder walks the spike flags core by core (positive before negative, lowest
   neuron first), read from the port, where the macro holds them until the next fire; each spike's
   routing-table entry sends it to the host output FIFO (with back-pressure: the step waits for room)
   and/or queues input events for the next step: its row on each of its `copies + 1` consecutive cores,
   one per cycle (a full queue drops an event and counts it, never silently).
4. A tick on the output FIFO ends the step.

So a step costs a few cycles per event and per spike plus a constant per core, never a scan of the
array. `stop` ends the run at the end of the current step, or at once while waiting for host input or
for room in the output FIFO (a host that stops a run need not drain it first). `halt` (the chip's watchdog:
the macro stopped acknowledging a neuron strobe) ends it at once.
"""

from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import ReadPort
from amaranth.utils import ceil_log2
from amaranth.lib.wiring import In, Out

from ..config import ChipConfig
from ..protocol import (EVENT_BITS, ROUTE_ENTRY_BYTES, InputEvent, OutputEvent, RouteEntry, route_offset,
                        routing_table_bytes)
from .analog_port import NeuronPort, neuron_cores_layout
from .block_fifo import BlockFIFO
from .engine_settings import settings_layout

__all__ = ["InferenceSequencer", "NeuronSettings"]

COUNTER_BITS = 32
STEP_BITS = 16


def NeuronSettings(config: ChipConfig) -> data.StructLayout:
    """The run's parameters: the NEURON registers, named as rtl/engine_settings.py names them from the RDL.
    The neurons' own settings (each core's page) pass through the sequencer to the port as `cores`."""
    return settings_layout(config, "neuron_", {"timesteps": STEP_BITS, "v_read": config.dac_bits})


@dataclass
class Routing:
    """The router's signals the routing states share with the rest of the FSM."""
    entry: Signal
    fetch: Signal
    core: Signal
    neuron: object
    negative: object
    index: Signal
    pending: Signal
    queue: BlockFIFO
    stopping: Signal


class InferenceSequencer(wiring.Component):
    """Runs spiking inference: time steps of row events, integrate, fire and spike routing (module
    docstring), over every core at once.

    What it owns: the neuron members of the analog port while it runs, the router's row queue, the
    step/row-event/spike/drop counters, and the read port of the routing window; it reads the NEURON
    registers and the CORE pages in place and consumes the input FIFO, feeding the output FIFO. How it is verified: in
    Amaranth's simulator and in cocotb on both simulators spike for spike against the golden model
    `models.inference` (tests/test_inference.py, tests/test_cocotb_chip_infer.py), at the status byte
    (tests/test_chip_handshakes.py) and in the golden trace (tests/test_golden_trace.py).
    """

    def __init__(self, config: ChipConfig):
        self._config = config
        super().__init__({
            "settings":   In(NeuronSettings(config)),
            "cores":      In(neuron_cores_layout(config)),
            "start":      In(1),
            "stop":       In(1),
            # The macro stopped answering (the chip's watchdog): end the run at once, where it waits.
            "halt":       In(1),
            "busy":       Out(1),
            "done":       Out(1),
            "host_in":    In(stream.Signature(EVENT_BITS)),
            "host_out":   Out(stream.Signature(EVENT_BITS)),
            # The routing table: a synchronous read port, ROUTE_ENTRY_BYTES per (core, neuron, sign).
            "route":      In(ReadPort.Signature(addr_width=ceil_log2(routing_table_bytes(config)), shape=8)),
            "step":       Out(STEP_BITS),
            "row_events": Out(COUNTER_BITS),
            "spikes":     Out(COUNTER_BITS),
            "dropped":    Out(COUNTER_BITS),
            "drop":       Out(1),                    # strobes with each dropped event (the ERROR bit)
            "port":       Out(NeuronPort(config)),
        })

    def elaborate(self, platform):
        config = self._config
        m = Module()
        # The NEURON registers, read where they are: the chip refuses host writes to them while the
        # sequencer runs, so a run sees one set of settings without a copy.
        s = self.settings
        port = self.port
        per_core = 2 * config.neurons                 # flags of one core: {neg, pos} per neuron

        # Row events bound for the next step, in the input-event format.
        m.submodules.queue = queue = BlockFIFO(width=InputEvent.size, depth=config.route_fifo_depth)

        stopping = Signal()
        core = Signal(range(config.cores))
        pending = Signal(per_core)                    # this core's spikes still to route
        index = Signal(range(per_core))               # neuron * 2 + sign of the spike being routed
        fetch = Signal(range(ROUTE_ENTRY_BYTES + 1))
        entry = Signal(RouteEntry)

        m.d.comb += [port.neuron_cores.eq(self.cores), port.v_read_code.eq(s.v_read)]

        def strobe_row(event, valid):
            """Put an input event's row on the port this cycle, or drop it if it names no row of the chip."""
            event = InputEvent(event)
            inside = (event.core < config.cores) & (event.row < config.rows)
            m.d.comb += [port.row_core.eq(event.core), port.row_index.eq(event.row),
                         port.row_strobe.eq(valid & inside)]
            with m.If(valid & inside):
                m.d.sync += self.row_events.eq(self.row_events + 1)
            with m.If(valid & ~inside):
                m.d.comb += self.drop.eq(1)

        with m.If(self.drop):
            m.d.sync += self.dropped.eq(self.dropped + 1)
        with m.If(self.stop & self.busy):
            m.d.sync += stopping.eq(1)

        # The lowest pending flag of the current core. A chain of one test per flag is the smallest (the
        # iCEBreaker's 64 flags per core: the tree took 54 more cells there, past its budget); past 64
        # flags a tree of log2(flags) levels keeps the clock (256 flags as a chain missed the ULX3S's 25 MHz).
        lowest = Signal(range(per_core))
        if per_core > CHAIN_FLAGS_MAX:
            m.d.comb += lowest.eq(lowest_set_bit(pending))
        else:
            for bit in reversed(range(per_core)):       # later assignments win: walk down from the top
                with m.If(pending[bit]):
                    m.d.comb += lowest.eq(bit)
        neuron = index >> 1
        negative = index[0]
        m.d.comb += self.route.addr.eq(route_offset(config.neurons, core, neuron, negative) + fetch)
        # The macro's flags of one core, interleaved as {neg, pos} per neuron: bit (neuron, sign). Selected
        # per core before interleaving, so no expression spans every neuron of the chip (6,144 on NeuRRAM's
        # 48 cores: one such concatenation is past what Verilator parses). Not latched: the port holds them
        # from a fire's acknowledge to the next.
        def flags_of(which):
            positive, negative = (port.spike_pos.word_select(which, config.neurons),
                                  port.spike_neg.word_select(which, config.neurons))
            return Cat(*(Cat(positive[i], negative[i]) for i in range(config.neurons)))

        with m.FSM() as fsm:
            with m.State("Idle"):
                with m.If(self.start):
                    m.d.sync += [stopping.eq(0), self.done.eq(0), self.step.eq(0),
                                 self.row_events.eq(0), self.spikes.eq(0), self.dropped.eq(0)]
                    m.next = "Flush"

            # Row events the last run routed into a step that never came belong to no step of this one.
            with m.State("Flush"):
                m.d.comb += queue.r_en.eq(1)
                with m.If(~queue.r_rdy):
                    m.next = "Reset"

            with m.State("Reset"):
                m.d.comb += port.neuron_reset.eq(1)
                with m.If(port.neuron_ack):
                    m.next = "Queued-Rows"
                with m.Elif(self.halt):
                    m.next = "Finished"

            # Last step's routed events, all of them: nothing is queued while they drain.
            with m.State("Queued-Rows"):
                m.d.comb += queue.r_en.eq(1)
                strobe_row(queue.r_data, queue.r_rdy)
                with m.If(~queue.r_rdy):
                    m.next = "Host-Rows"

            with m.State("Host-Rows"):
                m.d.comb += self.host_in.ready.eq(1)
                tick = InputEvent(self.host_in.payload).tick
                strobe_row(self.host_in.payload, self.host_in.valid & ~tick)
                with m.If(self.host_in.valid & tick):
                    m.next = "Integrate"
                with m.Elif(stopping & ~self.host_in.valid):
                    m.next = "Finished"              # the host stopped feeding: do not wait for its tick

            with m.State("Integrate"):
                m.d.comb += port.integrate.eq(1)
                with m.If(port.neuron_ack):
                    m.next = "Fire"
                with m.Elif(self.halt):
                    m.next = "Finished"

            with m.State("Fire"):
                m.d.comb += port.fire.eq(1)
                with m.If(port.neuron_ack):
                    m.d.sync += [core.eq(0), pending.eq(flags_of(0))]
                    m.next = "Scan"
                with m.Elif(self.halt):
                    m.next = "Finished"

            with m.State("Scan"):
                with m.If(pending.any()):
                    m.d.sync += [index.eq(lowest), fetch.eq(0)]
                    m.next = "Fetch"
                with m.Elif(core == config.cores - 1):
                    m.next = "Tick"
                with m.Else():
                    m.d.sync += [core.eq(core + 1), pending.eq(flags_of((core + 1)[:len(core)]))]

            self._route_states(m, config, Routing(entry, fetch, core, neuron, negative, index, pending, queue,
                                                  stopping))

            with m.State("Tick"):
                m.d.comb += [self.host_out.valid.eq(1), self.host_out.payload.eq(OutputEvent.const({"tick": 1}))]
                with m.If(self.host_out.ready):
                    m.d.sync += self.step.eq(self.step + 1)
                    with m.If(stopping | (self.step + 1 >= s.timesteps)):
                        m.next = "Finished"
                    with m.Else():
                        m.next = "Queued-Rows"
                with m.Elif(stopping):
                    m.next = "Finished"

            with m.State("Finished"):
                m.d.sync += self.done.eq(1)
                m.next = "Idle"
        # Busy in every state but Idle, Finished included: busy falls on the edge done rises, so no status
        # byte shows neither.
        m.d.comb += self.busy.eq(~fsm.ongoing("Idle"))
        return m

    def _route_states(self, m, config, r: "Routing"):
        """The FSM's states that route one spike: its routing entry fetched, then to the host, then to a row."""
        # The entry, one byte per cycle: the byte addressed last cycle arrives now.
        with m.State("Fetch"):
            m.d.sync += r.fetch.eq(r.fetch + 1)
            with m.If(r.fetch != 0):
                m.d.sync += r.entry.as_value().word_select((r.fetch - 1).as_unsigned()[:len(r.fetch)], 8).eq(
                    self.route.data)
            with m.If(r.fetch == ROUTE_ENTRY_BYTES):
                m.d.sync += self.spikes.eq(self.spikes + 1)
                m.next = "To-Host"

        with m.State("To-Host"):
            spike = Signal(OutputEvent)
            m.d.comb += [spike.neuron.eq(r.neuron), spike.core.eq(r.core), spike.negative.eq(r.negative)]
            with m.If(r.entry.to_host):
                m.d.comb += [self.host_out.valid.eq(1), self.host_out.payload.eq(spike)]
                with m.If(self.host_out.ready):
                    m.next = "To-Row"
                with m.Elif(r.stopping):           # stopped with no room: the host is not reading
                    m.next = "Finished"
            with m.Else():
                m.next = "To-Row"

        # One destination a cycle: the entry's row on its core, then (a split layer's cores) on the next,
        # counting the entry's own copies down (the entry is fetched afresh for every spike).
        with m.State("To-Row"):
            inside = (r.entry.core < config.cores) & (r.entry.row < config.rows)
            routed = Signal(InputEvent)
            m.d.comb += [routed.row.eq(r.entry.row), routed.core.eq(r.entry.core)]
            with m.If(r.entry.to_row):
                with m.If(inside & r.queue.w_rdy):
                    m.d.comb += [r.queue.w_en.eq(1), r.queue.w_data.eq(routed)]
                with m.Else():
                    m.d.comb += self.drop.eq(1)
            with m.If(r.entry.to_row & (r.entry.copies != 0) & config.route_fanout):
                m.d.sync += [r.entry.core.eq(r.entry.core + 1), r.entry.copies.eq(r.entry.copies - 1)]
            with m.Else():
                m.d.sync += r.pending.eq(r.pending & ~(Const(1, len(r.pending)) << r.index))
                m.next = "Scan"



#: Most spike flags per core the sequencer scans with a chain of tests rather than a tree.
CHAIN_FLAGS_MAX = 64


def lowest_set_bit(value: Value) -> Value:
    """The index of the lowest set bit of `value` (meaningless if none is set), as a balanced tree: each level pairs
    neighbours, keeping the lower one's index if it has a set bit, else the upper one's with one more
    high bit set."""
    nodes = [(value[i], Const(0, 0)) for i in range(len(value))]
    while len(nodes) > 1:
        if len(nodes) % 2:
            nodes.append((Const(0, 1), Const(0, len(nodes[0][1]))))
        nodes = [(low_any | high_any, Mux(low_any, Cat(low_index, Const(0, 1)), Cat(high_index, Const(1, 1))))
                 for (low_any, low_index), (high_any, high_index) in zip(nodes[0::2], nodes[1::2])]
    return nodes[0][1]
