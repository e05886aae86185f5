"""Coverage studies: block work units and their mergeable records, the estimators with control
variates, the column registry, row metrics and statuses, and the runner
(:func:`~simulation.study.runner.run_all_ci_scenarios`).

A new performance measure goes in estimators and columns. Imports inference and below.
"""
