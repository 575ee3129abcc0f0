"""Rule system_circuit: a system's circuit (the object its runs train and send to Aer, by its section's
`entanglement`), drawn."""

from qtlmnist import figures
from qtlmnist.runtime import setup_logging
from qtlmnist.systems import load
from qtlmnist.systems.separable import setting_circuit

setup_logging(snakemake.log[0])
spec = setting_circuit(load(snakemake.wildcards.system), dict(snakemake.params.values))
figures.circuit(spec.circuit, snakemake.output[0])
