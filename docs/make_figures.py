"""Run the tutorials at the sizes their pages show, and store what they print and the figures they draw.

Run from the repository root: ``python docs/make_figures.py`` (about 20 minutes on 2 cores), or
``python docs/make_figures.py tutorials/power.md ...`` for some pages.  Each page's blocks run in order in a
fresh temporary folder, exactly as printed (full size, not the quick versions the tests run), with
:func:`pages.run_page`.  What each block printed goes to ``docs/outputs/<page>.json`` with the package
version, and the site shows it under the block; each figure a page shows is copied to ``docs/figures/``
with a ``.json`` beside it naming the version, the page and the digest of the page's code.  The tests
(``tests/test_docs.py``) fail when a tutorial's stored output or a figure was made by another version or by
code the page no longer shows.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pages  # noqa: E402  (docs/pages.py)

FIGURES = pages.DOCS / "figures"

#: The tutorials (and the page that answers which interval to use), each with the figures its page shows:
#: {file its commands write: name under docs/figures}.
TUTORIALS: dict[str, dict[str, str]] = {
    "tutorials/honest-interval.md": {"results/karwowski2018/nested_loop_coverage.png": "coverage.png"},
    "tutorials/my-design.md": {"results/mine/nested_loop_coverage.png": "my_design_coverage.png"},
    "tutorials/analyze.md": {"results/analyze/my_data/analysis.png": "analysis.png"},
    "tutorials/power.md": {"results/karwowski2018/power/power_curves.png": "power_curves.png",
                           "results/karwowski2018/power/min_detectable.png": "min_detectable.png"},
    "tutorials/spearman-or-kendall.md": {"results/tie_sweep/nested_loop_coverage.png": "tie_sweep_coverage.png",
                                         "results/tie_sweep/nested_loop_mean_width.png": "tie_sweep_widths.png"},
    "tutorials/own-statistic.md": {},
    "tutorials/precision.md": {},
    "tutorials/cluster.md": {},
    "tutorials/toolkit.md": {},
    "methods/which-interval.md": {"results/which/nested_loop_coverage.png": "which_interval_coverage.png"},
}  # fmt: skip


def make(name: str) -> None:
    import simulation

    page = pages.DOCS / name
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        printed = pages.run_page(page, Path(tmp), quick=False)
        record = {"version": simulation.__version__, "command": "python docs/make_figures.py",
                  "page_digest": pages.page_digest(page), "blocks": printed}  # fmt: skip
        pages.OUTPUTS.mkdir(exist_ok=True)
        pages.outputs_path(page).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        for source, figure in TUTORIALS[name].items():
            _store(Path(tmp) / source, FIGURES / figure)
            meta = {"version": simulation.__version__, "page": name, "page_digest": record["page_digest"],
                    "file": source}  # fmt: skip
            (FIGURES / figure).with_suffix(".json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    print(f"{name}: {len(printed)} blocks, {len(TUTORIALS[name])} figures, {time.perf_counter() - t0:.0f} s",
          flush=True)  # fmt: skip


def _store(source: Path, target: Path) -> None:
    """Copy a figure as a 256-colour PNG (a third of the size; the figures use a few flat colours)."""
    from PIL import Image

    with Image.open(source) as image:
        flat = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        flat.save(target, optimize=True)


def main(names: list[str]) -> None:
    unknown = [n for n in names if n not in TUTORIALS]
    if unknown:
        raise SystemExit(f"not a tutorial of this script: {unknown} (one of {list(TUTORIALS)})")
    FIGURES.mkdir(exist_ok=True)
    for name in names or TUTORIALS:
        make(name)


if __name__ == "__main__":
    main(sys.argv[1:])
