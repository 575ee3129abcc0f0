# Beyond the paper (not in `rule all`): `snakemake --cores N experiments` or `make experiments`.


rule experiment_features:
    input:
        latents=expand(
            "results/{{dataset}}/autoencoder/latents_{split}.npz", split=SPLITS
        ),
        inputs=expand("results/{{dataset}}/quantum/inputs_{split}.npz", split=SPLITS),
    output:
        expand(
            "results/{{dataset}}/experiments/features/{{variant}}/{split}.npz",
            split=SPLITS,
        ),
    log:
        "results/{dataset}/logs/experiments/experiment_features_{variant}.log",
    benchmark:
        "results/{dataset}/benchmarks/experiments/experiment_features_{variant}.tsv"
    conda:
        "../../envs/qiskit.yaml"
    threads: config["experiments"]["threads"]
    resources:
        **scheduled("experiment_features"),
    params:
        settings=variant_settings,
    script:
        "../scripts/experiment_features.py"


rule experiment_run:
    input:
        expand(
            "results/{{dataset}}/experiments/features/{{variant}}/{split}.npz",
            split=SPLITS,
        ),
    output:
        "results/{dataset}/experiments/runs/{variant}/seed_{seed}.json",
    log:
        "results/{dataset}/logs/experiments/experiment_run_{variant}_{seed}.log",
    benchmark:
        "results/{dataset}/benchmarks/experiments/experiment_run_{variant}_{seed}.tsv"
    conda:
        "../../envs/tensorflow.yaml"
    threads: config["classifier"]["threads"]
    resources:
        **scheduled("experiment_run"),
    params:
        # the run's seed is its wildcard, so the classifier section's own seed is left out
        **section("classifier", "seed"),
        val_fraction=config["preprocess"]["val_fraction"],
    script:
        "../scripts/experiment_run.py"


rule experiment_tables:
    input:
        runs=experiment_runs,
        autoencoder="results/{dataset}/metrics/autoencoder.json",
        baseline="results/{dataset}/metrics/baseline.json",
        hybrid="results/{dataset}/metrics/hybrid.json",
    output:
        **{
            name: report(
                f"results/{{dataset}}/experiments/{name}.csv",
                caption=f"../report/experiments_{name}.rst",
                category="{dataset}",
                subcategory="Experiments",
                labels={"experiment": name, "kind": "table"},
            )
            for name in ("seeds_summary", "shots", "noise", "controls")
        },
        **{
            f"figure_{name}": report(
                f"results/{{dataset}}/figures/experiments_{name}.png",
                caption=f"../report/experiments_{name}.rst",
                category="{dataset}",
                subcategory="Experiments",
                labels={"experiment": name, "kind": "figure"},
            )
            for name in ("seeds", "shots", "controls")
        },
        seeds="results/{dataset}/experiments/seeds.csv",
        replication=report(
            "results/{dataset}/experiments/replication.csv",
            caption="../report/experiments_replication.rst",
            category="{dataset}",
            subcategory="Paper vs measured",
            labels={"result": "table, over seeds (experiments)"},
        ),
        replication_md="results/{dataset}/experiments/replication.md",
    log:
        "results/{dataset}/logs/experiments/experiment_tables.log",
    benchmark:
        "results/{dataset}/benchmarks/experiments/experiment_tables.tsv"
    conda:
        "../../envs/plotting.yaml"
    resources:
        **scheduled("experiment_tables"),
    params:
        runs=EXPERIMENT_RUNS,
        seeds=config["experiments"]["seeds"],
        shots_list=config["experiments"]["shots"],
        shots=config["quantum"]["shots"],
        alpha=config["verdicts"]["alpha"],
        accuracy_tolerance_pp=config["report"]["accuracy_tolerance_pp"],
        mse_tolerance=config["report"]["mse_tolerance"],
        latent_dim=config["autoencoder"]["latent_dim"],
        n_qubits=config["quantum"]["n_qubits"],
        dataset_title=dataset_title,
    script:
        "../scripts/experiment_tables.py"


rule experiments:
    default_target: False
    input:
        experiment_outputs(config["dataset"]),


# Whole-pipeline seeds: the autoencoder, the circuit's shot seed and both classifiers trained again per seed
# (`experiments.pipeline_seeds`; the data split and augmentation stay the main pipeline's), so that the interval
# over seeds covers what a rerun can show, and hybrid vs baseline is compared per seed on the same test images.
# The rules are the main pipeline's, their files under results/<dataset>/experiments/pipeline/seed_<seed>/.


