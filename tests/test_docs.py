"""Every code block of the README and of the documentation runs, so that no example can rot.

Each page is one test: its blocks run in order in a fresh folder, Python
blocks in one namespace (as a reader pastes them into one session), shell
blocks with ``bash -e -o pipefail`` and this interpreter first on ``PATH``
(so ``python`` is the one under test).  The notes that adjust a block (``skip``, and ``quick``: the same
block with smaller numbers, which the site shows as its quick version) and the stored outputs are read by
``docs/pages.py`` (its docstring has the rules).

Third-party plugins (pytest-markdown-docs, mktestdocs) run Python blocks
only, and have no way to run a shell example at a reduced size; this
collector is short enough to keep here.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _docs_module(name: str):
    spec = importlib.util.spec_from_file_location(f"docs_{name}", ROOT / "docs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


pages = _docs_module("pages")


def _runnable(page: Path) -> bool:
    return any(b.runnable or b.title for b in pages.blocks(page))


@pytest.mark.parametrize("page", [p for p in PAGES if _runnable(p)], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_code_block_of_the_page_runs(page, tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    skipped = [f"{b.where} ({b.skip_reason()})" for b in pages.blocks(page) if b.skip_reason() is not None]
    ran = pages.run_page(page, tmp_path)
    assert ran or skipped, f"{page}: no block ran"
    if skipped:
        print("skipped:", *skipped, sep="\n  ")


def test_the_collector_reads_notes_titles_and_quick_versions(tmp_path):
    """The collector itself: a skip note, a quick note that applies, one that is stale, one that changes
    more than numbers, an unknown note, a titled file block, an output block."""
    page = tmp_path / "page.md"
    page.write_text(
        "Text.\n\n<!-- docs-test: skip needs a cluster -->\n```bash\nexit 1\n```\n\n"
        "<!-- docs-test: quick --n-reps 2000 => --n-reps 20 -->\n```bash\necho --n-reps 2000\n```\n\n"
        '```csv title="study.csv"\ncase,n\n```\n\n```text\noutput\n```\n\n'
        "<!-- docs-test: quick absent 1 => absent 2 -->\n```python\nprint(1)\n```\n"
        "<!-- docs-test: quick run 9 => run smoke 9 -->\n```bash\npython -m simulation run 9\n```\n"
    )
    found = pages.blocks(page)
    assert [b.lang for b in found] == ["bash", "bash", "csv", "text", "python", "bash"]
    assert found[0].skip_reason() == "needs a cluster"
    assert found[1].skip_reason() is None and found[1].quick() == "echo --n-reps 20\n"
    assert found[1].line == 10 and page.read_text().splitlines()[9] == "echo --n-reps 2000"
    assert found[2].title == "study.csv" and found[2].code == "case,n\n" and not found[2].runnable
    assert not found[3].runnable
    with pytest.raises(AssertionError, match="stale reduction"):
        found[4].quick()
    with pytest.raises(AssertionError, match="may change numbers only"):
        found[5].quick()
    good = tmp_path / "good.md"
    good.write_text("<!-- docs-test: quick --n-reps 2000 => --n-reps 20 -->\n```bash\necho --n-reps 2000\n```\n")
    shown = pages.render(good, good.read_text())
    assert "*Quick version*" in shown and "echo --n-reps 20" in shown.split("*Quick version*")[1]
    (tmp_path / "old.md").write_text("<!-- docs-test: replace a => b -->\n```bash\necho a\n```\n")
    with pytest.raises(AssertionError, match="unknown docs-test note"):
        pages.blocks(tmp_path / "old.md")
    (tmp_path / "output.md").write_text("```text\nx\n```\n")
    assert _runnable(page) and not _runnable(tmp_path / "output.md")


def test_tutorials_show_output_made_by_this_version_of_their_code():
    """Every tutorial has the output of each block it runs stored (``python docs/make_figures.py``), made by
    this version of the package from the code the page shows now; every figure a page shows was made the
    same way (its ``.json`` names the version, the page and the digest of the page's code)."""
    import simulation

    make = _docs_module("make_figures")
    tutorials = sorted((ROOT / "docs" / "tutorials").glob("*.md"))
    assert {f"tutorials/{p.name}" for p in tutorials if p.name != "index.md"} | {"methods/which-interval.md"} == set(
        make.TUTORIALS)  # fmt: skip
    stale = []
    for name in make.TUTORIALS:
        page = ROOT / "docs" / name
        stored = pages.stored_outputs(page)
        if stored.get("version") != simulation.__version__ or stored.get("page_digest") != pages.page_digest(page):
            stale.append(f"{name} (outputs)")
            continue
        ran = [b for b in pages.blocks(page) if b.runnable and b.skip_reason() is None]
        missing = [b.where for b in ran if b.digest not in stored["blocks"]]
        assert not missing, f"blocks without a stored output: {missing}"
        assert any(stored["blocks"][b.digest].strip() for b in ran), f"{name}: no block printed anything"
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for figure in re.findall(r"figures/([\w-]+)\.png", page.read_text()):
            meta_path = ROOT / "docs" / "figures" / f"{figure}.json"
            assert meta_path.is_file(), f"{page.name}: docs/figures/{figure}.png has no record of how it was made"
            meta = json.loads(meta_path.read_text())
            made_by = ROOT / "docs" / meta["page"]
            if meta["version"] != simulation.__version__ or meta["page_digest"] != pages.page_digest(made_by):
                stale.append(f"figures/{figure}.png (from {meta['page']})")
    assert not stale, f"made by another version or other code; run python docs/make_figures.py: {sorted(set(stale))}"


#: An author-year citation written out: "Cochran 1977", "Karwowski et al. (2018", "Morris, White & Crowther 2019".
CITATION = re.compile(r"[A-Z][\w'’\-]+(?:,? [A-Z][\w'’\-]+)*(?: et al\.)?(?: (?:&|and) [A-Z][\w'’\-]+)?(?:'s)?,? "
                      r"\(?(?:1[89]|20)\d\d[a-z]?\b")  # fmt: skip


def test_every_citation_of_the_site_links_to_the_bibliography():
    """The site's pages cite with ``{cite:t}``/``{cite:p}`` (sphinxcontrib-bibtex), which links each citation to
    its entry on the bibliography page: an author-year citation written out in prose fails here.  (The
    changelog is history and the README is read on GitHub, where the roles do not render.)"""
    assert CITATION.findall("see (Cochran 1977, §12.6), Karwowski et al. (2018) and Morris, White & Crowther 2019")
    assert not CITATION.findall("n = 2000 in {cite:t}`cochran1977`")
    written_out = []
    for page in sorted((ROOT / "docs").rglob("*.md")):
        if page.name == "changelog.md":
            continue
        fence = False
        for number, line in enumerate(page.read_text().splitlines(), 1):
            if line.startswith("```"):
                fence = not fence
                continue
            if fence or line.startswith("<!--"):
                continue
            prose = re.sub(r"\{cite:[tp]\}`[^`]*`", "", re.sub(r"(?<!\})`[^`]*`", "", line))
            written_out += [f"{page.relative_to(ROOT)}:{number}: {m}" for m in CITATION.findall(prose)]
    assert not written_out, written_out
    keys = set(re.findall(r"^@\w+\{(\w+),", (ROOT / "docs" / "references.bib").read_text(), re.M))
    role = re.compile(r"\{cite:[tp]\}`([^`]+)`")
    roles = [g for page in (ROOT / "docs").rglob("*.md") for g in role.findall(page.read_text())]
    cited = {k.strip() for group in roles for k in group.split(",")}
    assert cited and cited <= keys, cited - keys


def _hooks():
    return _docs_module("generate")


def test_cli_reference_is_generated_from_the_parser_with_every_option():
    """The CLI page is made from ``build_parser()``: every subcommand and every visible option appears."""
    import argparse

    from simulation.cli.parser import build_parser

    text = _hooks().cli_reference()
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name, p in sub.choices.items():
        assert f"## `{name}`" in text
        for action in p._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if action.help == argparse.SUPPRESS:
                assert not any(f"`{opt}`" in text for opt in action.option_strings if opt == "--n-sims")
                continue
            for opt in action.option_strings or [action.dest]:
                assert f"`{opt}" in text, (name, opt)


def test_table_reference_lists_every_column_with_a_meaning():
    """The tables page is made from :mod:`simulation.study.columns`, the lists the writers use."""
    from simulation.study import columns

    text = _hooks().tables_reference()
    for _name, (_file, _row, cols) in columns.TABLES.items():
        assert len(set(columns.names(cols))) == len(cols)
        for col in cols:
            assert col.meaning.strip()
            assert f"| `{col.name}` |" in text
