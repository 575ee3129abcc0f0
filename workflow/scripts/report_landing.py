"""Rule report_landing: the page `snakemake --report` opens on (headline table, what was run, the findings pages'
questions, how to rerun)."""

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
pages = report.page_questions({Path(path).stem: Path(path).read_text() for path in snakemake.input.docs})
with atomic_path(snakemake.output[0]) as tmp:
    Path(tmp).write_text(report.landing_rst(table, snakemake.wildcards.dataset, p.dataset_title, settings, pages))
