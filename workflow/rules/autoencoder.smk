rule train_autoencoder:
    input:
        train="results/{dataset}/data/train_augmented.npz",
        train_original="results/{dataset}/data/train.npz",
        val="results/{dataset}/data/val.npz",
        test="results/{dataset}/data/test.npz",
    output:
        weights="results/{dataset}/autoencoder/autoencoder.weights.h5",
        history="results/{dataset}/autoencoder/history.csv",
        metrics="results/{dataset}/metrics/autoencoder.json",
        examples="results/{dataset}/autoencoder/reconstruction_examples.npz",
    log:
        "results/{dataset}/logs/autoencoder/train_autoencoder.log",
    benchmark:
        "results/{dataset}/benchmarks/autoencoder/train_autoencoder.tsv"
    priority: UPSTREAM_PRIORITY
    conda:
        "../../envs/tensorflow.yaml"
    threads: config["autoencoder"]["threads"]
    resources:
        **scheduled("train_autoencoder"),
    params:
        **section("autoencoder"),
        n_examples=config["report"]["reconstruction_examples"],
    script:
        "../scripts/train_autoencoder.py"


rule encode_latents:
    input:
        weights="results/{dataset}/autoencoder/autoencoder.weights.h5",
        train="results/{dataset}/data/train.npz",
        val="results/{dataset}/data/val.npz",
        test="results/{dataset}/data/test.npz",
    output:
        train="results/{dataset}/autoencoder/latents_train.npz",
        val="results/{dataset}/autoencoder/latents_val.npz",
        test="results/{dataset}/autoencoder/latents_test.npz",
    log:
        "results/{dataset}/logs/autoencoder/encode_latents.log",
    benchmark:
        "results/{dataset}/benchmarks/autoencoder/encode_latents.tsv"
    priority: UPSTREAM_PRIORITY
    conda:
        "../../envs/tensorflow.yaml"
    threads: config["autoencoder"]["threads"]
    resources:
        **scheduled("encode_latents"),
    params:
        # the architecture only: the weights file carries the training
        hidden=config["autoencoder"]["hidden"],
        latent_dim=config["autoencoder"]["latent_dim"],
        decoder_hidden_activation=config["autoencoder"]["decoder_hidden_activation"],
    script:
        "../scripts/encode_latents.py"
