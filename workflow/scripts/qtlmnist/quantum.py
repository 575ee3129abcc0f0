"""The paper's 5-qubit circuit as a feature map: Ry(2 arccos x_i) on qubit i, H on every qubit, a CNOT chain
0->1->...->n-1, measure all; the features are the 2**n normalised shot counts.

Bit order: Aer's count key is the bit string b_{n-1}...b_0 (qubit 0 rightmost), and feature column
index = sum_i b_i * 2**i, which is also the order of `Statevector.probabilities()`.

What the circuit computes, in closed form (used by `exact_probabilities` and the tests): Ry(2 arccos x)|0> =
x|0> + sqrt(1-x^2)|1>, then H gives P(qubit = 0) = 1/2 + x*sqrt(1-x^2). The qubits are independent after Ry
and H; the CNOT chain only relabels the outcomes (qubit k reads b_0 xor ... xor b_k). Note the fold:
x and sqrt(1-x^2) give the same probability, so the map [0, 1] -> features is not one-to-one.
"""

from __future__ import annotations

import numpy as np

# Aer seeds experiment j of one run as seed_simulator + SEED_STRIDE * j; chunked runs reproduce one big run
# by starting each chunk's seed at its first global row.
SEED_STRIDE = 2113
# Each split gets its own seed range, far apart, so no two (split, row) pairs share an Aer seed.
SPLIT_SEED_OFFSET = {"train": 0, "val": 10**11, "test": 2 * 10**11}


def split_seed(seed: int, split: str) -> int:
    return seed + SPLIT_SEED_OFFSET[split]


# --- the reduction 64 -> angles -------------------------------------------------------------------------


def fit_reduction(latents: np.ndarray, method: str, n_qubits: int) -> dict[str, np.ndarray]:
    """Fit, on training latents only, the map from latents to circuit inputs in [0, 1].

    pca: the top n_qubits principal components (the paper's v2); first: the first n_qubits latent dims;
    chunks: all dims, n_qubits per circuit (the last circuit padded with zeros). Each resulting input is then
    min/max scaled with train's range; a constant input (a dead ReLU unit) maps to 0.
    """
    latents = np.asarray(latents, dtype=np.float64)
    mean = latents.mean(axis=0)
    if method == "pca":
        # Sign-fixed SVD so the components do not depend on LAPACK's sign choice.
        _, _, vt = np.linalg.svd(latents - mean, full_matrices=False)
        components = vt[:n_qubits]
        signs = np.sign(components[np.arange(n_qubits), np.abs(components).argmax(axis=1)])
        components = components * signs[:, None]
    elif method == "first":
        components = np.eye(latents.shape[1])[:n_qubits]
        mean = np.zeros_like(mean)
    elif method == "chunks":
        components = np.eye(latents.shape[1])
        mean = np.zeros_like(mean)
    else:
        raise ValueError(f"unknown reduction '{method}': use pca, first or chunks")
    projected = (latents - mean) @ components.T
    return {"mean": mean, "components": components, "low": projected.min(axis=0), "high": projected.max(axis=0)}


def apply_reduction(latents: np.ndarray, reduction: dict[str, np.ndarray], n_qubits: int) -> np.ndarray:
    """Circuit inputs (N, n_circuits, n_qubits) in [0, 1], clipped (val/test may leave train's range)."""
    projected = (np.asarray(latents, dtype=np.float64) - reduction["mean"]) @ reduction["components"].T
    span = reduction["high"] - reduction["low"]
    safe = np.where(span > 0, span, 1.0)
    scaled = np.where(span > 0, (projected - reduction["low"]) / safe, 0.0)
    scaled = np.clip(scaled, 0.0, 1.0)
    pad = (-scaled.shape[1]) % n_qubits
    scaled = np.pad(scaled, ((0, 0), (0, pad)))
    return scaled.reshape(len(scaled), -1, n_qubits)


def angles(x: np.ndarray) -> np.ndarray:
    """theta = 2 arccos(x) for x in [0, 1] (the paper's section 3.4)."""
    return 2.0 * np.arccos(np.clip(x, 0.0, 1.0))


# --- the circuit ------------------------------------------------------------------------------------------


def build_circuit(n_qubits: int = 5):
    """The parameterised circuit and its parameters (one Ry angle per qubit)."""
    from qiskit.circuit import ParameterVector, QuantumCircuit

    theta = ParameterVector("theta", n_qubits)
    circuit = QuantumCircuit(n_qubits, n_qubits)
    for q in range(n_qubits):
        circuit.ry(theta[q], q)
    for q in range(n_qubits):
        circuit.h(q)
    for q in range(n_qubits - 1):
        circuit.cx(q, q + 1)
    circuit.measure(range(n_qubits), range(n_qubits))
    return circuit, theta


