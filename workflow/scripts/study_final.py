"""Rule study_final: the chosen configuration of one (system, model) retrained on all training images over the
final seeds as one group and tested once (qtlmnist.systems.training.run_group: as run, exact and with shots);
per seed its metrics and history, as a system_run writes them."""

from pathlib import Path

from qtlmnist.arrays import save_csv, save_json
from qtlmnist.runtime import seed_tensorflow, setup_logging

setup_logging(snakemake.log[0])
seeds = [int(seed) for seed in snakemake.params.seeds]
seed_tensorflow(seeds[0], snakemake.threads)

from qtlmnist import study  # noqa: E402
from qtlmnist.systems import load, training  # noqa: E402

inputs, values, chosen = study.chosen_job(dict(snakemake.input.items()), snakemake.params.values)
runs = training.run_group(load(snakemake.wildcards.system), inputs, values, seeds, snakemake.threads)
folder = Path(snakemake.output[0])
folder.mkdir(parents=True, exist_ok=True)
for seed, (metrics, history, _) in zip(seeds, runs):
    metrics = {"system": snakemake.wildcards.system, "model": snakemake.wildcards.candidate} | metrics
    save_csv(folder / f"seed_{seed}_history.csv", history)
    save_json(folder / f"seed_{seed}.json", metrics | {"configuration": chosen})
