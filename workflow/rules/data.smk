rule fetch_data:
    output:
        **RAW_FILES,
    log:
        "results/{dataset}/logs/data/fetch_data.log",
    benchmark:
        "results/{dataset}/benchmarks/data/fetch_data.tsv"
    priority: UPSTREAM_PRIORITY
    # Downloads: on a cluster it runs where the workflow was started, since compute nodes often have no internet.
    localrule: True
    conda:
        "../../envs/data.yaml"
    resources:
        **scheduled("fetch_data"),
    params:
        sources=data_sources,
    script:
        "../scripts/fetch_data.py"


rule preprocess:
    input:
        **RAW_FILES,
    output:
        train="results/{dataset}/data/train.npz",
        val="results/{dataset}/data/val.npz",
        test="results/{dataset}/data/test.npz",
    log:
        "results/{dataset}/logs/data/preprocess.log",
    benchmark:
        "results/{dataset}/benchmarks/data/preprocess.tsv"
    priority: UPSTREAM_PRIORITY
    conda:
        "../../envs/data.yaml"
    resources:
        **scheduled("preprocess"),
    params:
        **config["preprocess"],
    script:
        "../scripts/preprocess.py"


rule augment:
    input:
        "results/{dataset}/data/train.npz",
    output:
        "results/{dataset}/data/train_augmented.npz",
    log:
        "results/{dataset}/logs/data/augment.log",
    benchmark:
        "results/{dataset}/benchmarks/data/augment.tsv"
    priority: UPSTREAM_PRIORITY
    conda:
        "../../envs/data.yaml"
    resources:
        **scheduled("augment"),
    params:
        settings=augment_settings,
    script:
        "../scripts/augment.py"