def exact_probabilities(x: np.ndarray) -> np.ndarray:
    """Exact outcome probabilities (N, 2**n) of the circuit for inputs x (N, n) in [0, 1], numpy only."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    n_samples, n = x.shape
    p0 = 0.5 + x * np.sqrt(np.clip(1.0 - x * x, 0.0, 1.0))  # P(qubit i = 0) before the CNOTs
    probs = np.ones((n_samples, 1))
    for i in range(n):  # product distribution, index = sum b_i 2**i (qubit i is bit i)
        qubit = np.stack([p0[:, i], 1.0 - p0[:, i]], axis=1)
        probs = (qubit[:, :, None] * probs[:, None, :]).reshape(n_samples, -1)
    return probs[:, cnot_chain_permutation(n)]


def cnot_chain_permutation(n: int) -> np.ndarray:
    """perm[out] = the pre-CNOT outcome that the chain 0->1->...->n-1 sends to `out`.

    After the chain, bit k reads b_0 xor ... xor b_k, so the pre-chain bit k is out_k xor out_{k-1}.
    """
    out = np.arange(2**n)
    return out ^ ((out << 1) & (2**n - 1))


def counts_to_features(counts: list[dict], n_qubits: int) -> np.ndarray:
    """Aer count dicts (keys '0x..' hex or bit strings) to normalised frequencies (N, 2**n)."""
    features = np.zeros((len(counts), 2**n_qubits), dtype=np.float64)
    for row, experiment in enumerate(counts):
        for key, value in experiment.items():
            index = int(key, 16) if key.startswith("0x") else int(key.replace(" ", ""), 2)
            features[row, index] = value
    totals = features.sum(axis=1, keepdims=True)
    return features / totals


def make_simulator(threads: int, noise_backend: str | None = None):
    """(simulator, device): noiseless statevector, or a density-matrix simulator with the noise model of a
    fake IBM device (e.g. FakeManilaV2, 5 qubits, offline), whose target the circuit is transpiled to once."""
    from qiskit_aer import AerSimulator

    options = dict(
        max_parallel_threads=threads,
        max_parallel_experiments=0,  # 0 = as many experiments at once as threads allow
        runtime_parameter_bind_enable=True,
    )
    if noise_backend is None:
        return AerSimulator(method="statevector", **options), None
    from qiskit_aer.noise import NoiseModel
    from qiskit_ibm_runtime import fake_provider

    device = getattr(fake_provider, noise_backend)()
    # Density matrix keeps measure sampling under noise (a statevector would run every shot as a trajectory).
    return AerSimulator(method="density_matrix", noise_model=NoiseModel.from_backend(device), **options), device


def aer_features(
    x: np.ndarray,
    shots: int,
    seed: int,
    first_row: int = 0,
    chunk_size: int = 2000,
    threads: int = 1,
    noise_backend: str | None = None,
) -> np.ndarray:
    """Shot-based features (N, 2**n) for circuit inputs x (N, n) in [0, 1].

    One parameterised circuit, transpiled once; samples are bound through `parameter_binds` in chunks.
    Row r (global row first_row + r) is simulated with seed + SEED_STRIDE * (first_row + r), so its counts do
    not depend on how the rows are chunked or sharded.
    """
    from qiskit import transpile

    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    n_qubits = x.shape[1]
    simulator, device = make_simulator(threads, noise_backend)
    circuit, theta = build_circuit(n_qubits)
    if device is None:
        compiled = transpile(circuit, simulator, optimization_level=0)
    else:
        compiled = transpile(circuit, backend=device, optimization_level=1, seed_transpiler=0)
    return bound_features(simulator, compiled, theta, x, shots, seed, first_row, chunk_size)


def bound_features(
    simulator, compiled, theta, x: np.ndarray, shots: int, seed: int, first_row: int = 0, chunk_size: int = 2000
):
    """Features (N, 2**n) of a compiled circuit on an Aer simulator, its parameters `theta` (in qubit order)
    bound to angles(x) through `parameter_binds` in chunks, row r seeded as `aer_features` says."""
    n_samples, n_qubits = x.shape
    theta_values = angles(x)
    features = np.empty((n_samples, 2**n_qubits), dtype=np.float64)
    for start in range(0, n_samples, chunk_size):
        stop = min(start + chunk_size, n_samples)
        binds = {theta[q]: theta_values[start:stop, q].tolist() for q in range(n_qubits)}
        result = simulator.run(
            compiled,
            parameter_binds=[binds],
            shots=shots,
            seed_simulator=seed + SEED_STRIDE * (first_row + start),
        ).result()
        if not result.success:
            raise RuntimeError(f"Aer run for rows {start}..{stop} failed: {result.status}")
        counts = [result.data(j)["counts"] for j in range(stop - start)]
        features[start:stop] = counts_to_features(counts, n_qubits)
    return features


def shard_bounds(n_rows: int, shards: int, shard: int) -> tuple[int, int]:
    """Rows [start, stop) of shard `shard` out of `shards` (sizes differ by at most one)."""
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} is outside 0..{shards - 1}")
    return n_rows * shard // shards, n_rows * (shard + 1) // shards


def circuit_features(
    inputs: np.ndarray,
    shots: int,
    seed: int,
    first_row: int = 0,
    chunk_size: int = 2000,
    threads: int = 1,
    noise_backend: str | None = None,
) -> np.ndarray:
    """Features (N, n_circuits * 2**n) for inputs (N, n_circuits, n): each circuit's distribution in turn.

    Circuit c of sample i is global row (first_row + i) * n_circuits + c, for the seed rule above.
    """
    n_samples, n_circuits, n_qubits = inputs.shape
    flat = inputs.reshape(n_samples * n_circuits, n_qubits)
    features = aer_features(flat, shots, seed, first_row * n_circuits, chunk_size, threads, noise_backend)
    return features.reshape(n_samples, n_circuits * 2**n_qubits)
