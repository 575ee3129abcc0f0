# A fair comparison at equal budget (not in `rule all` or `systems`): `snakemake --cores N study` or
# `make study`, docs/study.md. Per (system, model, configuration) one search job, its folds one batched group;
# per (system, model) the choice, one final retrain (its seeds one group) and the learning-curve sizes (each
# size's seeds one group); then the tables and one figure per system (qtlmnist.study).


rule study_cv:
    input:
        unpack(study_inputs),
    output:
        "results/study/{system}/{candidate}/cv/{configuration}.csv",
    log:
        "results/study/logs/{system}/{candidate}/study_cv_{configuration}.log",
    benchmark:
        "results/study/benchmarks/{system}/{candidate}/study_cv_{configuration}.tsv"
    conda:
        "../../envs/systems.yaml"
    threads: config["study"]["threads"]
    resources:
        **study_scheduled("system_run"),
    params:
        values=study_values,
        folds=config["study"]["folds"],
        split_seed=config["study"]["split_seed"],
        seeds=study_fold_seeds,
    script:
        "../scripts/study_cv.py"


rule study_select:
    input:
        study_cv_files,
    output:
        search="results/study/{system}/{candidate}/search.csv",
        chosen="results/study/{system}/{candidate}/chosen.json",
    log:
        "results/study/logs/{system}/{candidate}/study_select.log",
    benchmark:
        "results/study/benchmarks/{system}/{candidate}/study_select.tsv"
    conda:
        "../../envs/systems.yaml"
    resources:
        **scheduled("system_plot"),
    params:
        points=study_points,
    script:
        "../scripts/study_select.py"


rule study_final:
    input:
        unpack(study_chosen_inputs),
    output:
        directory("results/study/{system}/{candidate}/final"),
    log:
        "results/study/logs/{system}/{candidate}/study_final.log",
    benchmark:
        "results/study/benchmarks/{system}/{candidate}/study_final.tsv"
    conda:
        "../../envs/systems.yaml"
    threads: config["study"]["threads"]
    resources:
        **study_scheduled("system_run"),
    params:
        values=study_model_values,
        seeds=study_final_seeds,
    script:
        "../scripts/study_final.py"


rule study_curve:
    input:
        unpack(study_chosen_inputs),
    output:
        "results/study/{system}/{candidate}/curve_{size}.csv",
    log:
        "results/study/logs/{system}/{candidate}/study_curve_{size}.log",
    benchmark:
        "results/study/benchmarks/{system}/{candidate}/study_curve_{size}.tsv"
    conda:
        "../../envs/systems.yaml"
    threads: config["study"]["threads"]
    resources:
        **study_scheduled("system_run"),
    params:
        values=study_model_values,
        seeds=config["study"]["curve_seeds"],
    script:
        "../scripts/study_curve.py"


rule study_figure:
    input:
        study_curve_files,
    output:
        report(
            "results/study/figures/{system}_learning_curves.png",
            caption="../report/study_learning_curves.rst",
            category="study",
            subcategory="{system}",
            labels={"system": "{system}", "figure": "learning curves (tuned)"},
        ),
    log:
        "results/study/logs/{system}/study_figure.log",
    benchmark:
        "results/study/benchmarks/{system}/study_figure.tsv"
    conda:
        "../../envs/systems.yaml"
    resources:
        **scheduled("system_plot"),
    script:
        "../scripts/study_figure.py"


rule study_tables:
    input:
        unpack(study_table_inputs),
    output:
        summary=report(
            "results/study/summary.csv",
            caption="../report/study_summary.rst",
            category="study",
            subcategory="Tuned at equal budget",
            labels={"table": "as published, tuned quantum, separable, tuned control"},
        ),
        md="results/study/study.md",
        comparisons="results/study/comparisons.csv",
        comparison_seeds="results/study/comparisons_per_seed.csv",
        search="results/study/search.csv",
    log:
        "results/study/logs/study_tables.log",
    benchmark:
        "results/study/benchmarks/study_tables.tsv"
    conda:
        "../../envs/systems.yaml"
    resources:
        **scheduled("system_plot"),
    params:
        planned=STUDY_MODELS,
        compared=study_compared,
        verdicts=config["verdicts"],
        folds=config["study"]["folds"],
    script:
        "../scripts/study_tables.py"


# the commit, command and config that wrote the study's tables and figures (as provenance.smk does per target)
rule provenance_study:
    input:
        study_provenance_inputs,
    output:
        "results/study/provenance.json",
    log:
        "results/study/logs/provenance_study.log",
    benchmark:
        "results/study/benchmarks/provenance_study.tsv"
    conda:
        "../../envs/data.yaml"
    resources:
        **scheduled("report_landing"),
    params:
        target="study",
    script:
        "../scripts/provenance.py"


rule study:
    default_target: False
    input:
        study_outputs(),
