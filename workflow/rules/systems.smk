# Trainable-circuit systems from the other seed documents (not in `rule all`): `snakemake --cores N systems`
# or `make systems`. One job per (system, setting): its seeds train together in groups of the setting's
# `group_size`, by default all in one (one compiled graph, qtlmnist.systems.training.run_setting), and each
# seed writes its own files into the setting's folder
# (seed_<s>.json, seed_<s>_history.csv, seed_<s>.weights.h5); the systems are registered in qtlmnist.systems.


rule system_run:
    input:
        unpack(system_inputs),
    output:
        directory("results/systems/{system}/{setting}"),
    log:
        "results/systems/logs/{system}/{setting}.log",
    benchmark:
        "results/systems/benchmarks/{system}/system_run_{setting}.tsv"
    conda:
        "../../envs/systems.yaml"
    threads: config["systems"]["threads"]
    resources:
        **scheduled_per_seed("system_run"),
    params:
        values=system_values,
        seeds=system_seeds,
    script:
        "../scripts/system_run.py"


rule system_figures:
    input:
        unpack(system_run_files),
    output:
        curves=report(
            "results/systems/figures/{system}_learning_curves.png",
            caption="../report/systems_learning_curves.rst",
            category="systems",
            subcategory="{system}",
            labels={"system": "{system}", "figure": "learning curves"},
        ),
        confusion=report(
            "results/systems/figures/{system}_confusion.png",
            caption="../report/systems_confusion.rst",
            category="systems",
            subcategory="{system}",
            labels={"system": "{system}", "figure": "confusion matrices"},
        ),
    log:
        "results/systems/logs/{system}/system_figures.log",
    benchmark:
        "results/systems/benchmarks/{system}/system_figures.tsv"
    conda:
        "../../envs/systems.yaml"
    resources:
        **scheduled("system_plot"),
    params:
        runs=system_setting_runs,
        trained_confidence=config["verdicts"]["trained_confidence"],
    script:
        "../scripts/system_figures.py"


rule system_circuit:
    output:
        report(
            "results/systems/figures/{system}_circuit.png",
            caption="../report/systems_circuit.rst",
            category="systems",
            subcategory="{system}",
            labels={"system": "{system}", "figure": "circuit"},
        ),
    log:
        "results/systems/logs/{system}/system_circuit.log",
    benchmark:
        "results/systems/benchmarks/{system}/system_circuit.tsv"
    conda:
        "../../envs/systems.yaml"
    resources:
        **scheduled("system_plot"),
    params:
        values=system_circuit_values,
    script:
        "../scripts/system_circuit.py"


rule systems_table:
    input:
        all_system_metrics,
    output:
        csv=report(
            "results/systems/claims.csv",
            caption="../report/systems_claims.rst",
            category="systems",
            subcategory="Claims vs measured",
            labels={"table": "claims vs measured, every system"},
        ),
        md="results/systems/claims.md",
        runs="results/systems/runs.csv",
        comparisons="results/systems/comparisons.csv",
        comparison_seeds="results/systems/comparisons_per_seed.csv",
    log:
        "results/systems/logs/systems_table.log",
    benchmark:
        "results/systems/benchmarks/systems_table.tsv"
    conda:
        "../../envs/systems.yaml"
    resources:
        **scheduled("system_plot"),
    params:
        runs=SYSTEM_RUNS,
        tolerance_pp=config["report"]["accuracy_tolerance_pp"],
        verdicts=config["verdicts"],
    script:
        "../scripts/systems_table.py"


rule systems:
    default_target: False
    input:
        systems_outputs(),
