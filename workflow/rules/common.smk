import json
import os
import sys
from pathlib import Path

import yaml
from snakemake.utils import validate

# This workflow's own files are found from this file's location, never from the working directory or
# workflow.basedir: imported as a module (docs/module.md), both are the caller's.
WORKFLOW_DIR = Path(str(workflow.current_basedir)).parent
REPOSITORY = WORKFLOW_DIR.parent

# The logic lives in the package beside the scripts (workflow/scripts/qtlmnist). Snakemake puts a script's
# folder on its sys.path, so scripts import it in the venv, in --sdm conda envs and on cluster nodes alike;
# the Snakefile itself needs the same path for the config checks.
sys.path.insert(0, str(WORKFLOW_DIR / "scripts"))

from qtlmnist import provenance, readings, resources, study, variants
from qtlmnist import systems as system_registry
from qtlmnist.config import ConfigError, check_consistency, check_schema, with_defaults
from qtlmnist.data import DATASETS, SPLITS

# config/config.yaml beside this workflow holds every default. The config this workflow is given (--configfile
# and --config, or a module's `config:`, which makes Snakemake skip a module's own `configfile:`) is merged
# over it key by key, so a caller states only what it changes; filled in place, as validate() fills defaults.
config.update(
    with_defaults(
        config, yaml.safe_load((REPOSITORY / "config/config.yaml").read_text())
    )
)
# Our check lists every bad key with what is allowed; validate() then fills in the schema's defaults.
check_schema(config, WORKFLOW_DIR / "schemas/config.schema.yaml")
validate(config, schema="../schemas/config.schema.yaml")
check_consistency(config)
# The study's section (qtlmnist.study): empty grids, unknown keys, unequal budgets, too many folds.
_study_problems = study.errors(
    config, yaml.safe_load((WORKFLOW_DIR / "schemas/config.schema.yaml").read_text())
)
if _study_problems:
    raise ConfigError("invalid configuration:\n  " + "\n  ".join(_study_problems))

# Jobs inherit the environment: the provenance rules read from it which command started this run (as a param it
# would rerun them whenever the command is spelled differently). setdefault: a job that parses the Snakefile
# again (on a cluster node) keeps the values of the process that started the run.
for _name, _value in provenance.invocation().items():
    os.environ.setdefault(_name, _value)

MODELS = ["baseline", "hybrid"]
# Snakemake runs the ready job of highest priority first, not the one on the longest path. The data, autoencoder
# and circuit-feature chain of each dataset gates most models (004 and the study read Fashion-MNIST's latents),
# so it goes first: otherwise it waited behind the other systems' jobs and its readers ran last, one core idle.
UPSTREAM_PRIORITY = 10
# The findings pages, whose questions the report's landing page links to (qtlmnist.report.page_questions):
# this workflow's own, also when another workflow imports it as a module.
DOCS_PAGES = sorted(path.as_posix() for path in (REPOSITORY / "docs").glob("*.md"))
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
    a job that outgrows them; local runs ignore them): measured costs scaled by the config, qtlmnist.resources,
    times the job's attempt (a job killed on a cluster is retried once with twice as much).
    """
    return resources.by_attempt(resources.declared(rule, config))


def scheduled_per_seed(rule):
    """As `scheduled`, for system_run, whose job runs every seed of a setting as one group: the measured cost of
    its (system, model) scaled by its seeds and images x epochs (qtlmnist.resources.system_run_declared), times
    the attempt."""
    return resources.per_job(system_run_declared)


def system_run_declared(wildcards):
    return resources.system_run_declared(
        wildcards.system, system_values(wildcards), len(system_seeds(wildcards))
    )


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
        f"results/{dataset}/provenance.json",
    ]


def replication_metrics(wildcards):
    """The metrics the paper-vs-measured table reads; with quantum.executor ibm_runtime, the device's too."""
    files = {
        name: f"results/{wildcards.dataset}/metrics/{name}.json"
        for name in ("autoencoder", "baseline", "hybrid")
    }
    if config["quantum"]["executor"] == "ibm_runtime":
        files["hybrid_hardware"] = (
            f"results/{wildcards.dataset}/metrics/hybrid_hardware.json"
        )
    return files


def hardware_settings(wildcards):
    """What the device run reads of quantum.ibm_runtime: `confirm` is checked at start, and the ledger's
    folder is a place, not a result (the script reads it from the config: moving it must not rerun the job).
    """
    return {
        key: value
        for key, value in config["quantum"]["ibm_runtime"].items()
        if key not in ("confirm", "ledger_dir")
    }


