"""Share of the main job's warm wall time spent drawing figures, for `run` and for `power`.

Runs the README's main-job commands as a user does (``python -m simulation
run`` and ``python -m simulation power`` on the default study, each
``--overwrite`` into a temporary folder), once to warm numba's cache and the
calibration, then ``REPEATS`` times timed from outside (process start to
exit).  The figure time is what the command itself reports ("figures in
X s"), measured around drawing and writing every PNG and PDF.  Goal: figures
<= 25% of the warm wall time of each command.

Run: ``python benchmarks/bench_figures.py``
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
import tempfile
import time

REPEATS = 3
COMMANDS = {"run": ["run", "karwowski2018"], "power": ["power", "karwowski2018"]}


def _time(argv: list[str], out: str) -> tuple[float, float]:
    """Wall seconds of one command and the figure seconds it reports."""
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "simulation", *argv, "--quiet", "--overwrite", "--out", out],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    match = re.search(r"figures in ([0-9.]+) s", done.stdout)
    if match is None:
        raise RuntimeError(f"no figure time in the output of {argv}:\n{done.stdout}")
    return wall, float(match.group(1))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for name, argv in COMMANDS.items():
            out = f"{tmp}/{name}"
            _time(argv, out)  # warm: numba cache, calibrations, matplotlib font cache
            walls, figures = zip(*(_time(argv, out) for _ in range(REPEATS)), strict=True)
            wall, fig = statistics.median(walls), statistics.median(figures)
            print(
                f"{name:>5}: warm wall {wall:5.1f} s, figures {fig:4.1f} s = {fig / wall:5.1%} of the wall time "
                f"(medians of {REPEATS}; goal <= 25%)"
            )


if __name__ == "__main__":
    main()
