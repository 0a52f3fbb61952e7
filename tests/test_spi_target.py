"""SPI target and register decoder in Amaranth's simulator: directed cases, every error path."""

from collections import deque

import pytest
from amaranth.sim import Simulator

from rram_cim.config import REFERENCE
from rram_cim.host.frames import nop_frame, parse_reply, read_frame, write_frame
from rram_cim.host.registers_gen import ADDR, TABLE
from rram_cim.protocol import StatusBit
from rram_cim.rtl.chip import Chip
from rram_cim.sim.amaranth_spi import AmaranthSPIMaster
from rram_cim.sim.regfile_model import RegisterFileModel

ERROR = TABLE.register("error")


def run(scenario, divider=4):
    """Run `scenario(spi, ctx, model)` against the chip top; every transfer is checked against the model."""
    dut = Chip(REFERENCE)
    model = RegisterFileModel(REFERENCE)
    master = AmaranthSPIMaster(dut.spi, divider)

    class Checked:
        async def frame(self, ctx, frame, bits=None):
            miso = await master.transfer(ctx, frame, bits)
            expected = model.frame(frame, bits)
            if bits is None:
                reply = parse_reply(frame, miso)
                assert reply.status == expected.status, f"status {reply.status:#x} != {expected}"
                assert reply.data == expected.data, f"data {reply.data.hex()} != {expected}"
                return reply
            return None

        async def read(self, ctx, address, length):
            return (await self.frame(ctx, read_frame(address, length))).data

        async def write(self, ctx, address, data):
            return await self.frame(ctx, write_frame(address, data))

    sim = Simulator(dut)
    sim.add_clock(1e-6 / 12)

    async def testbench(ctx):
        ctx.set(dut.spi.cs_n, 1)
        await ctx.tick().repeat(4)
        await scenario(Checked(), ctx, model)

    sim.add_testbench(testbench)
    sim.run()
    return model


@pytest.mark.parametrize("divider", [4, 5, 7, 16, 64])
def test_chip_id_reads_at_every_divider(divider):
    async def scenario(spi, ctx, model):
        data = await spi.read(ctx, ADDR.chip_id, 3)
        version = TABLE.register("version")
        assert data == bytes([0xC1, 0x52, sum(f.reset << f.lsb for f in version.fields)])
    run(scenario, divider)


def test_scratch_write_then_read_and_status_marker():
    async def scenario(spi, ctx, model):
        await spi.write(ctx, ADDR.scratch, b"\xa5")
        assert await spi.read(ctx, ADDR.scratch, 1) == b"\xa5"
        reply = await spi.frame(ctx, nop_frame())
        assert reply.status == 0x80
    run(scenario)


def test_burst_write_and_read_of_a_memory_window_auto_increments():
    payload = bytes(range(1, 41))
    async def scenario(spi, ctx, model):
        await spi.write(ctx, ADDR.pv_target + 100, payload)
        assert await spi.read(ctx, ADDR.pv_target + 100, len(payload)) == payload
        assert await spi.read(ctx, ADDR.pv_target + 99, 1) == b"\x00"
    run(scenario)


def test_wide_register_burst_spans_its_bytes():
    async def scenario(spi, ctx, model):
        await spi.write(ctx, ADDR.core0_thresh_pos, b"\x34\x12\x78\x56")
        assert await spi.read(ctx, ADDR.core0_thresh_pos, 4) == b"\x34\x12\x78\x56"
    run(scenario)


def test_unknown_command_sets_sticky_error_and_changes_nothing():
    async def scenario(spi, ctx, model):
        await spi.frame(ctx, bytes([0x7E]) + write_frame(ADDR.scratch, b"\x55")[1:])
        reply = await spi.frame(ctx, nop_frame())
        assert reply.status & StatusBit.ERROR
        assert await spi.read(ctx, ADDR.error, 1) == bytes([ERROR.field("bad_command").mask])
        assert await spi.read(ctx, ADDR.scratch, 1) == b"\x00"
        await spi.write(ctx, ADDR.error, bytes([ERROR.field("bad_command").mask]))
        assert await spi.read(ctx, ADDR.error, 1) == b"\x00"
        assert not (await spi.frame(ctx, nop_frame())).status & StatusBit.ERROR
    run(scenario)


