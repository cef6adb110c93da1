"""``python -m benchmarks``: run every figure and print the table."""

import sys

from .run import main

sys.exit(main())
