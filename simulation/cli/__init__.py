"""The command line: the parser (``python -m simulation``) and the commands it runs.

The top floor: may import anything.
"""

from simulation.cli.parser import (
    build_parser,
    main,
)

__all__ = [
    "build_parser",
    "main",
]
