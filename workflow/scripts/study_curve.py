"""Rule study_curve: the chosen configuration of one (system, model) trained on `size` training images over
the curve seeds as one group, tested (as run) on the test set (qtlmnist.study.learning_curve)."""

from qtlmnist.arrays import save_csv
from qtlmnist.runtime import seed_tensorflow, setup_logging

setup_logging(snakemake.log[0])
seeds = [int(seed) for seed in snakemake.params.seeds]
seed_tensorflow(seeds[0], snakemake.threads)

from qtlmnist import study  # noqa: E402
from qtlmnist.systems import load  # noqa: E402

inputs, values, _ = study.chosen_job(dict(snakemake.input.items()), snakemake.params.values)
curve = study.learning_curve(load(snakemake.wildcards.system), inputs, values, int(snakemake.wildcards.size), seeds)
save_csv(snakemake.output[0], curve.assign(system=snakemake.wildcards.system, model=snakemake.wildcards.candidate))
