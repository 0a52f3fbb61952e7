"""models/energy.py: each term of the inference breakdown scales as its physics says, the parts sum to the
totals, the published figures carry their sources, bad input is refused, and EnergyMeter.inference counts
one inference's operations."""

import re

import numpy as np
import pytest

from rram_cim.models.device import ModelInputError
from rram_cim.models.energy import (E_COMPARATOR_PJ, E_SAR_BIT_PJ, GATE_C_FF_PER_CELL, PUBLISHED,
                                    SPIRIT_PJ_PER_EVENT_ARRAY, SPIRIT_PJ_PER_EVENT_TOTAL, EnergyBreakdown,
                                    EnergyMeter, EnergyParams)


def test_doubling_the_read_voltage_quadruples_the_read_term():
    g = np.full((4, 3), 40.0)
    rows = np.array([1.0, 0.0, 1.0, 0.0])
    assert EnergyMeter().read(g, 0.2 * rows) == pytest.approx(4 * EnergyMeter().read(g, 0.1 * rows))


def test_the_read_term_grows_with_conductance_and_read_time():
    meter = EnergyMeter()
    rows = np.array([0.1, 0.1])
    once = meter.read(np.full((2, 2), 20.0), rows)
    assert meter.read(np.full((2, 2), 40.0), rows) == pytest.approx(2 * once)
    assert meter.read(np.full((2, 2), 20.0), rows, t_s=2 * meter.params.t_read_s) == pytest.approx(2 * once)


def test_the_neuron_term_counts_integrations_and_charges_both_capacitors_at_the_read_voltage():
    meter = EnergyMeter()
    one = meter.integrate(1, 0.1, c_sample_ff=20.0, c_int_ff=200.0)
    assert one == pytest.approx(220e-15 * 0.1 ** 2 * 1e12)
    assert meter.integrate(10, 0.1, 20.0, 200.0) == pytest.approx(10 * one)
    assert meter.integrate(1, 0.2, 20.0, 200.0) == pytest.approx(4 * one)
    assert meter.integrate(0, 0.1, 20.0, 200.0) == 0.0


def test_each_comparator_decision_costs_a_strongarm_latch_cv2():
    # Four 5 fF nodes to 1.2 V (Razavi's StrongARM latch): 28.8 fJ.
    assert E_COMPARATOR_PJ == pytest.approx(4 * 5e-15 * 1.44 * 1e12)
    meter = EnergyMeter()
    assert meter.compare(3) == pytest.approx(3 * E_COMPARATOR_PJ)
    assert meter.comparator_pj == pytest.approx(3 * E_COMPARATOR_PJ)


def test_row_drivers_charge_the_gate_line_to_the_word_line_voltage():
    params = EnergyParams()
    meter = EnergyMeter(params)
    one_row = meter.drive(row_events=1, core_steps=0, rows=64, columns=64, v_read=0.09)
    gate = 64 * (GATE_C_FF_PER_CELL + params.c_wire_per_cell_ff) * 1e-15 * params.v_wl_read ** 2 * 1e12
    line = 64 * params.c_wire_per_cell_ff * 1e-15 * 0.09 ** 2 * 1e12
    assert one_row == pytest.approx(gate + line)
    # Longer lines (more cells) and more row events cost proportionally more.
    assert meter.drive(1, 0, 64, 128, 0.09) == pytest.approx(2 * one_row)
    assert meter.drive(5, 0, 64, 64, 0.09) == pytest.approx(5 * one_row)
    # The gate voltage dominates: doubling it quadruples the gate line's share.
    high = EnergyMeter(EnergyParams(v_wl_read=2 * params.v_wl_read)).drive(1, 0, 64, 64, 0.09)
    assert high == pytest.approx(4 * gate + line)


