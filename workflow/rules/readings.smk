# Beyond the paper (not in `rule all`): `snakemake --cores N readings` or `make readings`. Each choice the paper
# leaves open is a factor (config `readings`); a strength-2 covering array of readings runs, each reading its own
# feature job (variant reading{i}_seed{k}, qtlmnist.variants) and classifier run, next to a classical control on
# the same inputs (readinginputs{i}); the best on validation run again over seeds (docs/readings.md).


# Augmentation off: the autoencoder again, on the training images only (both inputs the un-augmented split).
use rule train_autoencoder as readings_autoencoder with:
    input:
        train="results/{dataset}/data/train.npz",
        train_original="results/{dataset}/data/train.npz",
        val="results/{dataset}/data/val.npz",
        test="results/{dataset}/data/test.npz",
    output:
        weights="results/{dataset}/readings/augment_off/autoencoder/autoencoder.weights.h5",
        history="results/{dataset}/readings/augment_off/autoencoder/history.csv",
        metrics="results/{dataset}/readings/augment_off/metrics/autoencoder.json",
        examples="results/{dataset}/readings/augment_off/autoencoder/reconstruction_examples.npz",
    log:
        "results/{dataset}/logs/readings/readings_autoencoder.log",
    benchmark:
        "results/{dataset}/benchmarks/readings/readings_autoencoder.tsv"


use rule encode_latents as readings_latents with:
    input:
        weights="results/{dataset}/readings/augment_off/autoencoder/autoencoder.weights.h5",
        train="results/{dataset}/data/train.npz",
        val="results/{dataset}/data/val.npz",
        test="results/{dataset}/data/test.npz",
    output:
        **{
            split: f"results/{{dataset}}/readings/augment_off/autoencoder/latents_{split}.npz"
            for split in SPLITS
        },
    log:
        "results/{dataset}/logs/readings/readings_latents.log",
    benchmark:
        "results/{dataset}/benchmarks/readings/readings_latents.tsv"


# Reduction `bottleneck`: a 5-unit autoencoder on the 64 latents of one augmentation, its codes for every split.
rule readings_bottleneck:
    input:
        bottleneck_latents,
    output:
        codes=expand(
            "results/{{dataset}}/readings/augment_{{augment}}/bottleneck/codes_{split}.npz",
            split=SPLITS,
        ),
        history="results/{dataset}/readings/augment_{augment}/bottleneck/history.csv",
    log:
        "results/{dataset}/logs/readings/readings_bottleneck_{augment}.log",
    benchmark:
        "results/{dataset}/benchmarks/readings/readings_bottleneck_{augment}.tsv"
    wildcard_constraints:
        augment="on|off",
    conda:
        "../../envs/tensorflow.yaml"
    threads: config["autoencoder"]["threads"]
    resources:
        # a few dense layers on the 64-d latents: an encode_latents' worth of work
        **scheduled("encode_latents"),
    params:
        **config["readings"]["bottleneck"],
        n_qubits=config["quantum"]["n_qubits"],
    script:
        "../scripts/readings_bottleneck.py"


# One reading's features (its circuit counts, or its control's inputs): the experiments' feature job on that
# reading's latents (variant settings: exactly the factors and config values it reads).
use rule experiment_features as reading_features with:
    input:
        latents=reading_latents,
        inputs=expand("results/{{dataset}}/quantum/inputs_{split}.npz", split=SPLITS),
    output:
        expand(
            "results/{{dataset}}/readings/features/{{variant}}/{split}.npz",
            split=SPLITS,
        ),
    log:
        "results/{dataset}/logs/readings/reading_features_{variant}.log",
    benchmark:
        "results/{dataset}/benchmarks/readings/reading_features_{variant}.tsv"


# The experiments' run with the reading's classifier: its widths and whether it keeps the Normalization layer.
use rule experiment_run as reading_run with:
    input:
        expand(
            "results/{{dataset}}/readings/features/{{variant}}/{split}.npz",
            split=SPLITS,
        ),
    output:
        "results/{dataset}/readings/runs/{variant}/seed_{seed}.json",
    log:
        "results/{dataset}/logs/readings/reading_run_{variant}_{seed}.log",
    benchmark:
        "results/{dataset}/benchmarks/readings/reading_run_{variant}_{seed}.tsv"
    params:
        **section("classifier", "seed", "units"),
        units=reading_units,
        normalize=reading_normalize,
        val_fraction=config["preprocess"]["val_fraction"],


# The best readings on VALIDATION accuracy at the first seed; which they are is known only after those runs, so
# the runs at the other seeds are planned after this job (a checkpoint).
checkpoint readings_select:
    input:
        readings_first_runs,
    output:
        "results/{dataset}/readings/selected.json",
    log:
        "results/{dataset}/logs/readings/readings_select.log",
    benchmark:
        "results/{dataset}/benchmarks/readings/readings_select.tsv"
    conda:
        "../../envs/plotting.yaml"
    resources:
        **scheduled("experiment_tables"),
    params:
        best=config["readings"]["best"],
    script:
        "../scripts/readings_select.py"


rule readings_table:
    input:
        unpack(readings_table_inputs),
    output:
        readings=report(
            "results/{dataset}/readings/readings.csv",
            caption="../report/readings.rst",
            category="{dataset}",
            subcategory="Readings",
            labels={"readings": "every reading", "kind": "table"},
        ),
        intervals="results/{dataset}/readings/intervals.csv",
        main_effects=report(
            "results/{dataset}/readings/main_effects.csv",
            caption="../report/readings_effects.rst",
            category="{dataset}",
            subcategory="Readings",
            labels={"readings": "main effects", "kind": "table"},
        ),
        fit="results/{dataset}/readings/fit.json",
        claims=report(
            "results/{dataset}/readings/claims.csv",
            caption="../report/readings_claims.rst",
            category="{dataset}",
            subcategory="Readings",
            labels={"readings": "each claim over the readings", "kind": "table"},
        ),
        replication="results/{dataset}/readings/replication.csv",
        replication_md="results/{dataset}/readings/replication.md",
        summary="results/{dataset}/readings/summary.md",
        figure=report(
            "results/{dataset}/figures/readings_accuracy.png",
            caption="../report/readings.rst",
            category="{dataset}",
            subcategory="Readings",
            labels={"readings": "accuracy of every reading", "kind": "figure"},
        ),
    log:
        "results/{dataset}/logs/readings/readings_table.log",
    benchmark:
        "results/{dataset}/benchmarks/readings/readings_table.tsv"
    conda:
        "../../envs/plotting.yaml"
    resources:
        **scheduled("experiment_tables"),
    params:
        design=readings_design,
        levels=readings.levels(config["readings"]),
        seeds=config["readings"]["seeds"],
        accuracy_tolerance_pp=config["report"]["accuracy_tolerance_pp"],
        mse_tolerance=config["report"]["mse_tolerance"],
        dataset_title=dataset_title,
    script:
        "../scripts/readings_table.py"


rule readings:
    default_target: False
    input:
        readings_outputs(config["dataset"]),
