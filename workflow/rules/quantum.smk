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
