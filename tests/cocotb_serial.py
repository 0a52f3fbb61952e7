"""cocotb tests of the board path: the FPGA build (chip, emulated macro, UART-to-SPI bridge) driven
through its UART pins by the host's own `SerialTransport`, `RegisterClient` and `Chip`.

Run by tests/test_serial_link.py on Verilator and Icarus.
"""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.task import bridge
from cocotb.triggers import ClockCycles

from rram_cim.host.chip import Chip
from rram_cim.host.frames import LinkError
from rram_cim.host.registers import RegisterClient
from rram_cim.host.registers_gen import TABLE
from rram_cim.host.serial_link import SerialTransport
from rram_cim.models.recipes import LEVELS
from rram_cim.protocol import StatusBit
from rram_cim.sim.chip_bench import config_from_env
from rram_cim.sim.clock import start_clock
from rram_cim.sim.cocotb_uart import UartStream

BAUD = 1_000_000


async def start(dut):
    config = config_from_env()
    start_clock(dut, config)
    uart = UartStream(dut.rx, dut.tx, BAUD)
    dut.rst.value = 1
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    uart.start()
    # The emulated macro clears its cell memory after reset: one cycle per cell.
    await ClockCycles(dut.clk, config.cells_total + 16)
    return config, uart


@cocotb.test()
async def registers_answer_through_the_uart_bridge(dut):
    config, uart = await start(dut)
    regs = RegisterClient(SerialTransport(uart), TABLE)
    assert await bridge(regs.read)("chip_id") == 0x52C1
    await bridge(regs.write)("pv_bl_start", 0x5A)
    assert await bridge(regs.read)("pv_bl_start") == 0x5A
    status = await bridge(regs.status)()
    assert not status & (StatusBit.ERROR | StatusBit.BUSY)
    assert uart.framing_errors == 0


@cocotb.test()
async def chip_programs_and_infers_over_the_serial_link(dut):
    """The host Chip over the board's link: two rows programmed through the P&V engine on the emulated
    cells (several pulses a cell, read back near target), then an inference that spikes."""
    config, uart = await start(dut)
    chip = Chip(SerialTransport(uart), config)
    targets = np.random.default_rng(3).choice(LEVELS, size=(2, config.columns))
    result = await bridge(chip.program)(0, targets)
    error = np.abs(result.codes - targets)
    dut._log.info("serial P&V: %.2f pulses/cell, %d failed, median read-back error %d codes",
                  result.mean_pulses, result.cells_failed, np.median(error))
    assert result.mean_pulses > 1.5 and result.cells_failed <= 2
    assert np.median(error) <= 3 and np.percentile(error, 90) <= 8
    assert result.cells_done + result.cells_failed == targets.size

    from rram_cim.host.compiler import Layer, compile_network
    plus = (targets[:, 0::2][:, :4] > 120).astype(int) * 7
    minus = 7 - plus
    mapping = compile_network([Layer(np.vstack([plus, np.zeros((62, 4), int)]),
                                     np.vstack([minus, np.zeros((62, 4), int)]), 2)],
                              LEVELS, config, threshold_code=2, v_read_code=6)
    await bridge(chip.configure)(mapping)
    scores, run = await bridge(chip.classify)(mapping, np.ones((8, 2), bool))
    dut._log.info("serial inference: scores %s, %d spikes", scores.tolist(), run.spikes)
    assert run.steps == 8 and run.row_events == 16 and run.spikes > 0
    assert await bridge(chip.errors)() == []


@cocotb.test()
async def a_silent_link_is_reported_not_hung(dut):
    """Nothing answers a frame sent while the FPGA is held in reset: the transport says so."""
    config, uart = await start(dut)
    dut.rst.value = 1
    uart.read_timeout_ps = 2 * 10 ** 9          # 2 ms of silence: a one-byte frame answers in 20 us
    link = SerialTransport(uart)
    try:
        await bridge(link.exchange)(b"\x00")
    except LinkError as error:
        assert "answered 0 of 1 bytes" in str(error)
    else:
        raise AssertionError("a frame to a board in reset got an answer")
    dut.rst.value = 0
