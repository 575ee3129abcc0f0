"""Config checks run at workflow start, before any job: the JSON schema (every error, each naming its key
and what is allowed) and the rules across keys that a schema cannot express."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml


class ConfigError(ValueError):
    """A config value is out of range, of the wrong type, unknown, or inconsistent with another key."""


def _allowed(schema: dict) -> str:
    parts = []
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        parts.append(" or ".join(types))
    for word, key in (("one of", "enum"), ("exactly", "const")):
        if key in schema:
            parts.append(f"{word} {schema[key]}")
    for word, key in ((">=", "minimum"), (">", "exclusiveMinimum"), ("<=", "maximum"), ("<", "exclusiveMaximum")):
        if key in schema:
            parts.append(f"{word} {schema[key]}")
    if "properties" in schema:
        parts.append("keys " + ", ".join(schema["properties"]))
    return ", ".join(parts)


def _schema_location(error) -> str:
    """Where in the schema file the rejecting keyword sits, e.g. properties.systems (to add a key there)."""
    return ".".join(str(p) for p in list(error.schema_path)[:-1]) or "(top level)"


def schema_errors(config: dict, schema_path: str | Path) -> list[str]:
    """One line per schema violation: 'quantum.shots = -3: -3 is less than the minimum of 1 (allowed: ...)'.
    An unknown key also names where the schema declares that object's keys (to add one there)."""
    import jsonschema

    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    lines = secret_errors(config)
    for error in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path))):
        key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        if error.validator in ("additionalProperties", "unevaluatedProperties"):
            known = set(error.schema.get("properties", {}))
            if "$ref" in error.schema:  # a system's section: the shared driver keys too
                known |= set(_resolve(schema, error.schema["$ref"]).get("properties", {}))
            extra = sorted(set(error.instance) - known - set(SECRET_KEYS))
            if not extra:  # a secret key has its own message above
                continue
            allowed = f"object, keys {', '.join(sorted(known))}" if "$ref" in error.schema else _allowed(error.schema)
            lines.append(
                f"{key}: unknown key(s) {extra} (allowed: {allowed}; a new key is declared in "
                f"{_relative(schema_path)} at {_schema_location(error)}.properties)"
            )
        else:
            lines.append(f"{key} = {error.instance!r}: {error.message} (allowed: {_allowed(error.schema)})")
    return lines


# Key names that would hold an IBM Quantum credential. Config files are committed, copied into runs and shown in
# errors, so a credential is refused wherever it appears, and its value is never repeated.
SECRET_KEYS = ("token", "api_key", "apikey", "password", "secret")


def secret_errors(config, where: str = "") -> list[str]:
    problems = []
    if isinstance(config, dict):
        for key, value in config.items():
            name = f"{where}.{key}" if where else str(key)
            if str(key).lower() in SECRET_KEYS:
                problems.append(
                    f"{name}: credentials never go in the config (it is committed, copied and logged); remove the "
                    "key and save your IBM Quantum API key once with QiskitRuntimeService.save_account(token=..., "
                    "channel='ibm_quantum_platform') (kept in ~/.qiskit/qiskit-ibm.json) or set QISKIT_IBM_TOKEN in "
                    "the environment (docs/hardware.md)"
                )
            else:
                problems.extend(secret_errors(value, name))
    return problems


def _relative(path: str | Path) -> str:
    """The schema file as a person finds it in the repository (workflow/schemas/...), else as given."""
    parts = Path(path).resolve().parts
    return "/".join(parts[parts.index("workflow") :]) if "workflow" in parts else str(path)


def _resolve(schema: dict, ref: str) -> dict:
    """The subschema of a local $ref ("#/$defs/system")."""
    node = schema
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _raise(problems: list[str]) -> None:
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))


def check_schema(config: dict, schema_path: str | Path) -> None:
    """Raise ConfigError listing every schema violation; does nothing for a valid config."""
    _raise(schema_errors(config, schema_path))


def with_defaults(given: dict, defaults: dict) -> dict:
    """`given` merged over `defaults` the way Snakemake merges --configfile over a `configfile:`: mappings key by
    key at every depth, any other value (lists included) replaced whole. Neither argument is changed."""
    merged = copy.deepcopy(defaults)
    for key, value in given.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = with_defaults(value, merged[key])
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def check_consistency(config: dict) -> None:
    """Raise ConfigError for keys that disagree with each other (run after defaults are filled in), and for
    the trainable systems' settings (`systems_errors`)."""
    from .readings import config_errors as readings_errors

    problems = systems_errors(config)
    _raise(
        cross_key_errors(config)
        + problems
        + ([] if problems else pair_errors(config))
        + hardware_errors(config)
        + readings_errors(config)
    )


