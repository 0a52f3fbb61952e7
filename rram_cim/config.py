"""`ChipConfig`: the one set of parameters shared by the RTL, the analog models, the FPGA emulation and the host.

Every width, depth and code-to-physics scale in the project comes from here. A config is frozen and
validated on construction: a bad value raises `ConfigError` naming the field and what would be right.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["ChipConfig", "ConfigError", "REFERENCE", "REFERENCE_LITE", "NEURRAM_LIKE", "NEURRAM", "CONFIGS", "READ_DISTURB_LIMIT_V", "read_limit_code",
           "read_limit_volts"]

# SPI mode 0 is oversampled in the system clock domain: a 2-flop synchronizer plus an edge detector costs
# 3 system cycles, so an SPI half-period must last at least 2 system cycles (SCK <= f_sys / 4). Slower than
# f_sys / 64 works too, but is the slowest ratio the benches cover.
SPI_DIVIDER_MIN = 4
SPI_DIVIDER_MAX = 64
# The SPI frame carries a 24-bit byte address (docs/spi.md).
ADDRESS_BITS = 24
# Each memory window of the register map (P&V targets, pulse counts, ...) spans 1 MiB of it.
WINDOW_BYTES = 1 << 20
#: Volts across a cell above which a read may disturb (partially set) it: SPIRIT limited the read drop
#: to 100 mV for that reason (Valentian et al., IEDM 2019). The one read limit of the project: the
#: device model disturbs above it, the crossbar models refuse reads above it, the chip refuses read codes
#: above it.
READ_DISTURB_LIMIT_V = 0.1


class ConfigError(ValueError):
    """A `ChipConfig` field holds a value the chip cannot be built with."""


@dataclass(frozen=True)
class ChipConfig:
    """Parameters of one chip build. Counts are per core unless the name says otherwise."""

    name: str = "reference"
    #: Number of crossbar cores sharing the spike router.
    cores: int = 2
    #: Word lines (inputs) per core.
    rows: int = 64
    #: Bit lines per core; a differential weight uses two (G+ and G-).
    columns: int = 64
    #: Integrate-and-fire neurons per core (one per column pair in the differential mapping).
    neurons: int = 32
    #: Resolution of the word-line (gate), bit-line (top electrode) and source-line DACs.
    dac_bits: int = 8
    #: Resolution of the sense ADC that answers verify reads; P&V targets are ADC codes.
    adc_bits: int = 8
    #: Depth, in events, of the host-to-chip and chip-to-host spike FIFOs.
    input_fifo_depth: int = 64
    output_fifo_depth: int = 64
    #: Entries of the log of cells that failed to verify.
    failed_log_depth: int = 64
    #: Entries of the per-level P&V recipe table (EMBER-style: each target level its own DAC ramps,
    #: pulse width, budget and window); a level index is one byte of the target buffer.
    pv_levels: int = 16
    #: Cells per P&V slot. The engine programs from two slots of this many targets (pv_target) and writes
    #: each cell's pulse count and verify code into the same slot (pv_pulses, pv_codes): while it programs
    #: one slot the host fills the other (docs/pv_engine.md, streamed programming). So on-chip P&V memory
    #: is 2 x 3 x pv_slot_cells bytes whatever the array holds. 256 cells is one 256-column row of a
    #: NeuRRAM core (Wan et al., Nature 608, 2022) and keeps a slot's frame header under 2 % of its bytes.
    pv_slot_cells: int = 256
    #: Depth, in events, of the router's FIFO of spikes bound for rows in the next time step.
    route_fifo_depth: int = 64
    #: Volts per LSB of the neuron threshold codes: 0.1 mV, finer than the ~0.14 mV kT/C noise of
    #: SPIRIT's 200 fF integration capacitor would make useful.
    threshold_volts_per_lsb: float = 1e-4
    #: System clock and SPI clock, in hertz. iCEBreaker's oscillator is 12 MHz; SCK runs at f_sys / 4, the
    #: fastest the SPI target takes (its synchronizers need ~3 system cycles per SCK edge).
    sys_clk_hz: float = 12e6
    spi_clk_hz: float = 3e6
    #: Volts per LSB of the word-line (gate) DAC: 8 bits span 0-2.55 V, covering the 0.6-2 V gate range of
    #: IGVVA on HfO2 1T1R (Milo et al., "Multilevel HfO2-based RRAM devices for low-power neuromorphic
    #: networks", APL Materials 7, 081120, 2019).
    wl_volts_per_lsb: float = 0.01
    #: Volts per LSB of the bit-line (top electrode) DAC: 0-3.8 V covers ISPVA's SET ramps and forming.
    bl_volts_per_lsb: float = 0.015
    #: Volts per LSB of the source-line DAC used for RESET (up to ~3 V in the same devices).
    sl_volts_per_lsb: float = 0.015
    #: Microsiemens per LSB of the sense ADC: 8 bits span 0-128 uS, covering the HRS (~few uS) to LRS
    #: (~100 uS) range of HfO2 1T1R cells (Milo et al. 2019; NeuRRAM, Wan et al., Nature 608, 2022).
    us_per_adc_lsb: float = 0.5
    #: Feature flag: each core has its own page of neuron settings (thresholds, leak, refractory period,
    #: mode), so each layer of a network on its own core keeps its own. Off, one page sets every core:
    #: the reduced feature set of builds that must stay small (the iCEBreaker's, docs/fpga.md).
    per_core_neurons: bool = True
    #: Feature flag: the P&V engine averages up to 8 senses per verify (PV.verify.reads_log2). Off, a
    #: verify is one sense whatever reads_log2 says (the confirming verify stays): the iCEBreaker's
    #: reduced set, where the averaging's ~70 logic cells do not fit (docs/fpga.md).
    pv_averaging: bool = True
    #: Feature flag: the P&V engine has RADAR (pv_mode.algorithm 2). Off, a RADAR start is refused
    #: (ERROR.pv_config): the iCEBreaker's reduced set, where RADAR's ~125 logic cells do not fit.
    pv_radar: bool = True
    #: Feature flag: the chip has the MVM sequencer (docs/mvm.md: MVM registers, input and output windows,
    #: per-neuron trims forwarded to the macro). Off, an MVM start is refused (ERROR.mvm_config) and the
    #: windows shrink to one entry: the iCEBreaker's reduced set.
    mvm: bool = True
    #: Feature flag: the output spike FIFO reads many events per frame (the `spike_out_burst` window, two
    #: events waiting ahead of the FIFO). Off, events are read one per frame through FIFO.spike_out: the
    #: iCEBreaker's reduced set, where the look-ahead's ~90 logic cells do not fit.
    output_burst: bool = True
    #: Feature flag: P&V targets packed 1-8 bits each in the slots (PV.target_bits; 3 bits per 8-level
    #: index). Off, a target is a byte (target_bits must be 8): the iCEBreaker's reduced set, where the
    #: unpacking's ~80 logic cells do not fit.
    pv_packing: bool = True
    #: Feature flag: a routing entry's `copies` send a spike to its row on consecutive cores (a spiking
    #: layer split over cores, docs/inference.md). Off, the router reads copies as 0 and the compiler
    #: splits only a first layer (the host sends its inputs to each core): the iCEBreaker's reduced set,
    #: where the ~40 logic cells do not fit.
    route_fanout: bool = True
    #: Feature flag: the MVM sequencer can end an MVM in stochastic binary neurons (docs/mvm.md, decide
    #: mode: per output line a bias and a 32-bit LFSR, the mvm_bias and mvm_lfsr windows), NeuRRAM's RBM
    #: sampling on chip. Off (or without `mvm`), a decide start is refused (ERROR.mvm_config): the
    #: iCEBreaker's reduced set, which has ~5 % of its logic left.
    mvm_stochastic: bool = True

    def __post_init__(self):
        def need(ok: bool, name: str, message: str):
            if not ok:
                raise ConfigError(f"ChipConfig.{name} = {getattr(self, name)!r}: {message}")

        need(isinstance(self.name, str) and self.name != "", "name", "must be a non-empty string")
        need(isinstance(self.per_core_neurons, bool), "per_core_neurons", "must be True or False")
        need(isinstance(self.pv_averaging, bool), "pv_averaging", "must be True or False")
        need(isinstance(self.pv_radar, bool), "pv_radar", "must be True or False")
        need(isinstance(self.mvm, bool), "mvm", "must be True or False")
        need(isinstance(self.output_burst, bool), "output_burst", "must be True or False")
        need(isinstance(self.pv_packing, bool), "pv_packing", "must be True or False")
        need(isinstance(self.route_fanout, bool), "route_fanout", "must be True or False")
        need(isinstance(self.mvm_stochastic, bool), "mvm_stochastic", "must be True or False")
        for name in ("cores", "rows", "columns", "neurons", "dac_bits", "adc_bits",
                     "input_fifo_depth", "output_fifo_depth", "failed_log_depth", "pv_levels",
                     "route_fifo_depth", "pv_slot_cells"):
            value = getattr(self, name)
            need(isinstance(value, int) and not isinstance(value, bool) and value >= 1, name,
                 "must be a positive integer")
        need(self.cores <= 64, "cores", "at most 64 cores share one spike router (6 core bits in a spike event)")
        need(self.rows <= 256, "rows", "at most 256 rows per core (8 row bits in a spike event)")
        need(self.columns <= 1024, "columns", "at most 1024 columns per core")
        need(self.neurons <= self.columns, "neurons", f"cannot exceed columns ({self.columns})")
        need(self.neurons <= 256, "neurons", "at most 256 neurons per core (8 neuron bits in a spike event)")
        need(self.dac_bits <= 16, "dac_bits", "DAC codes are at most 16 bits")
        need(self.pv_levels <= 256, "pv_levels", "a level index is one byte of the target buffer")
        need(self.adc_bits <= 8, "adc_bits", "ADC codes are at most 8 bits (one byte per P&V target)")
        for name in ("input_fifo_depth", "output_fifo_depth", "failed_log_depth", "route_fifo_depth", "pv_slot_cells"):
            value = getattr(self, name)
            need(value & (value - 1) == 0, name, "must be a power of two")
        need(self.output_fifo_depth >= 4 or not self.output_burst, "output_fifo_depth",
             "must be at least 4 with output_burst (two events wait ahead of a burst read, docs/spi.md)")
        for name in ("sys_clk_hz", "spi_clk_hz", "wl_volts_per_lsb", "bl_volts_per_lsb",
                     "sl_volts_per_lsb", "us_per_adc_lsb", "threshold_volts_per_lsb"):
            value = getattr(self, name)
            need(isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0, name,
                 "must be a positive number")
        divider = self.sys_clk_hz / self.spi_clk_hz
        need(SPI_DIVIDER_MIN <= divider, "spi_clk_hz",
             f"SPI clock must be at most sys_clk_hz / {SPI_DIVIDER_MIN} = "
             f"{self.sys_clk_hz / SPI_DIVIDER_MIN:g} Hz (the target oversamples SCK)")
        need(divider <= SPI_DIVIDER_MAX, "spi_clk_hz",
             f"SPI clock must be at least sys_clk_hz / {SPI_DIVIDER_MAX} = "
             f"{self.sys_clk_hz / SPI_DIVIDER_MAX:g} Hz")
        for name, volts in (("wl_volts_per_lsb", 3.0), ("bl_volts_per_lsb", 5.0), ("sl_volts_per_lsb", 5.0)):
            full_scale = getattr(self, name) * ((1 << self.dac_bits) - 1)
            need(full_scale <= volts, name,
                 f"DAC full scale {full_scale:.2f} V exceeds the {volts} V the 1T1R cell tolerates")
        need(2 * self.pv_slot_cells <= WINDOW_BYTES, "pv_slot_cells",
             f"two slots must fit the {WINDOW_BYTES}-byte memory window of the register map")

    # Derived quantities: computed, never stored, so they cannot disagree with the fields.
    @property
    def cells_per_core(self) -> int:
        return self.rows * self.columns

    @property
    def cells_total(self) -> int:
        return self.cores * self.cells_per_core

    @property
    def seconds_per_cycle(self) -> float:
        return 1.0 / self.sys_clk_hz

    @property
    def spi_divider(self) -> int:
        """System clock cycles per SPI clock period (rounded down)."""
        return int(self.sys_clk_hz // self.spi_clk_hz)

    @property
    def neuron_pages(self) -> int:
        """Pages of neuron settings in the register map (CORE pages): one per core, or one for all."""
        return self.cores if self.per_core_neurons else 1

    @property
    def pv_verify_reads(self) -> int:
        """Most senses the P&V engine averages per verify: 8, or 1 without averaging."""
        return 8 if self.pv_averaging else 1

    @property
    def pv_algorithms(self) -> int:
        """The P&V algorithms the engine has, one bit per `protocol.Algorithm` code (ISPVA, IGVVA, RADAR)."""
        return 0b111 if self.pv_radar else 0b011

    @property
    def pv_target_widths(self) -> int:
        """The packed target widths the P&V engine takes, bit b-1 for b bits: 1-8, or only 8."""
        return 0xFF if self.pv_packing else 0x80

    @property
    def mvm_lines(self) -> int:
        """Entries of the MVM input and output windows: the most inputs or outputs either direction has
        (rows forward in, rows backward out), or 0 in a build without MVM."""
        return max(self.rows, self.neurons) if self.mvm else 0

    @property
    def mvm_decide(self) -> bool:
        """The build's MVM sequencer has the stochastic neurons' decide mode: `mvm` and `mvm_stochastic`."""
        return self.mvm and self.mvm_stochastic

    def replace(self, **changes) -> "ChipConfig":
        """A copy with some fields changed, validated like any other config."""
        return dataclasses.replace(self, **changes)


def read_limit_code(config: ChipConfig) -> int:
    """Highest bit-line DAC code a read may use: the chip's drivers refuse higher, the host and the
    models read at it."""
    return int(READ_DISTURB_LIMIT_V / config.bl_volts_per_lsb + 1e-9)


def read_limit_volts(config: ChipConfig) -> float:
    """The bit-line voltage of that code: what the chip verifies and reads back at."""
    return read_limit_code(config) * config.bl_volts_per_lsb


#: Fits the demo: 64 inputs (8x8 digits) -> hidden layer -> 10 outputs, differential pairs, two cores.
REFERENCE = ChipConfig()

#: A NeuRRAM-like build: 256x256 cores (Wan et al., Nature 608, 504-512, 2022), 128 differential neurons.
NEURRAM_LIKE = ChipConfig(name="neurram-like", cores=4, rows=256, columns=256, neurons=128,
                          input_fifo_depth=256, output_fifo_depth=256, failed_log_depth=256,
                          sys_clk_hz=100e6, spi_clk_hz=10e6)

#: NeuRRAM's size (Wan et al., Nature 608, 504-512, 2022): 48 cores of 256x256, 3,145,728 cells. Each core's
#: neurons serve both MVM directions (docs/mvm.md): 128, one per differential column pair, 6,144 in all
#: (NeuRRAM's 256 per core sense single columns). Streamed P&V keeps its P&V memory at two slots.
NEURRAM = NEURRAM_LIKE.replace(name="neurram", cores=48)

#: The reference chip's reduced feature set, for boards that cannot hold all of it (the iCEBreaker's
#: iCE40UP5K, docs/fpga.md): one page of neuron settings for every core.
REFERENCE_LITE = REFERENCE.replace(name="reference-lite", per_core_neurons=False, pv_averaging=False,
                                   pv_radar=False, mvm=False, output_burst=False, pv_packing=False,
                                   mvm_stochastic=False, route_fanout=False)
CONFIGS = {config.name: config for config in (REFERENCE, REFERENCE_LITE, NEURRAM_LIKE, NEURRAM)}
