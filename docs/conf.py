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

import citations  # noqa: E402  (docs/citations.py: the docstrings' citations linked to the bibliography)
import generate  # noqa: E402  (docs/generate.py: the CLI and table references)
import offline_search  # noqa: E402  (docs/offline_search.py: search summaries on a site opened from disk)
import pages  # noqa: E402  (docs/pages.py: quick versions and stored outputs under their blocks)

import simulation  # noqa: E402

project = "spearman-tied-sim"
author = "The spearman-tied-sim developers"
copyright = "the spearman-tied-sim developers"  # noqa: A001 (Sphinx's name)
release = version = simulation.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "numpydoc",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # MathJax served from the site itself: the math renders with no network
    "sphinxcontrib.bibtex",
    "sphinx_copybutton",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "citations.py", "generate.py", "make_figures.py", "offline_search.py", "pages.py",
                    "README.md", "outputs"]
myst_enable_extensions = ["colon_fence", "deflist", "dollarmath", "amsmath"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
# NumPy's ArrayLike stays one word in signatures instead of the union it aliases
autodoc_type_aliases = {"ArrayLike": "ArrayLike", "npt.ArrayLike": "ArrayLike"}
python_maximum_signature_line_length = 100  # long signatures one parameter per line
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

bibtex_bibfiles = ["references.bib"]
bibtex_default_style = "alpha"
bibtex_reference_style = "author_year"
# each entry of the bibliography page has the anchor cite-<key>, the target of the docstrings' citations
bibtex_cite_id = "cite-{key}"

copybutton_prompt_text = r"\$ |>>> |\.\.\. "
copybutton_prompt_is_regexp = True

smartquotes = False  # "--out" stays two hyphens, as typed on the command line

html_theme = "pydata_sphinx_theme"
html_title = f"spearman-tied-sim {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "navbar_end": ["version-label", "theme-switcher"],
    "header_links_before_dropdown": 8,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_show_sourcelink = False
html_static_path: list[str] = []
templates_path = ["_templates"]
html_sidebars = {"**": ["sidebar-nav-bs"], "index": []}


def _fill(app, docname, source) -> None:
    page = HERE / f"{docname}.md"
    text = pages.render(page, source[0]) if page.is_file() else source[0]
    source[0] = generate.fill(text)


def setup(app) -> None:
    app.connect("source-read", _fill)
    citations.setup(app)
    offline_search.setup(app)
