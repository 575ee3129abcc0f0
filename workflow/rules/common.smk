import sys
from pathlib import Path

from snakemake.utils import validate

# The logic lives in the package beside the scripts (workflow/scripts/qtlmnist). Snakemake puts a script's
# folder on its sys.path, so scripts import it in the venv, in --sdm conda envs and on cluster nodes alike;
# the Snakefile itself needs the same path for the config checks.
sys.path.insert(0, str(Path(workflow.basedir) / "workflow" / "scripts"))

from qtlmnist.config import check_consistency, check_schema
from qtlmnist.data import MNIST_FILES, SPLITS
from qtlmnist import variants

# Our check lists every bad key with what is allowed; validate() then fills in the schema's defaults.
check_schema(config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml")
validate(config, schema="../schemas/config.schema.yaml")
check_consistency(config)

MODELS = ["baseline", "hybrid"]
SHARDS = list(range(config["quantum"]["shards"]))
RAW_MNIST = {name: f"results/raw/mnist/{name}" for name in MNIST_FILES}
EXPERIMENT_RUNS = variants.all_runs(
    config["experiments"]["seeds"],
    config["experiments"]["shots"],
    config["quantum"]["shots"],
)


wildcard_constraints:
    split="|".join(SPLITS),
    model="|".join(MODELS),
    shard=r"\d+",
    seed=r"\d+",
    variant=variants.PATTERN,


def classifier_features(wildcards):
    """The hybrid trains on the quantum counts, the baseline on the 64-d autoencoder latents."""
    if wildcards.model == "hybrid":
        return {split: f"results/quantum/{split}.npz" for split in SPLITS}
    return {split: f"results/autoencoder/latents_{split}.npz" for split in SPLITS}


def quantum_shards(wildcards):
    return expand(
        "results/quantum/shards/{split}_{shard}.npz",
        split=wildcards.split,
        shard=SHARDS,
    )


def section(name, *leave_out):
    """A config section as rule params, less the keys the job does not read (threads are a resource, not a
    parameter: a different thread count must not rerun a job)."""
    return {k: v for k, v in config[name].items() if k not in ("threads", *leave_out)}


def variant_settings(wildcards):
    """Only the config values this variant's features read, so a change elsewhere does not rerun it."""
    return variants.Variant.parse(wildcards.variant).settings(
        shots=config["quantum"]["shots"],
        noise_backend=config["experiments"]["noise_backend"],
        random_seed=config["experiments"]["random_features_seed"],
        n_qubits=config["quantum"]["n_qubits"],
    )


def experiment_runs():
    """Every (variant, seed) run the experiments need, each trained once."""
    return [
        f"results/experiments/runs/{variant}/seed_{seed}.json"
        for variant, seed in EXPERIMENT_RUNS
    ]


def final_outputs():
    return [
        "results/replication.csv",
        "results/replication.md",
        "results/figures/autoencoder_reconstruction.png",
        "results/figures/quantum_circuit.png",
        "results/figures/training_curves.png",
        "results/figures/paper_vs_measured.png",
        *expand(
            "results/figures/confusion_{model}_{split}.png",
            model=MODELS,
            split=["val", "test"],
        ),
        *expand("results/quantum/{split}.npz", split=SPLITS),
    ]