def test_unmapped_address_is_rejected_before_any_write():
    async def scenario(spi, ctx, model):
        await spi.write(ctx, 0x000007, b"\x11\x22")       # hole between ctrl and geometry
        assert await spi.read(ctx, ADDR.error, 1) == bytes([ERROR.field("bad_address").mask])
    run(scenario)


def test_burst_running_off_a_register_writes_up_to_the_hole_then_stops():
    async def scenario(spi, ctx, model):
        await spi.write(ctx, ADDR.watchdog, b"\x01\x02")             # a hole follows the watchdog register
        assert await spi.read(ctx, ADDR.watchdog, 1) == b"\x01"
        assert model.register("error") == ERROR.field("bad_address").mask
    run(scenario)


def test_write_to_read_only_register_is_refused():
    async def scenario(spi, ctx, model):
        await spi.write(ctx, ADDR.chip_id, b"\x00")
        await spi.write(ctx, ADDR.pv_pulses, b"\x07")
        assert await spi.read(ctx, ADDR.chip_id, 2) == b"\xc1\x52"
        assert await spi.read(ctx, ADDR.pv_pulses, 1) == b"\x00"
        assert model.register("error") == ERROR.field("read_only").mask
    run(scenario)


@pytest.mark.parametrize("bits", [3, 8 + 12, 8 * 4 + 5])
def test_chip_select_rising_mid_frame_is_a_truncation_that_changes_nothing(bits):
    async def scenario(spi, ctx, model):
        await spi.frame(ctx, write_frame(ADDR.scratch, b"\x3c"), bits=bits)
        assert await spi.read(ctx, ADDR.scratch, 1) == b"\x00"
        assert await spi.read(ctx, ADDR.error, 1) == bytes([ERROR.field("truncated").mask])
    run(scenario)


def test_frames_ending_on_byte_boundaries_are_not_truncations():
    async def scenario(spi, ctx, model):
        await spi.frame(ctx, b"", bits=0)
        await spi.frame(ctx, read_frame(ADDR.scratch, 0))
        await spi.frame(ctx, write_frame(ADDR.scratch, b""))
        assert await spi.read(ctx, ADDR.error, 1) == b"\x00"
    run(scenario)


def test_spike_input_fifo_counts_events_and_flags_overflow():
    depth = REFERENCE.input_fifo_depth
    async def scenario(spi, ctx, model):
        for event in range(depth + 1):
            await spi.write(ctx, ADDR.fifo_spike_in, event.to_bytes(2, "little"))
        assert await spi.read(ctx, ADDR.fifo_in_level, 2) == depth.to_bytes(2, "little")
        assert await spi.read(ctx, ADDR.error, 1) == bytes([ERROR.field("in_overflow").mask])
    run(scenario)


def test_reading_empty_output_fifo_flags_underflow():
    async def scenario(spi, ctx, model):
        assert await spi.read(ctx, ADDR.fifo_spike_out, 2) == b"\x00\x00"
        assert await spi.read(ctx, ADDR.error, 1) == bytes([ERROR.field("out_underflow").mask])
    run(scenario)


def test_read_past_the_end_of_a_window_is_flagged_at_the_first_extra_bit():
    window = TABLE.window("routing")
    async def scenario(spi, ctx, model):
        await spi.frame(ctx, read_frame(window.address + window.size - 1, 2))
        assert model.register("error") == ERROR.field("bad_address").mask
    run(scenario)


def test_burst_window_pushes_many_input_events_in_one_frame():
    async def scenario(spi, ctx, model):
        window = TABLE.window("spike_in_burst")
        events = [0x0102, 0x2304, 0x0005]
        await spi.write(ctx, window.address, b"".join(e.to_bytes(2, "little") for e in events))
        assert model.spike_in == deque(events)
        assert await spi.read(ctx, ADDR.fifo_in_level, 2) == (3).to_bytes(2, "little")
        # A dangling low byte waits for its high byte, in the register or the window.
        await spi.write(ctx, window.address + 2 * len(events), b"\x07")
        await spi.write(ctx, ADDR.fifo_spike_in + 1, b"\x08")
        assert model.spike_in[-1] == 0x0807
        assert await spi.read(ctx, ADDR.fifo_in_level, 2) == (4).to_bytes(2, "little")
    run(scenario)
