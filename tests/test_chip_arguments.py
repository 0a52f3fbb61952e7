"""The Chip API and the host's frame parser refuse what they cannot carry out, before any frame goes out,
and the host checks that the chip behind a link is the one its config describes."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rram_cim.config import NEURRAM_LIKE, REFERENCE
from rram_cim.host.chip import Chip, ModelTransport
from rram_cim.host.compiler import Layer, compile_network
from rram_cim.host.frames import LinkError, parse_reply, read_frame
from rram_cim.host.inference import InferenceRunner
from rram_cim.host.programming import Programmer
from rram_cim.host.registers import ChipError, IdentityError, RegisterClient
from rram_cim.host.registers_gen import TABLE
from rram_cim.models.macro import NeuronCodes
from rram_cim.protocol import STATUS_MARKER, Command, StatusBit
from rram_cim.models.recipes import LEVELS
from rram_cim.sim.regfile_model import RegisterFileModel

GOOD = np.full((2, REFERENCE.columns), LEVELS[3])


class Counting:
    """A frame transport over the register-file model that counts the frames a call sends."""

    def __init__(self, model=None):
        self.model = model or RegisterFileModel()
        self.frames = 0

    def exchange(self, frame: bytes) -> bytes:
        self.frames += 1
        return self.model.exchange(frame)


def mapping():
    rng = np.random.default_rng(1)
    layers = [Layer(rng.integers(0, 8, (2, 4)), rng.integers(0, 8, (2, 4)), 2)]
    return compile_network(layers, LEVELS, REFERENCE, threshold_code=2, v_read_code=6)


BAD_CHIP_CALLS = [
    ("core 0.5", lambda c: c.program(0.5, GOOD), TypeError, "core must be an integer"),
    ("core True", lambda c: c.program(True, GOOD), TypeError, "core must be an integer, not bool"),
    ("core float64", lambda c: c.program(np.float64(0), GOOD), TypeError, "core must be an integer"),
    ("core 2", lambda c: c.program(2, GOOD), ValueError, "core 2 does not exist"),
    ("NaN targets", lambda c: c.program(0, np.full((2, 64), np.nan)), ValueError, "integer ADC codes"),
    ("inf targets", lambda c: c.program(0, np.full((2, 64), np.inf)), ValueError, "integer ADC codes"),
    ("bool targets", lambda c: c.program(0, np.ones((2, 64), bool)), ValueError, "integer ADC codes"),
    ("ragged targets", lambda c: c.program(0, [[1, 2], [3]]), ValueError, "rows x 64"),
    ("string targets", lambda c: c.program(0, "abc"), ValueError, "shape"),
    ("no rows", lambda c: c.program(0, np.zeros((0, 64), int)), ValueError, "shape"),
    ("first_row True", lambda c: c.program(0, GOOD, first_row=True), TypeError, "first_row"),
    ("first_row 1.0", lambda c: c.program(0, GOOD, first_row=1.0), TypeError, "first_row"),
    ("recipes string", lambda c: c.program(0, GOOD, recipes="igvva"), ValueError, "recipes must be"),
    ("progress 5", lambda c: c.program(0, GOOD, progress=5), TypeError, "progress"),
    ("read count 2.0", lambda c: c.read_codes(0, 0, 2.0), TypeError, "count"),
    ("read first_row True", lambda c: c.read_codes(0, True), TypeError, "first_row"),
    ("read past the end", lambda c: c.read_codes(0, 60, 5), ValueError, "do not fit"),
    ("conductances core -1", lambda c: c.read_conductances(-1), ValueError, "core -1"),
    ("no steps", lambda c: c.infer([]), ValueError, "at least one time step"),
    ("steps a string", lambda c: c.infer("abc"), TypeError, "host_steps"),
    ("row outside", lambda c: c.infer([[(0, 64)]]), ValueError, "names no row"),
    ("core bool event", lambda c: c.infer([[(True, 0)]]), TypeError, "event core"),
    ("float row", lambda c: c.infer([[(0, 1.5)]]), TypeError, "event row"),
    ("event triple", lambda c: c.infer([[(0, 1, 2)]]), TypeError, "pair"),
    ("relax NaN", lambda c: c.relax(math.nan), ValueError, "finite"),
    ("relax -1", lambda c: c.relax(-1), ValueError, "time runs forward"),
    ("relax True", lambda c: c.relax(True), TypeError, "seconds"),
    ("load object", lambda c: c.load(object()), TypeError, "NetworkMapping"),
    ("configure None", lambda c: c.configure(None), TypeError, "NetworkMapping"),
    ("load progress", lambda c: c.load(mapping(), progress="bar"), TypeError, "progress"),
    ("NaN raster", lambda c: c.classify(mapping(), np.full((3, 2), np.nan)), ValueError, "raster"),
]


@pytest.mark.parametrize("what,call,error,message", BAD_CHIP_CALLS, ids=[c[0] for c in BAD_CHIP_CALLS])
def test_bad_chip_calls_raise_a_clear_error_and_send_no_frame(what, call, error, message):
    transport = Counting()
    with pytest.raises(error, match=message):
        call(Chip(transport))
    assert transport.frames == 0


@pytest.mark.parametrize("what,call,error,message", BAD_CHIP_CALLS, ids=[c[0] for c in BAD_CHIP_CALLS])
def test_the_model_transport_refuses_the_same_calls(what, call, error, message):
    transport = ModelTransport(REFERENCE, seed=1)
    before = [a.g_us.copy() for a in transport.macro.cores]
    with pytest.raises(error, match=message):
        call(Chip(transport))
    assert all(np.array_equal(b, a.g_us) for b, a in zip(before, transport.macro.cores))


def test_programmer_and_runner_refuse_bad_arguments_before_a_frame():
    transport = Counting()
    regs = RegisterClient(transport, TABLE)
    programmer, runner = Programmer(regs, REFERENCE), InferenceRunner(regs, REFERENCE)
    routing = bytes(REFERENCE.cores * REFERENCE.neurons * 2 * 2)
    for call, error, message in [
        (lambda: programmer.program(0.5, GOOD, PVSettingsDefault()), TypeError, "core"),
        (lambda: programmer.program(0, GOOD, PVSettingsDefault(), read_back=1), TypeError, "read_back"),
        (lambda: programmer.read_codes(1, 0, True), TypeError, "count"),
        (lambda: runner.run([[(0, 1.5)]]), TypeError, "row"),
        (lambda: runner.run([[(64, 0)]]), ValueError, "does not fit the 16-bit event"),
        (lambda: runner.configure(NeuronCodes(5, 5), 1.5, routing), TypeError, "v_read_code"),
        (lambda: runner.configure(NeuronCodes(5, 5), 6, list(routing)), TypeError, "routing must be bytes"),
        (lambda: runner.configure(NeuronCodes(5.0, 5), 6, routing), TypeError, "thresh_pos"),
        (lambda: runner.configure((5, 5), 6, routing), TypeError, "NeuronCodes"),
    ]:
        with pytest.raises(error, match=message):
            call()
    assert transport.frames == 0
    for bad in (dict(poll_seconds=math.nan), dict(timeout_seconds=-1), dict(setup_cycles=1.5)):
        with pytest.raises((TypeError, ValueError)):
            Programmer(regs, REFERENCE, **bad)


def PVSettingsDefault():
    from rram_cim.models.pv import PVSettings
    return PVSettings()


# ---- property-based ------------------------------------------------------------------------------------
not_an_int = st.one_of(st.booleans(), st.floats(allow_nan=True), st.text(max_size=3), st.none(),
                       st.lists(st.integers(), max_size=2))


@settings(max_examples=60, deadline=None)
@given(core=st.one_of(not_an_int, st.integers().filter(lambda c: not 0 <= c < REFERENCE.cores)),
       first_row=st.one_of(not_an_int, st.integers(0, REFERENCE.rows - 1)),
       count=st.one_of(st.none(), not_an_int, st.integers()))
def test_any_bad_selection_is_refused_without_a_frame(core, first_row, count):
    transport = Counting()
    chip = Chip(transport)
    with pytest.raises((TypeError, ValueError)) as caught:
        chip.read_codes(core, first_row, count)
    assert str(caught.value)                             # a message, not a bare exception
    assert type(caught.value).__module__.startswith(("rram_cim", "builtins"))
    assert transport.frames == 0


@settings(max_examples=60, deadline=None)
@given(targets=st.one_of(
    st.lists(st.lists(st.integers(-300, 300), min_size=64, max_size=64), min_size=1, max_size=3).filter(
        lambda t: any(not 0 <= v <= 255 for row in t for v in row)),
    st.lists(st.lists(st.floats(), min_size=64, max_size=64), min_size=1, max_size=2),
    st.lists(st.lists(st.integers(0, 255), max_size=70), min_size=0, max_size=3).filter(
        lambda t: not t or any(len(row) != 64 for row in t))),
    core=st.integers(0, 1))
def test_any_bad_targets_are_refused_without_a_frame(targets, core):
    transport = Counting()
    with pytest.raises(ValueError) as caught:
        Chip(transport).program(core, targets)
    assert "targets" in str(caught.value)
    assert transport.frames == 0


@settings(max_examples=200, deadline=None)
@given(frame=st.binary(max_size=12), miso=st.binary(max_size=12))
def test_the_frame_parser_parses_or_says_why(frame, miso):
    try:
        reply = parse_reply(frame, miso)
    except LinkError as error:
        assert "marker" in str(error)
        assert miso[0] & 0xC0 != STATUS_MARKER
    except ValueError as error:
        assert "empty frame" in str(error) or "bytes for a" in str(error)
        assert not frame or len(frame) != len(miso)
    else:
        assert reply.status == miso[0] and reply.status & 0xC0 == STATUS_MARKER
        assert reply.data == (miso[5:] if frame[0] == Command.READ else b"")


@settings(max_examples=60, deadline=None)
@given(address=st.sampled_from([r.address for r in TABLE.registers]), length=st.integers(0, 8))
def test_the_frame_parser_returns_what_the_chip_model_read(address, length):
    frame = read_frame(address, length)
    reply = parse_reply(frame, RegisterFileModel().exchange(frame))
    assert reply.data == RegisterFileModel().frame(frame).data and len(reply.data) == length


# ---- identity and counters -----------------------------------------------------------------------------
class Garbage:
    """A port that answers a valid status byte and then random data."""

    def __init__(self):
        self.rng = np.random.default_rng(0)
        self.frames = 0

    def exchange(self, frame: bytes) -> bytes:
        self.frames += 1
        return bytes([STATUS_MARKER]) + self.rng.integers(0, 256, len(frame) - 1, dtype=np.uint8).tobytes()


def test_a_port_answering_random_data_is_not_taken_for_a_chip():
    chip = Chip(Garbage())
    with pytest.raises(IdentityError, match=r"answers chip id 0x[0-9a-f]{4}, not 0x52c1"):
        chip.program(0, GOOD)
    with pytest.raises(IdentityError):
        chip.status()


def test_a_chip_of_another_geometry_is_named():
    transport = Counting(RegisterFileModel(NEURRAM_LIKE))
    chip = Chip(transport, REFERENCE)
    with pytest.raises(IdentityError, match=r"answers geometry 4x256x256 \(128 neurons.*the config 'reference' "
                                            r"says 2x64x64 \(32 neurons"):
        chip.read_codes(0)
    assert transport.frames <= 2 * 8                     # identity reads only: nothing was written


def test_a_chip_of_another_register_map_version_is_named():
    model = RegisterFileModel()
    model._values["version"] = 0x37
    with pytest.raises(IdentityError, match=r"register map version 3.7, this host's table .* is version"):
        Chip(Counting(model)).errors()


def test_the_right_chip_is_identified_once():
    transport = Counting()
    chip = Chip(transport)
    chip.identify()
    after = transport.frames
    chip.status()
    chip.identify()
    assert after >= 8 and transport.frames == after + 1       # one NOP, no second identification


class LyingCounters(Counting):
    """The right chip, whose P&V engine finishes at once and whose counters say `done` cells done."""

    def __init__(self, done: int, pulses: int):
        super().__init__()
        self.done, self.pulses = done, pulses

    def exchange(self, frame: bytes) -> bytes:
        miso = bytearray(super().exchange(frame))
        header = 5
        if frame[0] == Command.READ and len(frame) > header:
            address = int.from_bytes(frame[1:4], "big")
            for name, value in (("pv_cells_done", self.done), ("pv_pulses_total", self.pulses)):
                register = TABLE.register(name)                 # read alone or in a burst of counters
                for byte, data in enumerate(value.to_bytes(register.size, "little")):
                    at = header + register.address + byte - address
                    if header <= at < len(miso):
                        miso[at] = data
        if miso:
            miso[:header if frame[0] == Command.READ else 1] = bytes(
                [miso[0] | StatusBit.PV_DONE] * min(len(miso), header if frame[0] == Command.READ else 1))
        return bytes(miso)


@pytest.mark.parametrize("done,pulses,message", [
    (1_000_000, 0, r"1000000 cells done and 0 failed of the 64 selected"),
    (64, 10 ** 9, r"1000000000 pulses for 64 cells of at most"),
])
def test_impossible_counters_are_refused(done, pulses, message):
    chip = Chip(LyingCounters(done, pulses))
    with pytest.raises(ChipError, match=message):
        chip.program(0, GOOD[:1])
