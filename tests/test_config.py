"""The config schema and cross-key checks reject bad values before any job, naming the key."""

import copy
from pathlib import Path

import pytest
import yaml

from qtlmnist.config import ConfigError, check_consistency, check_schema
from qtlmnist.systems import settings_to_run

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
DEFAULT = yaml.safe_load((ROOT / "config/config.yaml").read_text())


def with_value(section, key, value):
    """DEFAULT with config[section][key] = value; section may be dotted (augment.mnist)."""
    config = copy.deepcopy(DEFAULT)
    target = config
    for part in section.split("."):
        target = target[part]
    target[key] = value
    return config


def merged(config: dict, change: dict) -> dict:
    """`change` merged into `config`, nested dicts key by key (as Snakemake merges --configfile)."""
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            merged(config[key], value)
        else:
            config[key] = value
    return config


def test_shipped_configs_are_valid():
    check_schema(DEFAULT, SCHEMA)
    check_consistency(DEFAULT)
    ci = merged(copy.deepcopy(DEFAULT), yaml.safe_load((ROOT / "config/ci.yaml").read_text()))
    check_schema(ci, SCHEMA)
    check_consistency(ci)
    extended = merged(copy.deepcopy(DEFAULT), yaml.safe_load((ROOT / "config/systems-extended.yaml").read_text()))
    check_schema(extended, SCHEMA)
    check_consistency(extended)
    # make systems runs 002's two-class tasks; the extended file adds its ten-class ones, every setting defined
    section = DEFAULT["systems"]["cnn_circuit"]
    ten_class = {name for name, setting in section["settings"].items() if setting.get("classes", "") is None}
    assert len(ten_class) == 6 and not ten_class & set(settings_to_run(section))
    assert settings_to_run(extended["systems"]["cnn_circuit"]) == list(section["settings"])


@pytest.mark.parametrize(
    "section, key, value, expected",
    [
        ("quantum", "shots", -5, r"quantum\.shots = -5: -5 is less than the minimum of 1 \(allowed: integer, >= 1\)"),
        ("quantum", "shots", 0, r"quantum\.shots = 0"),
        ("quantum", "shots", "many", r"quantum\.shots = 'many': 'many' is not of type 'integer'"),
        ("quantum", "n_qubits", 4, r"quantum\.n_qubits = 4: 5 was expected \(allowed: integer, exactly 5\)"),
        ("quantum", "reduction", "lda", r"quantum\.reduction = 'lda'.*one of \['pca', 'first', 'chunks'\]"),
        ("preprocess", "val_fraction", 1.0, r"preprocess\.val_fraction = 1\.0.*\(allowed: number, > 0, < 1\)"),
        ("preprocess", "val_fraction", 0, r"preprocess\.val_fraction = 0"),
        ("classifier", "units", [64, 32], r"classifier\.units = \[64, 32\]: .* is too short"),
        ("augment.mnist", "horizontal_flip", "yes", r"augment\.mnist\.horizontal_flip = 'yes': 'yes' is not of type"),
        (
            "data.fashion_mnist",
            "mirrors",
            ["ftp://x"],
            r"data\.fashion_mnist\.mirrors\.0 = 'ftp://x': 'ftp://x' does not",
        ),
    ],
)
def test_bad_values_name_the_key_and_what_is_allowed(section, key, value, expected):
    with pytest.raises(ConfigError, match=expected):
        check_schema(with_value(section, key, value), SCHEMA)


def test_unknown_keys_are_named():
    config = with_value("quantum", "shotz", 10)
    config["extra_section"] = {}
    with pytest.raises(ConfigError) as error:
        check_schema(config, SCHEMA)
    assert "quantum: unknown key(s) ['shotz']" in str(error.value)
    assert "(top level): unknown key(s) ['extra_section']" in str(error.value)


def test_latent_dim_below_qubits_with_pca_is_refused():
    config = with_value("autoencoder", "latent_dim", 4)
    check_schema(config, SCHEMA)
    with pytest.raises(ConfigError, match=r"autoencoder\.latent_dim = 4: reduction 'pca' needs at least"):
        check_consistency(config)
    config["quantum"]["reduction"] = "chunks"  # chunks pads, so any width works
    check_consistency(config)


def test_the_dataset_key_allows_exactly_the_registry_datasets():
    from qtlmnist.data import DATASETS

    schema = yaml.safe_load(SCHEMA.read_text())
    assert schema["properties"]["dataset"]["enum"] == list(DATASETS)
    for section in ("data", "augment"):
        assert set(DEFAULT[section]) - {"download_timeout_s"} == set(DATASETS), section
    config = copy.deepcopy(DEFAULT)
    config["dataset"] = "kmnist"
    with pytest.raises(ConfigError, match=r"dataset = 'kmnist': 'kmnist' is not one of \['mnist', 'fashion_mnist'\]"):
        check_schema(config, SCHEMA)


def test_augmentation_defaults_differ_per_dataset_as_documented():
    assert DEFAULT["augment"]["mnist"]["horizontal_flip"] is False  # a mirrored 2 is not a 2
    assert DEFAULT["augment"]["fashion_mnist"]["horizontal_flip"] is True  # a mirrored shoe is a shoe
