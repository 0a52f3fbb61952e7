"""Row/column drivers: one request (pulse or sense of one cell) becomes a cycle-exact sequence on the
analog macro port, behind interlocks that keep the array safe whatever the engine asks.

Interlocks (a refused request answers `refused` and leaves the port idle):
* only READ, SET, RESET and FORM are requests; any other operation code is refused;
* a read's bit-line code must keep the cell below the read-disturb limit (SPIRIT's 100 mV);
* a pulse's width must be 1..`max_width` cycles;
* SET and RESET can never overlap: the operation is one field, and only the DAC that operation uses
  is driven (the top electrode for SET/FORM, the source line for RESET), the others are held at zero;
* a programming pulse selects exactly one row and one column (the port carries one of each).

Pulse shapes: square (the DAC holds its code for the whole pulse) or triangular (the driven DAC steps
through exactly the codes of `models.pulses.pulse_codes`: code_k = floor(A * min(k + 1, W - k) /
ceil(W / 2)) for amplitude A and width W). A triangular pulse first divides A by ceil(W / 2) (one
restoring-division step per DAC bit, the port idle meanwhile); each pulse cycle then adds or subtracts
that quotient and remainder, so no multiplier or per-cycle divider is needed.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

# The read limit is the config's (host and models read at it too); imported here for the engines.
from ..config import ChipConfig, read_limit_code, read_limit_volts
from .analog_port import CellPort, Op

__all__ = ["CellRequest", "CellResponse", "CellDriver", "read_limit_code", "read_limit_volts"]

#: Pulse widths are 8-bit cycle counts.
WIDTH_BITS = 8
WIDTH_MAX = (1 << WIDTH_BITS) - 1


def CellRequest(config: ChipConfig) -> data.StructLayout:
    return data.StructLayout({
        "op":      Op,
        "core":    range(config.cores),
        "row":     range(config.rows),
        "column":  range(config.columns),
        "wl_code": config.dac_bits,
        "bl_code": config.dac_bits,
        "sl_code": config.dac_bits,
        "width":   WIDTH_BITS,  # pulse width in system cycles
        "setup":   WIDTH_BITS,  # cycles the selection settles before the pulse or the sense
        "triangular": 1,        # pulse shape: 0 square, 1 triangular
    })


def CellResponse(config: ChipConfig) -> data.StructLayout:
    return data.StructLayout({"code": config.adc_bits, "refused": 1})


class CellDriver(wiring.Component):
    """The row/column drivers: one `CellRequest` in, one exact pulse or sense on the `CellPort` out, one
    `CellResponse` (sense code, or refused) back.

    What it owns: the cell members of the analog port while P&V runs, the pulse-shape arithmetic
    (triangular ramps without a multiplier) and the interlocks of the module docstring. How it is
    verified: the interlocks are proven for every input sequence by k-induction (rtl/cell_driver_formal.py,
    docs/formal.md); pulse shapes against `models.pulses` in Amaranth's simulator (tests/test_cell_driver.py)
    and in cocotb on both simulators (tests/test_cocotb_driver.py).
    """

    def __init__(self, config: ChipConfig, max_width: int = WIDTH_MAX):
        if not 1 <= max_width <= WIDTH_MAX:
            raise ValueError(f"max_width {max_width} must be 1..{WIDTH_MAX} cycles")
        self._config = config
        self._max_width = max_width
        self.request_layout = CellRequest(config)
        self.response_layout = CellResponse(config)
        super().__init__({
            "request":  In(stream.Signature(self.request_layout)),
            "response": Out(stream.Signature(self.response_layout)),
            "port":     Out(CellPort(config)),
        })

    def elaborate(self, platform):
        m = Module()
        dac_bits = self._config.dac_bits
        held = Signal(self.request_layout)
        count = Signal(8)
        port = self.port
        # Triangular pulses: the driven code, A // ceil(W/2) and A % ceil(W/2), and the division's state.
        ramp = Signal(dac_bits)
        ramp_rem = Signal(WIDTH_BITS)
        step_quo = Signal(dac_bits)
        step_rem = Signal(WIDTH_BITS)
        divide_left = Signal(range(dac_bits + 1))
        half = Signal(WIDTH_BITS)
        m.d.comb += half.eq((held.width + 1) >> 1)
        amplitude = Signal(dac_bits)
        m.d.comb += amplitude.eq(Mux(held.op == Op.RESET, held.sl_code, held.bl_code))

        is_read = held.op == Op.READ
        request = self.request.payload
        bad_read = (request.op == Op.READ) & (request.bl_code > read_limit_code(self._config))
        too_long = request.width > self._max_width if self._max_width < WIDTH_MAX else 0
        is_pulse = (request.op == Op.SET) | (request.op == Op.RESET) | (request.op == Op.FORM)
        bad_width = is_pulse & ((request.width == 0) | too_long)
        # Only the four cell operations: IDLE, INFER (the sequencer's) and unused codes are no request.
        bad_op = ~((request.op == Op.READ) | is_pulse)
        refuse = bad_read | bad_width | bad_op

        def select():
            m.d.comb += [port.core.eq(held.core), port.row.eq(held.row), port.column.eq(held.column),
                         port.op.eq(held.op)]

        def drive_dacs(shaped=False):
            m.d.comb += port.wl_code.eq(held.wl_code)
            code = Mux(held.triangular, ramp, amplitude) if shaped else amplitude
            with m.If((held.op == Op.SET) | (held.op == Op.FORM) | is_read):
                m.d.comb += port.bl_code.eq(code)
            with m.If(held.op == Op.RESET):
                m.d.comb += port.sl_code.eq(code)

        def act(reading, width):
            """Go on to the pulse, or to the sense, of a request whose selection has settled."""
            m.d.sync += count.eq(width - 1)
            with m.If(reading):
                m.next = "Sense"
            with m.Else():
                m.next = "Pulse"

        with m.FSM():
            with m.State("Idle"):
                m.d.comb += self.request.ready.eq(1)
                with m.If(self.request.valid):
                    m.d.sync += held.eq(request)
                    with m.If(refuse):
                        m.d.sync += [self.response.payload.refused.eq(1), self.response.payload.code.eq(0)]
                        m.next = "Respond"
                    with m.Elif(is_pulse & request.triangular):
                        m.d.sync += [self.response.payload.refused.eq(0), divide_left.eq(dac_bits),
                                     step_quo.eq(Mux(request.op == Op.RESET, request.sl_code, request.bl_code)),
                                     step_rem.eq(0)]
                        m.next = "Divide"
                    with m.Elif(request.setup != 0):
                        m.d.sync += [self.response.payload.refused.eq(0), count.eq(request.setup - 1)]
                        m.next = "Setup"
                    with m.Else():
                        m.d.sync += self.response.payload.refused.eq(0)
                        act(request.op == Op.READ, request.width)

            # Restoring division A / ceil(W/2): the dividend shifts out of step_quo's top while quotient
            # bits shift in at its bottom; step_rem keeps the partial remainder.
            with m.State("Divide"):
                shifted = Cat(step_quo[-1], step_rem)
                fits = shifted >= half
                m.d.sync += [step_quo.eq(Cat(fits, step_quo[:-1])),
                             step_rem.eq(Mux(fits, shifted - half, shifted)),
                             divide_left.eq(divide_left - 1)]
                with m.If(divide_left == 1):
                    m.next = "Ramp-Start"

            # The first cycle's code is A // ceil(W/2): min(k + 1, W - k) is 1 at k = 0.
            with m.State("Ramp-Start"):
                m.d.sync += [ramp.eq(step_quo), ramp_rem.eq(step_rem), count.eq(held.setup - 1)]
                with m.If(held.setup != 0):
                    m.next = "Setup"
                with m.Else():
                    act(0, held.width)

            # Selection and (for a read) the read voltage settle before anything is pulsed or sensed.
            with m.State("Setup"):
                select()
                with m.If(is_read):
                    drive_dacs()
                with m.If(count == 0):
                    act(is_read, held.width)
                with m.Else():
                    m.d.sync += count.eq(count - 1)

            with m.State("Pulse"):
                select()
                drive_dacs(shaped=True)
                m.d.comb += port.pulse.eq(1)
                # Next cycle's multiplier min(k + 2, W - k - 1) against this one's: with count = W - 1 - k
                # it rises while 2 count > W, holds once at the top of an even width, then falls.
                twice = Cat(Const(0, 1), count)
                up_sum = Signal(WIDTH_BITS + 1)
                down_diff = Signal(range(-(1 << WIDTH_BITS), 1 << WIDTH_BITS))
                m.d.comb += [up_sum.eq(ramp_rem + step_rem), down_diff.eq(ramp_rem - step_rem)]
                with m.If(twice > held.width):
                    with m.If(up_sum >= half):
                        m.d.sync += [ramp.eq(ramp + step_quo + 1), ramp_rem.eq(up_sum - half)]
                    with m.Else():
                        m.d.sync += [ramp.eq(ramp + step_quo), ramp_rem.eq(up_sum)]
                with m.Elif(twice < held.width):
                    with m.If(down_diff < 0):
                        m.d.sync += [ramp.eq(ramp - step_quo - 1), ramp_rem.eq(down_diff + half)]
                    with m.Else():
                        m.d.sync += [ramp.eq(ramp - step_quo), ramp_rem.eq(down_diff)]
                with m.If(count == 0):
                    m.d.sync += self.response.payload.code.eq(0)
                    m.next = "Respond"
                with m.Else():
                    m.d.sync += count.eq(count - 1)

            with m.State("Sense"):
                select()
                drive_dacs()
                m.d.comb += port.sense_req.eq(1)
                with m.If(port.sense_valid):
                    m.d.sync += self.response.payload.code.eq(port.sense_code)
                    m.next = "Respond"

            with m.State("Respond"):
                m.d.comb += self.response.valid.eq(1)
                with m.If(self.response.ready):
                    m.next = "Idle"
        return m
