"""Pages generated from the code, so that nothing is written twice (``conf.py`` calls these).

``<!-- generated: cli -->`` becomes the reference of every subcommand and
option of ``python -m simulation``, read from :func:`simulation.cli.parser.build_parser`;
``<!-- generated: tables -->`` the columns of every table, read from
:mod:`simulation.study.columns` (the lists the writers build their tables from).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _cell(text: str) -> str:
    """One line of table text: ``|`` escaped, and ``<`` so that ``results/<study>`` is not read as HTML."""
    return " ".join(str(text).split()).replace("|", "\\|").replace("<", "&lt;")


def _option(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.dest}`" + (" (optional)" if action.nargs == "?" else "")
    names = ", ".join(f"`{opt}`" for opt in action.option_strings)
    if action.nargs == 0:
        return names
    metavar = action.metavar or (("{" + ",".join(action.choices) + "}") if action.choices else action.dest.upper())
    return f"{names} `{metavar}`"


def _default(action: argparse.Action) -> str:
    if action.nargs == 0 or action.default in (None, argparse.SUPPRESS, False):
        return ""
    return f"`{action.default}`"


def cli_reference() -> str:
    """Markdown for every subcommand of ``python -m simulation``: its description and a table of its options."""
    from simulation.cli.parser import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    helps = {choice.dest: choice.help for choice in sub._choices_actions}
    out = [
        f"`{parser.prog} [--config FILE] COMMAND ...`: {_cell(parser.description)}",
        "",
        "Every invalid value is reported as one line naming the option, the value and what is allowed, with exit "
        "status 2 and nothing written.",
        "",
    ]
    for name, p in sub.choices.items():
        out += [f"## `{name}`", "", _cell(p.description or helps.get(name, "")), "", "| option | default | meaning |",
                "|---|---|---|"]  # fmt: skip
        for action in p._actions:
            if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
                continue
            help_text = (action.help or "").replace("%%", "%")
            if action.choices and action.option_strings:
                help_text += f" (one of {', '.join(map(str, action.choices))})"
            out.append(f"| {_option(action)} | {_default(action)} | {_cell(help_text)} |")
        out.append("")
    return "\n".join(out)


def tables_reference() -> str:
    """Markdown for every table the package writes: its file, what a row is, and each column's meaning and unit."""
    from simulation.study import columns

    out = [_cell(columns.__doc__.split("\n\n")[2]), ""]
    for name, (file, row, cols) in columns.TABLES.items():
        out += [f"## `{name}`", "", f"File: {file}. One row per {row}.", "", "| column | meaning | unit |",
                "|---|---|---|"]  # fmt: skip
        out += [f"| `{c.name}` | {_cell(c.meaning)} | {c.unit} |" for c in cols]
        out.append("")
    return "\n".join(out)


def toplevel_reference() -> str:
    """Markdown table of the names ``import simulation`` gives: each with what it is, its home module (where
    its entry is) and its docstring's first line."""
    import importlib
    import inspect

    import simulation

    out = ["| name | what | documented in |", "|---|---|---|"]
    for name in sorted(simulation.__all__, key=str.lower):
        home = simulation._HOMES[name]
        value = getattr(importlib.import_module(home), name)
        kind = "class" if inspect.isclass(value) else "function" if callable(value) else "constant"
        first = (inspect.getdoc(value) or "").split("\n\n")[0] if kind != "constant" else ""
        out.append(f"| {{py:obj}}`{name} <{home}.{name}>` | {kind}{': ' + _cell(first) if first else ''} | "
                   f"`{home}` |")
    return "\n".join(out)


def citation() -> str:
    """The software's citation as BibTeX and APA, from ``CITATION.cff`` (title, authors, and the repository's
    address where it records one: ``repository-code`` or ``url``) with the version these pages describe (from
    the package)."""
    import yaml  # a dependency of myst-parser, which builds these pages

    import simulation

    cff = yaml.safe_load((Path(__file__).resolve().parents[1] / "CITATION.cff").read_text(encoding="utf-8"))
    version = simulation.__version__
    title = cff["title"]
    authors = " and ".join(a.get("name") or f"{a['family-names']}, {a['given-names']}" for a in cff["authors"])
    url = cff.get("repository-code") or cff.get("url")
    key = f"spearman_tied_sim_{version.replace('.', '_')}"
    bibtex = [f"@software{{{key},", f"  author = {{{{{authors}}}}},", f"  title = {{{title}}},",
              f"  version = {{{version}}},", "  note = {Python package},"] + ([f"  url = {{{url}}},"] if url else [])
    apa = f"> {authors}. *{title}* (Version {version}) [Computer software]." + (f" {url}" if url else "")
    return "\n".join(["BibTeX:", "", "```bibtex", *bibtex, "}", "```", "", "APA:", "", apa])  # fmt: skip


MARKERS = {"<!-- generated: cli -->": cli_reference, "<!-- generated: citation -->": citation,
           "<!-- generated: tables -->": tables_reference,
           "<!-- generated: toplevel -->": toplevel_reference}  # fmt: skip


def fill(text: str) -> str:
    """``text`` with each marker replaced by its generated Markdown."""
    for marker, make in MARKERS.items():
        if marker in text:
            text = text.replace(marker, make())
    return text
