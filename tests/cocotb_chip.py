"""cocotb tests of the chip top through its SPI pins, run by tests/test_cocotb_chip.py on Icarus and
Verilator. Every frame is scored against `RegisterFileModel`.

The tests share one simulator run (`rram-cim sim` runs the module whole, in this order), and the chip's
windows are block RAM, which `rst` does not clear: what one test wrote into `pv_target` is there for the
next. So each test starts from a known state through `start()`: the chip is reset and the scoreboard's
model is the one the previous test left, reset the same way (`RegisterFileModel.reset`). If the previous
test stopped in the middle of a frame (a mismatch, a timeout), that model may not match the chip any
more, so the windows are read back unchecked and the model seeded from them.
"""

from __future__ import annotations

import os
import random

import cocotb

from rram_cim.host.frames import read_frame, write_frame
from rram_cim.protocol import StatusBit
from rram_cim.sim.chip_bench import READ_HEADER_BYTES, ChipBench
from rram_cim.sim.frame_generator import FrameGenerator
from rram_cim.sim.regfile_model import RegisterFileModel

#: SCK dividers covered, from the fastest the target supports to the slowest the issue asks for;
#: 5.5 and 7.3 put SCK edges at every phase of the system clock.
DIVIDERS = (4, 5.5, 7.3, 16, 64)
CAMPAIGN_FRAMES = int(os.environ.get("RRAM_CIM_CAMPAIGN_FRAMES", "10000"))
READBACK_BURST = 128
#: The divider test's window burst and the bytes read on either side of it.
BURST, MARGIN = 16, 4


class _Session:
    """What outlives one cocotb test in a simulator run: the scoreboard model and whether it is in step."""
    model: RegisterFileModel | None = None
    #: False from the moment a frame is sent until the model has taken it and agreed with the chip.
    in_step = True


class SpiBench(ChipBench):
    async def checked_frame(self, frame: bytes, bits: int | None = None, context: str = "") -> bytes:
        _Session.in_step = False
        miso = await super().checked_frame(frame, bits, context)
        _Session.in_step = True
        return miso


async def start(dut) -> SpiBench:
    """A bench on a freshly reset chip whose model knows what the chip holds (see the module's docstring)."""
    tb = SpiBench(dut)
    await tb.reset()
    if _Session.model is not None:
        _Session.model.reset()
        tb.model = _Session.model
        if not _Session.in_step:
            await seed_windows(tb)
    _Session.model, _Session.in_step = tb.model, True
    return tb


async def seed_windows(tb: ChipBench):
    """Read every readable window through SPI, unchecked, into the model."""
    for window in tb.model.table.windows:
        if not window.sw_readable:
            continue
        for offset in range(0, window.size, READBACK_BURST):
            length = min(READBACK_BURST, window.size - offset)
            miso = await tb.spi.transfer(read_frame(window.address + offset, length))
            tb.model.load_window(window.name, offset, miso[READ_HEADER_BYTES:])
    tb.dut._log.info("model seeded from the chip's windows (the previous test stopped mid-frame)")


async def read_back_everything(tb: ChipBench, context: str):
    """Read every register and every window through SPI; the model checks each byte."""
    for register in tb.model.table.registers:
        if register.name == "fifo_spike_out":
            continue                                   # reading it pops: not a passive check
        await tb.checked_frame(read_frame(register.address, register.size), context=context)
    for window in tb.model.table.windows:
        for offset in range(0, window.size, READBACK_BURST):
            length = min(READBACK_BURST, window.size - offset)
            await tb.checked_frame(read_frame(window.address + offset, length), context=context)


@cocotb.test()
async def chip_id_and_geometry_at_every_divider(dut):
    tb = await start(dut)
    for divider in DIVIDERS:
        tb.spi.sck_period_ps = tb.sck_period_ps(divider)
        await tb.checked_frame(read_frame(0, 3), context=f"divider {divider}")
        for name in ("geometry_cores", "geometry_rows"):     # a hole between them: two frames
            register = tb.model.table.register(name)
            await tb.checked_frame(read_frame(register.address, 1 if name == "geometry_cores" else 8),
                                   context=f"divider {divider}")
        # A burst of distinct bytes into a memory window at a different place per divider, read back
        # with a margin on both sides: a byte landing at the wrong address shows.
        rng = random.Random(str(divider))
        data = rng.randbytes(BURST)
        window = tb.model.table.window("pv_target")
        offset = rng.randrange(MARGIN, window.size - BURST - MARGIN)
        await tb.checked_frame(write_frame(window.address + offset, data), context=f"divider {divider}")
        await tb.checked_frame(read_frame(window.address + offset - MARGIN, BURST + 2 * MARGIN),
                               context=f"divider {divider}")
        assert tb.model.window("pv_target")[offset:offset + BURST] == data
    assert tb.model.register("error") == 0


@cocotb.test()
async def random_frames_never_corrupt_the_register_file(dut):
    seed = int(os.environ.get("RRAM_CIM_SEED", cocotb.RANDOM_SEED))
    rng = random.Random(seed)
    tb = await start(dut)
    generator = FrameGenerator(tb.model.table, rng)
    kinds: dict[str, int] = {}
    try:
        for index in range(CAMPAIGN_FRAMES):
            if index % 50 == 0:
                # Mostly fast SCK: Icarus runs ~35k cycles/s here; every divider up to 64 is covered by
                # chip_id_and_geometry_at_every_divider, the campaign still sweeps phases up to 16.
                tb.spi.sck_period_ps = tb.sck_period_ps(rng.choice((4, 4, 4, 4, 5, 6.5, 9, 16)))
            frame = generator.next()
            kinds[frame.kind] = kinds.get(frame.kind, 0) + 1
            await tb.checked_frame(frame.frame, frame.bits, context=f"({frame.kind})")
            if index % 2000 == 1999:
                dut._log.info("campaign: %d frames, %s", index + 1, kinds)
        tb.spi.sck_period_ps = tb.sck_period_ps(4)
        await read_back_everything(tb, "final read-back")
    except AssertionError as error:
        raise AssertionError(f"{error}\nreproduce with RRAM_CIM_SEED={seed}") from None
    dut._log.info("campaign passed: %d frames (seed %d): %s", CAMPAIGN_FRAMES, seed, kinds)
    assert all(kinds.get(kind, 0) > 0 for kind, _ in generator._kinds), kinds


@cocotb.test()
async def status_byte_reports_sticky_error_until_cleared(dut):
    tb = await start(dut)
    await tb.checked_frame(bytes([0x42]))
    assert (await tb.checked_frame(bytes([0x00])))[0] & StatusBit.ERROR
    error = tb.model.table.register("error")
    await tb.checked_frame(bytes([0x02, *error.address.to_bytes(3, "big"), 0xFF, 0xFF]))
    assert not (await tb.checked_frame(bytes([0x00])))[0] & StatusBit.ERROR