def landing_page():
    """The page `snakemake --report` opens on: the configured dataset's generated landing (headline table and
    settings) once the default target has written it, else a static page that says how to make it.
    """
    # Absolute, since `report:` reads a relative path from workflow/, and results/ is the caller's.
    generated = Path.cwd() / f"results/{config['dataset']}/report_landing.rst"
    return (
        str(generated)
        if generated.exists()
        else str(WORKFLOW_DIR / "report/workflow.rst")
    )


def pipeline_seed(wildcards):
    """A whole-pipeline seed (experiments.pipeline_seeds) is the seed of every stage it trains again."""
    return int(wildcards.seed)


def pipeline_shards(wildcards):
    return expand(
        "results/{dataset}/experiments/pipeline/seed_{seed}/quantum/shards/{split}_{shard}.npz",
        dataset=wildcards.dataset,
        seed=wildcards.seed,
        split=wildcards.split,
        shard=SHARDS,
    )


def pipeline_classifier_features(wildcards):
    """As classifier_features, within one whole-pipeline seed's folder."""
    base = f"results/{wildcards.dataset}/experiments/pipeline/seed_{wildcards.seed}"
    if wildcards.model == "hybrid":
        return {split: f"{base}/quantum/{split}.npz" for split in SPLITS}
    return {split: f"{base}/autoencoder/latents_{split}.npz" for split in SPLITS}


def pipeline_runs(wildcards):
    """Each whole-pipeline seed's metrics and per-image predictions of both models."""
    base = f"results/{wildcards.dataset}/experiments/pipeline"
    seeds = config["experiments"]["pipeline_seeds"]
    return {
        f"{kind}_{model}": [
            f"{base}/seed_{seed}/{folder}/{model}{suffix}" for seed in seeds
        ]
        for model in MODELS
        for kind, folder, suffix in (
            ("metrics", "metrics", ".json"),
            ("predictions", "classifier", "_predictions.npz"),
        )
    }


def experiment_outputs(dataset):
    return [
        f"results/{dataset}/experiments/replication.md",
        f"results/{dataset}/experiments/pipeline.md",
        f"results/{dataset}/figures/experiments_controls.png",
        f"results/{dataset}/experiments/provenance.json",
    ]


# --- trainable systems (workflow/rules/systems.smk) ---


def system_inputs(wildcards):
    """The files a setting's runs read (its registry entry's inputs for the setting's model), by name."""
    return system_registry.run_inputs(config, wildcards.system, wildcards.setting)


def system_values(wildcards):
    """Exactly the values one run reads: its system's keys, its setting's overrides, and the shot count."""
    return system_registry.setting_values(config, wildcards.system, wildcards.setting)


def system_seeds(wildcards):
    """The setting's seeds: one group, so a changed list reruns the setting's job (every seed in it)."""
    return system_registry.setting_seeds(config, wildcards.system, wildcards.setting)


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
    """The setting folders (every seed's metrics and history) of one system."""
    return {
        "runs": [
            f"results/systems/{wildcards.system}/{setting}"
            for setting in dict.fromkeys(s for s, _ in system_setting_runs(wildcards))
        ]
    }


def all_system_metrics(wildcards):
    """Every setting folder of every system that runs."""
    return [
        f"results/systems/{system}/{setting}"
        for system, setting in dict.fromkeys((s, t) for s, t, _ in SYSTEM_RUNS)
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
        "results/systems/provenance.json",
    ]


# --- the study (workflow/rules/study.smk, qtlmnist.study) ---

# (system, candidate) of every model the study tunes, in config order
STUDY_MODELS = [
    (system, candidate)
    for system in config["study"]["run"]
    for candidate in study.models(config, system)
]


wildcard_constraints:
    candidate="|".join(study.VARIANTS),
    configuration=study.CONFIGURATION_PATTERN,
    size=r"\d+",


def study_inputs(wildcards):
    """The files the candidate's runs read (its system's inputs for its model: quantum or control)."""
    entry = system_registry.get(wildcards.system)
    model = study.VARIANTS[wildcards.candidate][0]["model"]
    return dict(entry.model_inputs.get(model, entry.inputs))


def study_chosen_inputs(wildcards):
    """The system's inputs and the chosen configuration of the search."""
    return study_inputs(wildcards) | {
        "chosen": f"results/study/{wildcards.system}/{wildcards.candidate}/chosen.json"
    }


