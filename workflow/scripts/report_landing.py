"""Rule report_landing: the page `snakemake --report` opens on (headline table, what was run, how to rerun)."""

from pathlib import Path

import pandas as pd

from qtlmnist import report
from qtlmnist.arrays import atomic_path, load_json
from qtlmnist.runtime import setup_logging

setup_logging(snakemake.log[0])
p = snakemake.params
table = pd.read_csv(snakemake.input.table)
test_n = load_json(snakemake.input.hybrid)["test_n"]
settings = {"test images": test_n, "autoencoder epochs": p.autoencoder_epochs} | {
    "classifier epochs": p.classifier_epochs,
    "shots": p.shots,
}
with atomic_path(snakemake.output[0]) as tmp:
    Path(tmp).write_text(report.landing_rst(table, snakemake.wildcards.dataset, p.dataset_title, settings))
