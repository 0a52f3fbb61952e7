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


class CountingTransport:
    """The register-file model, counting the frames a host call sends."""

    def __init__(self):
        self.model = RegisterFileModel()
        self.frames = 0

    def exchange(self, frame: bytes) -> bytes:
        self.frames += 1
        return self.model.exchange(frame)


@pytest.mark.parametrize("targets,recipes,first_row,message", [
    ("shape", "one", 0, "give rows x 64 columns"),
    ("high", "one", 0, "ADC codes 0..255"),
    ("float", "one", 0, "integer ADC codes"),
    ("ok", "one", 63, "do not fit a core of 64 rows"),
    ("ok", "missing", 0, "no recipe for target code"),
    ("ok", "too_many", 0, "level table holds 16"),
    ("ok", "disagree", 0, "levels disagree on algorithm"),
    ("ok", "dac", 0, "exceeds the 8-bit DAC"),
])
def test_programmer_refuses_bad_requests_before_sending_a_frame(targets, recipes, first_row, message):
    import numpy as np

    from rram_cim.config import REFERENCE
    from rram_cim.host.programming import Programmer, ProgrammingError
    from rram_cim.models import Algorithm, PVSettings
    from rram_cim.models.device import ModelInputError
    base = PVSettings()
    arrays = {"shape": np.zeros((2, 63), int), "high": np.full((2, 64), 256), "float": np.full((2, 64), 1.5),
              "ok": np.full((2, 64), 20)}
    recipe_sets = {
        "one": base, "missing": {50: base}, "too_many": {code: base for code in range(17)},
        "disagree": {20: base, 50: PVSettings(algorithm=Algorithm.ISPVA)},
        "dac": PVSettings(bl_stop=300),
    }
    transport = CountingTransport()
    programmer = Programmer(RegisterClient(transport, TABLE), REFERENCE)
    with pytest.raises((ProgrammingError, ModelInputError), match=message):
        programmer.program(0, arrays[targets], recipe_sets[recipes], first_row=first_row)
    assert transport.frames == 0
    with pytest.raises(ProgrammingError, match="core 2 does not exist"):
        programmer.read_codes(2)
    assert transport.frames == 0


def test_waiting_for_an_engine_that_never_finishes_aborts_it_and_raises():
    from rram_cim.protocol import StatusBit
    transport = CountingTransport()
    frames = []
    exchange = transport.exchange
    transport.exchange = lambda frame: frames.append(frame) or exchange(frame)
    regs = RegisterClient(transport, TABLE)
    polls = []
    with pytest.raises(ChipError, match="inference did not finish within 0.001 s"):
        regs.wait_done(StatusBit.INFER_DONE, "inf_abort", 1e-3, 2e-4, between=lambda: polls.append(1),
                       what="inference")
    ctrl = TABLE.register("ctrl")
    abort = write_frame(ctrl.address, bytes([ctrl.field("inf_abort").mask]))
    assert abort in frames and len(polls) >= 5


def test_a_p_and_v_slot_that_is_never_freed_aborts_the_engine_and_raises():
    # The register-file model has no engine: its PV_STREAM reads 08 (ready, none owned) for ever, so a
    # wait for an owned slot's bit stands for a slot the engine never frees.
    from rram_cim.config import REFERENCE
    from rram_cim.host.programming import Programmer
    from rram_cim.protocol import Command
    transport = CountingTransport()
    frames = []
    exchange = transport.exchange
    transport.exchange = lambda frame: frames.append(frame) or exchange(frame)
    programmer = Programmer(RegisterClient(transport, TABLE), REFERENCE, poll_seconds=2e-4, timeout_seconds=1e-3)
    never = TABLE.register("pv_stream").field("owned").mask
    with pytest.raises(ChipError, match="the P&V engine did not free a slot within 0.001 s; stopped"):
        programmer._wait_slot(never)
    ctrl = TABLE.register("ctrl")
    assert write_frame(ctrl.address, bytes([ctrl.field("pv_abort").mask])) in frames
    assert sum(frame[0] == Command.READ for frame in frames) >= 5       # it polled PV_STREAM meanwhile


