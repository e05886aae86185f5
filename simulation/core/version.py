"""The package's version (also in ``pyproject.toml`` and ``CITATION.cff``)."""

__version__ = "0.1.0"
