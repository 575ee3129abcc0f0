rule plot_reconstruction:
    input:
        "results/{dataset}/autoencoder/reconstruction_examples.npz",
    output:
        report(
            "results/{dataset}/figures/autoencoder_reconstruction.png",
            caption="../report/autoencoder_reconstruction.rst",
            category="{dataset}",
            subcategory="Autoencoder",
            labels={"figure": "test images and their reconstructions"},
        ),
    log:
        "results/{dataset}/logs/report/plot_reconstruction.log",
    benchmark:
        "results/{dataset}/benchmarks/report/plot_reconstruction.tsv"
    conda:
        "../../envs/plotting.yaml"
    resources:
        **scheduled("plot"),
    script:
        "../scripts/plot_reconstruction.py"


rule plot_confusion:
    input:
        "results/{dataset}/metrics/{model}.json",
    output:
        report(
            "results/{dataset}/figures/confusion_{model}_{cm_split}.png",
            caption="../report/confusion.rst",
            category="{dataset}",
            subcategory="Confusion matrices",
            labels={"model": "{model}", "split": "{cm_split}"},
        ),
    log:
        "results/{dataset}/logs/report/plot_confusion_{model}_{cm_split}.log",
    benchmark:
        "results/{dataset}/benchmarks/report/plot_confusion_{model}_{cm_split}.tsv"
    wildcard_constraints:
        cm_split="val|test",
    conda:
        "../../envs/plotting.yaml"
    resources:
        **scheduled("plot"),
    params:
        class_names=class_names,
        dataset_title=dataset_title,
    script:
        "../scripts/plot_confusion.py"


rule plot_training_curves:
    input:
        expand("results/{{dataset}}/classifier/{model}_history.csv", model=MODELS),
    output:
        report(
            "results/{dataset}/figures/training_curves.png",
            caption="../report/training_curves.rst",
            category="{dataset}",
            subcategory="Classifiers",
            labels={"figure": "training curves, both models"},
        ),
    log:
        "results/{dataset}/logs/report/plot_training_curves.log",
    benchmark:
        "results/{dataset}/benchmarks/report/plot_training_curves.tsv"
    conda:
        "../../envs/plotting.yaml"
    resources:
        **scheduled("plot"),
    params:
        models=MODELS,
    script:
        "../scripts/plot_training_curves.py"


rule replication_table:
    input:
        unpack(replication_metrics),
    output:
        csv=report(
            "results/{dataset}/replication.csv",
            caption="../report/replication.rst",
            category="{dataset}",
            subcategory="Paper vs measured",
            labels={"result": "table, one run"},
        ),
        md="results/{dataset}/replication.md",
        figure=report(
            "results/{dataset}/figures/paper_vs_measured.png",
            caption="../report/paper_vs_measured.rst",
            category="{dataset}",
            subcategory="Paper vs measured",
            labels={"result": "figure, one run"},
        ),
    log:
        "results/{dataset}/logs/report/replication_table.log",
    benchmark:
        "results/{dataset}/benchmarks/report/replication_table.tsv"
    conda:
        "../../envs/plotting.yaml"
    resources:
        **scheduled("plot"),
    params:
        accuracy_tolerance_pp=config["report"]["accuracy_tolerance_pp"],
        mse_tolerance=config["report"]["mse_tolerance"],
        dataset_title=dataset_title,
    script:
        "../scripts/replication_table.py"


rule report_landing:
    input:
        table="results/{dataset}/replication.csv",
        hybrid="results/{dataset}/metrics/hybrid.json",
        docs=DOCS_PAGES,
    output:
        "results/{dataset}/report_landing.rst",
    log:
        "results/{dataset}/logs/report/report_landing.log",
    benchmark:
        "results/{dataset}/benchmarks/report/report_landing.tsv"
    conda:
        "../../envs/plotting.yaml"
    resources:
        **scheduled("report_landing"),
    params:
        dataset_title=dataset_title,
        autoencoder_epochs=config["autoencoder"]["epochs"],
        classifier_epochs=config["classifier"]["epochs"],
        shots=config["quantum"]["shots"],
    script:
        "../scripts/report_landing.py"
