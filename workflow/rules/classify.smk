rule train_classifier:
    input:
        unpack(classifier_features),
    output:
        weights="results/{dataset}/classifier/{model}.weights.h5",
        history="results/{dataset}/classifier/{model}_history.csv",
        predictions="results/{dataset}/classifier/{model}_predictions.npz",
        metrics="results/{dataset}/metrics/{model}.json",
    log:
        "results/{dataset}/logs/classify/train_classifier_{model}.log",
    benchmark:
        "results/{dataset}/benchmarks/classify/train_classifier_{model}.tsv"
    conda:
        "../../envs/tensorflow.yaml"
    threads: config["classifier"]["threads"]
    resources:
        **scheduled("train_classifier"),
    params:
        **section("classifier"),
    script:
        "../scripts/train_classifier.py"


rule evaluate_hardware:
    input:
        weights="results/{dataset}/classifier/hybrid.weights.h5",
        noiseless="results/{dataset}/quantum/test.npz",
        device="results/{dataset}/hardware/device_test.npz",
        noise_model="results/{dataset}/hardware/noise_model_test.npz",
        run="results/{dataset}/hardware/run.json",
    output:
        "results/{dataset}/metrics/hybrid_hardware.json",
    log:
        "results/{dataset}/logs/classify/evaluate_hardware.log",
    benchmark:
        "results/{dataset}/benchmarks/classify/evaluate_hardware.tsv"
    conda:
        "../../envs/tensorflow.yaml"
    threads: config["classifier"]["threads"]
    resources:
        **scheduled("evaluate_hardware"),
    params:
        units=config["classifier"]["units"],
        dropout=config["classifier"]["dropout"],
    script:
        "../scripts/evaluate_hardware.py"
