"""The analog port's responder on its own, cycle by cycle, against a macro that only writes down what it
was asked: when pulses are applied, when senses and neuron strobes are answered, what a silent macro does."""

import numpy as np
import pytest

from rram_cim.config import REFERENCE
from rram_cim.protocol import Op, pack_neuron_cores
from rram_cim.sim.port_responder import CELL_MEMBERS, NEURON_MEMBERS, PortResponder


class FakeMacro:
    """Two neurons; a sense reads core + row + column; every call is written down."""

    config = REFERENCE

    def __init__(self):
        self.calls = []
        self.spikes = (np.array([True, False]), np.array([False, True]))

    def pulse(self, *request):
        self.calls.append(("pulse", request))

    def sense(self, core, row, column, bl_code):
        self.calls.append(("sense", (core, row, column, bl_code)))
        return core + row + column

    def drive_row(self, core, row):
        self.calls.append(("drive_row", (core, row)))

    def integrate(self, v_read_code, codes):
        self.calls.append(("integrate", (v_read_code, [c.thresh_pos for c in codes])))

    def fire(self, codes):
        self.calls.append(("fire", None))
        return self.spikes

    def reset_neurons(self):
        self.calls.append(("reset_neurons", None))

    def set_trim(self, core, neuron, code):
        self.calls.append(("set_trim", (core, neuron, code)))


def port(**members):
    """One cycle of the port's outputs: every member 0 but those given."""
    return dict.fromkeys(CELL_MEMBERS + NEURON_MEMBERS, 0) | members


def run(responder, cycles):
    """Step through `cycles` (port dicts); the drives after each, copied."""
    drives = []
    for cycle in cycles:
        responder.step(cycle)
        drives.append(dict(responder.drives))
    return drives


def test_an_idle_port_is_never_answered_and_lets_the_adapter_sleep():
    macro = FakeMacro()
    responder = PortResponder(macro)
    drives = run(responder, [port(sense_req=1, pulse=1, fire=1)] * 3)   # strobes without an operation
    assert responder.asleep and not macro.calls
    assert all(not d["sense_valid"] and not d["neuron_ack"] for d in drives)


def test_a_pulse_is_applied_whole_when_its_strobe_drops():
    macro = FakeMacro()
    responder = PortResponder(macro)
    setup = port(op=Op.SET, core=1, row=2, column=3)
    cycles = [setup] + [setup | dict(pulse=1, wl_code=90, bl_code=code) for code in (10, 20, 30)] + [setup]
    run(responder, cycles[:-1])
    assert not macro.calls                                  # nothing happens while the strobe is high
    run(responder, cycles[-1:])
    expected = (Op.SET, 1, 2, 3, [90, 90, 90], [10, 20, 30], [0, 0, 0])
    assert macro.calls == [("pulse", expected)] and responder.pulse_log == [expected]
    run(responder, [port()])
    assert responder.asleep


@pytest.mark.parametrize("latency", [1, 4])
def test_a_sense_is_answered_latency_cycles_after_it_is_first_seen_for_one_cycle(latency):
    macro = FakeMacro()
    responder = PortResponder(macro, sense_latency=latency)
    asking = port(op=Op.READ, core=1, row=5, column=7, bl_code=12, sense_req=1)
    drives = run(responder, [asking] * (latency + 1) + [port(op=Op.READ)])
    valid = [d["sense_valid"] for d in drives]
    assert valid == [0] * latency + [1, 0]
    assert drives[latency]["sense_code"] == 13
    assert macro.calls == [("sense", (1, 5, 7, 12))] and responder.sense_log == [(1, 5, 7, 13)]


def test_the_cell_addressed_in_the_answering_cycle_is_the_one_sensed():
    macro = FakeMacro()
    responder = PortResponder(macro, sense_latency=2)
    run(responder, [port(op=Op.READ, sense_req=1, row=1), port(op=Op.READ, sense_req=1, row=9),
                    port(op=Op.READ, sense_req=1, row=3)])
    assert responder.sense_log == [(0, 3, 0, 3)]


