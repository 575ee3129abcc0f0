# One provenance.json beside each target's results: the commit, command and config that wrote them, when, on which
# CPU, and the sha256 of every file it vouches for (qtlmnist.provenance). Each runs after its target's outputs and
# again only when they change: the commit is read inside the job, never a param, so a new commit reruns nothing.


rule provenance_replication:
    input:
        replication_provenance_inputs,
    output:
        "results/{dataset}/provenance.json",
    log:
        "results/{dataset}/logs/report/provenance_replication.log",
    benchmark:
        "results/{dataset}/benchmarks/report/provenance_replication.tsv"
    conda:
        "../../envs/data.yaml"
    resources:
        # a few hashes and a git call: the smallest job there is, costed like the report's landing page
        **scheduled("report_landing"),
    params:
        target="replicate",
    script:
        "../scripts/provenance.py"


rule provenance_experiments:
    input:
        experiments_provenance_inputs,
    output:
        "results/{dataset}/experiments/provenance.json",
    log:
        "results/{dataset}/logs/experiments/provenance_experiments.log",
    benchmark:
        "results/{dataset}/benchmarks/experiments/provenance_experiments.tsv"
    conda:
        "../../envs/data.yaml"
    resources:
        **scheduled("report_landing"),
    params:
        target="experiments",
    script:
        "../scripts/provenance.py"


rule provenance_systems:
    input:
        systems_provenance_inputs,
    output:
        "results/systems/provenance.json",
    log:
        "results/systems/logs/provenance_systems.log",
    benchmark:
        "results/systems/benchmarks/provenance_systems.tsv"
    conda:
        "../../envs/data.yaml"
    resources:
        **scheduled("report_landing"),
    params:
        target="systems",
    script:
        "../scripts/provenance.py"


rule provenance_readings:
    input:
        readings_provenance_inputs,
    output:
        "results/{dataset}/readings/provenance.json",
    log:
        "results/{dataset}/logs/readings/provenance_readings.log",
    benchmark:
        "results/{dataset}/benchmarks/readings/provenance_readings.tsv"
    conda:
        "../../envs/data.yaml"
    resources:
        **scheduled("report_landing"),
    params:
        target="readings",
    script:
        "../scripts/provenance.py"
