"""The cell driver's interlocks, proved by k-induction (SymbiYosys, yices), and mutants the proof must catch.

Each proof is a few seconds (docs/formal.md); the mutants show the properties are not vacuous: a driver
with one interlock loosened or one wire crossed must come back FAIL, naming the property it breaks. The
mutants are checked without the induction's helper invariants, so the failure is a property's, on a
trace from reset (the bounded base case), not a helper noticing an odd state first.
"""

import pytest
from amaranth.hdl import Module, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from rram_cim.config import REFERENCE
from rram_cim.rtl import cell_driver
from rram_cim.rtl.cell_driver import WIDTH_MAX, CellDriver
from rram_cim.rtl.cell_driver_formal import INDUCTION_DEPTH, SMALL, CellDriverFormal, prove


def proved(harness, tmp_path):
    result = prove(harness, tmp_path, depth=INDUCTION_DEPTH)
    if result.status not in ("PASS", "FAIL"):
        named = result.failed + result.unproven
        pytest.fail(f"SymbiYosys returned {result.status} ({'; '.join(named) or 'no assertion named'}):\n"
                    f"{result.log[-3000:]}")
    return result


@pytest.mark.parametrize("config, max_width", [(SMALL, 7), (SMALL, WIDTH_MAX), (REFERENCE, 32),
                                               (REFERENCE, WIDTH_MAX)],
                         ids=["small-7", "small-255", "reference-32", "reference-255"])
def test_interlocks_hold_on_every_trace(config, max_width, tmp_path):
    result = proved(CellDriverFormal(config, max_width), tmp_path)
    assert result.status == "PASS", result.failed


def test_interlocks_hold_for_any_op_code(tmp_path):
    result = proved(CellDriverFormal(SMALL, 7, any_op=True), tmp_path)
    assert result.status == "PASS", result.failed


def test_proof_catches_a_read_limit_off_by_one(tmp_path, monkeypatch):
    # The driver refuses reads above read_limit_code(config); let it allow one code more.
    limit = cell_driver.read_limit_code
    monkeypatch.setattr(cell_driver, "read_limit_code", lambda config: limit(config) + 1)
    result = proved(CellDriverFormal(SMALL, 7, invariants=False), tmp_path)
    assert result.status == "FAIL"
    assert any(message.startswith("read-limit") for message in result.failed), result.failed


def test_proof_catches_a_pulse_longer_than_max_width(tmp_path):
    # A driver built to allow 2-cycle pulses, held to a 1-cycle bound.
    harness = CellDriverFormal(SMALL, 1, driver=CellDriver(SMALL, max_width=2), invariants=False)
    result = proved(harness, tmp_path)
    assert result.status == "FAIL"
    assert "pulse-width: a pulse longer than max_width" in result.failed, result.failed


class CrossedSourceLine(wiring.Component):
    """A cell driver whose source-line output also carries the bit-line code: SET drives both lines."""

    def __init__(self, config, max_width):
        self.inner = CellDriver(config, max_width)
        self.request_layout = self.inner.request_layout
        super().__init__(dict(self.inner.signature.members))

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = self.inner
        for path, member, outer in self.signature.flatten(self):
            inner_value = Value.cast(_member(inner, path))
            outer = Value.cast(outer)
            if member.flow == In:
                m.d.comb += inner_value.eq(outer)
            elif path == ("port", "sl_code"):
                m.d.comb += outer.eq(inner_value | inner.port.bl_code)
            else:
                m.d.comb += outer.eq(inner_value)
        return m


def _member(interface, path):
    for name in path:
        interface = getattr(interface, name)
    return interface


def test_proof_catches_set_and_reset_driven_together(tmp_path):
    result = proved(CellDriverFormal(SMALL, 7, driver=CrossedSourceLine(SMALL, 7), invariants=False),
                    tmp_path)
    assert result.status == "FAIL"
    assert any(message.startswith("set-reset-exclusive") for message in result.failed), result.failed
