"""The inference sequencer and router in Amaranth's simulator, the Python macro's neurons on its port,
scored spike for spike against the golden model of `models.inference`."""

import numpy as np
import pytest

from rram_cim.config import REFERENCE
from rram_cim.models.inference import InferenceModel
from rram_cim.models.macro import NeuronCodes
from rram_cim.protocol import EVENT_TICK, decode_event, pack_route
from rram_cim.sim.inference_harness import macro_with_weights, run_sequencer, two_layer_routing

CONFIG = REFERENCE
V_READ = 6


def run_rtl(macro, routing, codes, host_steps, **kwargs):
    return run_sequencer(macro, routing, codes, host_steps, V_READ, **kwargs)


def random_input(seed, steps=12, per_step=24):
    rng = np.random.default_rng(seed)
    return [[(0, int(r)) for r in rng.choice(CONFIG.rows, per_step, replace=False)] for _ in range(steps)]


@pytest.mark.parametrize("codes", [
    NeuronCodes(thresh_pos=7, thresh_neg=7),
    NeuronCodes(thresh_pos=5, thresh_neg=12, refractory=2),
    NeuronCodes(thresh_pos=6, thresh_neg=6, leak=40, mode=1),
    NeuronCodes(thresh_pos=8, thresh_neg=8, mode=2),
    # Each core its own page: a layer per core with its own neuron type and thresholds.
    [NeuronCodes(thresh_pos=5, thresh_neg=12, refractory=2), NeuronCodes(thresh_pos=6, thresh_neg=6, leak=40, mode=1)],
    # Reset by subtraction: IF with a refractory period on one core, LIF on the other.
    [NeuronCodes(thresh_pos=5, thresh_neg=7, refractory=1, reset=1), NeuronCodes(thresh_pos=6, thresh_neg=6, leak=30, mode=1, reset=1)],
], ids=["if", "if-refractory", "lif", "adc", "per-core", "subtract"])
def test_two_layer_network_spikes_exactly_like_the_golden_model(codes):
    routing = two_layer_routing(CONFIG)
    host_steps = random_input(1)
    out, counters, strobes = run_rtl(macro_with_weights(CONFIG, 5), routing, codes, host_steps)
    golden = InferenceModel(macro_with_weights(CONFIG, 5), routing, codes, V_READ).run(host_steps)
    assert out == golden.events
    assert np.abs(golden.spikes[:, 1]).sum() > 0 and np.abs(golden.spikes[:, 0]).sum() > 0   # both layers spike
    assert counters["step"] == len(host_steps) and not counters["busy"]
    assert counters["spikes"] == int(np.abs(golden.spikes).sum())
    assert counters["row_events"] == golden.row_events and counters["dropped"] == golden.dropped == 0
    assert [sorted(set(s)) for s in strobes[:-1]] == [sorted(set(s)) for s in golden.routed]


def test_each_core_follows_its_own_page_of_neuron_settings():
    """The same run with core 1's thresholds raised out of reach: core 0 spikes as before, core 1 falls
    silent, so the pages are not shared or swapped."""
    routing, host_steps = two_layer_routing(CONFIG), random_input(1)
    codes = NeuronCodes(thresh_pos=7, thresh_neg=7)
    shared, _, _ = run_rtl(macro_with_weights(CONFIG, 5), routing, codes, host_steps)
    quiet, _, _ = run_rtl(macro_with_weights(CONFIG, 5), routing,
                          [codes, NeuronCodes(thresh_pos=65535, thresh_neg=65535)], host_steps)
    def core_of(events, core):
        return [e for e in events if not decode_event(e)[0] and decode_event(e)[2] == core]
    assert core_of(shared, 1) and not core_of(quiet, 1)
    assert core_of(quiet, 0) == core_of(shared, 0)


def test_a_full_route_queue_drops_and_counts_and_back_pressure_loses_nothing():
    # Every neuron of both cores fires often and routes to rows: more events than the queue holds.
    codes = NeuronCodes(thresh_pos=1, thresh_neg=1)
    entries = [pack_route(True, True, (core + 1) % 2, neuron) for core in range(CONFIG.cores)
               for neuron in range(CONFIG.neurons) for _ in (0, 1)]
    routing = b"".join(entries)
    host_steps = random_input(2, steps=4, per_step=30)
    config = CONFIG.replace(route_fifo_depth=16)
    out, counters, _ = run_rtl(macro_with_weights(config, 6), routing, codes, host_steps, out_stall=3)
    golden = InferenceModel(macro_with_weights(config, 6), routing, codes, V_READ).run(host_steps)
    assert golden.dropped > 0
    assert out == golden.events
    assert counters["dropped"] == golden.dropped


