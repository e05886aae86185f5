"""The documentation site as a reader gets it: built from scratch with warnings as errors, then read as HTML.

The API reference is checked on the built pages, not on the ``.rst`` sources: an ``automodule`` whose
members a configuration option silently drops passes a check of the sources and leaves a reader an empty
section.  Every name ``import simulation`` gives, and every public function and class of every public
module, must have an entry with its signature and a description.
"""

from __future__ import annotations

import html
import importlib
import inspect
import json
import pkgutil
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import simulation

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs"))
import citations  # noqa: E402  (docs/citations.py)

#: The package folders by layer (``simulation/__init__`` names them); their modules without a leading ``_``
#: are public.
PACKAGES = ("core", "engine", "infra", "models", "present", "statistics", "inference", "study", "power", "analyze",
            "toolkit", "cli")  # fmt: skip
ENTRY = re.compile(r'<dt class="sig sig-object py" id="(?P<id>[\w.]+)">(?P<sig>.*?)</dt>\s*<dd>(?P<body>.*?)</dd>',
                   re.S)  # fmt: skip


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(ROOT / "docs"),
                           str(out)], capture_output=True, text=True, timeout=900)  # fmt: skip
    assert done.returncode == 0, f"the site does not build without warnings:\n{done.stderr[-5000:]}"
    return out


def _entries(site: Path) -> dict[str, tuple[str, str]]:
    """``{object id: (signature text, description text)}`` of every API entry on the built pages."""
    found = {}
    for page in site.rglob("*.html"):
        for m in ENTRY.finditer(page.read_text()):
            text = [html.unescape(re.sub(r"<[^>]+>", "", m[g])).strip() for g in ("sig", "body")]
            found.setdefault(m["id"], (text[0], text[1]))
    return found


def public_objects() -> list[str]:
    """Every public function and class of every public module (its ``__all__`` where it has one), by its
    full name, and the home of every name of ``simulation.__all__``."""
    names = {f"{simulation._HOMES[n]}.{n}" for n in simulation.__all__}
    for package in PACKAGES:
        pkg = importlib.import_module(f"simulation.{package}")
        for info in pkgutil.iter_modules(pkg.__path__):
            if info.name.startswith("_"):
                continue
            module = importlib.import_module(f"simulation.{package}.{info.name}")
            listed = getattr(module, "__all__", None)
            for name, value in vars(module).items():
                if name.startswith("_") or (listed is not None and name not in listed):
                    continue
                if (inspect.isfunction(value) or inspect.isclass(value)) and value.__module__ == module.__name__:
                    names.add(f"{module.__name__}.{name}")
    return sorted(names)


def test_every_public_name_has_an_entry_with_its_signature_and_docstring(site):
    entries = _entries(site)
    missing = [n for n in public_objects() if n not in entries]
    assert not missing, f"{len(missing)} public names without an entry on the built site: {missing[:20]}"
    empty = [n for n in public_objects() if not entries[n][1]]
    assert not empty, f"entries without a description: {empty}"
    for name in ("simulation.inference.bootstrap.bootstrap_ci_single", "simulation.study.runner.run_all_ci_scenarios"):
        assert "(" in entries[name][0] and "n_boot" in entries[name][0], entries[name][0]
    # the members an explicit list asks for are there (the engine page once listed none of Kendall's)
    for name in ("simulation.statistics.kendall.tau_b", "simulation.statistics.pearson.pearson_r",
                 "simulation.models.generators.calibrate_tied_grid", "simulation.toolkit.slo.slo_compliance"):
        assert name in entries, name
    genindex = (site / "genindex.html").read_text()
    assert "tau_b()" in genindex


def test_signatures_are_readable(site):
    """``ArrayLike`` stays one word; no private NumPy types in any signature."""
    signatures = [sig for sig, _ in _entries(site).values()]
    private = [s for s in signatures if "_SupportsArray" in s or "numpy._typing" in s or "_NestedSequence" in s]
    assert not private, private[:3]
    assert any("ArrayLike" in s for s in signatures)


def test_the_defaults_docstrings_quote_are_the_shipped_settings():
    """A docstring that gives a settings default as a number ("``N_BOOT`` of the settings (1000 ...") gives the
    packaged default, so the reference shows numbers that are true."""
    from simulation.core.settings import Settings

    shipped = Settings()  # the packaged defaults, the values of the shipped config.py
    quoted = 0
    for path in (ROOT / "simulation").rglob("*.py"):
        for m in re.finditer(r"``([A-Z_]+)`` of the settings \(([^ ,)]+)", path.read_text()):
            value = getattr(shipped, m[1])
            assert str(value) == m[2], (path.name, m[1], m[2], value)
            quoted += 1
    assert quoted >= 8


def _pages(site: Path) -> list[Path]:
    skip = {"genindex.html", "search.html", "py-modindex.html"}
    return [p for p in site.rglob("*.html") if p.name not in skip and "_static" not in p.parts
            and "_sources" not in p.parts]  # fmt: skip


