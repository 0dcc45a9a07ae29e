"""``python -m xpnet.cuda --compile-only``: see :mod:`xpnet.cuda.compile_check`."""

import sys

from .compile_check import main

sys.exit(main())
