"""Process set-up shared by every script: logging to the rule's log, thread counts and seeds."""

from __future__ import annotations

import logging
import os
import sys


def setup_logging(log_path: str | None) -> None:
    """Send logging, stdout and stderr to the rule's log file, at the descriptor level so that Keras'
    progress lines and messages of C++ libraries (TensorFlow, Aer) land there too."""
    if log_path:
        stream = open(log_path, "a", buffering=1)  # noqa: SIM115 -- stdout and stderr point at it until exit
        sys.stdout.flush()
        os.dup2(stream.fileno(), sys.stdout.fileno())
        os.dup2(stream.fileno(), sys.stderr.fileno())
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", handlers=handlers, force=True
    )


def limit_threads(threads: int) -> None:
    """Tie TensorFlow to the rule's `threads`; call before TensorFlow is imported (it reads these at import).

    BLAS needs nothing here: Snakemake starts every script job with OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and
    MKL_NUM_THREADS set to the job's threads, before the process imports numpy (whose BLAS reads them then;
    setting them later would change nothing). Aer takes its thread count as an option (quantum.make_simulator).
    """
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def seed_tensorflow(seed: int, threads: int):
    """Import TensorFlow with fixed threads, seeds and deterministic ops; returns the keras module.

    With the same seed and thread count, CPU training gives the same weights bit for bit.
    """
    limit_threads(threads)
    import keras
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    return keras