def hardware_errors(config: dict) -> list[str]:
    """With quantum.executor ibm_runtime: the device checks that need no network (qtlmnist.hardware)."""
    if config["quantum"].get("executor", "aer") != "ibm_runtime":
        return []  # nothing of Qiskit Runtime is imported for an Aer-only run
    from .hardware import config_errors

    return config_errors(config)


def cross_key_errors(config: dict) -> list[str]:
    problems = []
    quantum, latent_dim = config["quantum"], config["autoencoder"]["latent_dim"]
    if quantum["reduction"] in ("pca", "first") and latent_dim < quantum["n_qubits"]:
        problems.append(
            f"autoencoder.latent_dim = {latent_dim}: reduction '{quantum['reduction']}' needs at least "
            f"quantum.n_qubits = {quantum['n_qubits']} latent dimensions (allowed: latent_dim >= n_qubits)"
        )
    train_rows, fraction = config["preprocess"]["max_train"], config["preprocess"]["val_fraction"]
    if train_rows is not None:
        val_rows = round(train_rows * fraction)
        if val_rows < 10 or train_rows - val_rows < 10:
            problems.append(
                f"preprocess.max_train = {train_rows} with preprocess.val_fraction = {fraction} leaves fewer "
                "than 10 images in train or validation (allowed: at least 10 in each)"
            )
    return problems


# --- trainable systems -----------------------------------------------------------------------------------

# The `systems` keys shared by every system; every other key of the section is a system's own section.
SYSTEMS_SHARED = ("run", "seeds", "shots", "threads", "sarkar_loop")
DEFAULT_SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"


def system_key_schemas(schema: dict, name: str) -> dict[str, dict]:
    """A system's value keys (not `settings`, `run_settings`) and their schemas: the shared driver keys of
    `$defs/system` and the section's own, both applying where a section narrows a shared key."""
    from .systems import SECTION_KEYS

    section = schema["properties"]["systems"]["properties"][name]
    shared = _resolve(schema, section["$ref"])["properties"] if "$ref" in section else {}
    own = section.get("properties", {})
    keys = {}
    for key in [*shared, *(k for k in own if k not in shared)]:
        parts = [part[key] for part in (shared, own) if key in part]
        keys[key] = parts[0] if len(parts) == 1 else {"allOf": parts}
    return {key: spec for key, spec in keys.items() if key not in SECTION_KEYS}


def systems_errors(config: dict, schema_path: str | Path = DEFAULT_SCHEMA) -> list[str]:
    """Problems of the `systems` section a schema cannot see: names in `systems.run` that are not registered
    or have no section, and each setting's merged values (the section's keys with the setting's overrides)
    checked against the section's key schemas, for a value of every key, and by the system's own cross-key
    check, named systems.<system>.settings.<setting>.<key>."""
    import jsonschema

    from .systems import PLAN_KEYS, SYSTEMS, hyperparameters

    schema = yaml.safe_load(Path(schema_path).read_text())
    sections = schema["properties"]["systems"]["properties"]
    where_schema = f"{_relative(schema_path)} at properties.systems.properties"
    systems = config.get("systems", {})
    problems = []
    for name in systems.get("run", []):
        if name not in SYSTEMS:
            problems.append(
                f"systems.run: unknown system {name!r} (registered: {', '.join(SYSTEMS)}; a system is a module "
                "in workflow/scripts/qtlmnist/systems/ that declares SYSTEM, see docs/adding-a-system.md)"
            )
        elif name not in sections:
            problems.append(
                f"systems.run: system {name!r} has no schema section: add `{name}` with its own keys and "
                f'`$ref: "#/$defs/system"` to {where_schema}'
            )
        elif name not in systems:
            problems.append(f"systems.run: system {name!r} has no section systems.{name} in config/config.yaml")
    for name, section in systems.items():
        if name in SYSTEMS_SHARED or name not in sections or name not in SYSTEMS or not isinstance(section, dict):
            continue  # an unknown section is the schema's error
        for setting in section.get("run_settings") or []:
            if setting not in section.get("settings", {}):
                problems.append(
                    f"systems.{name}.run_settings: {setting!r} is not a setting of systems.{name}.settings "
                    f"(allowed: {', '.join(section.get('settings', {}))})"
                )
        keys = system_key_schemas(schema, name)
        key_schema = {"type": "object", "properties": keys, "additionalProperties": False}
        for setting, overrides in section.get("settings", {}).items():
            where = f"systems.{name}.settings.{setting}"
            if not isinstance(overrides, dict):
                continue  # the schema's error
            values = hyperparameters(section) | overrides
            errors = list(jsonschema.Draft202012Validator(key_schema).iter_errors(values))
            for error in sorted(errors, key=lambda e: list(map(str, e.absolute_path))):
                if error.validator == "additionalProperties":
                    extra = sorted(set(error.instance) - set(keys))
                    problems.append(
                        f"{where}: unknown key(s) {extra} (allowed: {', '.join(keys)}; a new key is declared in "
                        f"{where_schema}.{name}.properties)"
                    )
                    continue
                key = ".".join(str(p) for p in error.absolute_path)
                source = "set by the setting" if error.absolute_path[0] in overrides else f"from systems.{name}"
                problems.append(
                    f"{where}.{key} = {error.instance!r} ({source}): {error.message} "
                    f"(allowed: {_allowed(error.schema)})"
                )
            if missing := [key for key in keys if key not in values and key not in PLAN_KEYS]:
                problems.append(
                    f"{where}: no value for {missing} (write each in systems.{name} in config/config.yaml, "
                    "its one place)"
                )
                continue
            if values["model"] == "sarkar" and "sarkar" not in SYSTEMS[name].model_inputs:
                problems.append(
                    f"{where}.model = 'sarkar': system {name!r} registers no model_inputs['sarkar'] (the files "
                    "its Sarkar hybrid reads; allowed: quantum, control)"
                )
            problems.extend(f"{where}.{problem}" for problem in entanglement_errors(name, values))
            check = SYSTEMS[name].check
            if not errors and check is not None:
                problems.extend(f"{where}: {problem}" for problem in check(values))
    return problems


