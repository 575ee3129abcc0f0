rule train_classifier:
    input:
        unpack(classifier_features),
    output:
        weights="results/classifier/{model}.weights.h5",
        history="results/classifier/{model}_history.csv",
        predictions="results/classifier/{model}_predictions.npz",
        metrics="results/metrics/{model}.json",
    log:
        "results/logs/classify/train_classifier_{model}.log",
    benchmark:
        "results/benchmarks/classify/train_classifier_{model}.tsv"
    conda:
        "../../envs/tensorflow.yaml"
    threads: config["classifier"]["threads"]
    params:
        **section("classifier"),
    script:
        "../scripts/train_classifier.py"
