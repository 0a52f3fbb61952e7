"""Running spiking inference on the chip over any SPI frame transport.

    runner = InferenceRunner(RegisterClient(transport, TABLE), config)
    runner.configure(NeuronCodes(thresh_pos=7, thresh_neg=7), v_read_code=6, routing=table_bytes)
    result = runner.run([[(core, row), ...] for each time step])      # output events, ticks included

The input events of all steps (each step closed by a tick) are streamed into the input FIFO as it has
room, as many per SPI frame as fit (the `spike_in_burst` window), and the output FIFO is drained as the
chip fills it, as many events per frame as it holds (the `spike_out_burst` window), so runs longer than
either FIFO work; the chip waits for the host (back-pressure) rather than losing a spike.

One round of the run is at most three frames: both FIFO levels in one burst read (its status byte also
says whether the run has ended), the inputs that fit in one burst write, the outputs waiting in one burst
read (one frame per output event on a build without the window, `ChipConfig.output_burst` off). Errors
are checked from the next frame's status byte (`RegisterClient.batched`), not by a NOP after
each access. A co-simulated digit of the demo takes about 20 frames this way (docs/inference.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import ChipConfig
from ..models.macro import NeuronCodes, codes_per_core
from ..protocol import EVENT_TICK, StatusBit, input_event, routing_table_bytes
from .registers import ChipError, RegisterClient, check_identity, check_int, check_seconds

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
        if not isinstance(regs, RegisterClient):
            raise TypeError(f"regs must be a RegisterClient, not {type(regs).__name__}")
        if not isinstance(config, ChipConfig):
            raise TypeError(f"config must be a ChipConfig, not {type(config).__name__}")
        poll_seconds = check_seconds("poll_seconds", poll_seconds, positive=True)
        timeout_seconds = check_seconds("timeout_seconds", timeout_seconds, positive=True)
        self.regs = regs
        self.config = config
        self.poll_seconds = poll_seconds
        #: In the chip's time (simulated seconds in co-simulation).
        self.timeout_seconds = timeout_seconds

    def configure(self, codes, v_read_code: int, routing: bytes) -> None:
        """Write the neurons' settings (`codes`: one NeuronCodes for every core, or a list of one per core,
        into the CORE pages) and the routing table. Values the chip itself refuses at the start of a run
        (a zero threshold, a read code above its limit) are the chip's to flag, so they pass here if they
        fit their registers; `Chip.configure` refuses them before sending."""
        pages = check_configuration(self.config, self.regs.table, codes, v_read_code, routing)
        check_identity(self.regs, self.config)
        regs = self.regs
        regs.write_window("routing", 0, routing)
        for page, page_codes in enumerate(pages):
            for name in NEURON_CORE_REGISTERS:
                regs.write(f"core{page}_{name}", int(getattr(page_codes, name)))
        regs.write("neuron_v_read", v_read_code)

    def run(self, host_steps: list[list[tuple[int, int]]]) -> InferenceRun:
        regs = self.regs
        check_host_steps(host_steps)
        check_int("the number of time steps", len(host_steps), 1,
                  (1 << (8 * regs.table.register("neuron_timesteps").size)) - 1)
        check_identity(regs, self.config)
        words = [w for step in host_steps for w in ([input_event(c, r) for c, r in step] + [EVENT_TICK])]
        # Dropped events are counted by the chip and reported, not a failure of the run.
        regs.tolerate, regs.noticed = frozenset({"route_drop"}), set()
        try:
            with regs.batched():
                regs.write("neuron_timesteps", len(host_steps))
                regs.write("ctrl", regs.table.register("ctrl").field("inf_start").mask)
                events = self._stream(words)
                steps, = regs.read_many("neuron_step")
                row_events, spikes, dropped = regs.read_many("neuron_row_events", "neuron_spikes", "neuron_dropped")
        finally:
            regs.tolerate = frozenset()
        run = InferenceRun(events=events, steps=steps, row_events=row_events, spikes=spikes, dropped=dropped,
                           warnings=sorted(regs.noticed))
        if run.steps > len(host_steps):
            raise ChipError(f"the chip reports {run.steps} time steps run of the {len(host_steps)} asked for: "
                            f"impossible, the link or the chip is not sound")
        return run

    def _stream(self, words: list[int]) -> list[int]:
        """Feed the input FIFO and drain the output FIFO, a round at a time, until the run is done."""
        regs = self.regs
        events: list[int] = []
        sent, waited = 0, 0.0
        while True:
            in_level, out_level = regs.read_many("fifo_in_level", "fifo_out_level")
            # The status byte as that read began: ended then, so the level read after it holds every event.
            ended = regs.last_status & StatusBit.INFER_DONE and not regs.last_status & StatusBit.BUSY
            batch = words[sent:sent + self.config.input_fifo_depth - in_level]
            if batch and not ended:
                regs.write_window("spike_in_burst", 0, b"".join(w.to_bytes(2, "little") for w in batch))
                sent += len(batch)
            if out_level and self.config.output_burst:
                data = regs.read_window("spike_out_burst", 0, 2 * out_level)
                events += [int.from_bytes(data[i:i + 2], "little") for i in range(0, len(data), 2)]
            elif out_level:                               # a build without the burst window: one per frame
                events += [regs.read("fifo_spike_out") for _ in range(out_level)]
            if ended:
                return events
            if not batch and not out_level:
                if waited > self.timeout_seconds:
                    regs.write("ctrl", regs.table.register("ctrl").field("inf_abort").mask)
                    raise ChipError(f"inference did not finish within {self.timeout_seconds} s; stopped")
                regs.idle(self.poll_seconds)
                waited += self.poll_seconds


# ---- argument checks (before any frame is sent) ---------------------------------------------------------
def check_host_steps(host_steps, config: ChipConfig | None = None) -> None:
    """A non-empty list of time steps, each a list of (core, row) integer pairs that fit an input event
    (and, given `config`, name a row of a core the chip has)."""
    if isinstance(host_steps, (str, bytes)) or not isinstance(host_steps, (list, tuple)):
        raise TypeError(f"host_steps must be a list of time steps, not {type(host_steps).__name__}")
    if not host_steps:
        raise ValueError("an inference needs at least one time step")
    for index, step in enumerate(host_steps):
        if isinstance(step, (str, bytes)) or not isinstance(step, (list, tuple)):
            raise TypeError(f"time step {index} must be a list of (core, row) events, not {type(step).__name__}")
        for event in step:
            if not isinstance(event, (list, tuple)) or len(event) != 2:
                raise TypeError(f"time step {index}: an event is a (core, row) pair, not {event!r}")
            core, row = check_int(f"time step {index}: event core", event[0], 0), check_int(
                f"time step {index}: event row", event[1], 0)
            if config is not None and not (core < config.cores and row < config.rows):
                raise ValueError(f"time step {index}: event ({core}, {row}) names no row of the chip "
                                 f"({config.cores} cores of {config.rows} rows)")
            try:
                input_event(core, row)
            except ValueError as error:
                raise ValueError(f"time step {index}: {error}") from None


#: A CORE page's registers, each named after the NeuronCodes field it holds.
NEURON_CORE_REGISTERS = ("thresh_pos", "thresh_neg", "leak", "refractory", "mode", "reset")


def neuron_pages(config: ChipConfig, codes) -> list[NeuronCodes]:
    """The NeuronCodes of each CORE page the chip has, from one NeuronCodes for every core or a list of
    one per core; a build with one page (per_core_neurons off) takes per-core codes only if they agree."""
    if not isinstance(codes, NeuronCodes):
        if isinstance(codes, (str, bytes)) or not isinstance(codes, (list, tuple)):
            raise TypeError(f"codes must be NeuronCodes or a list of one per core, not {type(codes).__name__}")
        for index, core_codes in enumerate(codes):
            if not isinstance(core_codes, NeuronCodes):
                raise TypeError(f"codes[{index}] must be NeuronCodes, not {type(core_codes).__name__}")
    per_core = codes_per_core(codes, config.cores)          # a wrong count: ModelInputError, a ValueError
    if config.neuron_pages == 1:
        if any(core_codes != per_core[0] for core_codes in per_core):
            raise ValueError(f"config {config.name!r} has one page of neuron settings for every core "
                             f"(per_core_neurons off), so the cores cannot differ: {per_core}")
        return per_core[:1]
    return per_core


def check_configuration(config: ChipConfig, table, codes, v_read_code, routing) -> list[NeuronCodes]:
    """Types, and values that fit their registers; returns the codes of each CORE page."""
    pages = neuron_pages(config, codes)
    for page, page_codes in enumerate(pages):
        for name in NEURON_CORE_REGISTERS:
            register = table.register(f"core0_{name}")          # every page has the same registers
            where = f"core {page}: " if len(pages) > 1 else ""
            check_int(f"{where}NeuronCodes.{name}", getattr(page_codes, name), 0, (1 << (8 * register.size)) - 1)
    register = table.register("neuron_v_read")
    check_int("v_read_code", v_read_code, 0, (1 << (8 * register.size)) - 1)
    if not isinstance(routing, (bytes, bytearray, memoryview)):
        raise TypeError(f"routing must be bytes, not {type(routing).__name__}")
    size = routing_table_bytes(config)
    if len(routing) != size:
        raise ValueError(f"routing table has {len(routing)} bytes, the chip's has {size}")
    return pages
