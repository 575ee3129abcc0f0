"""Rule system_circuit: a system's circuit (the object its runs train and send to Aer), drawn."""

from qtlmnist import figures
from qtlmnist.runtime import setup_logging
from qtlmnist.systems import load

setup_logging(snakemake.log[0])
spec = load(snakemake.wildcards.system).circuit(dict(snakemake.params.values))
figures.circuit(spec.circuit, snakemake.output[0])