def entanglement_errors(system: str, values: dict) -> list[str]:
    """A setting's `entanglement` against its system (qtlmnist.systems.separable): a value other than
    "entangled" only for model quantum (a control has no circuit), and "product" only for a system whose
    encoding entangles (its module defines the product-encoding hook). Each line starts with the key."""
    from .systems import load
    from .systems.separable import ENTANGLEMENTS, PRODUCT_HOOK, choices

    entanglement = values.get("entanglement", "entangled")
    if entanglement == "entangled" or entanglement not in ENTANGLEMENTS:
        return []  # an unknown value is the schema's error
    if values.get("model") != "quantum":
        return [
            f"entanglement = {entanglement!r}: model {values.get('model')!r} has no circuit to remove gates from "
            "(allowed with it: entangled; separable and product are variants of model quantum)"
        ]
    allowed = choices(load(system))
    if entanglement not in allowed:
        return [
            f"entanglement = {entanglement!r}: system {system!r} has no entangling data encoding to replace (its "
            f"module defines no {PRODUCT_HOOK}; allowed: {', '.join(allowed)})"
        ]
    return []


def _seeds_key(config: dict, system: str, setting: str) -> str:
    """Where a setting's seeds come from: its own `seeds`, its section's, or the shared `systems.seeds`."""
    section = config["systems"][system]
    if section["settings"][setting].get("seeds") is not None:
        return f"systems.{system}.settings.{setting}.seeds"
    return f"systems.{system}.seeds" if section.get("seeds") is not None else "systems.seeds"


def pair_errors(config: dict) -> list[str]:
    """Each quantum-vs-control pair of a system that runs (`qtlmnist.systems.Pair`) whose two settings both run
    must run the same seeds, at least 2 of them (the paired test across seeds); and name configured settings."""
    from .systems import SYSTEMS, setting_seeds, settings_to_run

    problems = []
    for name in config["systems"].get("run", []):
        section = config["systems"][name]
        running = settings_to_run(section)
        for pair in SYSTEMS[name].pairs:
            missing = [s for s in (pair.quantum, pair.control) if s not in section["settings"]]
            if missing:
                problems.append(
                    f"systems.{name}.settings: the comparison {pair.quantum} vs {pair.control} (qtlmnist.systems "
                    f"registry) needs setting(s) {missing} (allowed: define them, or drop the pair)"
                )
                continue
            if pair.quantum not in running or pair.control not in running:
                continue  # not asked: one of the two does not run
            seeds = {s: setting_seeds(config, name, s) for s in (pair.quantum, pair.control)}
            where = {s: _seeds_key(config, name, s) for s in seeds}
            if sorted(seeds[pair.quantum]) != sorted(seeds[pair.control]):
                problems.append(
                    f"{where[pair.quantum]} = {seeds[pair.quantum]} and {where[pair.control]} = "
                    f"{seeds[pair.control]}: the paired comparison {pair.quantum} vs {pair.control} needs the same "
                    "seeds in both (allowed: one list for both settings)"
                )
            elif len(seeds[pair.quantum]) < 2:
                problems.append(
                    f"{where[pair.quantum]} = {seeds[pair.quantum]}: the paired comparison {pair.quantum} vs "
                    f"{pair.control} tests across seeds and needs at least 2 (allowed: 2 or more seeds)"
                )
    return problems