def test_events_outside_the_chip_are_dropped_and_counted():
    codes = NeuronCodes(thresh_pos=15, thresh_neg=15)
    routing = two_layer_routing(CONFIG, layer1_to_host=False)
    host_steps = [[(0, 3), (5, 1), (1, 200)], [(0, 4)]]     # core 5 and row 200 do not exist
    out, counters, _ = run_rtl(macro_with_weights(CONFIG, 7), routing, codes, host_steps)
    golden = InferenceModel(macro_with_weights(CONFIG, 7), routing, codes, V_READ).run(host_steps)
    assert out == golden.events and counters["dropped"] == golden.dropped == 2
    assert counters["row_events"] == 2


def test_stop_ends_the_run_at_the_end_of_a_step():
    codes = NeuronCodes(thresh_pos=15, thresh_neg=15)
    host_steps = random_input(3, steps=40)
    out, counters, _ = run_rtl(macro_with_weights(CONFIG, 8), two_layer_routing(CONFIG, layer1_to_host=False), codes,
                               host_steps, stop_at_cycle=300)
    assert 0 < counters["step"] < 40
    assert out.count(EVENT_TICK) == counters["step"] and out[-1] == EVENT_TICK


@pytest.mark.parametrize("seed", range(4))
def test_random_networks_and_spike_trains_match_the_golden_model(seed):
    # Random routing (host and/or any row of one to three consecutive cores, some destinations outside
    # the chip), random inputs on both cores, random neuron settings.
    rng = np.random.default_rng(100 + seed)
    entries = [pack_route(bool(rng.random() < 0.5), bool(rng.random() < 0.7), int(rng.integers(0, 3)),
                          int(rng.integers(0, CONFIG.rows + 8)), copies=int(rng.choice(3, p=[0.6, 0.3, 0.1])))
               for _ in range(CONFIG.cores * CONFIG.neurons * 2)]
    routing = b"".join(entries)
    codes = NeuronCodes(thresh_pos=int(rng.integers(3, 12)), thresh_neg=int(rng.integers(3, 12)),
                        leak=int(rng.integers(0, 60)), refractory=int(rng.integers(0, 3)), mode=int(rng.integers(0, 3)))
    host_steps = [[(int(rng.integers(0, 2)), int(r)) for r in rng.choice(CONFIG.rows, int(rng.integers(0, 30)),
                                                                          replace=False)] for _ in range(10)]
    out, counters, _ = run_rtl(macro_with_weights(CONFIG, seed), routing, codes, host_steps)
    golden = InferenceModel(macro_with_weights(CONFIG, seed), routing, codes, V_READ).run(host_steps)
    assert out == golden.events
    assert (counters["spikes"], counters["row_events"], counters["dropped"]) == (
        int(np.abs(golden.spikes).sum()), golden.row_events, golden.dropped)


def test_with_neuron_noise_the_same_draws_give_the_same_spikes():
    # kT/C noise and comparator offsets on: the macro draws them in the same order in both runs, so the
    # RTL still reproduces the golden model exactly; and the noise does change the spikes.
    routing = two_layer_routing(CONFIG)
    codes = NeuronCodes(thresh_pos=7, thresh_neg=7)
    host_steps = random_input(11)

    out, _, _ = run_rtl(macro_with_weights(CONFIG, 12, neuron_noise=True), routing, codes, host_steps)
    golden = InferenceModel(macro_with_weights(CONFIG, 12, neuron_noise=True), routing, codes, V_READ).run(host_steps)
    quiet = InferenceModel(macro_with_weights(CONFIG, 12), routing, codes, V_READ).run(host_steps)
    assert out == golden.events
    assert golden.events != quiet.events


def test_a_single_event_and_the_refractory_period():
    # One row, every step, with a low threshold: the neurons it drives fire, then rest for the
    # refractory period before they may fire again.
    routing = b"".join(pack_route(True) for _ in range(CONFIG.cores * CONFIG.neurons * 2))
    codes = NeuronCodes(thresh_pos=1, thresh_neg=1, refractory=2)
    host_steps = [[(0, 5)] for _ in range(9)]
    out, counters, _ = run_rtl(macro_with_weights(CONFIG, 13), routing, codes, host_steps)
    golden = InferenceModel(macro_with_weights(CONFIG, 13), routing, codes, V_READ).run(host_steps)
    assert out == golden.events and counters["row_events"] == 9
    active = np.abs(golden.spikes[:, 0]).sum(axis=0) > 0
    assert active.any() and (golden.spikes[:, 0] < 0).any()          # negative spikes too
    # With a 2-step refractory period a neuron fires at most every third step.
    for neuron in np.nonzero(active)[0]:
        steps = np.nonzero(golden.spikes[:, 0, neuron])[0]
        assert np.all(np.diff(steps) >= 3), steps


