"""Energy accounting: reads, programming pulses, synaptic events, neuron spikes and SPI bits, and a
breakdown of inference energy that compares like with like with SPIRIT's and NeuRRAM's figures.

Array energies are computed from the physics (V^2 G t for a read, V I t for a pulse); the rest are per-
operation figures, each a named constant below with its source or its derivation. A run reports pJ per
synaptic event next to SPIRIT's measured 3.6 pJ (array) and 180 pJ (with logic and SPI) (Valentian et
al., "Fully Integrated Spiking Neural Network with Analog Neurons and RRAM Synapses", IEDM 2019, 14.3).

The V^2 G t of the reads alone is not what SPIRIT measured: its figure holds everything but the digital
logic and the SPI interface. `EnergyMeter.breakdown()` adds the rest of an analog inference, one term per
kind of operation, so the comparison is like with like (`EnergyBreakdown`, `PUBLISHED`):

- array reads: V^2 G t of every cell on a driven row (as before);
- neuron integration: per neuron sample, the sampling and integration capacitors charged at the read
  voltage, (C_sample + C_int) V_read^2;
- comparator / fire: per neuron sample, one decision of each of the neuron's two comparators (SPIRIT's
  positive and negative thresholds), a StrongARM latch's C V_DD^2;
- drivers and DACs: per row event, the row's gate line and input line charged (C_line V^2, the line's
  capacitance from a wire capacitance per cell pitch and the access transistors' gates); per core and
  step with driven rows, the sensed column lines charged and one conversion of the read-voltage DAC;
- conversion: per partial-reset step (a fire: the threshold's charge taken off C_int) and per SAR bit.

Not modelled: static bias currents (SPIRIT's current injectors, amplifier bias), leakage, clocking.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import ClassVar

import numpy as np

from .device import ModelInputError

__all__ = ["EnergyParams", "EnergyMeter", "EnergyBreakdown", "PublishedFigure", "PUBLISHED",
           "SPIRIT_PJ_PER_EVENT_ARRAY", "SPIRIT_PJ_PER_EVENT_TOTAL", "mvm_energy"]

PJ = 1e12
FF = 1e-15

# ---- published figures ---------------------------------------------------------------------------------
#: SPIRIT's measured energy per synaptic event, without and with the digital logic and SPI (Valentian et
#: al., IEDM 2019, results paragraph, as summarised in ../shared/references/spirit-cea-leti-iedm2019.txt).
SPIRIT_PJ_PER_EVENT_ARRAY = 3.6
SPIRIT_PJ_PER_EVENT_TOTAL = 180.0
#: SPIRIT's layer (same paper): 144 inputs (12x12 pixels) fully connected to 10 neurons, and 136 input
#: spikes per classified image on average. One classification is 144 x 10 = 1,440 formal MACs and
#: 136 x 10 = 1,360 synaptic events, so a MAC costs 1,360 / 1,440 of a synaptic event.
SPIRIT_INPUTS, SPIRIT_NEURONS, SPIRIT_INPUT_SPIKES = 144, 10, 136
SPIRIT_EVENTS_PER_MAC = SPIRIT_INPUT_SPIKES * SPIRIT_NEURONS / (SPIRIT_INPUTS * SPIRIT_NEURONS)
#: NeuRRAM's neuron: 1.52 pJ per spike (Kubendran, Wan, Joshi, Wong, Cauwenberghs, "A 1.52 pJ/Spike
#: Reconfigurable Multimodal Integrate-and-Fire Neuron Array Transceiver", ICONS 2020; reference [15] of
#: ../shared/references/neurram-nature2022.txt).
NEURRAM_NEURON_PJ_PER_SPIKE = 1.52

# ---- per-operation terms -------------------------------------------------------------------------------
#: Wire capacitance of an on-chip interconnect: about 0.2 fF per um (the rule of thumb of Weste & Harris,
#: "CMOS VLSI Design: A Circuits and Systems Perspective", 4th ed., 2011, section 6.2.2).
WIRE_C_FF_PER_UM = 0.2
#: 1T1R cell pitch along a line. Model assumption: 1 um, an access transistor wide enough for the ~100 uA
#: SET compliance in a 130 nm process (SPIRIT's node); neither reference gives its layout.
CELL_PITCH_UM = 1.0
#: Gate capacitance of one access transistor on a word line: C_ox W L with C_ox = eps_SiO2 / t_ox.
#: Model assumption: a 3.3 V thick-oxide device of a 130 nm process (t_ox = 7 nm, so C_ox = 3.45e-11 F/m /
#: 7e-9 m = 4.9 fF/um^2), W = 0.5 um, L = 0.35 um: 0.86 fF.
EPS_SIO2_F_PER_M = 3.45e-11
T_OX_M, GATE_W_UM, GATE_L_UM = 7e-9, 0.5, 0.35
GATE_C_FF_PER_CELL = EPS_SIO2_F_PER_M / T_OX_M * (GATE_W_UM * 1e-6) * (GATE_L_UM * 1e-6) / FF
#: Word-line (gate) voltage during an inference read: the gate fully on, as in the P&V engine's verify
#: reads (rtl/pv_engine.py: the top DAC code, 255 x 10 mV = 2.55 V in ChipConfig's scales).
V_WL_READ_V = 2.55
#: One comparator decision. A StrongARM latch precharges its four internal nodes (P, Q, X, Y) to V_DD and
#: discharges them every decision, so E = (C_P + C_Q + C_X + C_Y) V_DD^2 (B. Razavi, "The StrongARM
#: Latch", IEEE Solid-State Circuits Magazine 7(2), 2015). Model assumption: 5 fF per node in 130 nm,
#: V_DD = 1.2 V: 4 x 5 fF x 1.44 V^2 = 28.8 fJ.
COMPARATOR_NODE_C_FF = 5.0
COMPARATOR_NODES = 4
#: Core supply of the neuron's switches, comparators and DACs (130 nm-class 1.2 V core).
V_DD_V = 1.2
E_COMPARATOR_PJ = COMPARATOR_NODES * COMPARATOR_NODE_C_FF * FF * V_DD_V ** 2 * PJ
#: Comparators per neuron: one for the positive and one for the negative threshold (SPIRIT's neurons).
COMPARATORS_PER_NEURON = 2
#: One SAR bit: C.-C. Liu, S.-J. Chang, G.-Y. Huang, Y.-Z. Lin, "A 10-bit 50-MS/s SAR ADC With a
#: Monotonic Capacitor Switching Procedure", IEEE JSSC 45(4), 2010 (0.13 um CMOS): 0.826 mW at 50 MS/s,
#: 10 bit cycles per conversion: 0.826e-3 / 50e6 / 10 = 1.65 pJ per bit (comparator, DAC and logic).
SAR_POWER_W, SAR_RATE_HZ, SAR_BITS = 0.826e-3, 50e6, 10
E_SAR_BIT_PJ = SAR_POWER_W / SAR_RATE_HZ / SAR_BITS * PJ
#: Unit capacitor of the read-voltage DAC. A binary-weighted capacitive DAC of N bits charges at most its
#: whole array, 2^N C_u, to the reference per conversion: E <= 2^N C_u V_ref^2. Model assumption: C_u =
#: 1 fF (a small MOM unit capacitor), V_ref = V_DD.
DAC_UNIT_C_FF = 1.0


@dataclass(frozen=True)
class EnergyParams:
    #: How long a read pulse holds the word line (model assumption: a few system cycles at 12 MHz would
    #: be far longer than the bit line needs to settle; 50 ns is a NeuRRAM-like sampling window).
    t_read_s: float = 50e-9
    #: Supply of the neuron's sampling switch and comparator (130 nm-class 1.2 V core).
    v_dd: float = V_DD_V
    #: Energy of one spike of an integrate-and-fire neuron: 1.52 pJ (Kubendran et al., "A 1.52 pJ/spike
    #: reconfigurable multimodal integrate-and-fire neuron array transceiver", ICONS 2020, NeuRRAM's neuron).
    e_spike_pj: float = NEURRAM_NEURON_PJ_PER_SPIKE
    #: One SPI bit: a pad and trace of ~6 pF (pin capacitance of the iCE40 UltraPlus data sheet, DS1056)
    #: charged to 1.8 V I/O on half the bits: 0.5 C V^2.
    c_pad_pf: float = 6.0
    v_io: float = 1.8
    #: Digital control per synaptic event (decoding, sequencing): model assumption sized so that logic
    #: and SPI together come to the same order as SPIRIT's 180 pJ per event.
    e_logic_per_event_pj: float = 20.0
    #: Line capacitance per cell: wire over one cell pitch, and the access transistor's gate on a word line.
    c_wire_per_cell_ff: float = WIRE_C_FF_PER_UM * CELL_PITCH_UM
    c_gate_per_cell_ff: float = GATE_C_FF_PER_CELL
    v_wl_read: float = V_WL_READ_V
    #: One comparator decision, and how many comparators each neuron has.
    e_comparator_pj: float = E_COMPARATOR_PJ
    comparators_per_neuron: int = COMPARATORS_PER_NEURON
    e_sar_bit_pj: float = E_SAR_BIT_PJ
    c_dac_unit_ff: float = DAC_UNIT_C_FF

    def __post_init__(self):
        for name, value in asdict(self).items():
            if value < 0 or (name in ("t_read_s", "v_dd") and value == 0):
                raise ModelInputError(f"EnergyParams.{name} = {value}: must be positive")

    @property
    def e_spi_bit_pj(self) -> float:
        return 0.5 * self.c_pad_pf * 1e-12 * self.v_io ** 2 * PJ


@dataclass(frozen=True)
class PublishedFigure:
    """A published energy figure, what it counts and where it comes from."""
    chip: str
    per: str              # "synaptic event", "MAC" or "spike"
    pj: float
    includes: str
    source: str


PUBLISHED = (
    PublishedFigure("SPIRIT", "synaptic event", SPIRIT_PJ_PER_EVENT_ARRAY,
                    "measured; the whole chip but its digital logic and SPI interface: RRAM reads, the current "
                    "injectors copying the cell currents, the analog IF neurons (200 fF, two comparators) and "
                    "the input drivers",
                    "Valentian et al., IEDM 2019, 14.3 (results)"),
    PublishedFigure("SPIRIT", "synaptic event", SPIRIT_PJ_PER_EVENT_TOTAL,
                    "measured; as above plus the digital logic and the SPI interface",
                    "Valentian et al., IEDM 2019, 14.3 (results)"),
    PublishedFigure("SPIRIT", "MAC", SPIRIT_PJ_PER_EVENT_ARRAY * SPIRIT_EVENTS_PER_MAC,
                    "derived: 3.6 pJ x 1,360 synaptic events / 1,440 formal MACs per image (136 input spikes "
                    "on average, 144 x 10 weights); without logic and SPI",
                    "Valentian et al., IEDM 2019, 14.3 (results and network)"),
    PublishedFigure("SPIRIT", "MAC", SPIRIT_PJ_PER_EVENT_TOTAL * SPIRIT_EVENTS_PER_MAC,
                    "derived as above from 180 pJ; with logic and SPI",
                    "Valentian et al., IEDM 2019, 14.3 (results and network)"),
    PublishedFigure("NeuRRAM", "spike", NEURRAM_NEURON_PJ_PER_SPIKE,
                    "measured; NeuRRAM's integrate-and-fire neuron array per output spike: integration, "
                    "firing and the spike transceiver, no array or drivers",
                    "Kubendran et al., ICONS 2020 (NeuRRAM, Wan et al., Nature 608, 2022, ref. 15)"),
)


@dataclass(frozen=True)
class EnergyBreakdown:
    """Inference energy by kind of operation, in pJ over the whole run, with the counts that normalise it.
    The five analog parts sum to `total_pj` (what SPIRIT's 3.6 pJ counts); `logic_pj` and `spi_pj` make
    `with_logic_and_spi_pj` (what its 180 pJ counts)."""
    array_reads_pj: float
    neuron_integration_pj: float
    comparator_fire_pj: float
    drivers_dacs_pj: float
    conversion_pj: float
    logic_pj: float
    spi_pj: float
    synaptic_events: int
    macs: int
    spikes: int

    PARTS: ClassVar[tuple[str, ...]] = ("array_reads", "neuron_integration", "comparator_fire", "drivers_dacs",
                                        "conversion")

    def parts(self) -> dict[str, float]:
        return {name: getattr(self, f"{name}_pj") for name in self.PARTS}

    @property
    def total_pj(self) -> float:
        return sum(self.parts().values())

    @property
    def with_logic_and_spi_pj(self) -> float:
        return self.total_pj + self.logic_pj + self.spi_pj

    def _per(self, count: int, what: str) -> float:
        if count <= 0:
            raise ModelInputError(f"no {what} recorded: nothing to divide the energy by")
        return count

    @property
    def per_synaptic_event_pj(self) -> float:
        return self.total_pj / self._per(self.synaptic_events, "synaptic events")

    @property
    def per_mac_pj(self) -> float:
        return self.total_pj / self._per(self.macs, "MACs (pass layer_inputs to EnergyMeter.inference)")

    @property
    def neuron_pj_per_spike(self) -> float:
        """The neuron's share (integration, comparators, conversion) per output spike: NeuRRAM's neuron's
        1.52 pJ/spike counts the same."""
        neuron = self.neuron_integration_pj + self.comparator_fire_pj + self.conversion_pj
        return neuron / self._per(self.spikes, "spikes")

    def report(self) -> dict:
        """The breakdown per synaptic event and per MAC beside the published figures (report.json)."""
        events = self._per(self.synaptic_events, "synaptic events")
        macs = self._per(self.macs, "MACs (pass layer_inputs to EnergyMeter.inference)")
        return {
            "pj_per_synaptic_event": {**{k: v / events for k, v in self.parts().items()},
                                      "total": self.total_pj / events,
                                      "with_logic_and_spi": self.with_logic_and_spi_pj / events},
            "pj_per_mac": {**{k: v / macs for k, v in self.parts().items()},
                           "total": self.total_pj / macs, "with_logic_and_spi": self.with_logic_and_spi_pj / macs},
            "neuron_pj_per_spike": self.neuron_pj_per_spike if self.spikes else None,
            "synaptic_events": self.synaptic_events, "macs": self.macs, "spikes": self.spikes,
            "includes": {
                "total": "array reads, neuron integration, comparators, word/input/column line drivers and the "
                         "read-voltage DAC, partial-reset conversion (models/energy.py); no static bias, leakage "
                         "or clocking",
                "with_logic_and_spi": "total plus the digital control per synaptic event (model assumption) "
                                      "and the SPI pad energy (co-simulated transports only)",
                "mac": "one formal MAC per weight per inference (sum over layers of inputs x neurons), the "
                       "rate code's steps standing for the input's precision",
            },
            "published": [asdict(figure) for figure in PUBLISHED],
        }


@dataclass
class EnergyMeter:
    params: EnergyParams = field(default_factory=EnergyParams)
    read_pj: float = 0.0
    program_pj: float = 0.0
    neuron_pj: float = 0.0
    spike_pj: float = 0.0
    logic_pj: float = 0.0
    spi_pj: float = 0.0
    synaptic_events: int = 0
    spikes: int = 0
    spi_bits: int = 0
    # The breakdown's parts beyond the reads, and the MACs that normalise it.
    integration_pj: float = 0.0
    comparator_pj: float = 0.0
    drivers_pj: float = 0.0
    conversion_pj: float = 0.0
    macs: int = 0

    def read(self, g_us: np.ndarray, v_rows: np.ndarray, t_s: float | None = None) -> float:
        """A read with word-line voltages `v_rows` (rows,) across `g_us`: sum of V^2 G t over the cells."""
        g_us = np.asarray(g_us, dtype=float)
        v_rows = np.asarray(v_rows, dtype=float)
        if v_rows.shape != (g_us.shape[0],):
            raise ModelInputError(f"read voltages {v_rows.shape} do not match {g_us.shape[0]} rows")
        t = self.params.t_read_s if t_s is None else t_s
        energy = float(np.square(v_rows) @ g_us.sum(axis=1)) * 1e-6 * t * PJ
        self.read_pj += energy
        return energy

    def pulse(self, v: np.ndarray, i_ua: np.ndarray, t_s: float) -> float:
        """Programming pulses: V x I x t summed over the cells (arrays broadcast together)."""
        energy = float(np.sum(np.asarray(v) * np.asarray(i_ua))) * 1e-6 * t_s * PJ
        self.program_pj += energy
        return energy

    def events(self, synaptic_events: int, neuron_samples: int, c_sample_ff: float) -> None:
        """Synaptic events (a row pulse reaching one synapse) and neuron samples (a C_sample charge)."""
        self.synaptic_events += synaptic_events
        self.neuron_pj += neuron_samples * c_sample_ff * 1e-15 * self.params.v_dd ** 2 * PJ
        self.logic_pj += synaptic_events * self.params.e_logic_per_event_pj

    def fired(self, spikes: int) -> None:
        self.spikes += spikes
        self.spike_pj += spikes * self.params.e_spike_pj

    def spi(self, bits: int) -> None:
        self.spi_bits += bits
        self.spi_pj += bits * self.params.e_spi_bit_pj

    # ---- the breakdown's terms, one per kind of operation ------------------------------------------------
    def integrate(self, samples: int, v_read: float, c_sample_ff: float, c_int_ff: float) -> float:
        """`samples` neuron samples: the sampling and integration capacitors charged by up to the read
        voltage from the read supply, (C_sample + C_int) V_read^2 each (an upper bound: a column settles
        at or below V_read)."""
        _count("samples", samples)
        _positive(v_read=v_read, c_sample_ff=c_sample_ff, c_int_ff=c_int_ff)
        energy = samples * (c_sample_ff + c_int_ff) * FF * v_read ** 2 * PJ
        self.integration_pj += energy
        return energy

    def compare(self, decisions: int) -> float:
        """`decisions` comparator decisions (each neuron sample makes `comparators_per_neuron`)."""
        _count("decisions", decisions)
        energy = decisions * self.params.e_comparator_pj
        self.comparator_pj += energy
        return energy

    def drive(self, row_events: int, core_steps: int, rows: int, columns: int, v_read: float,
              dac_bits: int = 8) -> float:
        """Line drivers and the read DAC. Each row event charges its row's gate line to `v_wl_read` and its
        input line to `v_read` (both span `columns` cells); each of `core_steps` (a core and a step with
        driven rows) charges the `columns` sensed lines (spanning `rows` cells each) to at most `v_read`
        and makes one conversion of the `dac_bits`-bit read-voltage DAC. C V^2 per line: the charge
        C V drawn from a supply at V, dissipated again when the line is released."""
        _count("row_events", row_events)
        _count("core_steps", core_steps)
        _positive(rows=rows, columns=columns, v_read=v_read, dac_bits=dac_bits)
        p = self.params
        c_gate_line = columns * (p.c_gate_per_cell_ff + p.c_wire_per_cell_ff) * FF
        c_input_line = columns * p.c_wire_per_cell_ff * FF
        c_column_lines = columns * rows * p.c_wire_per_cell_ff * FF
        e_dac = (1 << dac_bits) * p.c_dac_unit_ff * FF * p.v_dd ** 2
        energy = (row_events * (c_gate_line * p.v_wl_read ** 2 + c_input_line * v_read ** 2)
                  + core_steps * (c_column_lines * v_read ** 2 + e_dac)) * PJ
        self.drivers_pj += energy
        return energy

    def convert(self, partial_resets: int, v_threshold: float, c_int_ff: float, sar_bits: int = 0) -> float:
        """Output conversion: each partial-reset step (a fire) takes the threshold's charge C_int V_th off
        the integration capacitor through a reference at V_DD, C_int V_th V_DD; each SAR bit costs
        `e_sar_bit_pj`."""
        _count("partial_resets", partial_resets)
        _count("sar_bits", sar_bits)
        _positive(v_threshold=v_threshold, c_int_ff=c_int_ff)
        energy = (partial_resets * c_int_ff * FF * v_threshold * self.params.v_dd * PJ
                  + sar_bits * self.params.e_sar_bit_pj)
        self.conversion_pj += energy
        return energy

    def count_macs(self, macs: int) -> None:
        _count("macs", macs)
        self.macs += macs

    @property
    def array_pj(self) -> float:
        return self.read_pj + self.neuron_pj + self.spike_pj

    @property
    def total_pj(self) -> float:
        return self.array_pj + self.logic_pj + self.spi_pj

    def inference(self, routed, g_us, v_read: float, layer_neurons, neurons_per_core: int, c_sample_ff: float,
                  spikes: int, *, layer_inputs=None, c_int_ff: float = 200.0, v_threshold: float = 0.1,
                  dac_bits: int = 8) -> None:
        """One spiking inference: `routed` holds, per time step, the (core, row) row events delivered.
        Each step reads every core that has row events (`g_us[core]`, rows x columns) with those rows at
        `v_read` volts; a row event on core c reaches the `layer_neurons[c]` neurons of the layer there
        (synaptic events); every neuron (`neurons_per_core` on each core) samples once a step and makes a
        decision on each comparator; and `spikes` were fired, each a partial-reset step of C_int
        (`c_int_ff`) by `v_threshold` volts. `layer_inputs[c]`, the driven rows of the layer on core c,
        gives the inference's formal MACs (inputs x neurons summed over the layers)."""
        if layer_inputs is not None and len(layer_inputs) != len(layer_neurons):
            raise ModelInputError(f"layer_inputs has {len(layer_inputs)} layers, layer_neurons "
                                  f"{len(layer_neurons)}")
        row_events = core_steps = 0
        for delivered in routed:
            for core, g_core in enumerate(g_us):
                rows = [row for c, row in delivered if c == core]
                if rows:
                    v_rows = np.zeros(g_core.shape[0])
                    v_rows[rows] = v_read
                    self.read(g_core, v_rows)
                    row_events += len(rows)
                    core_steps += 1
        synaptic = sum(layer_neurons[c] for step in routed for c, _ in step if c < len(layer_neurons))
        samples = len(routed) * len(g_us) * neurons_per_core
        self.events(synaptic, samples, c_sample_ff)
        self.fired(spikes)
        if samples:
            self.integrate(samples, v_read, c_sample_ff, c_int_ff)
            self.compare(samples * self.params.comparators_per_neuron)
        if len(g_us):
            rows, columns = np.shape(g_us[0])
            self.drive(row_events, core_steps, rows, columns, v_read, dac_bits)
        self.convert(spikes, v_threshold, c_int_ff)
        if layer_inputs is not None:
            self.count_macs(sum(int(i) * int(n) for i, n in zip(layer_inputs, layer_neurons)))

    def breakdown(self) -> EnergyBreakdown:
        """The inference energy so far by kind of operation (`EnergyBreakdown`)."""
        return EnergyBreakdown(self.read_pj, self.integration_pj, self.comparator_pj, self.drivers_pj,
                               self.conversion_pj, self.logic_pj, self.spi_pj, self.synaptic_events, self.macs,
                               self.spikes)

    def per_inference_nj(self, inferences: int) -> dict[str, float]:
        """nJ per inference over `inferences`, array only and with logic and SPI."""
        return {"array": self.array_pj / inferences / 1e3, "total": self.total_pj / inferences / 1e3}

    def per_event(self) -> dict[str, float]:
        """pJ per synaptic event, array only and with logic and SPI, beside SPIRIT's figures."""
        if self.synaptic_events == 0:
            raise ModelInputError("no synaptic events recorded")
        return {"array_pj": self.array_pj / self.synaptic_events,
                "total_pj": self.total_pj / self.synaptic_events,
                "spirit_array_pj": SPIRIT_PJ_PER_EVENT_ARRAY,
                "spirit_total_pj": SPIRIT_PJ_PER_EVENT_TOTAL}


def mvm_energy(g_us, x, direction: str, in_bits: int, out_bits: int, conversion: str, neurons: int,
               v_read: float, v_threshold: float, outputs, *, c_sample_ff: float = 20.0, c_int_ff: float = 200.0,
               dac_bits: int = 8, params: EnergyParams | None = None) -> EnergyBreakdown:
    """One MVM on a core of conductances `g_us` (rows x columns, uS) with signed inputs `x` (docs/mvm.md),
    by kind of operation, with the same terms as an inference (`EnergyMeter`) counted from the port's strobes:

    - array reads: each input frame b (2^b samples of `t_read_s`) drives `v_read` on the lines whose |x| has
      bit b set: forward the rows, backward both columns of each input's pair; V^2 G t over their cells;
    - drivers and DACs: each driven line per sample a row event, each sample a core step (`EnergyMeter.drive`;
      backward on the transposed array: the driven column lines in place of rows, the sensed rows in place
      of columns);
    - neuron integration: every neuron samples once per sample, (C_sample + C_int) V_read^2;
    - comparators: every conversion step each neuron's comparators decide once (both conversions: the neuron
      converts its own membrane, so the SAR-ADC bit figure `e_sar_bit_pj` does not apply);
    - conversion: the thresholds taken off C_int, sum |y| of `outputs` of them (`v_threshold` volts each;
      a SAR step takes 2^b at once, the same charge);
    - logic: `e_logic_per_event_pj` per synaptic event (a driven input reaching the `neurons` it is summed
      into), as in the inference breakdown; an assumption of this model, not a measured figure.

    Backward MVMs run ceil(rows / neurons) phases, each one whole MVM. `macs` is rows x neurons."""
    g_us = np.asarray(g_us, dtype=float)
    x = np.asarray(x)
    outputs = np.asarray(outputs)
    if g_us.ndim != 2 or g_us.shape[1] != 2 * neurons:
        raise ModelInputError(f"conductances {g_us.shape} are not rows x {2 * neurons} columns ({neurons} neurons)")
    rows, columns = g_us.shape
    if direction not in ("forward", "backward"):
        raise ModelInputError(f"direction {direction!r}: forward or backward")
    if conversion not in ("count", "sar"):
        raise ModelInputError(f"conversion {conversion!r}: count or sar")
    for name, bits in (("in_bits", in_bits), ("out_bits", out_bits)):
        if not 1 <= bits <= 8:
            raise ModelInputError(f"{name} = {bits}: 1 to 8")
    lines = rows if direction == "forward" else neurons
    if x.shape != (lines,) or np.any(np.abs(x) >= 1 << in_bits):
        raise ModelInputError(f"{direction} inputs must be {lines} integers below 2^{in_bits} in magnitude")
    phases = 1 if direction == "forward" else -(-rows // neurons)
    meter = EnergyMeter(params or EnergyParams())
    # The driven array: forward its rows, backward its columns (input k drives columns 2k and 2k+1).
    array = g_us if direction == "forward" else g_us.T
    magnitude = np.abs(x).astype(int)
    strobes = 0
    for b in range(in_bits):
        driven = (magnitude >> b) & 1
        if direction == "backward":
            driven = np.repeat(driven, 2)
        samples_b = phases << b
        meter.read(array, v_read * driven, samples_b * meter.params.t_read_s)
        strobes += samples_b * int(driven.sum())
    samples = phases * ((1 << in_bits) - 1)
    steps = phases * (out_bits if conversion == "sar" else (1 << out_bits) - 1)
    meter.drive(strobes, samples, *array.shape, v_read, dac_bits)
    meter.integrate(samples * neurons, v_read, c_sample_ff, c_int_ff)
    meter.compare(steps * neurons * meter.params.comparators_per_neuron)
    meter.convert(int(np.abs(outputs).sum()), v_threshold, c_int_ff)
    inputs_driven = strobes // (2 if direction == "backward" else 1)
    meter.events(inputs_driven * neurons, 0, c_sample_ff)
    meter.count_macs(rows * neurons)
    return meter.breakdown()


def _count(name: str, value) -> None:
    if int(value) != value or value < 0:
        raise ModelInputError(f"{name} = {value}: must be a whole number >= 0")


def _positive(**values) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ModelInputError(f"{name} = {value}: must be positive")
