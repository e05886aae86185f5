"""Sphinx configuration of the documentation site.

Build: ``python -m pip install -e ".[docs]"`` then
``python -m sphinx -W --keep-going -b html docs site`` (warnings are errors);
open ``site/index.html`` from disk: the theme's assets and the search index
are local files, and nothing is fetched from the network to build or to view.

Why Sphinx: the docstrings are numpydoc, which is reStructuredText with
cross-references (``:func:``, ``:data:``) that Sphinx resolves and MkDocs'
renderers show as raw text; the PyData theme is what SciPy, statsmodels and
pandas use, so the pages look like the references our users already read;
MyST lets the tutorials be Markdown, the same files the tests execute.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import generate  # noqa: E402  (docs/generate.py: the CLI and table references)

import simulation  # noqa: E402

project = "spearman-tied-sim"
author = "The spearman-tied-sim developers"
copyright = "the spearman-tied-sim developers"  # noqa: A001 (Sphinx's name)
release = version = simulation.__version__

extensions = ["myst_parser", "sphinx.ext.autodoc", "numpydoc"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "generate.py", "make_figures.py", "README.md"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": False}
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

smartquotes = False  # "--out" stays two hyphens, as typed on the command line

html_theme = "pydata_sphinx_theme"
html_title = "spearman-tied-sim"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "navbar_end": ["theme-switcher"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_show_sourcelink = False
html_static_path: list[str] = []


def _fill(app, docname, source) -> None:
    source[0] = generate.fill(source[0])


def setup(app) -> None:
    app.connect("source-read", _fill)
