"""Study settings. Edit here; every command and library default reads this file.

The package finds it as ./config.py in the working directory (or through
$SIMULATION_CONFIG); without it the packaged defaults (the same values) apply.
"""

N_REPS = 200  # outer Monte Carlo count: simulated datasets per scenario
N_BOOT = 1000  # inner bootstrap count: resamples per dataset
CONFIDENCE_LEVEL = 0.95  # two-sided level of every interval
SEED = 20180201  # base seed; every stream derives from it and the scenario/replicate identity
N_JOBS = -1  # worker processes for the study runner (-1: all cores)
BATCH_CI_BOOTSTRAP = True  # False: per-replicate fallback loop (bit-identical, slower)
CHUNK_BYTES = 64 * 2**20  # memory budget of one chunk's resample indices
