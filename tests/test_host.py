"""Host-side frames and register client, on the register-file model as transport."""

import pytest

from rram_cim.host.frames import LinkError, parse_reply, read_frame, write_frame
from rram_cim.host.registers import ChipError, RegisterClient
from rram_cim.host.registers_gen import TABLE
from rram_cim.sim.regfile_model import RegisterFileModel


@pytest.fixture
def client():
    return RegisterClient(RegisterFileModel(), TABLE)


def test_frames_are_command_address_data():
    assert write_frame(0x100002, b"\x01\x02") == bytes([0x02, 0x10, 0x00, 0x02, 1, 2])
    assert read_frame(0x000003, 2) == bytes([0x03, 0, 0, 3, 0, 0, 0])


def test_bad_addresses_and_lengths_are_refused_before_sending():
    with pytest.raises(ValueError, match="24-bit"):
        write_frame(1 << 24, b"")
    with pytest.raises(ValueError, match="negative"):
        read_frame(0, -1)


def test_dead_link_is_reported():
    with pytest.raises(LinkError, match="marker"):
        parse_reply(b"\x00", b"\xff")
    with pytest.raises(LinkError):
        parse_reply(b"\x00", b"\x00")


def test_client_reads_and_writes_by_name_and_field(client):
    assert client.read("chip_id") == 0x52C1
    client.write("pv_mode", algorithm=1, triangular=1)
    client.write("pv_mode", scope=2)
    mode = client.read("pv_mode")
    assert mode == (1 << TABLE.register("pv_mode").field("algorithm").lsb) | (1 << 3) | (2 << 6)
    client.write_window("routing", 10, b"\x05\x06")
    assert client.read_window("routing", 10, 2) == b"\x05\x06"


def test_client_turns_chip_errors_into_exceptions_and_clears_them(client):
    with pytest.raises(ChipError, match="read_only"):
        client.write("chip_id", 1)
    assert client.errors() == []


def test_client_refuses_values_that_do_not_fit(client):
    with pytest.raises(ValueError, match="does not fit 2 bits"):
        client.write("pv_mode", algorithm=4)
    with pytest.raises(ValueError, match="do not fit window routing"):
        client.write_window("routing", TABLE.window("routing").size - 1, b"\x00\x00")