def study_values(wildcards):
    """Exactly the values one configuration's runs read."""
    return study.configuration_values(
        config, wildcards.system, wildcards.candidate, wildcards.configuration
    )


def study_model_values(wildcards):
    """The candidate's values before its chosen configuration (read from chosen.json) goes over them."""
    return study.configuration_values(config, wildcards.system, wildcards.candidate)


def study_points(wildcards):
    """Each configuration's grid values, by name."""
    names = study.configurations(config, wildcards.system, wildcards.candidate)
    return dict(zip(names, study.grid(config, wildcards.system, wildcards.candidate)))


def study_fold_seeds(wildcards):
    return study.fold_seeds(config)


def study_final_seeds(wildcards):
    return study.final_seeds(config)


def study_scheduled(rule):
    """As `scheduled_per_seed`, for the study's training jobs (each a group of folds or seeds): the measured cost
    of `rule` (system_run) for the job's (system, model), scaled by its members and images x epochs. Which job
    it is follows from its wildcards: a configuration (search), a size (learning curve), or neither (final).
    """

    def declare(wildcards):
        kind = (
            "study_cv"
            if "configuration" in wildcards.keys()
            else "study_curve" if "size" in wildcards.keys() else "study_final"
        )
        planned = study.job(
            config,
            kind,
            wildcards.system,
            wildcards.candidate,
            wildcards.get("configuration"),
            wildcards.get("size"),
        )
        return resources.system_run_declared(
            planned.system, planned.values, planned.members
        )

    return resources.per_job(declare)


def study_cv_files(wildcards):
    return expand(
        "results/study/{system}/{candidate}/cv/{configuration}.csv",
        system=wildcards.system,
        candidate=wildcards.candidate,
        configuration=study.configurations(
            config, wildcards.system, wildcards.candidate
        ),
    )


def study_curve_files(wildcards):
    return [
        f"results/study/{wildcards.system}/{candidate}/curve_{size}.csv"
        for candidate in study.curve_models(config, wildcards.system)
        for size in config["study"]["curve_sizes"]
    ]


def study_table_inputs(wildcards):
    folders = [
        f"results/study/{system}/{candidate}" for system, candidate in STUDY_MODELS
    ]
    return {
        "finals": [f"{folder}/final" for folder in folders],
        "chosen": [f"{folder}/chosen.json" for folder in folders],
        "search": [f"{folder}/search.csv" for folder in folders],
    }


def study_compared(wildcards):
    return {
        system: study.comparisons(config, system) for system in config["study"]["run"]
    }


def study_outputs():
    """What `snakemake study` makes: the tables and, per system with learning curves, its figure."""
    return [
        "results/study/summary.csv",
        "results/study/study.md",
        *(
            f"results/study/figures/{system}_learning_curves.png"
            for system in config["study"]["run"]
            if study.curve_models(config, system)
        ),
        "results/study/provenance.json",
    ]


def study_provenance_inputs(wildcards):
    """The study's tables and figures, and every configuration's fold scores."""
    return vouched(study_outputs()) + [
        f"results/study/{name}.csv"
        for name in ("comparisons", "comparisons_per_seed", "search")
    ]


# --- provenance (workflow/rules/provenance.smk) ---


def vouched(outputs):
    """A target's outputs less its provenance file: what the provenance vouches for."""
    return [path for path in outputs if not path.endswith("provenance.json")]


def replication_provenance_inputs(wildcards):
    """What the default target makes for the dataset, plus the metrics its tables are read from; not the report's
    landing page, which lists the docs pages' questions: editing a page must not rewrite the provenance.
    """
    outputs = vouched(replication_outputs(wildcards.dataset))
    return [
        path for path in outputs if not path.endswith("report_landing.rst")
    ] + expand(
        "results/{dataset}/metrics/{name}.json",
        dataset=wildcards.dataset,
        name=["autoencoder", *MODELS],
    )


def experiments_provenance_inputs(wildcards):
    """Every table and figure of the experiments target for the dataset."""
    base = f"results/{wildcards.dataset}"
    return vouched(experiment_outputs(wildcards.dataset)) + [
        *expand(
            "{base}/experiments/{name}.csv",
            base=base,
            name=[
                "seeds",
                "seeds_summary",
                "shots",
                "noise",
                "controls",
                "replication",
            ],
        ),
        *expand(
            "{base}/figures/experiments_{name}.png", base=base, name=["seeds", "shots"]
        ),
    ]


