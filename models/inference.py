"""Spiking inference at the transaction level: the golden model the chip's inference RTL is scored against.

Semantics, one time step after another (the same as `rtl/inference.py`):

1. the rows to pulse are the events the router queued in the previous step (in queue order), then the
   host's input events up to its tick; a row pulsed twice in a step is pulsed once (it is a voltage
   level for the step, not a charge);
2. integrate: every core's pulsed rows sit at the input read voltage, the others at 0 V; each neuron
   takes one sample of its differential column voltage (`AnalogMacro.integrate`);
3. fire: the comparators decide +1 / -1 / 0 spikes (`AnalogMacro.fire`);
4. route: spikes in order of (core, neuron, positive before negative) look up the routing table; a
   spike goes to the host output FIFO and/or becomes an input event of a row for the next step; the
   row queue holds `route_fifo_depth` events and drops (and counts) the rest; a destination outside
   the chip is dropped and counted as it is routed, and so is a host input event naming one;
5. a tick on the output FIFO ends the step.

The analog work goes through the same `AnalogMacro` methods the cocotb bridge calls, so with the neuron
noise off the RTL co-simulation must reproduce these spike trains exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..config import ChipConfig
from ..protocol import (EVENT_TICK, ROUTE_ENTRY_BYTES, output_event, route_destinations, route_offset,
                        routing_table_bytes, unpack_route)
from .device import ModelInputError
from .macro import AnalogMacro, NeuronCodes

__all__ = ["InferenceModel", "InferenceResult", "NeuronCodes"]


@dataclass
class InferenceResult:
    spikes: np.ndarray                      # (steps, cores, neurons) in {-1, 0, +1}
    events: list[int]                       # what the host output FIFO receives, ticks included
    row_events: int = 0                     # row events delivered (a row named twice in a step counts twice)
    dropped: int = 0                        # routed events lost: queue full or destination outside the chip
    routed: list[list[tuple[int, int]]] = field(default_factory=list)   # per step, (core, row) delivered


class InferenceModel:
    def __init__(self, macro: AnalogMacro, routing: bytes, codes: NeuronCodes, v_read_code: int):
        config = macro.config
        size = routing_table_bytes(config)
        if len(routing) != size:
            raise ModelInputError(f"routing table has {len(routing)} bytes, the chip's has {size}")
        self.macro = macro
        self.config: ChipConfig = config
        self.routing = bytes(routing)
        self.codes = codes
        self.v_read_code = v_read_code

    def route(self, core: int, neuron: int, negative: bool):
        """One spike's routing entry (`protocol.RouteEntry`: `.to_host`, `.to_row`, `.core`, `.row`, `.copies`)."""
        at = route_offset(self.config.neurons, core, neuron, int(negative))
        return unpack_route(self.routing[at:at + ROUTE_ENTRY_BYTES])

    def run(self, host_events: list[list[tuple[int, int]]]) -> InferenceResult:
        """Run one time step per element of `host_events` (each a list of (core, row) input events),
        starting from reset neurons."""
        config, macro = self.config, self.macro
        macro.reset_neurons()
        steps = len(host_events)
        result = InferenceResult(spikes=np.zeros((steps, config.cores, config.neurons), np.int8), events=[])
        queued: list[tuple[int, int]] = []
        for t, arriving in enumerate(host_events):
            delivered = []
            for core, row in [*queued, *arriving]:
                if 0 <= core < config.cores and 0 <= row < config.rows:
                    delivered.append((core, row))
                else:
                    result.dropped += 1
            result.routed.append(delivered)
            for core, row in delivered:
                macro.drive_row(core, row)
            result.row_events += len(delivered)
            macro.integrate(self.v_read_code, self.codes)
            positive, negative = macro.fire(self.codes)
            result.spikes[t] = positive.astype(np.int8) - negative.astype(np.int8)
            queued = []
            for core, neuron, sign in _spike_order(positive, negative):
                entry = self.route(core, neuron, sign)
                if entry.to_host:
                    result.events.append(output_event(core, neuron, sign))
                for destination in route_destinations(entry, config.route_fanout):
                    inside = destination[0] < config.cores and destination[1] < config.rows
                    if inside and len(queued) < config.route_fifo_depth:
                        queued.append(destination)
                    else:
                        result.dropped += 1
            result.events.append(EVENT_TICK)
        return result


def _spike_order(positive: np.ndarray, negative: np.ndarray):
    """(core, neuron, negative) of every spike, in the router's priority order."""
    flags = np.stack([positive, negative], axis=-1)          # cores x neurons x sign
    for core, neuron, sign in zip(*np.nonzero(flags)):
        yield int(core), int(neuron), bool(sign)
