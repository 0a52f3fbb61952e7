"""The chip top in Amaranth's simulator with a constant macro behind the shared port responder: the end of
a run as the status byte shows it, the watchdog on a macro that stops answering, a stop that must not wait
for a host that is not reading, and counters read while they count."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from rram_cim.config import REFERENCE, REFERENCE_LITE
from rram_cim.host.frames import nop_frame, parse_reply, read_frame, write_frame
from rram_cim.host.registers_gen import ADDR, TABLE
from rram_cim.protocol import EVENT_TICK, StatusBit
from rram_cim.rtl.chip import Chip
from rram_cim.rtl.watchdog import TICK_BITS
from rram_cim.sim.amaranth_responder import port_responder_process
from rram_cim.sim.amaranth_spi import AmaranthSPIMaster
from rram_cim.sim.port_responder import PortResponder

CTRL = TABLE.register("ctrl")
#: Commit P&V slot 0 and start in one write: a run needs its first slot committed (docs/pv_engine.md).
PV_GO = CTRL.field("pv_start").mask | CTRL.field("pv_commit").mask
ERROR = TABLE.register("error")
TIMEOUT = ERROR.field("analog_timeout").mask
#: Cycles the macro takes to answer a sense or a neuron strobe.
LATENCY = 4


class ConstantMacro:
    """A macro with no cells: every sense reads `code`, no neuron ever spikes, pulses change nothing."""

    def __init__(self, config, code: int = 0):
        self.config, self.code = config, code
        self.quiet = np.zeros((config.cores, config.neurons), bool)

    def pulse(self, *request):
        pass

    def sense(self, core, row, column, bl_code):
        return self.code

    def drive_row(self, core, row):
        pass

    def integrate(self, v_read_code, codes):
        pass

    def fire(self, codes):
        return self.quiet, self.quiet

    def reset_neurons(self):
        pass


class Host:
    """Frames through the Amaranth SPI master at f_sys / 4."""

    def __init__(self, dut):
        self.master = AmaranthSPIMaster(dut.spi, 4)

    async def frame(self, ctx, frame):
        return parse_reply(frame, await self.master.transfer(ctx, frame, gap=2))

    async def write(self, ctx, name, value, size=None):
        size = size or TABLE.register(name).size
        await self.frame(ctx, write_frame(getattr(ADDR, name), value.to_bytes(size, "little")))

    async def read(self, ctx, name, size=None):
        size = size or TABLE.register(name).size
        return int.from_bytes((await self.frame(ctx, read_frame(getattr(ADDR, name), size))).data, "little")

    async def status(self, ctx):
        return (await self.frame(ctx, nop_frame())).status


def run(scenario, code=0, config=REFERENCE):
    dut = Chip(config)
    macro = PortResponder(ConstantMacro(config, code), sense_latency=LATENCY, neuron_latency=LATENCY)
    host = Host(dut)
    sim = Simulator(dut)
    sim.add_clock(1e-6 / 12)
    sim.add_process(port_responder_process(macro, dut.port))

    async def bench(ctx):
        ctx.set(dut.spi.cs_n, 1)
        await ctx.tick().repeat(4)
        await scenario(host, macro, ctx)

    sim.add_testbench(bench)
    sim.run()


async def verify_only_recipe(host, ctx):
    """One cell, verify only: the shortest P&V run."""
    await host.write(ctx, "pv_mode", 0)
    await host.write(ctx, "pv_max_pulses", 0)


async def one_step_recipe(host, ctx, timesteps=1):
    for name, value in [("core0_thresh_pos", 100), ("core0_thresh_neg", 100), ("core1_thresh_pos", 100),
                        ("core1_thresh_neg", 100), ("neuron_v_read", 4), ("neuron_timesteps", timesteps)]:
        await host.write(ctx, name, value)


async def sweep_status_over_the_end(host, ctx, start, done_bit, delays):
    """Start a run, wait `delay` cycles, send a NOP: its status byte, for every delay."""
    seen = []
    for delay in delays:
        await start()
        if delay:
            await ctx.tick().repeat(delay)
        seen.append(await host.status(ctx))
    busy = [bool(s & StatusBit.BUSY) for s in seen]
    done = [bool(s & done_bit) for s in seen]
    return seen, busy, done


def check_atomic(seen, busy, done):
    # Every status byte shows the run either running or finished, never neither, never both...
    assert all(b != d for b, d in zip(busy, done)), [f"{s:#04x}" for s in seen]
    # ...and the sweep crossed the end: busy for the early NOPs, done for the late ones, one edge.
    assert busy[0] and done[-1]
    assert busy == sorted(busy, reverse=True)


def test_pv_busy_turns_into_done_in_one_edge_for_a_nop_at_any_cycle():
    async def scenario(host, macro, ctx):
        await verify_only_recipe(host, ctx)
        start = lambda: host.write(ctx, "ctrl", PV_GO)
        check_atomic(*await sweep_status_over_the_end(host, ctx, start, StatusBit.PV_DONE, range(0, 40)))
    run(scenario)


def test_inference_busy_turns_into_done_in_one_edge_for_a_nop_at_any_cycle():
    async def scenario(host, macro, ctx):
        await one_step_recipe(host, ctx)

        async def start():
            await host.read(ctx, "fifo_spike_out")                       # room for this run's tick
            await host.write(ctx, "fifo_spike_in", EVENT_TICK)
            await host.write(ctx, "ctrl", CTRL.field("inf_start").mask)
        check_atomic(*await sweep_status_over_the_end(host, ctx, start, StatusBit.INFER_DONE, range(0, 60)))
        assert await host.read(ctx, "error") == ERROR.field("out_underflow").mask   # the first pop only
    run(scenario)


@pytest.mark.parametrize("engine", ["pv", "inference"])
def test_a_silent_macro_ends_the_run_at_the_watchdog_limit_and_the_chip_recovers(engine):
    limit = 0                                          # (0 + 1) * 4096 cycles
    bound = (limit + 1) << TICK_BITS

    async def scenario(host, macro, ctx):
        await host.write(ctx, "watchdog", limit)
        done_bit = StatusBit.PV_DONE if engine == "pv" else StatusBit.INFER_DONE
        if engine == "pv":
            await verify_only_recipe(host, ctx)
            start = PV_GO
        else:
            await one_step_recipe(host, ctx)
            await host.write(ctx, "fifo_spike_in", EVENT_TICK)
            start = CTRL.field("inf_start").mask
        macro.silent = True
        await host.write(ctx, "ctrl", start)
        await ctx.tick().repeat(bound // 2)
        assert await host.status(ctx) & StatusBit.BUSY             # still waiting: the limit is not up
        await ctx.tick().repeat(bound)
        status = await host.status(ctx)
        assert status & (StatusBit.BUSY | done_bit | StatusBit.ERROR) == done_bit | StatusBit.ERROR
        assert await host.read(ctx, "error") == TIMEOUT
        # The macro answers again: the next run needs no reset and sets no error.
        await host.write(ctx, "error", TIMEOUT)
        macro.silent = False
        if engine == "inference":
            await host.write(ctx, "fifo_spike_in", EVENT_TICK)
        await host.write(ctx, "ctrl", start)
        await ctx.tick().repeat(bound // 4)
        status = await host.status(ctx)
        assert status & (StatusBit.BUSY | done_bit | StatusBit.ERROR) == done_bit
        if engine == "pv":
            assert await host.read(ctx, "pv_cells_done") == 1
    run(scenario, code=0)


def test_abort_ends_a_silent_macros_run_no_later_than_the_watchdog():
    async def scenario(host, macro, ctx):
        await host.write(ctx, "watchdog", 0)
        await verify_only_recipe(host, ctx)
        macro.silent = True
        await host.write(ctx, "ctrl", PV_GO)
        await host.write(ctx, "ctrl", CTRL.field("pv_abort").mask)
        assert await host.status(ctx) & StatusBit.BUSY
        await ctx.tick().repeat(1 << TICK_BITS)
        assert not await host.status(ctx) & StatusBit.BUSY
    run(scenario)


def test_stopping_inference_does_not_wait_for_a_host_that_is_not_reading():
    depth = REFERENCE.output_fifo_depth

    async def scenario(host, macro, ctx):
        await one_step_recipe(host, ctx, timesteps=depth + 8)
        await host.write(ctx, "ctrl", CTRL.field("inf_start").mask)
        for _ in range(depth + 2):                    # more steps than the output FIFO holds ticks of
            await host.write(ctx, "fifo_spike_in", EVENT_TICK)
        await ctx.tick().repeat(200)
        assert await host.read(ctx, "fifo_out_level") == depth
        assert await host.status(ctx) & StatusBit.BUSY          # blocked on the full output FIFO
        await host.write(ctx, "ctrl", CTRL.field("inf_abort").mask)
        await ctx.tick().repeat(4)
        status = await host.status(ctx)
        assert status & (StatusBit.BUSY | StatusBit.INFER_DONE) == StatusBit.INFER_DONE
        assert await host.read(ctx, "neuron_step") == depth
    run(scenario)


def test_a_counter_read_low_byte_first_does_not_tear_while_the_engine_counts():
    """A core programmed toward a code the macro never reaches: pulses_total counts a pulse every few
    cycles while the host reads it; each 4-byte read is one snapshot, so the values never go backwards
    (a torn read across a carry out of the low byte would jump ahead by 256 and then fall back)."""
    async def scenario(host, macro, ctx):
        await host.write(ctx, "pv_mode", 2 << 6)                      # scope: the whole core
        for name, value in [("pv_max_pulses", 255), ("pv_pulse_width", 1), ("pv_window", 0),
                            ("pv_bl_start", 10), ("pv_bl_step", 1), ("pv_bl_stop", 100)]:
            await host.write(ctx, name, value)
        await host.frame(ctx, write_frame(ADDR.pv_target, bytes([200]) * 8))
        await host.write(ctx, "ctrl", PV_GO)
        values = [await host.read(ctx, "pv_pulses_total") for _ in range(120)]
        assert values[-1] > 3 * 256                                   # the low byte carried several times
        assert values == sorted(values), values
    run(scenario, code=0)


def test_a_start_that_would_pulse_with_zero_width_is_refused_and_nothing_runs():
    """Every pulse of width 0 would be refused by the drivers' interlock while the budget ran out: the
    chip refuses the start instead (a verify-only run needs no width and still starts)."""
    async def scenario(host, macro, ctx):
        await host.write(ctx, "pv_max_pulses", 5)
        await host.write(ctx, "ctrl", PV_GO)
        status = await host.status(ctx)
        assert status & (StatusBit.BUSY | StatusBit.PV_DONE | StatusBit.ERROR) == StatusBit.ERROR
        assert await host.read(ctx, "error") == ERROR.field("pv_config").mask
        assert await host.read(ctx, "pv_pulses_total") == 0
        await host.write(ctx, "error", ERROR.field("pv_config").mask)
        await verify_only_recipe(host, ctx)
        await host.write(ctx, "ctrl", PV_GO)
        await ctx.tick().repeat(200)
        assert await host.status(ctx) & (StatusBit.PV_DONE | StatusBit.ERROR) == StatusBit.PV_DONE
    run(scenario)


def test_slots_committed_for_a_run_that_never_starts_are_freed_by_an_abort():
    """A host that commits a slot and then gives up leaves it owned; the next host's abort (no run going)
    frees both slots and points fill at slot 0 again, and then a commit and start run normally."""
    stream = TABLE.register("pv_stream")

    async def scenario(host, macro, ctx):
        await host.write(ctx, "ctrl", CTRL.field("pv_commit").mask)
        assert await host.read(ctx, "pv_stream") == (1 << stream.field("owned").lsb) | 1 | stream.field("ready").mask
        await host.write(ctx, "ctrl", CTRL.field("pv_abort").mask)
        assert await host.read(ctx, "pv_stream") == stream.field("ready").mask
        assert not await host.status(ctx) & (StatusBit.BUSY | StatusBit.PV_DONE)
        await verify_only_recipe(host, ctx)
        await host.write(ctx, "ctrl", PV_GO)
        await ctx.tick().repeat(200)
        assert await host.status(ctx) & (StatusBit.PV_DONE | StatusBit.ERROR) == StatusBit.PV_DONE
        assert await host.read(ctx, "pv_cells_done") == 1
    run(scenario)


@pytest.mark.parametrize("config", [REFERENCE, REFERENCE_LITE], ids=["reference", "reference-lite"])
def test_packed_targets_are_refused_only_by_a_build_without_packing(config):
    """3-bit targets start on the reference chip; reference-lite (pv_packing off) refuses them with
    pv_config and runs only with a byte per target. GEOMETRY.pv_target_widths says which."""
    async def scenario(host, macro, ctx):
        assert await host.read(ctx, "geometry_pv_target_widths") == config.pv_target_widths
        await verify_only_recipe(host, ctx)
        await host.write(ctx, "pv_target_bits", 3)
        await host.write(ctx, "ctrl", PV_GO)
        await ctx.tick().repeat(200)
        status = await host.status(ctx)
        if config.pv_packing:
            assert status & (StatusBit.PV_DONE | StatusBit.ERROR) == StatusBit.PV_DONE
        else:
            assert status & (StatusBit.PV_DONE | StatusBit.ERROR) == StatusBit.ERROR
            assert await host.read(ctx, "error") == ERROR.field("pv_config").mask
            await host.write(ctx, "error", ERROR.field("pv_config").mask)
            await host.write(ctx, "pv_target_bits", 8)
            await host.write(ctx, "ctrl", CTRL.field("pv_start").mask)     # slot 0 is still committed
            await ctx.tick().repeat(200)
            assert await host.status(ctx) & (StatusBit.PV_DONE | StatusBit.ERROR) == StatusBit.PV_DONE
    run(scenario, config=config)


@pytest.mark.parametrize("config", [REFERENCE, REFERENCE.replace(name="no-stochastic", mvm_stochastic=False)],
                         ids=["reference", "no-stochastic"])
def test_a_decide_start_is_refused_without_noise_or_without_the_stochastic_neurons(config):
    """Decide mode with MVM.noise draws or magnitude 0 is refused with mvm_config, as is any decide start on
    a build without ChipConfig.mvm_stochastic (GEOMETRY.mvm_decide 0); the build that has it then starts."""
    mode = TABLE.register("mvm_mode")
    noise = TABLE.register("mvm_noise")

    async def refused(host, ctx):
        await host.write(ctx, "ctrl", CTRL.field("mvm_start").mask)
        assert await host.status(ctx) & (StatusBit.BUSY | StatusBit.MVM_DONE | StatusBit.ERROR) == StatusBit.ERROR
        assert await host.read(ctx, "error") == ERROR.field("mvm_config").mask
        await host.write(ctx, "error", ERROR.field("mvm_config").mask)

    async def scenario(host, macro, ctx):
        assert await host.read(ctx, "geometry_mvm_decide") == config.mvm_decide
        assert await host.read(ctx, "mvm_noise") == noise.pack(draws=8, magnitude=2)
        for name, value in dict(mvm_bits=TABLE.register("mvm_bits").pack(in_bits=1, out_bits=1), mvm_core=0,
                                mvm_v_read=6, mvm_threshold=2, mvm_mode=mode.pack(decide=1)).items():
            await host.write(ctx, name, value)
        if not config.mvm_decide:
            await refused(host, ctx)
            return
        for bad in (noise.pack(draws=0, magnitude=2), noise.pack(draws=8, magnitude=0)):
            await host.write(ctx, "mvm_noise", bad)
            await refused(host, ctx)
        await host.write(ctx, "mvm_noise", noise.pack(draws=15, magnitude=15))
        await host.write(ctx, "ctrl", CTRL.field("mvm_start").mask)
        assert await host.status(ctx) & (StatusBit.BUSY | StatusBit.ERROR) == StatusBit.BUSY
    run(scenario, config=config)
