"""An engine's settings: the host-writable registers of its page, as the engine reads them in place.

The members are named after rtl/regmap/rram_cim.rdl by one rule, so the chip joins them to the register
decoder in a loop and nothing is renamed by hand: a register of one field (`pv_pulse_width.cycles`) is
the register's name without the engine's prefix (`pulse_width`); a register of several fields
(`pv_mode`) gives its fields' names (`algorithm`, `scope`, ...). Widths are the fields', unless the
engine narrows one (a row index to the array's rows) or gives it an enum shape.
"""

from amaranth.lib import data

from ..config import ChipConfig
from .regmap.generate import load_generated

__all__ = ["settings_fields", "settings_layout", "join_settings"]

def settings_fields(table, prefix: str) -> dict[str, tuple[str, str]]:
    """{member: (register, field)} of the host-writable registers named `prefix...`, in address order."""
    fields = {}
    for register in sorted(table.registers, key=lambda register: register.address):
        if not register.name.startswith(prefix) or not register.sw_writable or register.external:
            continue
        if len(register.fields) == 1:
            named = {register.name.removeprefix(prefix): register.fields[0]}
        else:
            named = {field.name: field for field in register.fields}
        for name, field in named.items():
            if name in fields:
                raise ValueError(f"{register.name}.{field.name} and {'.'.join(fields[name])} both make the "
                                 f"{prefix}* setting {name!r}: rename one in rram_cim.rdl")
            fields[name] = (register.name, field.name)
    return fields


def settings_layout(config: ChipConfig, prefix: str, shapes: dict | None = None) -> data.StructLayout:
    """The settings of the engine whose registers are named `prefix...`; `shapes` narrows members."""
    table = load_generated(config)[1].TABLE
    shapes = shapes or {}
    fields = settings_fields(table, prefix)
    unknown = set(shapes) - set(fields)
    if unknown:
        raise ValueError(f"no {prefix}* setting {sorted(unknown)} in rram_cim.rdl; it has {sorted(fields)}")
    return data.StructLayout({name: shapes.get(name, table.register(register).field(field).width)
                              for name, (register, field) in fields.items()})


def join_settings(m, table, prefix: str, registers, settings):
    """Drive the engine's `settings` from the decoder's `registers` (the generated RegisterDecoder)."""
    for name, (register, field) in settings_fields(table, prefix).items():
        m.d.comb += getattr(settings, name).eq(getattr(getattr(registers, register), field))
