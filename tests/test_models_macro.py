"""The Python analog macro: code-level pulses and senses, and its refusals."""

import numpy as np
import pytest

from rram_cim.config import REFERENCE
from rram_cim.models import ModelInputError
from rram_cim.models.macro import AnalogMacro
from rram_cim.protocol import Op
from rram_cim.rtl import analog_port
from rram_cim.rtl.cell_driver import CellRequest
from rram_cim.sim.streams import pack, unpack


def test_one_operation_enum_keeps_the_port_wire_values():
    assert {op.name: op.value for op in Op} == dict(IDLE=0, READ=1, SET=2, RESET=3, FORM=4, INFER=5, TRIM=6)
    assert analog_port.Op is Op and Op.as_shape().width == 3


def test_set_pulse_raises_the_sensed_code_and_touches_one_cell():
    macro = AnalogMacro(REFERENCE, seed=1)
    before = [array.g_us.copy() for array in macro.cores]
    low = macro.sense(1, 3, 4, 6)
    macro.pulse(Op.SET, 1, 3, 4, [140] * 8, [133] * 8, [0] * 8)
    assert macro.sense(1, 3, 4, 6) > low + 20
    changed = macro.cores[1].g_us != before[1]
    assert changed.sum() == 1 and changed[3, 4]
    assert np.array_equal(macro.cores[0].g_us, before[0])


def test_same_seed_same_macro():
    a, b = AnalogMacro(REFERENCE, seed=9), AnalogMacro(REFERENCE, seed=9)
    for macro in (a, b):
        macro.pulse(Op.SET, 0, 1, 1, [120] * 4, [100] * 4, [0] * 4)
    assert a.sense(0, 1, 1, 6) == b.sense(0, 1, 1, 6)


@pytest.mark.parametrize("call, message", [
    (lambda m: m.sense(2, 0, 0, 6), "outside"),
    (lambda m: m.pulse(Op.SET, 0, 64, 0, [1], [1], [0]), "outside"),
    (lambda m: m.pulse(Op.READ, 0, 0, 0, [1], [1], [0]), "not a pulse"),
])
def test_macro_refuses_bad_requests(call, message):
    with pytest.raises(ModelInputError, match=message):
        call(AnalogMacro(REFERENCE))


def test_stream_payload_packing_round_trips_and_refuses_overflow():
    layout = CellRequest(REFERENCE)
    word = pack(layout, op=2, row=63, column=5, width=9)
    assert unpack(layout, word) | {} == dict(unpack(layout, 0), op=2, row=63, column=5, width=9)
    with pytest.raises(ValueError, match="does not fit"):
        pack(layout, row=64)
    with pytest.raises(KeyError, match="no field"):
        pack(layout, colour=1)


def test_neuron_side_integrates_driven_rows_and_refuses_bad_settings():
    from rram_cim.models.macro import NeuronCodes
    macro = AnalogMacro(REFERENCE, 3)
    # Voltage-mode columns average their rows: rows 0-9 strong on the positive columns only.
    macro.cores[0].g_us[:] = 2.0
    macro.cores[0].g_us[:10, 0::2] = 100.0
    codes = NeuronCodes(thresh_pos=5, thresh_neg=5)
    macro.integrate(6, codes)                      # no row driven: nothing moves
    positive, negative = macro.fire(codes)
    assert not positive.any() and not negative.any()
    for row in range(10):
        macro.drive_row(0, row)
    macro.integrate(6, codes)
    positive, negative = macro.fire(codes)
    assert positive[0].all() and not negative.any() and not positive[1].any()
    with pytest.raises(ModelInputError, match="outside"):
        macro.drive_row(0, REFERENCE.rows)
    with pytest.raises(ModelInputError, match="thresholds"):
        macro.fire(NeuronCodes(thresh_pos=0, thresh_neg=5))
    with pytest.raises(ModelInputError, match="mode"):
        macro.integrate(6, NeuronCodes(thresh_pos=5, thresh_neg=5, mode=3))


def test_a_trim_written_one_neuron_at_a_time_equals_the_whole_core_written_at_once():
    one, whole = AnalogMacro(REFERENCE, seed=2), AnalogMacro(REFERENCE, seed=2)
    codes = np.arange(REFERENCE.neurons) * 7 % 256 - 128
    for neuron, code in enumerate(codes):
        one.set_trim(1, neuron, int(code))
    whole.set_trims(1, codes)
    assert np.array_equal(one.trims(1), codes) and np.array_equal(one.trims(1), whole.trims(1))
    assert not one.trims(0).any()
    with pytest.raises(ModelInputError, match="neuron 32 is outside"):
        one.set_trim(0, REFERENCE.neurons, 0)
    with pytest.raises(ModelInputError, match="trim codes lie in -128..127"):
        one.set_trim(0, 0, 128)
    assert np.array_equal(one.trims(1), codes)
