import pytest

from rram_cim.config import CONFIGS, NEURRAM_LIKE, REFERENCE, ChipConfig, ConfigError


def test_reference_fits_the_digits_demo():
    # 64 inputs (8x8 digits), a hidden layer and 10 outputs as differential pairs on two cores.
    assert REFERENCE.rows >= 64
    assert REFERENCE.cores >= 2
    assert REFERENCE.columns >= 2 * 10
    assert REFERENCE.neurons * 2 <= REFERENCE.columns


def test_neurram_like_has_256_by_256_cores_and_neurram_48_of_them():
    from rram_cim.config import NEURRAM
    assert (NEURRAM_LIKE.rows, NEURRAM_LIKE.columns) == (256, 256)
    assert (NEURRAM.cores, NEURRAM.rows, NEURRAM.columns, NEURRAM.cells_total) == (48, 256, 256, 3 << 20)
    assert NEURRAM.cores * NEURRAM.neurons == 6144
    assert set(CONFIGS) == {"reference", "reference-lite", "neurram-like", "neurram"}


@pytest.mark.parametrize("field, value, words", [
    ("cores", 65, "6 core bits"), ("rows", 257, "8 row bits"), ("neurons", 257, "8 neuron bits")])
def test_what_a_spike_event_cannot_address_is_refused(field, value, words):
    big = dict(columns=1024, neurons=16) | {field: value}
    with pytest.raises(ConfigError, match=rf"ChipConfig\.{field} = {value}: .*{words}"):
        ChipConfig(**big)


def test_the_reduced_reference_has_one_page_of_neuron_settings_and_is_otherwise_the_reference():
    from rram_cim.config import REFERENCE_LITE
    assert (REFERENCE.neuron_pages, REFERENCE_LITE.neuron_pages, NEURRAM_LIKE.neuron_pages) == (2, 1, 4)
    assert REFERENCE_LITE.replace(name=REFERENCE.name, per_core_neurons=True, pv_averaging=True,
                                  pv_radar=True, mvm=True, output_burst=True, pv_packing=True,
                                  mvm_stochastic=True, route_fanout=True) == REFERENCE
    assert (REFERENCE.mvm_lines, REFERENCE_LITE.mvm_lines, NEURRAM_LIKE.mvm_lines) == (64, 0, 256)
    assert (REFERENCE.pv_verify_reads, REFERENCE_LITE.pv_verify_reads) == (8, 1)
    assert (REFERENCE.pv_algorithms, REFERENCE_LITE.pv_algorithms) == (0b111, 0b011)
    with pytest.raises(ConfigError, match=r"ChipConfig\.per_core_neurons = 1: must be True or False"):
        REFERENCE.replace(per_core_neurons=1)


def test_derived_quantities_follow_fields():
    assert REFERENCE.cells_total == REFERENCE.cores * REFERENCE.rows * REFERENCE.columns
    assert REFERENCE.spi_divider == 4
    assert REFERENCE.seconds_per_cycle == pytest.approx(1 / 12e6)


@pytest.mark.parametrize("field, value, words", [
    ("rows", 0, "positive integer"),
    ("cores", 2.0, "positive integer"),
    ("columns", True, "positive integer"),
    ("neurons", 65, "cannot exceed columns"),
    ("adc_bits", 9, "at most 8 bits"),
    ("input_fifo_depth", 48, "power of two"),
    ("spi_clk_hz", 4e6, "at most sys_clk_hz / 4"),
    ("spi_clk_hz", 1e5, "at least sys_clk_hz / 64"),
    ("bl_volts_per_lsb", 0.05, "exceeds"),
    ("us_per_adc_lsb", -1.0, "positive number"),
    ("name", "", "non-empty"),
])
def test_bad_values_raise_an_error_naming_the_field(field, value, words):
    with pytest.raises(ConfigError, match=rf"ChipConfig\.{field} = .*{words}"):
        REFERENCE.replace(**{field: value})


def test_p_and_v_memory_does_not_grow_with_the_array_but_slots_must_fit_a_window():
    big = ChipConfig(cores=64, rows=256, columns=1024, neurons=16)         # 16 M cells: streamed, it fits
    assert big.cells_total == 16 << 20 and big.pv_slot_cells == REFERENCE.pv_slot_cells
    with pytest.raises(ConfigError, match="pv_slot_cells .*two slots must fit"):
        REFERENCE.replace(pv_slot_cells=1 << 20)
    with pytest.raises(ConfigError, match="pv_slot_cells .*power of two"):
        REFERENCE.replace(pv_slot_cells=100)


def test_config_is_frozen():
    with pytest.raises(Exception):
        REFERENCE.rows = 3
