rule quantum_inputs:
    input:
        train="results/{dataset}/autoencoder/latents_train.npz",
        val="results/{dataset}/autoencoder/latents_val.npz",
        test="results/{dataset}/autoencoder/latents_test.npz",
    output:
        train="results/{dataset}/quantum/inputs_train.npz",
        val="results/{dataset}/quantum/inputs_val.npz",
        test="results/{dataset}/quantum/inputs_test.npz",
        reduction="results/{dataset}/quantum/reduction.npz",
    log:
        "results/{dataset}/logs/quantum/quantum_inputs.log",
    benchmark:
        "results/{dataset}/benchmarks/quantum/quantum_inputs.tsv"
    priority: UPSTREAM_PRIORITY
    conda:
        "../../envs/qiskit.yaml"
    resources:
        **scheduled("quantum_inputs"),
    params:
        method=config["quantum"]["reduction"],
        n_qubits=config["quantum"]["n_qubits"],
    script:
        "../scripts/quantum_inputs.py"


rule quantum_features:
    input:
        "results/{dataset}/quantum/inputs_{split}.npz",
    output:
        "results/{dataset}/quantum/shards/{split}_{shard}.npz",
    log:
        "results/{dataset}/logs/quantum/quantum_features_{split}_{shard}.log",
    benchmark:
        "results/{dataset}/benchmarks/quantum/quantum_features_{split}_{shard}.tsv"
    priority: UPSTREAM_PRIORITY
    conda:
        "../../envs/qiskit.yaml"
    threads: config["quantum"]["threads"]
    resources:
        **scheduled("quantum_features"),
    params:
        shots=config["quantum"]["shots"],
        shards=config["quantum"]["shards"],
        chunk_size=config["quantum"]["chunk_size"],
        seed=config["quantum"]["seed"],
    script:
        "../scripts/quantum_features.py"


rule gather_quantum:
    input:
        quantum_shards,
    output:
        "results/{dataset}/quantum/{split}.npz",
    log:
        "results/{dataset}/logs/quantum/gather_quantum_{split}.log",
    benchmark:
        "results/{dataset}/benchmarks/quantum/gather_quantum_{split}.tsv"
    priority: UPSTREAM_PRIORITY
    conda:
        "../../envs/qiskit.yaml"
    resources:
        **scheduled("gather_quantum"),
    script:
        "../scripts/gather_quantum.py"


rule draw_circuit:
    output:
        report(
            "results/figures/quantum_circuit.png",
            caption="../report/quantum_circuit.rst",
            category="Quantum circuit",
            labels={"figure": "feature circuit"},
        ),
    log:
        "results/logs/draw_circuit.log",
    benchmark:
        "results/benchmarks/draw_circuit.tsv"
    conda:
        "../../envs/qiskit.yaml"
    resources:
        **scheduled("draw_circuit"),
    params:
        n_qubits=config["quantum"]["n_qubits"],
    script:
        "../scripts/draw_circuit.py"


# quantum.executor ibm_runtime: the chosen test images on an IBM device (or a fake one, offline), and on Aer
# with that device's noise model. Job ids and counts go to the ledger (quantum.ibm_runtime.ledger_dir), which is
# no output: Snakemake deletes a failed job's outputs, and a rerun must find the jobs it already paid for.
rule hardware_features:
    input:
        inputs="results/{dataset}/quantum/inputs_test.npz",
    output:
        device="results/{dataset}/hardware/device_test.npz",
        noise_model="results/{dataset}/hardware/noise_model_test.npz",
        run="results/{dataset}/hardware/run.json",
    log:
        "results/{dataset}/logs/quantum/hardware_features.log",
    benchmark:
        "results/{dataset}/benchmarks/quantum/hardware_features.tsv"
    conda:
        "../../envs/qiskit.yaml"
    threads: config["quantum"]["threads"]
    resources:
        **scheduled("hardware_features"),
    params:
        settings=hardware_settings,
        shots=config["quantum"]["shots"],
        seed=config["quantum"]["seed"],
    script:
        "../scripts/hardware_features.py"
