# Replication of Sarkar 2024, "Quantum Transfer Learning for MNIST Classification Using a Hybrid
# Quantum-Classical Approach" (arXiv 2408.03351). `snakemake --cores N` runs the whole replication.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/autoencoder.smk"
include: "workflow/rules/quantum.smk"
include: "workflow/rules/classify.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/experiments.smk"


rule all:
    default_target: True
    input:
        final_outputs(),
