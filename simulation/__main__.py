"""``python -m simulation``."""

import sys

from simulation.cli.parser import main

if __name__ == "__main__":
    sys.exit(main())
