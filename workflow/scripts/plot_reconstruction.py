"""Rule plot_reconstruction: the paper's Fig. 1."""

from qtlmnist import figures
from qtlmnist.arrays import load_npz
from qtlmnist.runtime import setup_logging

setup_logging(snakemake.log[0])
arrays = load_npz(snakemake.input[0], {"originals": (None, 784), "reconstructions": (None, 784)})
figures.reconstruction(arrays["originals"], arrays["reconstructions"], snakemake.output[0])
