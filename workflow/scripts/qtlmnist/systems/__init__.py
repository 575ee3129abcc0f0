"""The wing for trainable-circuit systems: one module per system, all standing on `engine` (a differentiable
statevector simulator that executes the same Qiskit circuit that is drawn and run on Aer) and on `shots`
(the shot-based evaluation of that circuit on Aer)."""
