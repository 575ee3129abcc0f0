"""Tools that work on the workflow from outside: benchmarks, the reproducibility check, the lock and the
cluster test. They clone checkouts, start Snakemake or time things, so they live apart from the stage package
(workflow/scripts/qtlmnist) that rule scripts import. Run them from the repository root: `python -m tools.bench`.
"""
