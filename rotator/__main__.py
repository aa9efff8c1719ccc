"""`python -m rotator`: see rotator.cli."""

import sys

from rotator.cli import main

sys.exit(main())
