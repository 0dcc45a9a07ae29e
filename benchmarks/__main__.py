"""``python -m benchmarks``: the TwoLayerNet suite of ``benchmarks/suite.py`` (``--help``).

Only the entry point: other modules import ``benchmarks.suite`` and ``benchmarks.harness``,
never this one (run as ``-m``, it would be a second copy of the module).
"""

import sys

from .suite import main

if __name__ == "__main__":
    sys.exit(main())
