"""Every code block of the README and of the documentation runs, so that no example can rot.

Each page is one test: its blocks run in order in a fresh folder, Python
blocks in one namespace (as a reader pastes them into one session), shell
blocks with ``bash -e -o pipefail`` and this interpreter first on ``PATH``
(so ``python`` is the one under test).  A block whose info string has
``title="NAME"`` is a file the reader saves: it is written to ``NAME``
instead of run.  An HTML comment on the line before a block adjusts it:

* ``<!-- docs-test: skip REASON -->``: not run (installation commands, a
  cluster's address); the reason is shown by ``pytest -rs``;
* ``<!-- docs-test: replace OLD => NEW -->`` (repeatable): run with ``OLD``
  replaced by ``NEW``, for a reduced size where the real example is long
  (the page shows the real one; the replacement must match, or the test
  fails, so a changed example cannot leave a stale reduction behind);
* ``<!-- docs-test: append COMMAND ARGS -->`` (repeatable): append ``ARGS``
  to every line of a shell block that runs ``python -m simulation COMMAND``
  (a later option wins in argparse: ``--n-reps 20`` after ``--n-reps 1000``
  reduces it), for blocks that list several commands.

Third-party plugins (pytest-markdown-docs, mktestdocs) run Python blocks
only, and have no way to run a shell example at a reduced size; this
collector is short enough to keep here.  Blocks in languages other than
Python and shell, without a title, are output shown to the reader.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
PYTHON = {"python", "py", "pycon"}
SHELL = {"bash", "sh", "shell", "console"}
FENCE = re.compile(r"^```(?P<lang>[\w-]*)(?P<info>.*)$")
NOTE = re.compile(r"^<!--\s*docs-test:\s*(?P<what>skip|replace|append)\s*(?P<arg>.*?)\s*-->\s*$")
TITLE = re.compile(r'title="(?P<title>[^"]+)"')


class Block:
    def __init__(self, page: Path, line: int, lang: str, info: str, code: str, notes: list[tuple[str, str]]):
        self.page, self.line, self.lang, self.code, self.notes = page, line, lang, code, notes
        match = TITLE.search(info)
        self.title = match["title"] if match else None

    @property
    def where(self) -> str:
        page = self.page.relative_to(ROOT) if self.page.is_relative_to(ROOT) else self.page.name
        return f"{page}:{self.line}"

    def skip_reason(self) -> str | None:
        return next((arg or "no reason given" for what, arg in self.notes if what == "skip"), None)

    def prepared(self) -> str:
        code = self.code
        for what, arg in self.notes:
            if what == "append":
                command, _, extra = arg.partition(" ")
                code = _append(code, command, extra, self.where)
            if what != "replace":
                continue
            old, sep, new = arg.partition(" => ")
            assert sep, f"{self.where}: a replace note needs 'OLD => NEW', got {arg!r}"
            assert old in code, f"{self.where}: the replace note's {old!r} is not in the block (stale reduction?)"
            code = code.replace(old, new)
        return code


def _append(code: str, command: str, extra: str, where: str) -> str:
    lines, hit = [], False
    for line in code.splitlines():
        body, hash_, comment = line.partition("  #")
        if re.match(rf"\s*python -m simulation {re.escape(command)}(\s|$)", body):
            line, hit = f"{body.rstrip()} {extra}" + (f"  #{comment}" if hash_ else ""), True
        lines.append(line)
    assert hit, f"{where}: the append note's command {command!r} is not in the block (stale reduction?)"
    return "\n".join(lines) + "\n"


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of a Markdown page, with the notes just above each."""
    out, notes, lines = [], [], page.read_text().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        note, fence = NOTE.match(line.strip()), FENCE.match(line.strip())
        if note:
            notes.append((note["what"], note["arg"]))
        elif fence and line.startswith("```") and fence["lang"]:
            start, body = i + 1, []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            out.append(Block(page, start, fence["lang"].lower(), fence["info"], "\n".join(body) + "\n", notes))
            notes = []
        elif line.strip():
            notes = []
        i += 1
    return out


def _runnable(page: Path) -> bool:
    return any(b.lang in PYTHON | SHELL or b.title for b in blocks(page))


@contextlib.contextmanager
def _inside(folder: Path):
    old_cwd, old_path = os.getcwd(), list(sys.path)
    os.chdir(folder)
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        os.chdir(old_cwd)
        sys.path[:] = old_path


