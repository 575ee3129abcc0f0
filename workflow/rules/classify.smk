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
