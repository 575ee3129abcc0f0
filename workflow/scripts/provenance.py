"""Rules provenance_*: the provenance.json of one target's results (qtlmnist.provenance)."""

from qtlmnist import provenance
from qtlmnist.arrays import save_json
from qtlmnist.runtime import setup_logging

setup_logging(snakemake.log[0])
record = provenance.record(snakemake.params.target, snakemake.config, list(snakemake.input))
save_json(snakemake.output[0], record)
print(f"{snakemake.output[0]}: commit {record['commit']}, {len(record['files'])} files")
