"""Author-year citations in the API docstrings, linked to the bibliography.

The docstrings cite as a reader writes by hand ("Davison & Hinkley 1997, eq. 5.6",
"Morris, White & Crowther (2019)", "Bradley's (1978)"), so that ``help()`` in a terminal reads
well.  On the site the authors of each citation become a link to its entry on the bibliography
page: the key is the first author's surname in lower case (accents and apostrophes dropped)
followed by the year, the convention of ``docs/references.bib``.  A citation whose key is not in
the bibliography is a build warning, which ``-W`` makes an error, so a new work cited in a
docstring cannot reach the site unlinked.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from pathlib import Path

#: A surname: capitalised, at least two letters, ending in a lower-case letter ("O'Neill",
#: "LeVeque", "Rücker"); a trailing possessive "'s" is not part of it.
_NAME = r"[A-Z](?:[^\W\d_]|-|'(?!s\b))*[a-z]"
#: Authors ("A", "A & B", "A and B", "A, B & C", "A et al.") and the year, bare or in parentheses,
#: possibly across a line break.
CITATION = re.compile(
    rf"(?P<authors>{_NAME}(?:,\s+{_NAME})*(?:,?\s+(?:&|and)\s+{_NAME}|\s+et\s+al\.)?)"
    rf"(?P<possessive>'s)?,?\s+\(?(?P<year>(?:1[89]|20)\d\d)(?![\d])"
)


def bib_keys(path: Path) -> set[str]:
    """The entry keys of a BibTeX file."""
    return set(re.findall(r"^@\w+\{([^,\s]+),", path.read_text(encoding="utf-8"), flags=re.MULTILINE))


def key_of(authors: str, year: str) -> str:
    """The bibliography key of a citation: first author's surname, lower case, ASCII, then the year."""
    first = authors.split(",")[0].split()[0]
    ascii_name = unicodedata.normalize("NFKD", first).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z]", "", ascii_name.lower()) + year


def _in_literal(text: str, start: int) -> bool:
    """Whether ``start`` falls inside a ````literal```` span or an interpreted role of its paragraph (inline
    markup may run over several lines, never over a blank one)."""
    breaks = list(re.finditer(r"\n[ \t]*\n", text[:start]))
    before = text[breaks[-1].end() if breaks else 0:start]
    return before.count("``") % 2 == 1 or before.replace("``", "").count("`") % 2 == 1


def link(text: str, keys: Iterable[str], uri: Callable[[str], str],
         unknown: Callable[[str, str], None]) -> str:  # fmt: skip
    """``text`` (reStructuredText) with the authors of each citation made a link to ``uri(key)``.

    ``unknown(citation, key)`` is called for a citation whose key is not in ``keys`` (it is left
    as written).
    """
    known = set(keys)
    out: list[str] = []
    last = 0
    for match in CITATION.finditer(text):
        if _in_literal(text, match.start()):
            continue
        key = key_of(match["authors"], match["year"])
        if key not in known:
            unknown(match.group(0), key)
            continue
        out += [text[last:match.start()], f"`{match['authors']} <{uri(key)}>`__"]
        last = match.end("authors")
    return "".join(out) + text[last:]


def setup(app) -> None:
    """Link the citations of every docstring autodoc renders (``autodoc-process-docstring``)."""
    from sphinx.util import logging

    logger = logging.getLogger(__name__)
    here = Path(app.confdir)
    keys = set().union(*(bib_keys(here / name) for name in app.config.bibtex_bibfiles))

    def process(app, what, name, obj, options, lines: list[str]) -> None:
        # a function or class is the package's own when it was defined here (autodoc also reads the imported
        # ones it then leaves out); a module, a constant or an attribute by the name it is documented under
        home = name if what in ("module", "data", "attribute") else getattr(obj, "__module__", None) or name
        if not str(home).startswith("simulation"):
            return  # an imported name autodoc looks at and leaves out (SciPy's brentq)
        docname = app.env.docname
        target = app.builder.get_relative_uri(docname, "bibliography")

        def unknown(citation: str, key: str) -> None:
            logger.warning(f"{name}: the citation {citation!r} has no entry {key!r} in the bibliography",
                           location=docname)

        linked = link("\n".join(lines), keys, lambda key: f"{target}#cite-{key}", unknown)
        lines[:] = linked.split("\n")

    app.connect("autodoc-process-docstring", process, priority=600)
