"""Classification metrics from predicted probabilities: accuracy, cross-entropy, per-class accuracy, confusion."""

from __future__ import annotations

import numpy as np

N_CLASSES = 10


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """counts[true, predicted] as int64 (10, 10)."""
    counts = np.zeros((N_CLASSES, N_CLASSES), dtype=np.int64)
    np.add.at(counts, (labels.astype(int), predicted.astype(int)), 1)
    return counts


def metrics(probabilities: np.ndarray, labels: np.ndarray) -> dict:
    """accuracy, loss (mean categorical cross-entropy), per-class accuracy (recall) and the confusion matrix."""
    probabilities = probabilities.astype(np.float64)
    predicted = probabilities.argmax(axis=1)
    picked = np.clip(probabilities[np.arange(len(labels)), labels.astype(int)], 1e-12, 1.0)
    counts = confusion_matrix(labels, predicted)
    support = counts.sum(axis=1)
    per_class = np.where(support > 0, np.diag(counts) / np.maximum(support, 1), np.nan)
    return {
        "accuracy": float(np.mean(predicted == labels)),
        "loss": float(-np.mean(np.log(picked))),
        "n": len(labels),
        "per_class_accuracy": [None if np.isnan(v) else float(v) for v in per_class],
        "confusion": counts.tolist(),
    }


def summary(per_split: dict[str, dict]) -> dict:
    """Flatten {split: metrics} to the keys the table reads (train_accuracy, val_loss, ...) plus the details."""
    flat = {}
    for split, values in per_split.items():
        flat[f"{split}_accuracy"] = values["accuracy"]
        flat[f"{split}_loss"] = values["loss"]
        flat[f"{split}_per_class_accuracy"] = values["per_class_accuracy"]
        flat[f"{split}_confusion"] = values["confusion"]
        flat[f"{split}_n"] = values["n"]
    return flat
