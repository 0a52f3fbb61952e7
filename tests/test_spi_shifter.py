"""The co-simulation's gateware SPI controller (sim/spi_shifter.py) against a mode 0 target played by the
testbench: every bit both ways, CS low across a frame's chunks, SCK's halves and CS's rest as specified.
(The chip's own SPI target through it: tests/test_golden_trace.py and every CosimTransport test.)"""

import asyncio

import pytest
from amaranth.sim import Simulator

from rram_cim.sim.spi_master import ShifterMaster
from rram_cim.sim.spi_shifter import CHUNK_BYTES, CS_HIGH_PERIODS, SPIShifter

HIGH, LOW = 2, 3


def run_frames(frames: list[bytes], answers: list[bytes]):
    """Send each frame (chunked as ShifterMaster does) to a target answering `answers`; return what the
    target took, what the shifter received, and per frame the SCK high / low run lengths and the cycles CS
    stayed high after it."""
    dut = SPIShifter(HIGH, LOW)
    seen = {"copi": [], "received": [], "high": [], "low": [], "cs_rest": [], "cs_rose_mid_frame": False}

    async def bench(ctx):
        toggle = 0
        for frame, answer in zip(frames, answers):
            copi_bits, cipo_bits = [], [(answer[i // 8] >> (7 - i % 8)) & 1 for i in range(8 * len(answer))]
            got = bytearray()
            sck_runs = {0: [], 1: []}
            run_level, run_length, previous_sck = 0, 0, 0
            for offset in range(0, len(frame), CHUNK_BYTES):
                chunk = frame[offset:offset + CHUNK_BYTES]
                bits = 8 * len(chunk)
                ctx.set(dut.controls.chunk, int.from_bytes(chunk, "big") << (8 * CHUNK_BYTES - bits))
                ctx.set(dut.controls.bits, bits)
                ctx.set(dut.controls.last, offset + CHUNK_BYTES >= len(frame))
                toggle ^= 1
                ctx.set(dut.controls.start, toggle)
                cs_high = 0
                while ctx.get(dut.controls.done) != toggle:
                    cs_n, sck = ctx.get(dut.spi.cs_n), ctx.get(dut.spi.sck)
                    if not cs_n:
                        if sck and not previous_sck:                # rising edge: the target samples COPI
                            copi_bits.append(ctx.get(dut.spi.copi))
                        if not sck and previous_sck and cipo_bits:  # falling edge: it shifts out its next bit
                            cipo_bits.pop(0)
                        ctx.set(dut.spi.cipo, cipo_bits[0] if cipo_bits else 0)
                        if sck == run_level:
                            run_length += 1
                        else:
                            sck_runs[run_level].append(run_length)
                            run_level, run_length = sck, 1
                    else:
                        cs_high += 1
                        if offset + CHUNK_BYTES < len(frame) and copi_bits:
                            seen["cs_rose_mid_frame"] = True
                    previous_sck = sck
                    await ctx.tick()
                word = ctx.get(dut.controls.received) & ((1 << bits) - 1)
                got += word.to_bytes(len(chunk), "big")
            seen["copi"].append(bytes(int("".join(map(str, copi_bits[i:i + 8])), 2)
                                      for i in range(0, len(copi_bits), 8)))
            seen["received"].append(bytes(got))
            seen["high"].append(set(sck_runs[1]))
            seen["low"].append(set(sck_runs[0][1:]))     # the first low run starts with CS
            seen["cs_rest"].append(cs_high)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return seen


def test_frames_of_several_chunks_go_both_ways_bit_for_bit():
    frames = [bytes(range(3, 3 + 75)), b"\x81", bytes(255 - b for b in range(CHUNK_BYTES))]
    answers = [bytes((7 * i + 1) & 0xFF for i in range(len(f))) for f in frames]
    seen = run_frames(frames, answers)
    assert seen["copi"] == frames
    assert seen["received"] == answers
    assert not seen["cs_rose_mid_frame"]
    for high, low, rest in zip(seen["high"], seen["low"], seen["cs_rest"]):
        assert high == {HIGH}
        # Low halves last LOW cycles, or a cycle or two more where the next chunk is handed over.
        assert min(low) == LOW and max(low) <= LOW + 2
        assert rest >= CS_HIGH_PERIODS * (HIGH + LOW)


def test_sck_needs_a_cycle_in_each_half():
    with pytest.raises(ValueError, match="at least a cycle high and low"):
        SPIShifter(0, 2)


def test_an_empty_frame_is_refused_before_a_pin_is_touched():
    master = ShifterMaster.__new__(ShifterMaster)        # no simulator, no pins: the refusal comes first
    with pytest.raises(ValueError, match="at least one byte"):
        asyncio.run(master.transfer(b""))