def systems_provenance_inputs(wildcards):
    """The claims table, every run's row and each system's figures."""
    return vouched(systems_outputs()) + ["results/systems/runs.csv"]


# --- readings (workflow/rules/readings.smk) ---


def readings_latents(dataset, augment):
    """The 64-d latents of every split that reading's augmentation gives: the main autoencoder's (on), or the one
    trained on the un-augmented images (off, rule readings_autoencoder)."""
    folder = "autoencoder" if augment == "on" else "readings/augment_off/autoencoder"
    return [f"results/{dataset}/{folder}/latents_{split}.npz" for split in SPLITS]


def bottleneck_latents(wildcards):
    return readings_latents(wildcards.dataset, wildcards.augment)


def reading_latents(wildcards):
    """What a reading's features reduce: the latents of its augmentation, or for reduction `bottleneck` the codes of
    the autoencoder trained on them (rule readings_bottleneck)."""
    row = readings.reading(config, variants.Variant.parse(wildcards.variant).index)
    if row["reduction"] == "bottleneck":
        return expand(
            "results/{dataset}/readings/augment_{augment}/bottleneck/codes_{split}.npz",
            dataset=wildcards.dataset,
            augment=row["augment"],
            split=SPLITS,
        )
    return readings_latents(wildcards.dataset, row["augment"])


def reading_units(wildcards):
    """The dense widths a reading's runs train (its `width`; its control's too)."""
    return variants.Variant.parse(wildcards.variant).classifier(config)["units"]


def reading_normalize(wildcards):
    """Whether a reading's runs keep the classifier's Normalization layer (its `input`)."""
    return variants.Variant.parse(wildcards.variant).classifier(config)["normalize"]


def reading_run_paths(dataset, runs):
    return [
        f"results/{dataset}/readings/runs/{variant}/seed_{seed}.json"
        for variant, seed in dict.fromkeys(runs)
    ]


def readings_design(wildcards):
    """The readings, in order (built when a job needs them, not at every parse)."""
    return readings.design(config)


def readings_first_runs(wildcards):
    """Every reading's hybrid at the first seed: what the best readings are chosen from."""
    return reading_run_paths(wildcards.dataset, readings.first_runs(config))


def readings_table_inputs(wildcards):
    """Every run the readings' tables read: each reading and its control at the first seed, and the best readings
    on validation (checkpoint readings_select) at every seed; and the main pipeline's metrics.
    """
    selected = checkpoints.readings_select.get(dataset=wildcards.dataset).output[0]
    best = json.loads(Path(selected).read_text())["best"]
    runs = (
        readings.first_runs(config)
        + readings.control_runs(config)
        + readings.interval_runs(config, best)
    )
    return {
        "runs": reading_run_paths(wildcards.dataset, runs),
        "selected": selected,
        **{
            name: f"results/{wildcards.dataset}/metrics/{name}.json"
            for name in ("autoencoder", "baseline", "hybrid")
        },
    }


def readings_outputs(dataset):
    """What `snakemake readings` makes for one dataset."""
    return [
        f"results/{dataset}/readings/summary.md",
        f"results/{dataset}/readings/replication.md",
        f"results/{dataset}/figures/readings_accuracy.png",
        f"results/{dataset}/readings/provenance.json",
    ]


def readings_provenance_inputs(wildcards):
    """Every table and figure of the readings target for the dataset."""
    base = f"results/{wildcards.dataset}/readings"
    return vouched(readings_outputs(wildcards.dataset)) + [
        f"{base}/{name}"
        for name in (
            "readings.csv",
            "intervals.csv",
            "main_effects.csv",
            "fit.json",
            "claims.csv",
            "replication.csv",
            "selected.json",
        )
    ]


onstart:
    # Under --executor slurm, stop before the first submission if a job asks for more than its partition
    # allows (tools/slurm_preflight.py); under any other executor this does nothing.
    sys.path.insert(0, str(REPOSITORY))
    from tools.slurm_preflight import check_workflow

    check_workflow(workflow)
    # the study's planned jobs and their estimated time, before the first of them starts
    if any(
        job.rule.name.startswith("study_") for job in workflow.dag.needrun_jobs()
    ):
        print(
            study.estimate(config, workflow.resource_settings.cores or 1),
            file=sys.stderr,
        )
