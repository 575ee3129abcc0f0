"""Rule study_cv: one configuration of one (system, model) scored by stratified k-fold cross-validation on the
training images only, its folds trained as one group (qtlmnist.study.cross_validate); one row per fold."""

from qtlmnist.arrays import save_csv
from qtlmnist.runtime import seed_tensorflow, setup_logging

setup_logging(snakemake.log[0])
seeds = [int(seed) for seed in snakemake.params.seeds]
seed_tensorflow(seeds[0], snakemake.threads)  # every member is seeded again with its own seed before it is built

from qtlmnist import study  # noqa: E402
from qtlmnist.systems import load  # noqa: E402

inputs = {name: path for name, path in snakemake.input.items()}
scores = study.cross_validate(
    load(snakemake.wildcards.system),
    inputs,
    dict(snakemake.params.values),
    snakemake.params.folds,
    snakemake.params.split_seed,
    seeds,
)
save_csv(snakemake.output[0], scores)
