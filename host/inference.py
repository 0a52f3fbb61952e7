"""Running spiking inference on the chip over any SPI frame transport.

    runner = InferenceRunner(RegisterClient(transport, TABLE), config)
    runner.configure(NeuronCodes(thresh_pos=7, thresh_neg=7), v_read_code=6, routing=table_bytes)
    result = runner.run([[(core, row), ...] for each time step])      # output events, ticks included

The input events of all steps (each step closed by a tick) are streamed into the input FIFO as it has
room, as many per SPI frame as fit (the `spike_in_burst` window), and the output FIFO is drained as the
chip fills it, so runs longer than either FIFO work; the
chip waits for the host (back-pressure) rather than losing a spike.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import ChipConfig
from ..models.macro import NeuronCodes
from ..protocol import EVENT_TICK, ROUTE_ENTRY_BYTES, StatusBit, input_event
from .registers import RegisterClient

__all__ = ["InferenceRunner", "InferenceRun"]


@dataclass
class InferenceRun:
    events: list[int]               # the output FIFO's events, ticks included
    steps: int
    row_events: int
    spikes: int
    dropped: int
    #: ERROR bits the run raised without failing (route_drop when events were dropped).
    warnings: list[str]


class InferenceRunner:
    def __init__(self, regs: RegisterClient, config: ChipConfig, poll_seconds: float = 50e-6,
                 timeout_seconds: float = 10.0):
        self.regs = regs
        self.config = config
        self.poll_seconds = poll_seconds
        #: In the chip's time (simulated seconds in co-simulation).
        self.timeout_seconds = timeout_seconds

    def configure(self, codes: NeuronCodes, v_read_code: int, routing: bytes) -> None:
        config = self.config
        size = config.cores * config.neurons * 2 * ROUTE_ENTRY_BYTES
        if len(routing) != size:
            raise ValueError(f"routing table has {len(routing)} bytes, the chip's has {size}")
        regs = self.regs
        regs.write_window("routing", 0, routing)
        regs.write("neuron_thresh_pos", codes.thresh_pos)
        regs.write("neuron_thresh_neg", codes.thresh_neg)
        regs.write("neuron_leak", codes.leak)
        regs.write("neuron_refractory", codes.refractory)
        regs.write("neuron_mode", int(codes.mode))
        regs.write("neuron_v_read", v_read_code)

    def run(self, host_steps: list[list[tuple[int, int]]]) -> InferenceRun:
        regs = self.regs
        if not host_steps:
            raise ValueError("an inference needs at least one time step")
        words = [w for step in host_steps for w in ([input_event(c, r) for c, r in step] + [EVENT_TICK])]
        regs.write("neuron_timesteps", len(host_steps))
        regs.write("ctrl", regs.table.register("ctrl").field("inf_start").mask)
        # Dropped events are counted by the chip and reported, not a failure of the run.
        regs.tolerate, regs.noticed = frozenset({"route_drop"}), set()
        try:
            events = self._stream(words)
        finally:
            regs.tolerate = frozenset()
        return InferenceRun(events=events, steps=regs.read("neuron_step"), row_events=regs.read("neuron_row_events"),
                            spikes=regs.read("neuron_spikes"), dropped=regs.read("neuron_dropped"),
                            warnings=sorted(regs.noticed))

    def _stream(self, words: list[int]) -> list[int]:
        """Feed the input FIFO and drain the output FIFO until the run is done."""
        regs = self.regs
        events: list[int] = []
        sent = 0

        def drain():
            for _ in range(regs.read("fifo_out_level")):
                events.append(regs.read("fifo_spike_out"))

        def feed_and_drain():
            nonlocal sent
            room = self.config.input_fifo_depth - regs.read("fifo_in_level")
            batch = words[sent:sent + room]
            if batch:                                  # one frame through the burst window
                regs.write_window("spike_in_burst", 0, b"".join(w.to_bytes(2, "little") for w in batch))
                sent += len(batch)
            drain()
        regs.wait_done(StatusBit.INFER_DONE, "inf_abort", self.timeout_seconds, self.poll_seconds,
                       between=feed_and_drain, what="inference")
        drain()
        return events
