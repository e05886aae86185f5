"""Make the figures the documentation shows, with the very commands its pages give.

Run from the repository root: ``python docs/make_figures.py`` (about 10
minutes on 2 cores).  Each command runs in a temporary folder at the size
the page shows; the PNGs are copied to ``docs/figures/``.  The tests run the
same commands at a reduced size (``tests/test_docs.py``); these are the full
ones, so the figures are the ones a reader gets.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

FIGURES = Path(__file__).resolve().parent / "figures"
MY_STUDY = """case,generator,n,k,template,counts,rho,df,y_median,y_iqr,pool
pilot,rank_mixing,60,5,even,,0.3,,,,
pilot,rank_mixing,60,5,heavy_center,,0.3,,,,
pilot,rank_mixing,60,,custom,24 18 10 5 3,0.3,,,,
pilot,log_linear,60,5,even,,0.3,,12,9,
pilot,empirical,60,5,even,,0.3,,,,example
"""

#: (command, {figure in the results folder: name under docs/figures})
RUNS = [
    ("run --out default", {"default/nested_loop_coverage.png": "coverage.png",
                           "default/endpoints.png": "endpoints.png",
                           "default/nested_loop_mean_width.png": "widths.png"}),
    ("power --out default/power", {"default/power/power_curves.png": "power_curves.png",
                                   "default/power/min_detectable.png": "min_detectable.png"}),
    ("analyze example --out analyze", {"analyze/analysis.png": "analysis.png"}),
    ("run my_study.csv --out mine", {"mine/nested_loop_coverage.png": "my_design_coverage.png"}),
    ("run tie_sweep --n-reps 300 --out tie_sweep", {"tie_sweep/nested_loop_coverage.png": "tie_sweep_coverage.png",
                                                    "tie_sweep/nested_loop_mean_width.png": "tie_sweep_widths.png"}),
]  # fmt: skip


def main() -> None:
    FIGURES.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "my_study.csv").write_text(MY_STUDY)
        for command, figures in RUNS:
            print(f"python -m simulation {command}", flush=True)
            subprocess.run([sys.executable, "-m", "simulation", *command.split(), "--quiet"], cwd=work, check=True,
                           stdout=subprocess.DEVNULL)  # fmt: skip
            for source, name in figures.items():
                _store(work / source, FIGURES / name)
                print(f"  -> docs/figures/{name}")


def _store(source: Path, target: Path) -> None:
    """Copy a figure as a 256-colour PNG (a third of the size; the figures use a few flat colours)."""
    from PIL import Image

    with Image.open(source) as image:
        flat = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        flat.save(target, optimize=True)


if __name__ == "__main__":
    main()
