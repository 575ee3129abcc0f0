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