def test_neuron_settings_go_to_each_cores_page_or_one_page_for_all():
    from rram_cim.config import REFERENCE, REFERENCE_LITE
    from rram_cim.host.inference import neuron_pages
    from rram_cim.models.macro import NeuronCodes
    a, b = NeuronCodes(thresh_pos=5, thresh_neg=5), NeuronCodes(thresh_pos=9, thresh_neg=3, leak=20, mode=1)
    assert neuron_pages(REFERENCE, a) == [a, a] and neuron_pages(REFERENCE, [a, b]) == [a, b]
    assert neuron_pages(REFERENCE, [b]) == [b, b]
    assert neuron_pages(REFERENCE_LITE, [a, a]) == [a] and neuron_pages(REFERENCE_LITE, a) == [a]
    with pytest.raises(ValueError, match="one page of neuron settings for every core"):
        neuron_pages(REFERENCE_LITE, [a, b])
    with pytest.raises(ValueError, match=r"one per core \(2\), not 3 items"):
        neuron_pages(REFERENCE, [a, b, a])
    with pytest.raises(TypeError, match=r"codes\[1\] must be NeuronCodes"):
        neuron_pages(REFERENCE, [a, 5])


def test_a_chip_with_one_page_answers_its_geometry_and_a_host_for_the_full_chip_refuses_it():
    from rram_cim.config import REFERENCE, REFERENCE_LITE
    from rram_cim.host.registers import IdentityError, check_identity
    from rram_cim.rtl.regmap.generate import load_generated
    lite_table = load_generated(REFERENCE_LITE)[1].TABLE
    assert lite_table.register("geometry_neuron_pages").field("count").reset == 1
    assert not any(r.name.startswith("core1_") for r in lite_table.registers)
    regs = RegisterClient(RegisterFileModel(REFERENCE_LITE), TABLE)
    assert lite_table.register("geometry_pv_verify_reads").field("count").reset == 1
    assert lite_table.register("geometry_pv_algorithms").field("mask").reset == 0b011
    assert lite_table.register("geometry_mvm_lines").field("count").reset == 0
    assert not any(w.name in ("mvm_x", "mvm_y", "neuron_trim") for w in lite_table.windows)
    assert not any(r.name.startswith("mvm_") for r in lite_table.registers)
    with pytest.raises(IdentityError, match=r"1 page\(s\) of neuron settings, up to 1 read\(s\) averaged per "
                                            r"verify, P&V algorithms 0b011, 0 MVM lines, output burst off, stochastic neurons off\), the "
                                            r"config 'reference' says .*2 page"):
        check_identity(regs, REFERENCE)
    check_identity(RegisterClient(RegisterFileModel(REFERENCE_LITE), lite_table), REFERENCE_LITE)


@pytest.mark.parametrize("burst", [True, False])
def test_the_inference_runner_drains_outputs_in_bursts_or_one_event_per_frame(burst):
    """A chip (the register-file model) whose run has ended with 40 events and a tick waiting: the runner
    reads them all, in order, in one burst frame, or one frame each on a build without the window."""
    from rram_cim.config import REFERENCE, REFERENCE_LITE
    from rram_cim.host.inference import InferenceRunner
    from rram_cim.host.registers import check_identity
    from rram_cim.protocol import EVENT_TICK, StatusBit, output_event
    from rram_cim.rtl.regmap.generate import load_generated
    config = REFERENCE if burst else REFERENCE_LITE

    class EndedRun(RegisterFileModel):
        frames = 0

        def status_byte(self):
            return super().status_byte() | StatusBit.INFER_DONE

        def exchange(self, frame):
            self.frames += 1
            return super().exchange(frame)

    chip = EndedRun(config)
    events = [output_event(n % 2, n % 32, n % 3 == 0) for n in range(40)] + [EVENT_TICK]
    chip.spike_out.extend(events)
    regs = RegisterClient(chip, load_generated(config)[1].TABLE)
    check_identity(regs, config)                                      # its frames are not the run's
    chip.frames = 0
    run = InferenceRunner(regs, config).run([[(0, 1)]])
    assert run.events == events and not chip.spike_out and run.warnings == []
    # Time steps and start, the levels (the run has ended: no inputs sent), the outputs, two counter bursts,
    # the closing NOP: 7 frames; or the 41 events one frame each.
    assert chip.frames == (7 if burst else 6 + len(events))
