"""The engines' settings are the RDL's registers, named by one rule (rtl/engine_settings.py)."""

import dataclasses

import pytest

from rram_cim.config import REFERENCE
from rram_cim.host.registers_gen import TABLE
from rram_cim.protocol import DAC_FIELDS
from rram_cim.rtl.engine_settings import settings_fields
from rram_cim.rtl.inference import NeuronSettings
from rram_cim.rtl.pv_engine import PVSettings


def test_a_one_field_register_is_named_after_itself_a_wider_one_after_its_fields():
    fields = settings_fields(TABLE, "pv_")
    assert fields["pulse_width"] == ("pv_pulse_width", "cycles")
    assert fields["per_level"] == ("pv_per_level", "enable")
    assert fields["algorithm"] == ("pv_mode", "algorithm") and fields["scope"] == ("pv_mode", "scope")
    assert {name: fields[name] for name in DAC_FIELDS} == {name: (f"pv_{name}", "code") for name in DAC_FIELDS}
    assert settings_fields(TABLE, "core1_")["mode"] == ("core1_mode", "kind")


def test_every_writable_settings_field_reaches_its_engine_and_nothing_else():
    for prefix, layout in (("pv_", PVSettings(REFERENCE)), ("neuron_", NeuronSettings(REFERENCE))):
        writable = {(register.name, field.name) for register in TABLE.registers
                    if register.name.startswith(prefix) and register.sw_writable and not register.external
                    for field in register.fields}
        fields = settings_fields(TABLE, prefix)
        assert set(fields.values()) == writable
        assert set(fields) == set(layout.members)


def test_two_registers_naming_one_setting_are_refused():
    clash = tuple(dataclasses.replace(r, name="pv_algorithm") if r.name == "pv_core" else r
                  for r in TABLE.registers)
    with pytest.raises(ValueError, match=r"pv_algorithm.index and pv_mode.algorithm both make the pv_\* "
                                         r"setting 'algorithm'"):
        settings_fields(dataclasses.replace(TABLE, registers=clash), "pv_")
