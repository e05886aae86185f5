"""The code blocks of the documentation's Markdown pages, their test notes and their stored outputs.

One reader of the pages for the three places that need them: the tests run every block
(``tests/test_docs.py``), ``docs/make_figures.py`` runs the tutorials at their full sizes and stores what
each block printed, and the site (``conf.py``, through :func:`render`) shows each stored output under its
block and each quick version beside its full one.

A comment on the line before a block adjusts how the tests run it:

* ``<!-- docs-test: skip REASON -->``: not run (installation commands, a cluster's address); the reason
  is shown by ``pytest -rs``;
* ``<!-- docs-test: quick OLD => NEW -->`` (repeatable): the tests run the block with ``OLD`` replaced by
  ``NEW``, and the site shows that reduced block to the reader as the block's *quick version*.  ``OLD`` and
  ``NEW`` may differ only in their numbers (sizes: datasets, resamples, permutations), and ``OLD`` must be
  in the block: a note that changes anything else, or that no longer matches, fails the test.

A block whose info string has ``title="NAME"`` is a file the reader saves: the tests write it to ``NAME``
instead of running it.  Blocks in languages other than Python and shell, without a title, are output
shown to the reader.

The outputs of a page are stored in ``docs/outputs/<page>.json``: the package version that made them and,
per block, the SHA-256 of its code (as the page shows it, full size) and what it printed.  A block whose
code changed has no stored output until the outputs are made again, and the tests say so.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
OUTPUTS = DOCS / "outputs"
PYTHON = {"python", "py", "pycon"}
SHELL = {"bash", "sh", "shell", "console"}
FENCE = re.compile(r"^```(?P<lang>[\w-]*)(?P<info>.*)$")
NOTE = re.compile(r"^<!--\s*docs-test:\s*(?P<what>skip|quick)\s*(?P<arg>.*?)\s*-->\s*$")
ANY_NOTE = re.compile(r"^<!--\s*docs-test:\s*(?P<what>\S+)")
TITLE = re.compile(r'title="(?P<title>[^"]+)"')
NUMBER = re.compile(r"\d+(?:\.\d+)?")


class NoteError(AssertionError):
    """A test note the collector does not accept: the message names the page, the line and why."""


@dataclass
class Block:
    """One fenced code block of a page: where it is, its language and code, and the notes above it."""

    page: Path
    line: int  # the first line of its code (1-based)
    lang: str
    info: str
    code: str
    notes: list[tuple[str, str]] = field(default_factory=list)

    @property
    def title(self) -> str | None:
        match = TITLE.search(self.info)
        return match["title"] if match else None

    @property
    def where(self) -> str:
        page = self.page.relative_to(ROOT) if self.page.is_relative_to(ROOT) else self.page.name
        return f"{page}:{self.line}"

    @property
    def runnable(self) -> bool:
        return self.lang in PYTHON | SHELL and self.title is None

    @property
    def digest(self) -> str:
        """The SHA-256 of the code as the page shows it (its stored output's key)."""
        return hashlib.sha256(self.code.encode()).hexdigest()

    def skip_reason(self) -> str | None:
        return next((arg or "no reason given" for what, arg in self.notes if what == "skip"), None)

    def quick_pairs(self) -> list[tuple[str, str]]:
        """The quick notes' ``(OLD, NEW)`` pairs, each checked: numbers only, and ``OLD`` in the block."""
        pairs = []
        for what, arg in self.notes:
            if what != "quick":
                continue
            old, sep, new = arg.partition(" => ")
            if not sep:
                raise NoteError(f"{self.where}: a quick note needs 'OLD => NEW', got {arg!r}")
            if NUMBER.sub("#", old) != NUMBER.sub("#", new) or old == new:
                raise NoteError(f"{self.where}: a quick note may change numbers only (sizes), got {old!r} => "
                                f"{new!r}")  # fmt: skip
            if old not in self.code:
                raise NoteError(f"{self.where}: the quick note's {old!r} is not in the block (stale reduction?)")
            pairs.append((old, new))
        return pairs

    def quick(self) -> str:
        """The code the tests run: the block with every quick note applied (the block itself without one)."""
        code = self.code
        for old, new in self.quick_pairs():
            code = code.replace(old, new)
        return code


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of a Markdown page, with the notes just above each.  An unknown note (a
    ``docs-test:`` word other than ``skip`` and ``quick``) is refused."""
    out, notes, lines = [], [], page.read_text().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        note, fence = NOTE.match(line.strip()), FENCE.match(line.strip())
        if note:
            notes.append((note["what"], note["arg"]))
        elif ANY_NOTE.match(line.strip()):
            raise NoteError(f"{page.name}:{i + 1}: unknown docs-test note {line.strip()!r} (skip or quick)")
        elif fence and line.startswith("```") and fence["lang"]:
            start, body = i + 1, []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            out.append(Block(page, start + 1, fence["lang"].lower(), fence["info"], "\n".join(body) + "\n", notes))
            notes = []
        elif line.strip():
            notes = []
        i += 1
    return out


def outputs_path(page: Path) -> Path:
    """Where a page's stored outputs live: ``docs/outputs/<path under docs, / as __>.json``."""
    relative = page.relative_to(DOCS) if page.is_relative_to(DOCS) else Path("elsewhere", page.name)
    return OUTPUTS / (str(relative.with_suffix("")).replace("/", "__") + ".json")


def stored_outputs(page: Path) -> dict:
    """``{"version": ..., "command": ..., "blocks": {digest: output}}`` for a page, empty without a file."""
    path = outputs_path(page)
    return json.loads(path.read_text()) if path.is_file() else {}


def page_digest(page: Path) -> str:
    """The SHA-256 of every block of a page that runs or is saved (what its outputs and figures depend on)."""
    code = "\x00".join(b.code for b in blocks(page) if (b.runnable or b.title) and b.skip_reason() is None)
    return hashlib.sha256(code.encode()).hexdigest()


def render(page: Path, text: str) -> str:
    """The page as the site shows it: each block with quick notes followed by its quick version, and each
    block with a stored output (made by this version of the package) followed by that output."""
    import simulation

    stored = stored_outputs(page)
    outputs = stored.get("blocks", {}) if stored.get("version") == simulation.__version__ else {}
    by_line = {b.line: b for b in blocks(page)}
    lines, out = text.splitlines(), []
    i = 0
    while i < len(lines):
        if NOTE.match(lines[i].strip()):  # for the tests only: the site shows the quick version instead
            i += 1
            continue
        out.append(lines[i])
        block = by_line.get(i + 2)  # the fence's line is i + 1 (1-based); its code starts on the next
        if block is None:
            i += 1
            continue
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        out.extend(lines[i + 1 : j + 1])
        i = j + 1
        if block.quick_pairs():
            fence = "```" + block.lang
            out += ["", "*Quick version* (the same with smaller sizes: seconds instead of minutes; the tests run "
                    "this one):", "", fence, *block.quick().rstrip("\n").splitlines(), "```"]  # fmt: skip
        text_out = outputs.get(block.digest, "").rstrip()
        if text_out:
            out += ["", "*Output* (full size, made by `python docs/make_figures.py`):", "", "```text",
                    *text_out.splitlines(), "```"]  # fmt: skip
    return "\n".join(out) + "\n"


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


def run_page(page: Path, folder: Path, *, quick: bool = True) -> dict[str, str]:
    """Run every block of ``page`` in ``folder`` (quick versions unless ``quick=False``): ``{digest: what it
    printed}`` per block that ran.  A failing block raises AssertionError naming its page and line."""
    page = page.resolve()
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["MPLBACKEND"] = "Agg"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(folder), env.get("PYTHONPATH")]))
    namespace: dict = {"__name__": "__docs__"}
    printed: dict[str, str] = {}
    with _inside(folder):
        for block in blocks(page):
            if block.skip_reason() is not None:
                continue
            code = block.quick() if quick else block.code
            if block.title:
                target = folder / block.title
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(code)
                # a module the page writes is imported afresh by the next block that needs it
                sys.modules.pop(Path(block.title).stem, None)
                continue
            if block.lang in PYTHON:
                buffer = _Tee()
                try:
                    with contextlib.redirect_stdout(buffer), warnings.catch_warnings():
                        if quick:  # a quick version's sizes cannot reach a page's precision targets
                            from simulation.study.runner import TargetNotMetWarning

                            warnings.simplefilter("ignore", TargetNotMetWarning)
                        exec(compile(code, block.where, "exec"), namespace)
                except Exception as exc:
                    raise AssertionError(f"{block.where}: the Python block failed: {exc!r}") from exc
                printed[block.digest] = buffer.getvalue()
            elif block.lang in SHELL:
                done = subprocess.run(
                    ["bash", "-e", "-o", "pipefail", "-c", code], cwd=folder, env=env, capture_output=True,
                    text=True, timeout=3600,
                )  # fmt: skip
                assert done.returncode == 0, (
                    f"{block.where}: the shell block failed with status {done.returncode}\n--- code\n{code}"
                    f"--- stdout (end)\n{done.stdout[-3000:]}\n--- stderr (end)\n{done.stderr[-3000:]}"
                )
                printed[block.digest] = done.stdout
    return printed


class _Tee:
    """stdout that keeps what a block prints (and shows it too, for ``pytest -s``)."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    def getvalue(self) -> str:
        return "".join(self.parts)
