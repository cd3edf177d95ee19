"""``python -m analysis.simulate``: see :mod:`analysis.simulate.cli`."""

import sys

from analysis.simulate.cli import main

sys.exit(main())
