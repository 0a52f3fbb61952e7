"""SPI target (mode 0) that turns host frames into register-bus transfers (docs/spi.md).

SCK, CS and MOSI are asynchronous to the system clock. They pass through equal 2-flop synchronizers, so
MOSI is seen with the SCK edge that sampled it; SCK is then edge-detected. That costs ~3 system cycles,
which is why SCK may be at most f_sys / 4 (`ChipConfig.spi_divider`). MISO is updated right after the
*rising* edge that consumed the previous bit rather than at the falling edge: at f_sys / 4 the falling
edge would be seen too late for the host's next sample.

Frame rules (the random campaign in tests/ checks them against `sim.regfile_model`):
* a frame's completed bytes act in order; a byte cut by CS rising does nothing and sets `truncated`;
* an unknown command, an unmapped address or a write to a read-only byte sets its sticky error and
  the rest of the frame is ignored;
* a read byte has its side effect (`r_commit`) only once all its eight bits were clocked out.
"""

from contextlib import contextmanager

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from ..protocol import ADDRESS_BYTES, READ_DUMMY_BYTES, STATUS_MARKER, Command
from .regbus import RegisterBus

__all__ = ["SPITarget", "SPIPins"]


class SPIPins(wiring.Signature):
    """The four SPI wires, seen from the controller (the target holds ``In(SPIPins())``); CIPO has an
    output enable so that several targets can share it."""

    def __init__(self):
        super().__init__({
            "sck": Out(1),
            "cs_n": Out(1),
            "copi": Out(1),
            "cipo": In(1),
            "cipo_oe": In(1),
        })


