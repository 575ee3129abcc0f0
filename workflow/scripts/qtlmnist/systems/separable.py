"""Entanglement removed: a system's circuit without the entangling gates of its trainable layers, derived from
its one circuit (`circuit(values)`), never written a second time by hand.

A setting's `entanglement` (a shared driver key, config/config.yaml) picks the circuit its runs train, send to
Aer and draw (`setting_circuit`, the one place the driver builds it):

  entangled  the system's circuit as it is;
  separable  `separable(spec)`: every gate on two or more qubits outside the data encoding removed, the
             encoding kept as it is (with a product encoding and single-qubit trainable gates, the state is a
             product state; with an entangling encoding, e.g. 000's ZZ feature map, the encoding's own
             entanglement remains);
  product    `separable(spec, product)`: the same, and each upload of the data replaced by the system's
             product-state encoding of the same inputs (`product_encoding(spec)` of its module, the hook
             PRODUCT_HOOK, stated per system in its docstring): only systems whose encoding entangles define
             it (000 quantum_mnist, 004 reuploading); the others refuse `product` at the config check.

How the encoding is told from the trainable part: the system marks it. `common.Circuit.encoding` lists the
spans of `circuit.data` (instruction indices) where the data is uploaded, one per upload; `encoding_problems`
checks the marking against a rule on parameters that every system must satisfy: every instruction with an
input parameter lies in a span, and no instruction with a weight does. (A rule on parameters alone could not
find the encoding: the CX gates of 000's ZZ map and of 004's amplitude loading carry no parameter at all, and
neither do the CX gates of the trainable layers they sit between.)

A gate "on two or more qubits" is any `Gate` acting on >= 2 qubits (CX, CZ, RZZ, SWAP, ...); barriers and
measurements are not gates and stay. A removed gate that carried weights takes them with it (the derived
circuit's `weights` are those still in it); none of the registered systems has one (their entanglers carry
no parameter), so the separable model has the same trainable parameters as the entangled one.

Nothing heavy at top level: the registry imports this module for `choices` while the Snakefile is parsed.
"""

from __future__ import annotations

from .common import Circuit

# The values of the shared driver key `entanglement` (the schema's enum lists the same, tested).
ENTANGLEMENTS = ("entangled", "separable", "product")
# The module-level function a system defines when its data encoding itself entangles:
# product_encoding(spec: Circuit) -> QuantumCircuit, one upload of spec.inputs as a product state on the same
# qubits (single-qubit gates only, every input used, no other parameter).
PRODUCT_HOOK = "product_encoding"


def choices(system) -> tuple[str, ...]:
    """The `entanglement` values a system module allows: all three where it defines PRODUCT_HOOK (its encoding
    entangles), else entangled and separable (its encoding is a product already: `product` would be
    `separable`)."""
    return ENTANGLEMENTS if callable(getattr(system, PRODUCT_HOOK, None)) else ENTANGLEMENTS[:2]


def is_entangling(operation) -> bool:
    """A gate on two or more qubits (barriers, measurements and resets are not gates)."""
    from qiskit.circuit import Gate

    return isinstance(operation, Gate) and operation.num_qubits >= 2


def _parameters(operation) -> set:
    return {p for value in operation.params for p in getattr(value, "parameters", ())}


def encoding_problems(spec: Circuit) -> list[str]:
    """Where the circuit's declared encoding breaks the rule (module docstring), one line per problem."""
    name = spec.circuit.name
    if spec.encoding is None:
        return [
            f"circuit {name!r} declares no encoding: set common.Circuit.encoding to the spans (start, stop) of "
            "circuit.data where the data is uploaded (docs/adding-a-system.md, 'Entanglement removed')"
        ]
    inside = {index for start, stop in spec.encoding for index in range(start, stop)}
    inputs, weights = set(spec.inputs), set(spec.weights)
    problems = []
    for index, instruction in enumerate(spec.circuit.data):
        parameters = _parameters(instruction.operation)
        where = f"circuit {name!r}, instruction {index} ({instruction.operation.name})"
        if index not in inside and parameters & inputs:
            problems.append(f"{where} reads inputs but lies outside the encoding spans {list(spec.encoding)}")
        if index in inside and parameters & weights:
            problems.append(f"{where} holds weights but lies inside the encoding spans {list(spec.encoding)}")
    return problems


def product_problems(spec: Circuit, product) -> list[str]:
    """Why `product` cannot stand for one upload of `spec`'s inputs as a product state, one line per problem."""
    problems = []
    if product.num_qubits != spec.circuit.num_qubits or product.num_clbits:
        problems.append(
            f"the product encoding has {product.num_qubits} qubits and {product.num_clbits} clbits; the circuit "
            f"{spec.circuit.num_qubits} qubits, and an encoding measures nothing"
        )
    if entangling := sorted({i.operation.name for i in product.data if is_entangling(i.operation)}):
        problems.append(f"the product encoding has gates on two or more qubits ({', '.join(entangling)})")
    if set(product.parameters) != set(spec.inputs):
        problems.append("the product encoding must read every input of the circuit and no other parameter")
    return problems


def separable(spec: Circuit, product=None) -> Circuit:
    """`spec` with every gate on two or more qubits outside its encoding spans removed; with `product` (a
    QuantumCircuit from the system's PRODUCT_HOOK), each encoding span replaced by it as well. Every other
    instruction is kept, in order; the derived Circuit has the same inputs, output and observables, its
    weights are those still in the circuit, and its `encoding` the spans of the kept or new uploads (so the
    derivation applied again changes nothing)."""
    problems = encoding_problems(spec) + ([] if product is None else product_problems(spec, product))
    if problems:
        raise ValueError("; ".join(problems))
    source = spec.circuit
    derived = source.copy_empty_like(name=f"{source.name}_{'separable' if product is None else 'product'}")
    stops = dict(spec.encoding)
    spans, index = [], 0
    while index < len(source.data):
        if index in stops:  # one upload: kept as it is, or replaced by the product encoding
            begin = len(derived.data)
            if product is None:
                for instruction in source.data[index : stops[index]]:
                    derived.append(instruction)
            else:
                derived.compose(product, inplace=True)
            spans.append((begin, len(derived.data)))
            index = stops[index]
            continue
        instruction = source.data[index]
        if not is_entangling(instruction.operation):
            derived.append(instruction)
        index += 1
    kept = set(derived.parameters)
    weights = tuple(w for w in spec.weights if w in kept)
    return Circuit(derived, spec.inputs, weights, spec.output, spec.observables, tuple(spans))


def setting_circuit(system, values: dict) -> Circuit:
    """The circuit a setting's runs train, evaluate on Aer and draw: the system module's `circuit(values)`,
    then, by values["entanglement"] (absent: "entangled"), as it is, `separable`, or `separable` with the
    module's product encoding."""
    spec = system.circuit(values)
    entanglement = values.get("entanglement", "entangled")
    allowed = choices(system)
    if entanglement not in allowed:
        name = system.__name__.rsplit(".", 1)[-1]
        raise ValueError(
            f"entanglement = {entanglement!r}: system {name!r} allows {', '.join(allowed)}"
            + (f" (its encoding is a product state already: no {PRODUCT_HOOK})" if entanglement == "product" else "")
        )
    if entanglement == "entangled":
        return spec
    product = getattr(system, PRODUCT_HOOK)(spec) if entanglement == "product" else None
    return separable(spec, product)
