"""`python -m rotator`: see rotator.entrypoints.cli."""

import sys

from rotator.entrypoints.cli import main

sys.exit(main())
