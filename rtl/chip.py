"""The chip top: SPI target, register decoder, memory windows, spike FIFOs, the program-and-verify
engine with its row/column drivers, the inference sequencer with its spike router, the MVM sequencer
(in a build with ChipConfig.mvm), and the analog macro port, whose cell members the drivers drive and
whose neuron members the inference or the MVM sequencer drives; the chip itself forwards trim writes.

The engines never share the macro: a start while another one runs is refused with an error. A
watchdog bounds every wait on the macro: a request it never answers ends the running engine's run with
ERROR.analog_timeout instead of leaving the chip busy until reset.
"""


from amaranth.hdl import Cat, Module, ResetInserter, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out, connect

from ..config import REFERENCE, ChipConfig
from ..protocol import (FAILED_LOG_ENTRY_BYTES, LEVEL_ENTRY_BYTES, Algorithm, NeuronCore, NeuronMode, Scope,
                        StatusBit, routing_table_bytes, valid_member)
from .analog_port import AnalogPort, CellPort, NeuronPort, Op
from .cell_driver import CellDriver, read_limit_code
from .engine_settings import join_settings, settings_fields
from .inference import InferenceSequencer
from .memory_window import MemoryWindow
from .mvm import BITS_MAX, MVMSequencer
from .pv_engine import PVEngine
from .pv_slots import SLOTS as PV_SLOTS
from .regbus import RegisterBus
from .regmap.generate import load_generated
from .spi_target import SPIPins, SPITarget
from .spike_fifos import SpikeInPort, SpikeOutPort
from .watchdog import HandshakeWatchdog

__all__ = ["Chip", "PAGE_BITS", "settings_page"]

#: The register map's pages: each engine's settings registers fill one 256-byte page.
PAGE_BITS = 8


class _PageRange:
    """Consecutive register-map pages: `matches(page)` is the RTL test of a page number against them."""

    def __init__(self, first: int, count: int):
        self.first, self.count = first, count

    def matches(self, page):
        return (page >= self.first) & (page < self.first + self.count)


def settings_page(table, prefix: str) -> int:
    """The page of the host-writable registers named `prefix...` (an engine's settings)."""
    pages = {table.register(register).address >> PAGE_BITS for register, _ in settings_fields(table, prefix).values()}
    if len(pages) != 1:
        raise ValueError(f"the {prefix}* settings registers span pages {sorted(pages)}: the chip locks one "
                         "page per engine while it runs; keep them in one page of rram_cim.rdl")
    return pages.pop()