def test_events_routed_into_the_step_after_the_last_do_not_leak_into_the_next_run():
    routing = b"".join(pack_route(True, True, 1, neuron) for _ in range(CONFIG.cores)
                       for neuron in range(CONFIG.neurons) for _ in (0, 1))
    codes = NeuronCodes(thresh_pos=4, thresh_neg=4)
    host_steps = [[(0, r) for r in range(10)], [], [(1, 3)]]
    macro = macro_with_weights(CONFIG, 14)
    first, _, _ = run_rtl(macro, routing, codes, host_steps, runs=2)
    golden = InferenceModel(macro_with_weights(CONFIG, 14), routing, codes, V_READ).run(host_steps)
    assert first == golden.events + golden.events


def test_a_spike_reaches_its_row_on_every_core_of_a_split_layer():
    # Four cores: layer 0 on core 0, the next layer's neurons split over cores 1-3, so each positive
    # spike of core 0 goes to its row on all three (one entry, copies=2); their spikes go to the host.
    config = REFERENCE.replace(name="four-cores", cores=4)
    entries = []
    for core in range(config.cores):
        for neuron in range(config.neurons):
            if core == 0:
                entries += [pack_route(False, True, 1, neuron, copies=2), pack_route(False)]
            else:
                entries += [pack_route(True)] * 2
    routing = b"".join(entries)
    codes = NeuronCodes(thresh_pos=5, thresh_neg=5)
    rng = np.random.default_rng(7)
    host_steps = [[(0, int(r)) for r in rng.choice(config.rows, 24, replace=False)] for _ in range(8)] + [[], []]
    out, counters, _ = run_sequencer(macro_with_weights(config, 3), routing, codes, host_steps, V_READ)
    golden = InferenceModel(macro_with_weights(config, 3), routing, codes, V_READ).run(host_steps)
    assert out == golden.events
    assert (counters["spikes"], counters["row_events"], counters["dropped"]) == (
        int(np.abs(golden.spikes).sum()), golden.row_events, golden.dropped)
    fanned = [[(core, row) for core, row in step if core != 0] for step in golden.routed[1:]]
    assert sum(map(len, fanned)) > 30                       # not vacuous: core 0 spiked and was routed
    for step in fanned:                                     # every routed row arrives on cores 1, 2 and 3
        rows = {core: sorted(row for c, row in step if c == core) for core in (1, 2, 3)}
        assert rows[1] == rows[2] == rows[3]
    assert any(decode_event(word)[2] == 3 for word in out)  # the last copy's core fired too


def test_a_raw_route_entry_past_core_255_wraps_as_the_router_counts():
    # pack_route refuses it; a host writing the bytes itself gets what the RTL does: cores 254, 255, 0, 1.
    raw = bytes([0b10 | 3 << 2, 254, 5, 0])
    routing = b"".join([raw, pack_route(True)] * CONFIG.neurons + [pack_route(True)] * (2 * CONFIG.neurons))
    codes = NeuronCodes(thresh_pos=2, thresh_neg=60000)
    host_steps = random_input(4, steps=6) + [[]]
    out, counters, _ = run_rtl(macro_with_weights(CONFIG, 4), routing, codes, host_steps)
    golden = InferenceModel(macro_with_weights(CONFIG, 4), routing, codes, V_READ).run(host_steps)
    fired = [t for t in range(len(host_steps) - 1) if golden.spikes[t, 0].max() == 1]
    assert fired, "a positive spike on core 0 must use the entry"
    assert (0, 5) in golden.routed[fired[0] + 1] and (1, 5) in golden.routed[fired[0] + 1]
    assert out == golden.events and counters["dropped"] == golden.dropped >= 2


def test_a_route_whose_copies_leave_the_event_format_is_refused():
    with pytest.raises(ValueError, match="cores 60..66"):
        pack_route(False, True, 60, 0, copies=6)
    with pytest.raises(ValueError, match="do not fit"):
        pack_route(False, True, 0, 0, copies=64)


def test_a_router_without_fan_out_reads_copies_as_zero():
    # reference-lite (the iCEBreaker's set) has no fan-out: every entry's copies are ignored, in the RTL
    # as in the model.
    from rram_cim.config import REFERENCE_LITE
    config = REFERENCE_LITE
    rng = np.random.default_rng(9)
    routing = b"".join(pack_route(True, True, int(rng.integers(0, 2)), int(rng.integers(0, config.rows)),
                                  copies=1) for _ in range(config.cores * config.neurons * 2))
    codes = NeuronCodes(thresh_pos=6, thresh_neg=6)
    host_steps = random_input(11, steps=8) + [[]]
    out, counters, _ = run_sequencer(macro_with_weights(config, 5), routing, codes, host_steps, V_READ)
    golden = InferenceModel(macro_with_weights(config, 5), routing, codes, V_READ).run(host_steps)
    fanned = InferenceModel(macro_with_weights(REFERENCE, 5), routing, codes, V_READ).run(host_steps)
    assert out == golden.events and counters["row_events"] == golden.row_events
    assert golden.row_events < fanned.row_events            # the same table fans out on the reference
