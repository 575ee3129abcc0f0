# Replication of Sarkar 2024, "Quantum Transfer Learning for MNIST Classification Using a Hybrid
# Quantum-Classical Approach" (arXiv 2408.03351). `snakemake --cores N` runs the whole replication on the
# configured dataset (config `dataset`: mnist, or fashion_mnist); results land in results/<dataset>/.
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
include: "workflow/rules/systems.smk"
include: "workflow/rules/provenance.smk"


# The HTML report (`make report`) opens on the headline paper-vs-measured table of the configured dataset.
report: landing_page()


rule all:
    default_target: True
    input:
        replication_outputs(config["dataset"]),