class SPITarget(wiring.Component):
    """SPI mode 0 target: pins in, register-bus transfers and error strobes out.

    `status` is the low six bits of the status byte sent while the host sends command and address.
    """

    spi: In(SPIPins())
    bus: Out(RegisterBus())
    status: In(6)
    # One-cycle strobes to the sticky ERROR register.
    bad_command: Out(1)
    bad_address: Out(1)
    read_only: Out(1)
    truncated: Out(1)

    def _synchronized_pins(self, m):
        """SCK, CS and COPI through equal synchronizers: (cs_n, copi, sample: a rising SCK edge while
        selected, the host's bit valid; frame_end: chip select rising)."""
        sck = Signal()
        cs_n = Signal(init=1)
        copi = Signal()
        m.submodules.sck_sync = FFSynchronizer(self.spi.sck, sck)
        m.submodules.cs_sync = FFSynchronizer(self.spi.cs_n, cs_n, init=1)
        m.submodules.copi_sync = FFSynchronizer(self.spi.copi, copi)
        sck_last = Signal()
        cs_n_last = Signal(init=1)
        m.d.sync += [sck_last.eq(sck), cs_n_last.eq(cs_n)]
        return cs_n, copi, ~cs_n & sck & ~sck_last, cs_n & ~cs_n_last

    def elaborate(self, platform):
        m = Module()
        cs_n, copi, sample, frame_end = self._synchronized_pins(m)
        selected = ~cs_n

        bit_count = Signal(3)
        shift_in = Signal(7)
        shift_out = Signal(8)
        received = Cat(copi, shift_in)                 # the byte being completed, valid with `sample`
        byte_done = sample & (bit_count == 7)
        status_byte = Const(STATUS_MARKER, 8) | self.status

        address = Signal.like(self.bus.addr)           # byte the current data slot reads or writes
        fetch_address = Signal.like(self.bus.addr)     # byte being fetched ahead for the next slot
        address_bytes = Signal(range(ADDRESS_BYTES + 1))
        dummy_bytes = Signal(range(READ_DUMMY_BYTES + 1))
        is_read = Signal()
        fetch = Signal()                               # strobe a read of fetch_address next cycle
        capture = Signal()                             # the fetched byte arrives this cycle
        next_byte = Signal(8)
        next_ok = Signal()                             # the fetched address was mapped
        slot_ok = Signal()                             # the byte being shifted out is a real one

        m.d.comb += [
            self.spi.cipo.eq(shift_out[7]),
            self.spi.cipo_oe.eq(selected),
            self.bus.w_data.eq(received),
            self.bus.commit_addr.eq(address),
            self.bus.addr.eq(address),
        ]

        with m.If(sample):
            m.d.sync += [bit_count.eq(bit_count + 1), shift_in.eq(received[:7]),
                         shift_out.eq(shift_out << 1)]

        # Fetch ahead: one cycle to present the address, one for the data to come back.
        m.d.sync += [fetch.eq(0), capture.eq(0)]
        with m.If(fetch):
            m.d.comb += [self.bus.addr.eq(fetch_address), self.bus.r_stb.eq(self.bus.addr_ok)]
            m.d.sync += [next_ok.eq(self.bus.addr_ok), capture.eq(self.bus.addr_ok)]
        with m.If(capture):
            m.d.sync += next_byte.eq(self.bus.r_data)

        def load(byte):
            m.d.sync += shift_out.eq(byte)

        def next_read_slot():
            """At a read slot boundary: shift out the byte fetched ahead and fetch the one after."""
            load(Mux(next_ok, next_byte, 0))
            m.d.sync += [slot_ok.eq(next_ok), address.eq(fetch_address),
                         fetch_address.eq(fetch_address + 1), fetch.eq(1)]

        @contextmanager
        def frame_state(name):
            """A state of the frame FSM; chip select high ends any frame wherever it is (the state's last
            `next` wins), so the next one starts at its command byte."""
            with m.State(name):
                yield
                with m.If(cs_n):
                    m.next = "Command"

        with m.FSM() as fsm:
            with frame_state("Command"):
                with m.If(byte_done):
                    load(status_byte)
                    m.d.sync += [address_bytes.eq(0), dummy_bytes.eq(0)]
                    with m.Switch(received):
                        with m.Case(Command.READ):
                            m.d.sync += is_read.eq(1)
                            m.next = "Address"
                        with m.Case(Command.WRITE):
                            m.d.sync += is_read.eq(0)
                            m.next = "Address"
                        with m.Case(Command.NOP):
                            m.next = "Ignore"
                        with m.Default():
                            m.d.comb += self.bad_command.eq(1)
                            m.next = "Ignore"

            with frame_state("Address"):
                with m.If(byte_done):
                    load(status_byte)
                    m.d.sync += [address.eq(Cat(received, address[:-8])),
                                 address_bytes.eq(address_bytes + 1)]
                    with m.If(address_bytes == ADDRESS_BYTES - 1):
                        m.next = "Check-Address"

            # The whole address is in: reject an unmapped one before anything happens.
            with frame_state("Check-Address"):
                with m.If(~self.bus.addr_ok):
                    m.d.comb += self.bad_address.eq(1)
                    m.next = "Ignore"
                with m.Elif(is_read):
                    m.d.sync += [fetch.eq(1), fetch_address.eq(address)]
                    m.next = "Dummy"
                with m.Else():
                    m.next = "Write-Data"

            with frame_state("Dummy"):
                with m.If(byte_done):
                    m.d.sync += dummy_bytes.eq(dummy_bytes + 1)
                    with m.If(dummy_bytes == READ_DUMMY_BYTES - 1):
                        next_read_slot()
                        m.next = "Read-Data"
                    with m.Else():
                        load(status_byte)

            with frame_state("Read-Data"):
                # The host clocks a byte past the end of a register or window: flag it at its first bit.
                with m.If(sample & (bit_count == 0) & ~slot_ok):
                    m.d.comb += self.bad_address.eq(1)
                    m.next = "Ignore"
                with m.Elif(byte_done):
                    m.d.comb += self.bus.r_commit.eq(1)
                    next_read_slot()

            with frame_state("Write-Data"):
                with m.If(byte_done):
                    with m.If(~self.bus.addr_ok):
                        m.d.comb += self.bad_address.eq(1)
                        m.next = "Ignore"
                    with m.Elif(~self.bus.addr_writable):
                        m.d.comb += self.read_only.eq(1)
                        m.next = "Ignore"
                    with m.Else():
                        m.d.comb += self.bus.w_stb.eq(1)
                        m.d.sync += address.eq(address + 1)

            # After an error or a NOP: wait for the end of the frame.
            with frame_state("Ignore"):
                pass

        # Cutting a byte, or the address, is a truncation unless the frame was already being ignored.
        cut_byte = (bit_count != 0) & ~fsm.ongoing("Ignore")
        cut_address = fsm.ongoing("Address")
        with m.If(frame_end & (cut_byte | cut_address)):
            m.d.comb += self.truncated.eq(1)
        with m.If(cs_n):
            m.d.sync += [bit_count.eq(0), shift_out.eq(status_byte), fetch.eq(0), capture.eq(0)]

        return m
