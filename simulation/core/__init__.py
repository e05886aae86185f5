"""The ground floor: argument validation and its errors, the settings (``config.py``), the version.

Imports nothing else of the package.
"""
