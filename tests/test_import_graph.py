"""Imports point one way (docs: DESIGN.md "Code layout"): the gateware and the models depend on the shared
config and protocol only, the host on those and the models, the FPGA on the gateware, and the
co-simulation library on anything of the package. Every import counts, at module level or inside a
function, relative or absolute (`rram_cim.*`).

host/ may use models/ because the host's `Chip` runs the golden models beside the chip (the recipes it
programs, the inference it checks against); it needs nothing of rtl/: the register table is generated
into host/registers_gen.py and the wire formats are rram_cim/protocol.py.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED = {"config", "protocol"}
#: layer (a folder, a subpackage of rram_cim) -> what its modules may import from rram_cim.
ALLOWED = {
    "rtl": SHARED | {"rtl"},
    "models": SHARED | {"models"},
    "host": SHARED | {"models", "host"},
    "fpga": SHARED | {"rtl", "models", "fpga", "progress"},
    "sim": None,                                   # anything of the package
}
#: Never imported by library code: scenarios and tests sit on top of it.
OUTSIDE = {"bench", "tests", "conftest"}


def _imported(tree: ast.AST, package: list[str]):
    """(line, target) for each import: target is the rram_cim subpackage or module it reaches
    ("rtl", "config", ...), or the top-level name of an import from outside the package."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                yield node.lineno, parts[1] if parts[0] == "rram_cim" and len(parts) > 1 else None, parts[0]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if node.level > len(package):
                    raise ValueError(f"line {node.lineno}: relative import beyond the rram_cim package")
                parts = package[:len(package) - node.level + 1] + (node.module.split(".") if node.module else [])
            else:
                parts = node.module.split(".")
            if parts[0] != "rram_cim":
                yield node.lineno, None, parts[0]
            elif len(parts) > 1:
                yield node.lineno, parts[1], None
            else:                                  # `from .. import rtl`: the names are the modules
                for alias in node.names:
                    yield node.lineno, alias.name, None


def violations(layer: str, label: str, source: str, package: list[str] | None = None) -> list[str]:
    """Forbidden imports of one module of `layer`, each as "file:line imports rram_cim.X"."""
    package = package or ["rram_cim", layer]
    allowed = ALLOWED[layer]
    found = []
    for line, target, outside in _imported(ast.parse(source), package):
        if outside in OUTSIDE:
            found.append(f"{label}:{line} imports {outside} (scenarios and tests are not library code)")
        elif target is not None and allowed is not None and target not in allowed:
            found.append(f"{label}:{line} imports rram_cim.{target} ({layer}/ may use {', '.join(sorted(allowed))})")
    return found


def _modules():
    for layer in ALLOWED:
        for path in sorted((ROOT / layer).rglob("*.py")):
            package = ["rram_cim", layer, *path.parent.relative_to(ROOT / layer).parts]
            yield layer, path, package


def test_imports_point_one_way():
    found = []
    for layer, path, package in _modules():
        found += violations(layer, str(path.relative_to(ROOT)), path.read_text(), package)
    assert not found, "imports against the layering:\n" + "\n".join(found)


def test_every_layer_has_modules_to_check():
    assert {layer for layer, _, _ in _modules()} == set(ALLOWED)


FORBIDDEN = '''
from ..config import ChipConfig
from .analog_port import Op


def lint():
    from ..sim.toolchain import missing_simulator_message
    import rram_cim.fpga.top
'''


def test_a_forbidden_import_is_named_with_file_and_line():
    assert violations("rtl", "rtl/fake.py", FORBIDDEN) == [
        "rtl/fake.py:7 imports rram_cim.sim (rtl/ may use config, protocol, rtl)",
        "rtl/fake.py:8 imports rram_cim.fpga (rtl/ may use config, protocol, rtl)",
    ]


@pytest.mark.parametrize("layer,source,target", [
    ("models", "from ..rtl import cell_driver\n", "rram_cim.rtl"),
    ("models", "from .. import rtl\n", "rram_cim.rtl"),
    ("host", "from ..sim.pv_reference import LEVELS\n", "rram_cim.sim"),
    ("fpga", "from ..host.chip import Chip\n", "rram_cim.host"),
    ("sim", "from bench.models import run\n", "bench"),
])
def test_each_layer_refuses_what_it_must_not_use(layer, source, target):
    (message,) = violations(layer, f"{layer}/fake.py", source)
    assert message.startswith(f"{layer}/fake.py:1 imports {target}")


def test_a_subpackage_resolves_relative_imports_from_its_own_folder():
    # rtl/regmap/x.py: `..` is rtl, `...` the package's top.
    source = "from ..chip import Chip\nfrom ...config import REFERENCE\nfrom ...host import chip\n"
    assert violations("rtl", "rtl/regmap/x.py", source, ["rram_cim", "rtl", "regmap"]) == [
        "rtl/regmap/x.py:3 imports rram_cim.host (rtl/ may use config, protocol, rtl)"]
