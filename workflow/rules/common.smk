import sys
from pathlib import Path

from snakemake.utils import validate

# The logic lives in the package beside the scripts (workflow/scripts/qtlmnist). Snakemake puts a script's
# folder on its sys.path, so scripts import it in the venv, in --sdm conda envs and on cluster nodes alike;
# the Snakefile itself needs the same path for the config checks.
sys.path.insert(0, str(Path(workflow.basedir) / "workflow" / "scripts"))

from qtlmnist import resources, variants
from qtlmnist import systems as system_registry
from qtlmnist.config import check_consistency, check_schema, with_shipped_systems
from qtlmnist.data import DATASETS, SPLITS

# The systems' values are written once, in config/config.yaml: a caller that skipped it gets them from there.
with_shipped_systems(config, Path(workflow.basedir) / "config/config.yaml")
# Our check lists every bad key with what is allowed; validate() then fills in the schema's defaults.
check_schema(config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml")
validate(config, schema="../schemas/config.schema.yaml")
check_consistency(config)

MODELS = ["baseline", "hybrid"]
SHARDS = list(range(config["quantum"]["shards"]))
# Both datasets ship the same four idx file names (tested), so one pattern with {dataset} serves both.
RAW_FILES = {
    name: f"results/{{dataset}}/raw/{name}" for name in DATASETS["mnist"].files
}
SYSTEM_RUNS = system_registry.runs(config)
EXPERIMENT_RUNS = variants.all_runs(
    config["experiments"]["seeds"],
    config["experiments"]["shots"],
    config["quantum"]["shots"],
)


wildcard_constraints:
    dataset="|".join(DATASETS),
    split="|".join(SPLITS),
    model="|".join(MODELS),
    shard=r"\d+",
    seed=r"\d+",
    variant=variants.PATTERN,
    system="|".join(system_registry.SYSTEMS),
    setting=system_registry.SETTING_PATTERN,


def classifier_features(wildcards):
    """The hybrid trains on the quantum counts, the baseline on the autoencoder latents."""
    if wildcards.model == "hybrid":
        return {
            split: f"results/{wildcards.dataset}/quantum/{split}.npz"
            for split in SPLITS
        }
    return {
        split: f"results/{wildcards.dataset}/autoencoder/latents_{split}.npz"
        for split in SPLITS
    }


def quantum_shards(wildcards):
    return expand(
        "results/{dataset}/quantum/shards/{split}_{shard}.npz",
        dataset=wildcards.dataset,
        split=wildcards.split,
        shard=SHARDS,
    )


def scheduled(rule):
    """mem_mb and runtime (minutes) a scheduler should grant the rule's jobs under this config (a cluster kills
    a job that outgrows them; local runs ignore them): measured costs scaled by the config, qtlmnist.resources.
    """
    return resources.declared(rule, config)


def section(name, *leave_out):
    """A config section as rule params, less the keys the job does not read (threads are a resource, not a
    parameter: a different thread count must not rerun a job)."""
    return {k: v for k, v in config[name].items() if k not in ("threads", *leave_out)}


def data_sources(wildcards):
    """Where fetch_data looks for this dataset (data.<dataset>), and its download timeout."""
    return config["data"][wildcards.dataset] | {
        "timeout": config["data"]["download_timeout_s"]
    }


def augment_settings(wildcards):
    """This dataset's augmentation (augment.<dataset>): a change to the other dataset's must not rerun it."""
    return config["augment"][wildcards.dataset]


def class_names(wildcards):
    return list(DATASETS[wildcards.dataset].class_names)


def dataset_title(wildcards):
    return DATASETS[wildcards.dataset].title


def variant_settings(wildcards):
    """Only the config values this variant's features read, so a change elsewhere does not rerun it."""
    return variants.Variant.parse(wildcards.variant).settings(config)


def experiment_runs(wildcards):
    """Every (variant, seed) run the experiments need, each trained once."""
    return [
        f"results/{wildcards.dataset}/experiments/runs/{variant}/seed_{seed}.json"
        for variant, seed in EXPERIMENT_RUNS
    ]


def replication_outputs(dataset):
    """What the default target makes for one dataset: the paper-vs-measured table, figures, circuit counts."""
    return [
        f"results/{dataset}/replication.csv",
        f"results/{dataset}/replication.md",
        f"results/{dataset}/figures/autoencoder_reconstruction.png",
        f"results/{dataset}/figures/training_curves.png",
        f"results/{dataset}/figures/paper_vs_measured.png",
        *expand(
            "results/{dataset}/figures/confusion_{model}_{split}.png",
            dataset=dataset,
            model=MODELS,
            split=["val", "test"],
        ),
        *expand("results/{dataset}/quantum/{split}.npz", dataset=dataset, split=SPLITS),
        "results/figures/quantum_circuit.png",
        f"results/{dataset}/report_landing.rst",
    ]


def landing_page():
    """The page `snakemake --report` opens on: the configured dataset's generated landing (headline table and
    settings) once the default target has written it, else a static page that says how to make it.
    """
    generated = Path(f"results/{config['dataset']}/report_landing.rst")
    return str(generated) if generated.exists() else "workflow/report/workflow.rst"


def experiment_outputs(dataset):
    return [
        f"results/{dataset}/experiments/replication.md",
        f"results/{dataset}/figures/experiments_controls.png",
    ]


# --- trainable systems (workflow/rules/systems.smk) ---


def system_inputs(wildcards):
    """The files a setting's runs read (its registry entry's inputs for the setting's model), by name."""
    return system_registry.run_inputs(config, wildcards.system, wildcards.setting)


def system_values(wildcards):
    """Exactly the values one run reads: its system's keys, its setting's overrides, and the shot count."""
    return system_registry.setting_values(config, wildcards.system, wildcards.setting)


def system_circuit_values(wildcards):
    """What a system's circuit drawing reads: its section's keys (the circuit may depend on them)."""
    return system_registry.hyperparameters(config["systems"][wildcards.system])


def system_setting_runs(wildcards):
    """(setting, seed) of every run of one system, in config order."""
    return [
        (setting, seed)
        for system, setting, seed in SYSTEM_RUNS
        if system == wildcards.system
    ]


def system_run_files(wildcards):
    """Metrics and histories of every run of one system."""
    runs = system_setting_runs(wildcards)
    base = f"results/systems/{wildcards.system}"
    return {
        "metrics": [f"{base}/{setting}/seed_{seed}.json" for setting, seed in runs],
        "histories": [
            f"{base}/{setting}/seed_{seed}_history.csv" for setting, seed in runs
        ],
    }


def all_system_metrics(wildcards):
    return [
        f"results/systems/{system}/{setting}/seed_{seed}.json"
        for system, setting, seed in SYSTEM_RUNS
    ]


def systems_outputs():
    """What `snakemake systems` makes: the claims table and each system's figures and circuit."""
    return [
        "results/systems/claims.csv",
        "results/systems/claims.md",
        *expand(
            "results/systems/figures/{system}_{figure}.png",
            system=config["systems"]["run"],
            figure=["learning_curves", "confusion", "circuit"],
        ),
    ]


onstart:
    # Under --executor slurm, stop before the first submission if a job asks for more than its partition
    # allows (tools/slurm_preflight.py); under any other executor this does nothing.
    sys.path.insert(0, workflow.basedir)
    from tools.slurm_preflight import check_workflow

    check_workflow(workflow)