def test_each_core_step_charges_the_sensed_columns_and_converts_the_read_dac_once():
    params = EnergyParams()
    columns = 64 * 64 * params.c_wire_per_cell_ff * 1e-15 * 0.1 ** 2 * 1e12
    dac = 256 * params.c_dac_unit_ff * 1e-15 * params.v_dd ** 2 * 1e12
    assert EnergyMeter().drive(0, 1, 64, 64, 0.1) == pytest.approx(columns + dac)
    assert EnergyMeter().drive(0, 3, 64, 64, 0.1) == pytest.approx(3 * (columns + dac))
    # An N-bit capacitive DAC charges at most 2^N unit capacitors: one more bit, twice the energy.
    dac9 = EnergyMeter().drive(0, 1, 64, 64, 0.1, dac_bits=9) - columns
    assert dac9 == pytest.approx(2 * dac)


def test_conversion_counts_partial_reset_steps_and_sar_bits():
    meter = EnergyMeter()
    step = meter.convert(1, v_threshold=0.1, c_int_ff=200.0)
    assert step == pytest.approx(200e-15 * 0.1 * 1.2 * 1e12)
    assert meter.convert(4, 0.1, 200.0) == pytest.approx(4 * step)
    assert meter.convert(1, 0.2, 200.0) == pytest.approx(2 * step)
    # Liu et al., JSSC 2010: 0.826 mW at 50 MS/s over 10 bit cycles.
    assert E_SAR_BIT_PJ == pytest.approx(0.826e-3 / 50e6 / 10 * 1e12)
    assert meter.convert(0, 0.1, 200.0, sar_bits=8) == pytest.approx(8 * E_SAR_BIT_PJ)


def test_the_breakdown_sums_to_the_totals_per_event_and_per_mac():
    b = EnergyBreakdown(array_reads_pj=1.0, neuron_integration_pj=2.0, comparator_fire_pj=3.0, drivers_dacs_pj=4.0,
                        conversion_pj=5.0, logic_pj=100.0, spi_pj=10.0, synaptic_events=5, macs=3, spikes=2)
    assert b.total_pj == 15.0 and b.with_logic_and_spi_pj == 125.0
    assert b.per_synaptic_event_pj == 3.0 and b.per_mac_pj == 5.0
    assert b.neuron_pj_per_spike == pytest.approx((2 + 3 + 5) / 2)
    report = b.report()
    for per, count in (("pj_per_synaptic_event", 5), ("pj_per_mac", 3)):
        parts = report[per]
        assert sum(parts[name] for name in EnergyBreakdown.PARTS) == pytest.approx(parts["total"])
        assert parts["total"] == pytest.approx(15.0 / count)
        assert parts["with_logic_and_spi"] == pytest.approx(125.0 / count)
    assert set(report["includes"]) == {"total", "with_logic_and_spi", "mac"}


def test_the_published_figures_carry_their_sources_and_what_they_include():
    assert {f.chip for f in PUBLISHED} == {"SPIRIT", "NeuRRAM"}
    for figure in PUBLISHED:
        assert figure.pj > 0 and figure.source and figure.includes
        assert figure.per in ("synaptic event", "MAC", "spike")
    spirit = [f for f in PUBLISHED if f.chip == "SPIRIT"]
    assert all("IEDM 2019" in f.source for f in spirit)
    per_event = sorted(f.pj for f in spirit if f.per == "synaptic event")
    assert per_event == [SPIRIT_PJ_PER_EVENT_ARRAY, SPIRIT_PJ_PER_EVENT_TOTAL]
    # Per MAC: 136 input spikes x 10 neurons per image over 144 x 10 weights.
    per_mac = sorted(f.pj for f in spirit if f.per == "MAC")
    assert per_mac == pytest.approx([3.6 * 1360 / 1440, 180 * 1360 / 1440])
    neurram, = [f for f in PUBLISHED if f.chip == "NeuRRAM"]
    assert neurram.pj == 1.52 and "ICONS 2020" in neurram.source


