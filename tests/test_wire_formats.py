"""The wire formats of rram_cim.protocol keep the bit positions the chip, the host and the docs use."""

import pytest

from rram_cim.protocol import (EVENT_TICK, FAILED_LOG_ENTRY_BYTES, LEVEL_ENTRY_BYTES, LEVEL_FIELDS, LEVEL_USED_BYTES,
                               RECIPE_FIELDS, ROUTE_ENTRY_BYTES, Algorithm, FailedLogEntry, NeuronMode, Scope,
                               decode_event, input_event, output_event, pack_level, pack_route, route_destinations,
                               unpack_failed_log, unpack_route)


def test_events_put_tick_negative_core_and_index_at_their_bits():
    assert input_event(3, 5) == 3 << 8 | 5
    assert output_event(3, 5, True) == 1 << 14 | 3 << 8 | 5
    assert EVENT_TICK == 1 << 15
    assert decode_event(EVENT_TICK | 1 << 14 | 47 << 8 | 255) == (True, True, 47, 255)     # NeuRRAM's last core
    with pytest.raises(ValueError, match="does not fit"):
        input_event(64, 0)
    with pytest.raises(ValueError, match="does not fit"):
        input_event(0, 256)


def test_route_entry_is_flags_copies_core_and_little_endian_row():
    assert ROUTE_ENTRY_BYTES == 4
    assert pack_route(True, True, 47, 200) == bytes([0b11, 47, 200, 0])
    assert pack_route(False, True, 40, 9, copies=5) == bytes([0b10 | 5 << 2, 40, 9, 0])
    with pytest.raises(ValueError, match="do not fit"):
        pack_route(True, True, 2, 300)                                 # past an input event's 8 row bits
    entry = unpack_route(pack_route(False, True, 1, 7, copies=2))
    assert (entry.to_host, entry.to_row, entry.core, entry.row, entry.copies) == (0, 1, 1, 7, 2)
    assert route_destinations(entry) == [(1, 7), (2, 7), (3, 7)]
    assert route_destinations(unpack_route(pack_route(True, False, 1, 7, copies=2))) == []


def test_level_entry_fields_sit_at_their_byte_offsets():
    assert LEVEL_ENTRY_BYTES == 32 and LEVEL_USED_BYTES == 18
    assert LEVEL_FIELDS == {"target": (0, 1), "pulse_width": (1, 1), "max_pulses": (2, 1), "window": (3, 1),
                            "bl_start": (4, 2), "bl_step": (6, 2), "bl_stop": (8, 2), "wl_start": (10, 2),
                            "wl_step": (12, 2), "wl_stop": (14, 2), "sl_reset": (16, 2)}
    assert set(RECIPE_FIELDS) == set(LEVEL_FIELDS) - {"target"}
    packed = pack_level({name: offset + 1 for name, (offset, _) in LEVEL_FIELDS.items()})
    assert all(int.from_bytes(packed[o:o + s], "little") == o + 1 for o, s in LEVEL_FIELDS.values())
    with pytest.raises(ValueError, match="does not fit"):
        pack_level({name: 256 if name == "window" else 0 for name in LEVEL_FIELDS})


def test_failed_log_entry_is_column_row_core_valid():
    assert FAILED_LOG_ENTRY_BYTES == 4
    word = 17 << 16 | 9 << 8 | 47 << 2 | 1 << 1
    assert FailedLogEntry.const({"valid": 1, "core": 47, "row": 9, "column": 17}).as_bits() == word
    raw = word.to_bytes(4, "little") + bytes(4)                     # a valid entry, then an unwritten one
    assert unpack_failed_log(raw) == [(47, 9, 17)]


def test_mode_enums_keep_their_register_encodings():
    assert [int(a) for a in Algorithm] == [0, 1, 2] and Algorithm.as_shape().width == 2
    assert [int(s) for s in Scope] == [0, 1, 2] and Scope.as_shape().width == 2
    assert [int(m) for m in NeuronMode] == [0, 1, 2] and NeuronMode.as_shape().width == 2