use rule train_autoencoder as pipeline_autoencoder with:
    output:
        weights="results/{dataset}/experiments/pipeline/seed_{seed}/autoencoder/autoencoder.weights.h5",
        history="results/{dataset}/experiments/pipeline/seed_{seed}/autoencoder/history.csv",
        metrics="results/{dataset}/experiments/pipeline/seed_{seed}/metrics/autoencoder.json",
        examples="results/{dataset}/experiments/pipeline/seed_{seed}/autoencoder/reconstruction_examples.npz",
    log:
        "results/{dataset}/logs/experiments/pipeline_autoencoder_{seed}.log",
    benchmark:
        "results/{dataset}/benchmarks/experiments/pipeline_autoencoder_{seed}.tsv"
    params:
        **section("autoencoder", "seed"),
        seed=pipeline_seed,
        n_examples=config["report"]["reconstruction_examples"],


use rule encode_latents as pipeline_latents with:
    input:
        weights="results/{dataset}/experiments/pipeline/seed_{seed}/autoencoder/autoencoder.weights.h5",
        train="results/{dataset}/data/train.npz",
        val="results/{dataset}/data/val.npz",
        test="results/{dataset}/data/test.npz",
    output:
        **{
            split: f"results/{{dataset}}/experiments/pipeline/seed_{{seed}}/autoencoder/latents_{split}.npz"
            for split in SPLITS
        },
    log:
        "results/{dataset}/logs/experiments/pipeline_latents_{seed}.log",
    benchmark:
        "results/{dataset}/benchmarks/experiments/pipeline_latents_{seed}.tsv"


use rule quantum_inputs as pipeline_inputs with:
    input:
        **{
            split: f"results/{{dataset}}/experiments/pipeline/seed_{{seed}}/autoencoder/latents_{split}.npz"
            for split in SPLITS
        },
    output:
        **{
            split: f"results/{{dataset}}/experiments/pipeline/seed_{{seed}}/quantum/inputs_{split}.npz"
            for split in SPLITS
        },
        reduction="results/{dataset}/experiments/pipeline/seed_{seed}/quantum/reduction.npz",
    log:
        "results/{dataset}/logs/experiments/pipeline_inputs_{seed}.log",
    benchmark:
        "results/{dataset}/benchmarks/experiments/pipeline_inputs_{seed}.tsv"


use rule quantum_features as pipeline_features with:
    input:
        "results/{dataset}/experiments/pipeline/seed_{seed}/quantum/inputs_{split}.npz",
    output:
        "results/{dataset}/experiments/pipeline/seed_{seed}/quantum/shards/{split}_{shard}.npz",
    log:
        "results/{dataset}/logs/experiments/pipeline_features_{seed}_{split}_{shard}.log",
    benchmark:
        "results/{dataset}/benchmarks/experiments/pipeline_features_{seed}_{split}_{shard}.tsv"
    params:
        shots=config["quantum"]["shots"],
        shards=config["quantum"]["shards"],
        chunk_size=config["quantum"]["chunk_size"],
        seed=pipeline_seed,


use rule gather_quantum as pipeline_gather with:
    input:
        pipeline_shards,
    output:
        "results/{dataset}/experiments/pipeline/seed_{seed}/quantum/{split}.npz",
    log:
        "results/{dataset}/logs/experiments/pipeline_gather_{seed}_{split}.log",
    benchmark:
        "results/{dataset}/benchmarks/experiments/pipeline_gather_{seed}_{split}.tsv"


use rule train_classifier as pipeline_classifier with:
    input:
        unpack(pipeline_classifier_features),
    output:
        weights="results/{dataset}/experiments/pipeline/seed_{seed}/classifier/{model}.weights.h5",
        history="results/{dataset}/experiments/pipeline/seed_{seed}/classifier/{model}_history.csv",
        predictions="results/{dataset}/experiments/pipeline/seed_{seed}/classifier/{model}_predictions.npz",
        metrics="results/{dataset}/experiments/pipeline/seed_{seed}/metrics/{model}.json",
    log:
        "results/{dataset}/logs/experiments/pipeline_classifier_{seed}_{model}.log",
    benchmark:
        "results/{dataset}/benchmarks/experiments/pipeline_classifier_{seed}_{model}.tsv"
    params:
        **section("classifier", "seed"),
        seed=pipeline_seed,


rule pipeline_table:
    input:
        unpack(pipeline_runs),
    output:
        seeds="results/{dataset}/experiments/pipeline_seeds.csv",
        comparison=report(
            "results/{dataset}/experiments/pipeline_comparison.csv",
            caption="../report/experiments_pipeline.rst",
            category="{dataset}",
            subcategory="Experiments",
            labels={"experiment": "whole pipeline over seeds", "kind": "table"},
        ),
        md="results/{dataset}/experiments/pipeline.md",
    log:
        "results/{dataset}/logs/experiments/pipeline_table.log",
    benchmark:
        "results/{dataset}/benchmarks/experiments/pipeline_table.tsv"
    conda:
        "../../envs/plotting.yaml"
    resources:
        **scheduled("experiment_tables"),
    params:
        seeds=config["experiments"]["pipeline_seeds"],
        primary_test=config["experiments"]["pipeline_test"],
        alpha=config["verdicts"]["alpha"],
        dataset_title=dataset_title,
    script:
        "../scripts/pipeline_table.py"