def test_sleeping_through_a_senses_counted_cycles_answers_as_stepping_every_cycle():
    asking = port(op=Op.READ, row=4, sense_req=1)
    stepped = PortResponder(FakeMacro(), sense_latency=4)
    every_cycle = run(stepped, [asking] * 6)
    skipping = PortResponder(FakeMacro(), sense_latency=4)
    skipping.step(asking)
    assert skipping.counting == 4
    skipping.step(asking, cycles=4)
    answer = dict(skipping.drives)
    assert skipping.counting == 1
    skipping.step(asking, cycles=1)
    drop = dict(skipping.drives)
    assert [answer, drop] == every_cycle[4:6] and skipping.sense_log == stepped.sense_log


def test_a_request_after_a_sense_is_seen_from_the_second_cycle_after_the_answer():
    macro = FakeMacro()
    responder = PortResponder(macro, sense_latency=1)
    asking = port(op=Op.READ, sense_req=1)
    run(responder, [asking, asking, asking, asking])     # seen, answered, dropped (not read), seen again
    assert len(responder.sense_log) == 1
    run(responder, [asking])
    assert len(responder.sense_log) == 2


def test_neuron_strobes_are_carried_out_and_acknowledged_for_one_cycle():
    macro = FakeMacro()
    responder = PortResponder(macro, neuron_latency=2)
    infer = port(op=Op.INFER, v_read_code=4, neuron_cores=pack_neuron_cores([dict(thresh_pos=50), dict(thresh_pos=60)]))
    cycles = [infer | dict(row_strobe=1, row_core=1, row_index=6), infer | dict(integrate=1),
              infer | dict(integrate=1), infer | dict(integrate=1), infer | dict(fire=1), infer | dict(fire=1),
              infer | dict(fire=1), infer]
    drives = run(responder, cycles)
    assert [d["neuron_ack"] for d in drives] == [0, 0, 1, 0, 0, 1, 0, 0]
    assert macro.calls == [("drive_row", (1, 6)), ("integrate", (4, [50, 60])), ("fire", None)]
    assert drives[5]["spike_pos"] == 0b01 and drives[5]["spike_neg"] == 0b10
    assert drives[7]["spike_pos"] == 0b01                    # held until the next fire
    assert [action for action, _ in responder.neuron_log] == ["row", "integrate", "fire"]


def test_the_cycle_the_sequencer_lets_go_still_drops_the_acknowledge():
    macro = FakeMacro()
    responder = PortResponder(macro, neuron_latency=1)
    drives = run(responder, [port(op=Op.INFER, fire=1), port(op=Op.IDLE, fire=1), port()])
    assert [d["neuron_ack"] for d in drives] == [1, 0, 0] and responder.asleep


def test_a_silent_macro_sees_requests_but_never_answers():
    macro = FakeMacro()
    responder = PortResponder(macro, sense_latency=2, neuron_latency=2, silent=True)
    drives = run(responder, [port(op=Op.READ, sense_req=1)] * 8 + [port(op=Op.INFER, integrate=1)] * 8)
    assert not any(d["sense_valid"] or d["neuron_ack"] for d in drives)
    assert not responder.sense_log and not macro.calls
    responder.silent = False
    drives = run(responder, [port(op=Op.INFER, integrate=1)] * 2)    # within the latency
    assert any(d["neuron_ack"] for d in drives)


def test_latencies_below_one_cycle_are_refused():
    with pytest.raises(ValueError, match="at least 1"):
        PortResponder(FakeMacro(), sense_latency=0)


def test_a_step_returns_only_the_drives_it_changed():
    responder = PortResponder(FakeMacro(), sense_latency=2)
    asking = port(op=Op.READ, row=4, sense_req=1)
    changes = [responder.step(cycle) for cycle in [asking] * 4]
    assert changes == [{}, {}, {"sense_code": 4, "sense_valid": 1}, {"sense_valid": 0}]


def test_a_trim_write_is_one_cycle_of_op_trim_applied_once_and_answered_by_nothing():
    macro = FakeMacro()
    responder = PortResponder(macro)
    neurons = REFERENCE.neurons
    drives = run(responder, [port(op=Op.TRIM, trim_index=neurons + 3, trim_code=0xF6),    # -10 on core 1
                             port(trim_index=neurons + 3, trim_code=0xF6),
                             port(op=Op.TRIM, trim_index=5, trim_code=7), port()])
    assert macro.calls == [("set_trim", (1, 3, -10)), ("set_trim", (0, 5, 7))]
    assert all(not any(d.values()) for d in drives) and responder.asleep
    assert responder.neuron_log == [("trim", (1, 3, -10)), ("trim", (0, 5, 7))]
