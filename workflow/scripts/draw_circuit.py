"""Rule draw_circuit: the paper's circuit with symbolic angles."""

from qtlmnist import figures, quantum
from qtlmnist.runtime import setup_logging

setup_logging(snakemake.log[0])
circuit, _ = quantum.build_circuit(snakemake.params.n_qubits)
figures.circuit(circuit, snakemake.output[0])
