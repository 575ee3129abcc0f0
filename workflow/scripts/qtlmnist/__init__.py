"""Replication of Sarkar 2024, 'Quantum Transfer Learning for MNIST Classification Using a Hybrid
Quantum-Classical Approach' (arXiv 2408.03351): one module per stage of the Snakemake workflow."""

__version__ = "0.1.0"
