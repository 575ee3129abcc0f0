rule train_autoencoder:
    input:
        train="results/data/train_augmented.npz",
        train_original="results/data/train.npz",
        val="results/data/val.npz",
        test="results/data/test.npz",
    output:
        weights="results/autoencoder/autoencoder.weights.h5",
        history="results/autoencoder/history.csv",
        metrics="results/metrics/autoencoder.json",
        examples="results/autoencoder/reconstruction_examples.npz",
    log:
        "results/logs/autoencoder/train_autoencoder.log",
    benchmark:
        "results/benchmarks/autoencoder/train_autoencoder.tsv"
    conda:
        "../../envs/tensorflow.yaml"
    threads: config["autoencoder"]["threads"]
    params:
        **section("autoencoder"),
        n_examples=config["report"]["reconstruction_examples"],
    script:
        "../scripts/train_autoencoder.py"


rule encode_latents:
    input:
        weights="results/autoencoder/autoencoder.weights.h5",
        train="results/data/train.npz",
        val="results/data/val.npz",
        test="results/data/test.npz",
    output:
        train="results/autoencoder/latents_train.npz",
        val="results/autoencoder/latents_val.npz",
        test="results/autoencoder/latents_test.npz",
    log:
        "results/logs/autoencoder/encode_latents.log",
    benchmark:
        "results/benchmarks/autoencoder/encode_latents.tsv"
    conda:
        "../../envs/tensorflow.yaml"
    threads: config["autoencoder"]["threads"]
    params:
        # the architecture only: the weights file carries the training
        hidden=config["autoencoder"]["hidden"],
        latent_dim=config["autoencoder"]["latent_dim"],
        decoder_hidden_activation=config["autoencoder"]["decoder_hidden_activation"],
    script:
        "../scripts/encode_latents.py"