def test_bad_input_is_refused():
    meter = EnergyMeter()
    with pytest.raises(ModelInputError, match="samples = -1"):
        meter.integrate(-1, 0.1, 20.0, 200.0)
    with pytest.raises(ModelInputError, match="v_read = 0"):
        meter.integrate(1, 0.0, 20.0, 200.0)
    with pytest.raises(ModelInputError, match="decisions = 1.5"):
        meter.compare(1.5)
    with pytest.raises(ModelInputError, match="columns = 0"):
        meter.drive(1, 1, rows=64, columns=0, v_read=0.1)
    with pytest.raises(ModelInputError, match="c_int_ff"):
        meter.convert(1, 0.1, c_int_ff=-200.0)
    with pytest.raises(ModelInputError, match="read voltages"):
        meter.read(np.ones((4, 2)), np.ones(3))
    with pytest.raises(ModelInputError, match="EnergyParams.t_read_s"):
        EnergyParams(t_read_s=0)
    with pytest.raises(ModelInputError, match="EnergyParams.c_wire_per_cell_ff"):
        EnergyParams(c_wire_per_cell_ff=-0.2)
    empty = EnergyMeter().breakdown()
    with pytest.raises(ModelInputError, match="no synaptic events"):
        empty.per_synaptic_event_pj
    with pytest.raises(ModelInputError, match="no MACs"):
        empty.per_mac_pj
    with pytest.raises(ModelInputError, match="no synaptic events"):
        empty.report()
    with pytest.raises(ModelInputError, match="layer_inputs has 1 layers"):
        meter.inference([[(0, 0)]], [np.ones((2, 2))], 0.1, [1, 1], 1, 20.0, 0, layer_inputs=[2])


def test_inference_counts_reads_events_samples_decisions_drives_and_conversions():
    params = EnergyParams()
    meter = EnergyMeter(params)
    g = [np.full((4, 6), 10.0), np.full((4, 6), 20.0)]
    # Step 0: rows 0 and 2 of core 0; step 1: row 1 of core 1; step 2: nothing (a flush step).
    routed = [[(0, 0), (0, 2)], [(1, 1)], []]
    meter.inference(routed, g, 0.1, layer_neurons=[3, 2], neurons_per_core=3, c_sample_ff=20.0, spikes=4,
                    layer_inputs=[4, 3], c_int_ff=200.0, v_threshold=0.05, dac_bits=8)
    read = (2 * 0.1 ** 2 * 6 * 10e-6 + 0.1 ** 2 * 6 * 20e-6) * params.t_read_s * 1e12
    assert meter.read_pj == pytest.approx(read)
    # Row events reach every neuron of their core's layer: 2 x 3 + 1 x 2.
    assert meter.synaptic_events == 8 and meter.spikes == 4
    samples = 3 * 2 * 3                                     # steps x cores x neurons per core
    assert meter.integration_pj == pytest.approx(samples * 220e-15 * 0.1 ** 2 * 1e12)
    assert meter.comparator_pj == pytest.approx(2 * samples * params.e_comparator_pj)
    # Three row events on two core-steps, lines of 6 cells, columns of 4.
    expected = EnergyMeter(params).drive(3, 2, rows=4, columns=6, v_read=0.1, dac_bits=8)
    assert meter.drivers_pj == pytest.approx(expected)
    assert meter.conversion_pj == pytest.approx(4 * 200e-15 * 0.05 * params.v_dd * 1e12)
    assert meter.macs == 4 * 3 + 3 * 2
    # The figures the demo has always reported are unchanged by the breakdown.
    assert meter.neuron_pj == pytest.approx(samples * 20e-15 * params.v_dd ** 2 * 1e12)
    assert meter.spike_pj == pytest.approx(4 * params.e_spike_pj)
    assert meter.array_pj == pytest.approx(read + meter.neuron_pj + meter.spike_pj)
    b = meter.breakdown()
    assert b.total_pj == pytest.approx(meter.read_pj + meter.integration_pj + meter.comparator_pj
                                       + meter.drivers_pj + meter.conversion_pj)
    assert b.per_synaptic_event_pj == pytest.approx(b.total_pj / 8)
    assert b.per_mac_pj == pytest.approx(b.total_pj / 18)
    # A second inference adds to the first; without layer_inputs no MACs are counted.
    meter.inference(routed, g, 0.1, [3, 2], 3, 20.0, 0)
    assert meter.synaptic_events == 16 and meter.macs == 18
    assert meter.read_pj == pytest.approx(2 * read)


