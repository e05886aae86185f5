"""Start-up of the command line: ``--help``, ``--version``, ``import simulation`` and a tiny run, side by side.

Each command runs in a fresh interpreter, alternating between this checkout and (with ``--baseline PATH``)
another checkout of the package, e.g. one made with ``git worktree add /tmp/before <commit>``; the median
of ``--repeats`` runs is printed per command and checkout, with their ratio. The tiny run is
``run smoke --n-reps 20 --n-boot 50`` into a fresh folder (its numba cache warmed by a first, untimed run),
and for it the time to import the modules it loads is printed too (``-X importtime``'s cumulative total).

Run: ``python benchmarks/bench_startup.py [--baseline PATH] [--repeats 5]`` (about a minute).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
COMMANDS = {
    "--help": ["-m", "simulation", "--help"],
    "--version": ["-m", "simulation", "--version"],
    "import simulation": ["-c", "import simulation"],
    "tiny run": ["-m", "simulation", "run", "smoke", "--n-reps", "20", "--n-boot", "50", "--quiet", "--out", "{out}"],
}


def run(root: Path, args: list[str], tmp: Path, importtime: bool = False) -> tuple[float, float]:
    """Seconds of one run, and the seconds its imports took (with ``importtime``; else 0)."""
    out = tempfile.mkdtemp(dir=tmp)
    argv = [sys.executable, *(["-X", "importtime"] if importtime else []), *[a.format(out=out) for a in args]]
    env = os.environ | {"PYTHONPATH": str(root)}
    t0 = time.perf_counter()
    done = subprocess.run(argv, cwd=tmp, env=env, capture_output=True, text=True, check=True)
    elapsed = time.perf_counter() - t0
    imports = 0.0
    if importtime:  # top-level lines ("|   <cumulative> | name" with no indent) sum to the whole import time
        for line in done.stderr.splitlines():
            m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S.*)$", line)
            if m and not m.group(2).startswith(" "):
                imports += int(m.group(1)) / 1e6
    return elapsed, imports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, help="another checkout of the package, to time beside this one")
    parser.add_argument("--repeats", type=int, default=5)
    opts = parser.parse_args()
    roots = {"this": HERE} | ({"baseline": opts.baseline.resolve()} if opts.baseline else {})
    with tempfile.TemporaryDirectory() as tmp:
        for root in roots.values():  # numba's cache, once per checkout
            run(root, COMMANDS["tiny run"], Path(tmp))
        times = {(c, r): [] for c in COMMANDS for r in roots}
        imports = {r: [] for r in roots}
        for _ in range(opts.repeats):
            for command, args in COMMANDS.items():
                for name, root in roots.items():
                    elapsed, _ = run(root, args, Path(tmp))
                    times[command, name].append(elapsed)
            for name, root in roots.items():
                imports[name].append(run(root, COMMANDS["tiny run"], Path(tmp), importtime=True)[1])
    header = "".join(f"{name:>12s}" for name in roots) + ("   this/baseline" if opts.baseline else "")
    print(f"{'command':18s}{header}")
    for command in COMMANDS:
        medians = [statistics.median(times[command, name]) for name in roots]
        ratio = f"   {medians[0] / medians[1]:.2f}" if opts.baseline else ""
        print(f"{command:18s}" + "".join(f"{m:11.2f}s" for m in medians) + ratio)
    medians = [statistics.median(imports[name]) for name in roots]
    ratio = f"   {medians[0] / medians[1]:.2f}" if opts.baseline else ""
    print(f"{'tiny run imports':18s}" + "".join(f"{m:11.2f}s" for m in medians) + ratio)


if __name__ == "__main__":
    main()
