rule plot_reconstruction:
    input:
        "results/autoencoder/reconstruction_examples.npz",
    output:
        report(
            "results/figures/autoencoder_reconstruction.png",
            caption="../report/autoencoder_reconstruction.rst",
            category="Autoencoder",
        ),
    log:
        "results/logs/report/plot_reconstruction.log",
    benchmark:
        "results/benchmarks/report/plot_reconstruction.tsv"
    conda:
        "../../envs/plotting.yaml"
    script:
        "../scripts/plot_reconstruction.py"


rule plot_confusion:
    input:
        "results/metrics/{model}.json",
    output:
        report(
            "results/figures/confusion_{model}_{cm_split}.png",
            caption="../report/confusion.rst",
            category="Confusion matrices",
            subcategory="{model}",
        ),
    log:
        "results/logs/report/plot_confusion_{model}_{cm_split}.log",
    benchmark:
        "results/benchmarks/report/plot_confusion_{model}_{cm_split}.tsv"
    wildcard_constraints:
        cm_split="val|test",
    conda:
        "../../envs/plotting.yaml"
    script:
        "../scripts/plot_confusion.py"


rule plot_training_curves:
    input:
        expand("results/classifier/{model}_history.csv", model=MODELS),
    output:
        report(
            "results/figures/training_curves.png",
            caption="../report/training_curves.rst",
            category="Classifiers",
        ),
    log:
        "results/logs/report/plot_training_curves.log",
    benchmark:
        "results/benchmarks/report/plot_training_curves.tsv"
    conda:
        "../../envs/plotting.yaml"
    params:
        models=MODELS,
    script:
        "../scripts/plot_training_curves.py"


rule replication_table:
    input:
        autoencoder="results/metrics/autoencoder.json",
        baseline="results/metrics/baseline.json",
        hybrid="results/metrics/hybrid.json",
    output:
        csv=report(
            "results/replication.csv",
            caption="../report/replication.rst",
            category="Paper vs measured",
        ),
        md="results/replication.md",
        figure=report(
            "results/figures/paper_vs_measured.png",
            caption="../report/paper_vs_measured.rst",
            category="Paper vs measured",
        ),
    log:
        "results/logs/report/replication_table.log",
    benchmark:
        "results/benchmarks/report/replication_table.tsv"
    conda:
        "../../envs/plotting.yaml"
    params:
        accuracy_tolerance_pp=config["report"]["accuracy_tolerance_pp"],
        mse_tolerance=config["report"]["mse_tolerance"],
    script:
        "../scripts/replication_table.py"