class Chip(wiring.Component):
    """Top level: the SPI pins and the analog macro port (plus Amaranth's implicit clk and rst)."""

    def __init__(self, config: ChipConfig = REFERENCE):
        self._config = config
        super().__init__({"spi": In(SPIPins()), "port": Out(AnalogPort(config))})

    def elaborate(self, platform):
        config = self._config
        decoder_module, table_module = load_generated(config)
        table = table_module.TABLE
        m = Module()
        m.submodules.spi = spi = SPITarget()
        m.submodules.regs = regs = decoder_module.RegisterDecoder()

        connect(m, wiring.flipped(self.spi), spi.spi)

        # Host-writable windows are read by the engines; engine-writable ones are read by the host.
        slot_bytes = PV_SLOTS * config.pv_slot_cells
        windows = {
            "pv_target":  MemoryWindow(slot_bytes, host_writable=True, engine_writable=False, slots=PV_SLOTS),
            "pv_pulses":  MemoryWindow(slot_bytes, host_writable=False, engine_writable=True, slots=PV_SLOTS),
            "failed_log": MemoryWindow(config.failed_log_depth * FAILED_LOG_ENTRY_BYTES, host_writable=False,
                                       engine_writable=True),
            "pv_codes":   MemoryWindow(slot_bytes, host_writable=False, engine_writable=True, slots=PV_SLOTS),
            "pv_levels":  MemoryWindow(config.pv_levels * LEVEL_ENTRY_BYTES, host_writable=True,
                                       engine_writable=False),
            "routing":    MemoryWindow(routing_table_bytes(config), host_writable=True, engine_writable=False),
        }
        if config.mvm:                                   # a build without MVM has none of its map
            windows |= {"mvm_x": MemoryWindow(table.window("mvm_x").size, host_writable=True, engine_writable=False),
                        "mvm_y": MemoryWindow(table.window("mvm_y").size, host_writable=False, engine_writable=True),
                        "neuron_trim": MemoryWindow(table.window("neuron_trim").size, host_writable=True,
                                                    engine_writable=False)}
        if config.mvm_decide:                            # the stochastic neurons' biases and LFSR states
            windows |= {"mvm_bias": MemoryWindow(table.window("mvm_bias").size, host_writable=True,
                                                 engine_writable=False),
                        "mvm_lfsr": MemoryWindow(table.window("mvm_lfsr").size, host_writable=True,
                                                 engine_writable=True, engine_reads=True)}
        for name, window in windows.items():
            m.submodules[name] = window
            connect(m, getattr(regs, name), window.host)

        m.submodules.spike_in = spike_in = SpikeInPort(config.input_fifo_depth)
        m.submodules.spike_out = spike_out = SpikeOutPort(config.output_fifo_depth, burst=config.output_burst)
        connect(m, regs.fifo_spike_in, spike_in.host)
        connect(m, regs.spike_in_burst, spike_in.burst)
        connect(m, regs.fifo_spike_out, spike_out.host)
        if config.output_burst:
            connect(m, regs.spike_out_burst, spike_out.burst)
        m.d.comb += [regs.fifo_in_level.count.eq(spike_in.level),
                     regs.fifo_out_level.count.eq(spike_out.level)]

        m.submodules.pv = pv = PVEngine(config)
        # A halted run leaves the driver waiting for a sense answer that is not coming: reset it with the run.
        halt = Signal()
        driver = CellDriver(config)
        m.submodules.driver = ResetInserter(halt)(driver)
        connect(m, pv.cell, driver.request)
        connect(m, driver.response, pv.answer)
        m.submodules.sequencer = sequencer = InferenceSequencer(config)
        connect(m, spike_in.events, sequencer.host_in)
        connect(m, sequencer.host_out, spike_out.events)
        mvm = self._mvm(m, config, windows)
        mvm_busy = mvm.busy if mvm is not None else 0
        trim_write = self._join_port(m, config, driver.port, sequencer.port, sequencer.busy, mvm,
                                     getattr(regs, "neuron_trim", None))
        m.submodules.watchdog = watchdog = HandshakeWatchdog()
        port = self.port
        m.d.comb += [
            watchdog.waiting.eq(port.sense_req | port.neuron_reset | port.integrate | port.fire | port.convert),
            watchdog.answered.eq(port.sense_valid | port.neuron_ack),
            watchdog.limit.eq(regs.watchdog.limit),
            halt.eq(watchdog.expired),
            pv.halt.eq(halt),
            sequencer.halt.eq(halt),
        ]
        if mvm is not None:
            m.d.comb += mvm.halt.eq(halt)
        pv_refused = self._wire_pv(m, config, regs, pv, windows, other_busy=sequencer.busy | mvm_busy)
        # What an engine reads belongs to it while it runs: its windows, and its page of settings
        # registers, which it reads in place rather than copying. A host access then is refused.
        join_settings(m, table, "pv_", regs, pv.settings)
        join_settings(m, table, "neuron_", regs, sequencer.settings)
        core_pages = self._join_core_pages(m, config, table, regs, sequencer.cores)
        owner = {"routing": sequencer.busy, "mvm_x": mvm_busy, "mvm_y": mvm_busy, "mvm_bias": mvm_busy,
                 "mvm_lfsr": mvm_busy,
                 "neuron_trim": pv.busy | sequencer.busy | mvm_busy,
                 "pv_target": pv.owned, "pv_pulses": pv.owned, "pv_codes": pv.owned}
        for name, window in windows.items():
            m.d.comb += window.engine_owns.eq(owner.get(name, pv.busy))
        page = spi.bus.addr >> PAGE_BITS
        mvm_page = (page == settings_page(table, "mvm_")) & mvm_busy if mvm is not None else 0
        settings_refused = spi.bus.w_stb & (
            ((page == settings_page(table, "pv_")) & pv.busy)
            | (((page == settings_page(table, "neuron_")) | core_pages.matches(page)) & sequencer.busy)
            | mvm_page)
        self._join_bus(m, spi.bus, regs.bus, refuse_write=settings_refused)
        busy_refused = Signal()
        m.d.comb += busy_refused.eq(Cat(settings_refused, pv.commit_refused,
                                        *(window.host_refused for window in windows.values())).any())
        infer_refused = self._wire_inference(m, config, regs, sequencer, windows, other_busy=pv.busy | mvm_busy)
        mvm_refused = self._wire_mvm(m, config, table, regs, mvm, other_busy=pv.busy | sequencer.busy)
        if mvm is not None:
            m.d.comb += trim_write.eq(regs.neuron_trim.w_stb & ~windows["neuron_trim"].host_refused)

        self._join_status(m, table, regs, spi.status, busy=pv.busy | sequencer.busy | mvm_busy,
                          out_ready=spike_out.level != 0, set_by={
                              "bad_command": spi.bad_command, "bad_address": spi.bad_address,
                              "read_only": spi.read_only, "truncated": spi.truncated,
                              "in_overflow": spike_in.overflow, "out_underflow": spike_out.underflow,
                              "pv_config": pv_refused, "infer_config": infer_refused,
                              "route_drop": sequencer.drop, "engine_busy": busy_refused,
                              "analog_timeout": watchdog.expired, "mvm_config": mvm_refused})
        return m

    @staticmethod
    def _join_status(m, table, regs, status_byte, busy, out_ready, set_by):
        """Each sticky ERROR bit (the table's `error` fields) set by its strobe in `set_by`; STATUS.error
        their OR; the status byte's low bits STATUS's, in protocol.StatusBit's order."""
        error_fields = [field.name for field in table.register("error").fields]
        if set(error_fields) != set(set_by):
            raise ValueError(f"ERROR fields {sorted(error_fields)} in rram_cim.rdl, but the chip sets "
                             f"{sorted(set_by)}: give every ERROR field its strobe in rtl/chip.py")
        errors, status = regs.error, regs.status
        for name in error_fields:
            m.d.comb += getattr(errors, f"{name}_set").eq(set_by[name])
        m.d.comb += [
            status.error.eq(Cat(getattr(errors, name) for name in error_fields).any()),
            status.out_ready.eq(out_ready),
            status.busy.eq(busy),
        ]
        status_fields = {field.name: field.lsb for field in table.register("status").fields}
        if status_fields != {bit.name.lower(): bit.bit_length() - 1 for bit in StatusBit}:
            raise ValueError(f"STATUS fields {status_fields} in rram_cim.rdl differ from protocol.StatusBit")
        m.d.comb += status_byte.eq(Cat(getattr(status, name) for name in sorted(status_fields, key=status_fields.get)))

    @staticmethod
    def _join_bus(m, initiator, decoder, refuse_write):
        """The SPI target's register bus to the decoder, with the writes `refuse_write` names held back."""
        for name, member in RegisterBus().members.items():
            if member.flow == Out:
                m.d.comb += getattr(decoder, name).eq(getattr(initiator, name))
            else:
                m.d.comb += getattr(initiator, name).eq(getattr(decoder, name))
        m.d.comb += decoder.w_stb.eq(initiator.w_stb & ~refuse_write)

    def _join_port(self, m, config, cell_port, neuron_port, inferring, mvm, trim_bus):
        """The drivers' and the sequencers' members make up the chip's analog port: the neuron members are
        the MVM sequencer's while it runs, else the inference sequencer's; `op` reads INFER while either
        owns the macro, and TRIM in the cycle a host write to the trim window is carried out (returned:
        the chip drives it), with the window's address and byte as `trim_index` and `trim_code`."""
        port = self.port
        for signature, inner in ((CellPort(config), cell_port), (NeuronPort(config), neuron_port)):
            for name, member in signature.members.items():
                outer, theirs = getattr(port, name), getattr(inner, name)
                if member.flow == Out:
                    m.d.comb += outer.eq(theirs)
                else:
                    m.d.comb += theirs.eq(outer)
        trim_write = Signal()
        with m.If(inferring):
            m.d.comb += port.op.eq(Op.INFER)
        if mvm is None:
            return trim_write
        for name, member in NeuronPort(config).members.items():
            if member.flow == Out:
                with m.If(mvm.busy):
                    m.d.comb += getattr(port, name).eq(getattr(mvm.port, name))
            else:
                m.d.comb += getattr(mvm.port, name).eq(getattr(port, name))
        m.d.comb += [port.trim_index.eq(trim_bus.addr), port.trim_code.eq(trim_bus.w_data)]
        with m.If(mvm.busy):
            m.d.comb += port.op.eq(Op.INFER)
        with m.If(trim_write):
            m.d.comb += port.op.eq(Op.TRIM)
        return trim_write

    @staticmethod
    def _mvm(m, config, windows):
        """The MVM sequencer (None in a build without it) and its input and output windows."""
        if not config.mvm:
            return None
        m.submodules.mvm = mvm = MVMSequencer(config)
        connect(m, mvm.x, windows["mvm_x"].engine)
        connect(m, mvm.y, windows["mvm_y"].engine)
        if config.mvm_decide:
            connect(m, mvm.bias, windows["mvm_bias"].engine)
            connect(m, mvm.lfsr_read, windows["mvm_lfsr"].engine_read)
            connect(m, mvm.lfsr_write, windows["mvm_lfsr"].engine)
        return mvm

    @staticmethod
    def _wire_mvm(m, config, table, regs, mvm, other_busy):
        """MVM registers to the sequencer and its counters back. Returns the strobe of a refused start."""
        refused = Signal()
        if mvm is None:                                  # a build without MVM refuses every start
            m.d.comb += refused.eq(regs.ctrl.mvm_start)
            return refused
        join_settings(m, table, "mvm_", regs, mvm.settings)
        bits = regs.mvm_bits
        bad = ((bits.in_bits == 0) | (bits.in_bits > BITS_MAX) | (bits.out_bits == 0)
               | (bits.out_bits > BITS_MAX)
               | (regs.mvm_core.index >= config.cores) | (regs.mvm_v_read.code > read_limit_code(config))
               | (regs.mvm_threshold.code == 0) | other_busy | mvm.busy)
        # Decide mode: refused in a build without it, and with no noise to draw.
        noise = regs.mvm_noise
        bad |= regs.mvm_mode.decide & ((noise.draws == 0) | (noise.magnitude == 0) | (not config.mvm_decide))
        m.d.comb += [
            refused.eq(regs.ctrl.mvm_start & bad),
            mvm.start.eq(regs.ctrl.mvm_start & ~bad),
            regs.status.mvm_done.eq(mvm.done),
            regs.mvm_cycles.count.eq(mvm.cycles),
            regs.mvm_samples.count.eq(mvm.samples),
            regs.mvm_steps.count.eq(mvm.steps),
        ]
        return refused

    @staticmethod
    def _join_core_pages(m, config, table, regs, cores):
        """Each CORE page's registers to its NeuronCore on the sequencer (by the RDL's names, which must be
        NeuronCore's). Returns the set of register-map pages they fill, for the write lock."""
        fields = set(settings_fields(table, "core0_"))
        if fields != {name for name, _ in NeuronCore}:
            raise ValueError(f"a CORE page of rram_cim.rdl sets {sorted(fields)}, protocol.NeuronCore carries "
                             f"{sorted(name for name, _ in NeuronCore)}: keep them the same")
        for page in range(config.neuron_pages):
            join_settings(m, table, f"core{page}_", regs, cores[page])
        return _PageRange(settings_page(table, "core0_"), config.neuron_pages)

    def _wire_inference(self, m, config, regs, sequencer, windows, other_busy):
        """NEURON registers to the sequencer, its counters back, the routing window to its router.
        Returns the strobe of a refused start."""
        pages = [(getattr(regs, f"core{page}_thresh_pos").code == 0) | (getattr(regs, f"core{page}_thresh_neg").code == 0)
                 | ~valid_member(getattr(regs, f"core{page}_mode").kind, NeuronMode) for page in range(config.neuron_pages)]
        bad = (Cat(pages).any() | (regs.neuron_timesteps.count == 0)
               | (regs.neuron_v_read.code > read_limit_code(config)) | other_busy)
        refused = Signal()
        m.d.comb += [
            refused.eq(regs.ctrl.inf_start & bad),
            sequencer.start.eq(regs.ctrl.inf_start & ~bad),
            sequencer.stop.eq(regs.ctrl.inf_abort),
            regs.status.infer_done.eq(sequencer.done),
            regs.neuron_step.count.eq(sequencer.step),
            regs.neuron_row_events.count.eq(sequencer.row_events),
            regs.neuron_spikes.count.eq(sequencer.spikes),
            regs.neuron_dropped.count.eq(sequencer.dropped),
        ]
        connect(m, sequencer.route, windows["routing"].engine)
        return refused

    def _wire_pv(self, m, config, regs, pv, windows, other_busy):
        """P&V registers to the engine's recipe, its counters and flags back, its memories to the windows.
        Returns the strobe of a refused start (for the ERROR register)."""
        # A start the engine cannot honour is refused with an error, and nothing runs.
        mode = regs.pv_mode
        out_of_array = ((regs.pv_core.index >= config.cores) | (regs.pv_row.index >= config.rows)
                        | (regs.pv_column.index >= config.columns)
                        | ((mode.scope == Scope.ROW)
                           & ((regs.pv_rows.count == 0) | (regs.pv_row.index + regs.pv_rows.count > config.rows))))
        # Targets are packed 1-8 bits each (PV.target_bits).
        bad_bits = (regs.pv_target_bits.count == 0) | (regs.pv_target_bits.count > 8)
        if not config.pv_packing:                        # a byte per target only
            bad_bits = regs.pv_target_bits.count != 8
        # A zero pulse width would have every pulse refused by the drivers' interlock while the budget runs out.
        no_width = ((regs.pv_pulse_width.cycles == 0) & (regs.pv_max_pulses.count != 0)
                    & ~regs.pv_per_level.enable)
        # A build without RADAR (ChipConfig.pv_radar off) refuses it like an algorithm code that does not exist.
        no_radar = (mode.algorithm == Algorithm.RADAR) if not config.pv_radar else 0
        unsupported = (~valid_member(mode.algorithm, Algorithm) | ~valid_member(mode.scope, Scope)
                       | no_radar | no_width | bad_bits | other_busy)
        refused = Signal()
        m.d.comb += [
            refused.eq(regs.ctrl.pv_start & (out_of_array | unsupported)),
            pv.start.eq(regs.ctrl.pv_start & ~refused),
            pv.stop.eq(regs.ctrl.pv_abort),
            pv.commit.eq(regs.ctrl.pv_commit),
            regs.pv_stream.fill.eq(pv.fill),
            regs.pv_stream.owned.eq(pv.owned),
            regs.pv_stream.ready.eq(pv.ready),
            regs.status.pv_done.eq(pv.done),
            regs.pv_cells_done.count.eq(pv.cells_done),
            regs.pv_cells_failed.count.eq(pv.cells_failed),
            regs.pv_pulses_total.count.eq(pv.pulses_total),
        ]
        for name, port in (("pv_target", pv.target), ("pv_levels", pv.level), ("pv_pulses", pv.pulses),
                           ("pv_codes", pv.codes), ("failed_log", pv.log)):
            connect(m, port, windows[name].engine)
        return refused
