"""The chip's golden trace: every byte CIPO carries in one seeded co-simulated session, held against the
recording in tests/golden/chip_trace.json, on both simulators.

The session is a host's whole life with the chip: identification, programming rows of both cores through
the P&V engine (per-level recipes), their read-back, routing and neuron set-up, three inferences with
polling (so the cycle timing of every engine is in the number of status frames), cell relaxation and a
read-back, then a seeded random frame campaign (valid and malformed frames, every error path). A
refactoring that keeps behaviour identical keeps this trace; one that changes a single CIPO byte or one
poll names the first frame that differs. A deliberate change to the chip re-records it:

    RRAM_CIM_RECORD_GOLDEN=1 python -m pytest tests/test_golden_trace.py -n 0

and the commit says why the trace moved.
"""

import hashlib
import json
import os
import pathlib
import random

import numpy as np

from rram_cim.config import REFERENCE
from rram_cim.host.chip import Chip
from rram_cim.host.compiler import Layer, compile_network
from rram_cim.host.registers_gen import TABLE
from rram_cim.protocol import EVENT_TICK
from rram_cim.sim.cosim_link import CosimTransport
from rram_cim.sim.frame_generator import FrameGenerator
from rram_cim.models.recipes import LEVELS

GOLDEN = pathlib.Path(__file__).parent / "golden" / "chip_trace.json"
SEED = 2026
RANDOM_FRAMES = 600


class Recorder:
    """A frame transport that keeps every (frame, reply) it passes on; anything else goes to `inner`."""

    def __init__(self, inner):
        self.inner = inner
        self.exchanges: list[tuple[bytes, bytes]] = []

    def exchange(self, frame: bytes) -> bytes:
        reply = self.inner.exchange(frame)
        self.exchanges.append((bytes(frame), bytes(reply)))
        return reply

    def __getattr__(self, name):
        return getattr(self.inner, name)


def session(built) -> tuple[list, dict]:
    rng = np.random.default_rng(SEED)
    layers = [Layer(rng.integers(0, 8, (2, 4)), rng.integers(0, 8, (2, 4)), 2),
              Layer(rng.integers(0, 8, (4, 3)), rng.integers(0, 8, (4, 3)), 4)]
    mapping = compile_network(layers, LEVELS, REFERENCE, threshold_code=2, v_read_code=6)
    results = {}
    with CosimTransport(config=REFERENCE, seed=SEED, built=built, log=lambda *_: None) as transport:
        link = Recorder(transport)
        chip = Chip(link, REFERENCE)
        for core, targets in enumerate(mapping.targets):
            program = chip.program(core, targets[:4 if core else 2])
            results[f"program{core}"] = [program.pulses_total, int(program.codes.sum()),
                                         program.cells_done, program.cells_failed, program.pulses_total]
        chip.configure(mapping)
        for i in range(3):
            raster = rng.random((6, 2)) < 0.8
            scores, run = chip.classify(mapping, raster)
            results[f"infer{i}"] = {"events": [int(event) for event in run.events],
                                    "counters": [run.steps, run.spikes, run.row_events, run.dropped]}
        chip.relax(86400)
        results["relaxed"] = chip.read_codes(0, 0, 2).astype(int).tolist()
        frames = FrameGenerator(TABLE, random.Random(SEED))
        sent = 0
        while sent < RANDOM_FRAMES:
            frame = frames.next()
            if frame.bits is None:          # the link sends whole frames; cut ones are the campaign's
                link.exchange(frame.frame)
                sent += 1
    return link.exchanges, results


def digest(frame: bytes, reply: bytes) -> str:
    return hashlib.sha256(frame + b"|" + reply).hexdigest()[:12]


def test_the_chip_answers_every_frame_of_the_golden_session_as_recorded(chip_build):
    exchanges, results = session(chip_build)
    digests = [digest(frame, reply) for frame, reply in exchanges]
    if os.environ.get("RRAM_CIM_RECORD_GOLDEN") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps({"seed": SEED, "frames": len(digests), "results": results,
                                      "digests": digests}, indent=0) + "\n")
    golden = json.loads(GOLDEN.read_text())
    for index, (expected, (frame, reply)) in enumerate(zip(golden["digests"], exchanges)):
        assert digest(frame, reply) == expected, (
            f"{chip_build.simulator}: frame {index} of {len(exchanges)} differs from the recording: "
            f"sent {frame.hex()}, CIPO {reply.hex()}")
    assert len(exchanges) == golden["frames"], f"{len(exchanges)} frames, recorded {golden['frames']}"
    assert results == golden["results"]
    # Not vacuous: the session programmed cells, spiked, and the campaign hit the error paths.
    assert results["program0"][4] > 0
    assert any(not event & EVENT_TICK for i in range(3) for event in results[f"infer{i}"]["events"])
    assert len(exchanges) > RANDOM_FRAMES + 100