def test_every_page_has_a_distinct_title_a_sidebar_the_version_and_copy_buttons(site):
    titles: dict[str, Path] = {}
    for page in _pages(site):
        text = page.read_text()
        title = html.unescape(re.search(r"<title>(.*?)</title>", text, re.S)[1]).split(" — ")[0].strip()
        assert title not in titles, f"{page.relative_to(site)} and {titles[title].relative_to(site)}: '{title}'"
        titles[title] = page
        assert f"v{simulation.__version__}" in text, f"{page.relative_to(site)}: no version in the header"
        assert "copybutton.js" in text, f"{page.relative_to(site)}: no copy button"
        if page.name != "index.html" or page.parent != site:
            nav = re.search(r'<nav class="bd-docs-nav bd-links"(.*?)</nav>', text, re.S)
            assert nav and "<a" in nav[1], f"{page.relative_to(site)}: empty sidebar"
    top = (site / "index.html").read_text()
    navbar = re.search(r'<ul class="bd-navbar-elements navbar-nav">(.*?)</ul>', top, re.S)[1]
    assert 4 <= navbar.count("nav-item") <= 8, "the navbar is a handful of sections"


def test_the_math_renders_offline(site):
    """The methods page has typeset math, and MathJax is served from the site itself."""
    page = (site / "methods" / "formulas.html").read_text()
    assert page.count('class="math') >= 10
    scripts = re.findall(r'<script[^>]*src="([^"]*mathjax[^"]*)"', page, re.I)
    assert scripts and not any(s.startswith(("http:", "https:", "//")) for s in scripts), scripts


def test_the_docstrings_citations_link_to_their_bibliography_entries(site):
    """Every author-year citation in the API reference is a link, and every link lands on an entry of the
    bibliography page (an unknown key is a build warning, so the site above would not have built)."""
    entries = set(re.findall(r'id="(cite-[^"]+)"', (site / "bibliography.html").read_text()))
    links = 0
    for page in (site / "reference" / "api").glob("*.html"):
        text = page.read_text()
        for target in re.findall(r'href="[^"#]*bibliography\.html#(cite-[^"]+)"', text):
            assert target in entries, f"{page.name}: a citation links to {target}, not on the bibliography page"
            links += 1
        prose = html.unescape(re.sub(r"<a [^>]*>.*?</a>|<[^>]+>", " ", text, flags=re.S))
        for m in citations.CITATION.finditer(prose):
            key = citations.key_of(m["authors"], m["year"])
            assert f"cite-{key}" not in entries, f"{page.name}: {m[0]!r} is not linked"
    assert links >= 100


def test_the_citation_linker_reads_the_forms_the_docstrings_use():
    """The forms of a citation the docstrings write, and what is left alone (code, a year with no author)."""
    keys = {"davison1997", "morris2019", "bradley1978", "oneill2015", "rucker2014"}
    missing: list[str] = []
    text = ("(Davison &\n    Hinkley 1997, eq. 5.6) Morris, White & Crowther (2019, Table 6); Bradley's (1978) band; "
            "O'Neill 2015; Rücker & Schwarzer 2014; ``Davison & Hinkley 1997``; Python 3.11 since 2023; Brent (1973); "
            "``(1 + #{null at least as\n    extreme}) / (M + 1)`` (Morris et al. 2019)\n\n``a`` Bradley 1978")
    out = citations.link(text, keys, lambda key: f"b.html#cite-{key}", lambda cite, key: missing.append(key))
    assert "(`Davison &\n    Hinkley <b.html#cite-davison1997>`__ 1997, eq. 5.6)" in out
    assert "`Morris, White & Crowther <b.html#cite-morris2019>`__ (2019, Table 6)" in out
    assert "`Bradley <b.html#cite-bradley1978>`__'s (1978)" in out
    assert "`O'Neill <b.html#cite-oneill2015>`__ 2015" in out
    assert "`Rücker & Schwarzer <b.html#cite-rucker2014>`__ 2014" in out
    assert "``Davison & Hinkley 1997``" in out and "Python 3.11 since 2023" in out
    assert "(M + 1)`` (`Morris et al. <b.html#cite-morris2019>`__ 2019)" in out
    assert "``a`` `Bradley <b.html#cite-bradley1978>`__ 1978" in out
    assert missing == ["brent1973"]


def test_search_shows_summaries_on_a_site_opened_from_disk(site):
    """The search page loads the pages' texts, which hold every page's main content with its anchors; with
    Node.js at hand, the ``fetch`` the search calls for a summary is answered from them on ``file://``."""
    search = (site / "search.html").read_text()
    assert re.search(r'<script src="_static/page-texts\.js', search), "the search page does not load the texts"
    script = (site / "_static" / "page-texts.js").read_text()
    pages = {p.relative_to(site).as_posix() for p in _pages(site) if p.name != "search.html"}
    missing = [p for p in pages if json.dumps(p) + ":" not in script]
    assert not missing, f"pages without a search summary: {missing}"
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: the fetch wrapper was not run")
    probe = ('globalThis.location = {protocol: "file:"};'
             'globalThis.fetch = () => Promise.reject(new Error("refused"));'
             f"require({json.dumps(str(site / '_static' / 'page-texts.js'))});"
             'fetch("./guide/running.html").then(r => r.text()).then(t => process.stdout.write(t));')  # fmt: skip
    done = subprocess.run([node, "-e", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith('<div role="main">') and '<div id="running-a-study">' in done.stdout
    assert "Running a study" in done.stdout and "<script" not in done.stdout


def test_no_entry_shows_a_wall_of_repr(site):
    """A constant whose value is a long structure (a table's columns, the statistics' registry) shows its
    description, not its repr: no signature line on the built pages runs past a few lines of text."""
    long = {key: len(sig) for key, (sig, _) in _entries(site).items() if len(" ".join(sig.split())) > 1200}
    assert not long, f"entries with a signature of more than 1,200 characters: {long}"