def test_an_mvm_costs_its_frames_samples_and_conversion_steps():
    from rram_cim.models.energy import mvm_energy
    rows, neurons, v_read, v_th = 4, 2, 0.09, 0.002
    g = np.full((rows, 2 * neurons), 50.0)
    x = np.array([3, -1, 0, 2])                            # two bits: frame 1 drives rows 0 and 3, frame 0 rows 0, 1
    y = np.array([2, -1])
    forward = mvm_energy(g, x, "forward", 2, 3, "count", neurons, v_read, v_th, y)
    t = EnergyParams().t_read_s
    # Frame 1 (two samples) drives two rows, frame 0 (one sample) two rows: 6 row-samples of 4 cells.
    assert forward.array_reads_pj == pytest.approx(6 * 4 * v_read ** 2 * 50e-6 * t * 1e12)
    assert forward.neuron_integration_pj == pytest.approx(3 * neurons * 220e-15 * v_read ** 2 * 1e12)
    assert forward.comparator_fire_pj == pytest.approx(7 * neurons * 2 * E_COMPARATOR_PJ)
    assert forward.conversion_pj == pytest.approx(3 * 200e-15 * v_th * 1.2 * 1e12)
    assert forward.macs == rows * neurons and forward.synaptic_events == 6 * neurons
    assert forward.logic_pj == pytest.approx(6 * neurons * EnergyParams().e_logic_per_event_pj)
    # SAR: 3 steps instead of 7, the same charge taken off.
    sar = mvm_energy(g, x, "forward", 2, 3, "sar", neurons, v_read, v_th, y)
    assert sar.comparator_fire_pj == pytest.approx(3 / 7 * forward.comparator_fire_pj)
    assert sar.conversion_pj == pytest.approx(forward.conversion_pj)
    assert mvm_energy(2 * g, x, "forward", 2, 3, "count", neurons, v_read, v_th, y).array_reads_pj == \
        pytest.approx(2 * forward.array_reads_pj)


def test_a_backward_mvm_drives_both_columns_of_a_pair_in_every_phase():
    from rram_cim.models.energy import mvm_energy
    rows, neurons, v_read = 4, 2, 0.09
    g = np.full((rows, 2 * neurons), 50.0)
    one = mvm_energy(g, np.array([1, 0]), "backward", 1, 1, "count", neurons, v_read, 0.002, np.zeros(rows))
    # Two phases (4 rows, 2 neurons), each one sample driving columns 0 and 1 across 4 rows.
    assert one.array_reads_pj == pytest.approx(2 * 2 * 4 * v_read ** 2 * 50e-6 * EnergyParams().t_read_s * 1e12)
    assert one.neuron_integration_pj == pytest.approx(2 * neurons * 220e-15 * v_read ** 2 * 1e12)
    assert one.synaptic_events == 2 * neurons and one.conversion_pj == 0.0 and one.macs == rows * neurons


def test_bad_mvm_energy_requests_are_refused():
    from rram_cim.models.energy import mvm_energy
    g = np.full((4, 4), 50.0)
    for args, says in [((g[:, :3], np.zeros(4, int), "forward", 1, 1, "count"), "not rows x 4 columns"),
                       ((g, np.zeros(4, int), "sideways", 1, 1, "count"), "forward or backward"),
                       ((g, np.zeros(4, int), "forward", 1, 1, "flash"), "count or sar"),
                       ((g, np.zeros(4, int), "forward", 9, 1, "count"), "in_bits = 9"),
                       ((g, np.full(4, 2), "forward", 1, 1, "count"), "below 2^1")]:
        with pytest.raises(ModelInputError, match=re.escape(says)):
            mvm_energy(*args, 2, 0.09, 0.002, np.zeros(2))
