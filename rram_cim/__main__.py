"""`python -m rram_cim ...`: the same command line as `rram-cim ...`."""

import sys

from .cli import main

sys.exit(main())