@pytest.mark.parametrize("page", [p for p in PAGES if _runnable(p)], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_code_block_of_the_page_runs(page, tmp_path, monkeypatch):
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["MPLBACKEND"] = "Agg"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")]))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict = {"__name__": "__docs__"}
    skipped, ran = [], 0
    with _inside(tmp_path):
        for block in blocks(page):
            reason = block.skip_reason()
            if reason is not None:
                skipped.append(f"{block.where} ({reason})")
                continue
            code = block.prepared()
            if block.title:
                target = tmp_path / block.title
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(code)
                # a module the page writes is imported afresh by the next block that needs it
                sys.modules.pop(Path(block.title).stem, None)
                continue
            if block.lang in PYTHON:
                try:
                    exec(compile(code, block.where, "exec"), namespace)
                except Exception as exc:
                    raise AssertionError(f"{block.where}: the Python block failed: {exc!r}") from exc
                ran += 1
            elif block.lang in SHELL:
                done = subprocess.run(
                    ["bash", "-e", "-o", "pipefail", "-c", code], cwd=tmp_path, env=env, capture_output=True,
                    text=True, timeout=900,
                )  # fmt: skip
                assert done.returncode == 0, (
                    f"{block.where}: the shell block failed with status {done.returncode}\n--- code\n{code}"
                    f"--- stdout (end)\n{done.stdout[-3000:]}\n--- stderr (end)\n{done.stderr[-3000:]}"
                )
                ran += 1
    assert ran or skipped, f"{page}: no block ran"
    if skipped:
        print("skipped:", *skipped, sep="\n  ")


def test_the_collector_reads_notes_titles_and_replacements(tmp_path):
    """The collector itself: a skip note, a replacement that applies, one that is stale, a titled file block."""
    page = tmp_path / "page.md"
    page.write_text(
        "Text.\n\n<!-- docs-test: skip needs a cluster -->\n```bash\nexit 1\n```\n\n"
        "<!-- docs-test: replace --n-reps 2000 => --n-reps 20 -->\n```bash\necho --n-reps 2000\n```\n\n"
        '```csv title="study.csv"\ncase,n\n```\n\n```text\noutput\n```\n\n'
        "<!-- docs-test: replace absent => x -->\n```python\nprint(1)\n```\n"
        "<!-- docs-test: append run --n-reps 20 -->\n```bash\npython -m simulation run a --n-reps 9  # full\n"
        "python -m simulation runner\n```\n"
    )
    found = blocks(page)
    assert [b.lang for b in found] == ["bash", "bash", "csv", "text", "python", "bash"]
    appended = "python -m simulation run a --n-reps 9 --n-reps 20  # full\npython -m simulation runner\n"
    assert found[5].prepared() == appended
    assert found[0].skip_reason() == "needs a cluster"
    assert found[1].skip_reason() is None and found[1].prepared() == "echo --n-reps 20\n"
    assert found[2].title == "study.csv" and found[2].code == "case,n\n"
    with pytest.raises(AssertionError, match="stale reduction"):
        found[4].prepared()
    (tmp_path / "output.md").write_text("```text\nx\n```\n")
    assert _runnable(page) and not _runnable(tmp_path / "output.md")


def _hooks():
    spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


def test_every_public_name_is_in_the_api_reference():
    """Each name of ``simulation.__all__`` is documented on a reference page: by its own autodoc directive, or
    by an ``automodule`` of its module that takes all members or names it."""
    import simulation

    text = "\n".join(p.read_text() for p in (ROOT / "docs" / "reference").glob("api-*.rst"))
    documented = set(re.findall(r"\.\. auto\w+:: ([\w.]+)", text))
    modules = {m[1]: m[2] for m in re.finditer(r"\.\. automodule:: ([\w.]+)\n((?:   :members:.*\n)?)", text)}
    missing = []
    for name in simulation.__all__:
        module = getattr(getattr(simulation, name), "__module__", None)
        if module and f"{module}.{name}" in documented:
            continue
        if any(d.rsplit(".", 1)[-1] == name for d in documented):
            continue
        spec = modules.get(module, "")
        if spec.strip() == ":members:" or re.search(rf"\b{name}\b", spec):
            continue
        missing.append(name)
    assert not missing, f"public names without a reference entry: {missing}"
