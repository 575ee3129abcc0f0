"""A fair comparison at equal budget (`make study`, docs/study.md): each trainable system's circuit model, its
variants without entanglement and its classical control, each tuned by the same grid search with stratified
k-fold cross-validation on the training images only, the winner retrained over the verdicts' seeds and tested
once; learning curves; one table per system with the paired tests of the verdicts.

The study's models are settings of the systems' own machinery (`qtlmnist.systems`): a model is a few fixed
values (`VARIANTS`, e.g. separable = the circuit model with `entanglement: separable`) over the system's config
section, the study's `values` for that system and one configuration of its grid. Training is the systems' own
(`training.setting_models` / `fit_group`, the final retrain `training.run_group`): the folds of one configuration,
or the seeds of a retrain or of one learning-curve size, are the members of one group, one batched graph, each
with its own task data, initial weights and shuffles.

Selection sees no test image: a fold task is built from the task's training images alone (`fold_tasks`), its
held-out fold is the only set it is scored on, and the test set is first read by the final retrain.

The top of this module is light (no numpy, no TensorFlow): the Snakefile reads the plan and checks the config
at parse time. Heavy imports live inside the functions that train.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

# The study's models: fixed values over the system's section, and the key a system must have to offer the
# model (None: every system offers it). `entanglement` and `reupload` are driver keys of the systems
# (config $defs/system); a checkout whose systems lack the key does not plan the model (`models`).
VARIANTS = {
    "quantum": ({"model": "quantum"}, None),
    "separable": ({"model": "quantum", "entanglement": "separable"}, "entanglement"),
    "product": ({"model": "quantum", "entanglement": "product"}, "entanglement"),
    "no_reupload": ({"model": "quantum", "reupload": False}, "reupload"),
    "control": ({"model": "control"}, None),
}
# Keys a model fixes (never a grid's).
FIXED_KEYS = frozenset(key for values, _ in VARIANTS.values() for key in values)
# The pairs the table tests (first vs second, difference = first - second): does the tuned circuit beat its
# tuned control, and does entanglement (or re-uploading) matter. One Holm family over every pair of every
# system that ran.
COMPARED = (("quantum", "control"), ("quantum", "separable"), ("quantum", "product"), ("quantum", "no_reupload"))
CONFIGURATION_PATTERN = r"c\d+"
# The shared keys of `study` (config schema); every other key is a system's section.
SHARED_KEYS = ("run", "folds", "split_seed", "seeds", "curve_sizes", "curve_seeds", "curve_models", "threads")


class StudyError(ValueError):
    """The `study` section asks for something that cannot run; the message names the key."""


# --- the plan (parse time) --------------------------------------------------------------------------------


def _system_values(config: dict, system: str) -> dict:
    """The system's section values (no settings, no plan keys) with the study's `values` for it."""
    from .systems import PLAN_KEYS, hyperparameters

    section = hyperparameters(config["systems"][system])
    base = {key: value for key, value in section.items() if key not in PLAN_KEYS}
    return base | dict(config["study"][system].get("values") or {})


def offered(config: dict, system: str, model: str) -> bool:
    """Whether the system has the key the model needs (`VARIANTS`)."""
    needs = VARIANTS[model][1]
    return needs is None or needs in _system_values(config, system)


def models(config: dict, system: str) -> list[str]:
    """The study's models of one system that this checkout offers, in config order."""
    return [
        model for model in config["study"][system]["models"] if model in VARIANTS and offered(config, system, model)
    ]


def not_offered(config: dict) -> list[str]:
    """One line per configured model that this checkout's system does not offer (printed before a run)."""
    return [
        f"study.{system}.models.{model}: not planned, systems.{system} has no key {VARIANTS[model][1]!r}"
        for system in config["study"]["run"]
        for model in config["study"][system]["models"]
        if model in VARIANTS and not offered(config, system, model)
    ]


def grid(config: dict, system: str, model: str) -> list[dict]:
    """Every configuration of one model: the system's shared `grid` times the model's own, in the order the
    keys are written (the last key varies fastest). Named c0, c1, ... in this order."""
    section = config["study"][system]
    axes = dict(section.get("grid") or {}) | dict(section["models"][model] or {})
    keys = list(axes)
    return [dict(zip(keys, combination)) for combination in itertools.product(*(axes[key] for key in keys))]


def configurations(config: dict, system: str, model: str) -> list[str]:
    return [f"c{index}" for index in range(len(grid(config, system, model)))]


def configuration_values(config: dict, system: str, model: str, configuration: str | None = None) -> dict:
    """What one run reads: the system's values, the study's, the model's fixed values, the configuration's
    (none: the model before tuning) and the shared shot count."""
    values = _system_values(config, system) | VARIANTS[model][0]
    if configuration is not None:
        values |= grid(config, system, model)[int(configuration.removeprefix("c"))]
    return values | {"shots": config["systems"]["shots"]}


def final_seeds(config: dict) -> list[int]:
    """The final retrain's seeds: `study.seeds`, else the verdicts' `systems.seeds`."""
    seeds = config["study"]["seeds"]
    return list(config["systems"]["seeds"] if seeds is None else seeds)


def fold_seeds(config: dict) -> list[int]:
    """Fold f of every configuration trains from seed split_seed + 1 + f (its initial weights and shuffles)."""
    return [config["study"]["split_seed"] + 1 + fold for fold in range(config["study"]["folds"])]


def curve_models(config: dict, system: str) -> list[str]:
    return [model for model in config["study"]["curve_models"] if model in models(config, system)]


def comparisons(config: dict, system: str) -> list[tuple[str, str]]:
    planned = models(config, system)
    return [(a, b) for a, b in COMPARED if a in planned and b in planned]


@dataclass(frozen=True)
class Job:
    rule: str
    system: str
    model: str
    members: int  # folds or seeds trained as one group
    values: dict


def job(config: dict, rule: str, system: str, model: str, configuration: str | None = None, size=None) -> Job:
    """One training job of the study, with the values it costs: a search job's configuration; a final retrain
    or a learning-curve size, whose configuration the search picks, at the model's costliest one."""
    study = config["study"]
    if rule == "study_cv":
        return Job(rule, system, model, study["folds"], configuration_values(config, system, model, configuration))
    from .resources import work

    names = configurations(config, system, model)
    costliest = max((configuration_values(config, system, model, c) for c in names), key=work)
    if rule == "study_final":
        return Job(rule, system, model, len(final_seeds(config)), costliest)
    sized = costliest | ({"train_images": int(size)} if "train_images" in costliest else {})
    return Job(rule, system, model, len(study["curve_seeds"]), sized)


def jobs(config: dict) -> list[Job]:
    """Every training job of the study (search, final retrain, learning curves), for the count and estimate."""
    planned = []
    for system in config["study"]["run"]:
        for model in models(config, system):
            planned += [job(config, "study_cv", system, model, c) for c in configurations(config, system, model)]
            planned.append(job(config, "study_final", system, model))
            if model in curve_models(config, system):
                planned += [job(config, "study_curve", system, model, size=n) for n in config["study"]["curve_sizes"]]
    return planned


def estimate(config: dict, cores: int) -> str:
    """The planned job count and an estimate of the wall time on `cores` cores (qtlmnist.resources' measured
    per-(system, model) costs), as printed before the study starts."""
    from . import resources

    planned = jobs(config)
    seconds = [resources.system_run_seconds(j.system, j.values, j.members) for j in planned]
    threads = config["study"]["threads"]
    parallel = max(1, cores // threads)
    by_rule = {rule: sum(1 for j in planned if j.rule == rule) for rule in ("study_cv", "study_final", "study_curve")}
    # jobs spread over the cores; the longest job bounds it from below
    wall = max(sum(seconds) / parallel, max(seconds, default=0))
    per_system = {
        system: sum(s for j, s in zip(planned, seconds) if j.system == system) / 3600
        for system in config["study"]["run"]
    }
    lines = [
        f"study: {len(planned)} training jobs ({by_rule['study_cv']} search, {by_rule['study_final']} final "
        f"retrain, {by_rule['study_curve']} learning curve) plus tables and figures; estimated "
        f"{wall / 3600:.1f} h ({wall / 60:.0f} min) on {cores} core(s) ({sum(seconds) / 3600:.1f} h of jobs at "
        f"{threads} thread(s) each: "
        + ", ".join(f"{system} {hours:.1f} h" for system, hours in per_system.items())
        + f"; measured per system and model at commit {resources.SYSTEM_RUNS_COMMIT}, qtlmnist.resources)"
    ]
    return "\n".join(lines + not_offered(config))


# --- checks (parse time, before any job) ------------------------------------------------------------------


def errors(config: dict, schema: dict) -> list[str]:
    """One line per problem of the `study` section a schema cannot see, naming the key: a system that is not
    registered or has no section, an unknown model, an empty grid, a grid key the system does not have,
    configurations a model's checks refuse, grids of unequal size or budget without a stated `reason`, and
    more folds than the smallest class can hold."""
    from .config import system_key_schemas
    from .systems import SYSTEMS

    study = config.get("study", {})
    problems = [
        f"study.{key}: neither a key of study ({', '.join(SHARED_KEYS)}) nor a registered system ({', '.join(SYSTEMS)})"
        for key in study
        if key not in SHARED_KEYS and key not in SYSTEMS
    ]
    for system in study.get("run", []):
        where = f"study.{system}"
        if system not in SYSTEMS or system not in config.get("systems", {}):
            problems.append(
                f"study.run: {system!r} is not a registered system with a section in `systems` "
                f"(allowed: {', '.join(name for name in SYSTEMS if name in config.get('systems', {}))})"
            )
            continue
        if system not in study:
            problems.append(f"{where}: no section for {system!r} (its values, grid and models; config/config.yaml)")
            continue
        keys = system_key_schemas(schema, system)
        section = study[system]
        for key in section.get("values") or {}:
            if key in FIXED_KEYS:
                problems.append(f"{where}.values.{key}: fixed by the model ({', '.join(VARIANTS)}), not a value")
            elif key not in keys:
                problems.append(
                    f"{where}.values.{key}: systems.{system} has no key {key!r} (allowed: {', '.join(keys)})"
                )
        unknown = [model for model in section.get("models") or {} if model not in VARIANTS]
        problems += [f"{where}.models.{model}: unknown model (allowed: {', '.join(VARIANTS)})" for model in unknown]
        if not section.get("models"):
            problems.append(f"{where}.models: no model to tune (allowed: {', '.join(VARIANTS)})")
            continue
        axes = {f"{where}.grid": section.get("grid") or {}} | {
            f"{where}.models.{model}": axes or {} for model, axes in section["models"].items()
        }
        for place, axis in axes.items():
            for key, options in axis.items():
                if key not in keys:
                    problems.append(f"{place}.{key}: systems.{system} has no key {key!r} (allowed: {', '.join(keys)})")
                elif key in FIXED_KEYS:
                    problems.append(f"{place}.{key}: fixed by the model ({', '.join(VARIANTS)}), not a grid key")
                elif not isinstance(options, list) or not options:
                    problems.append(f"{place}.{key} = {options!r}: an empty grid (allowed: a list of 1 or more values)")
        if problems or unknown:
            continue
        planned = models(config, system)
        for model in planned:
            problems += _value_errors(config, schema, system, model)
        problems += _budget_errors(config, system, planned)
        problems += _fold_errors(config, system)
    if study.get("run") and not problems:
        missing = [m for m in study["curve_models"] if m not in VARIANTS]
        problems += [f"study.curve_models: unknown model {m!r} (allowed: {', '.join(VARIANTS)})" for m in missing]
    return problems


def _value_errors(config: dict, schema: dict, system: str, model: str) -> list[str]:
    """Each configuration's merged values against the system's key schemas and its own cross-key check."""
    import jsonschema

    from .config import _allowed, system_key_schemas
    from .systems import SYSTEMS

    keys = system_key_schemas(schema, system)
    validator = jsonschema.Draft202012Validator({"type": "object", "properties": keys})
    problems = []
    for configuration, point in zip(configurations(config, system, model), grid(config, system, model)):
        values = configuration_values(config, system, model, configuration)
        values.pop("shots")
        where = f"study.{system}.models.{model} ({configuration}: {point})"
        found = [
            f"{where}: {'.'.join(map(str, e.absolute_path))} = {e.instance!r}: {e.message} "
            f"(allowed: {_allowed(e.schema)})"
            for e in validator.iter_errors(values)
        ]
        check = SYSTEMS[system].check
        if not found and check is not None:
            found = [f"{where}: {problem}" for problem in check(values)]
        problems += found
        if found:
            break  # one configuration's message says it; the rest of the grid repeats it
    return problems


def _budget_errors(config: dict, system: str, planned: list[str]) -> list[str]:
    """Every model of a system: the same number of configurations and the same training budgets (images x
    epochs of each configuration, as a sorted list), or a stated `reason`."""
    from .resources import work

    if config["study"][system].get("reason"):
        return []
    sizes = {model: len(grid(config, system, model)) for model in planned}
    budgets = {
        model: sorted(
            work(configuration_values(config, system, model, c)) for c in configurations(config, system, model)
        )
        for model in planned
    }
    where = f"study.{system}"
    if len(set(sizes.values())) > 1:
        return [
            f"{where}.models: grids of unequal size {sizes} (allowed: the same number of configurations for every "
            f"model, or a stated {where}.reason why a knob has no counterpart)"
        ]
    if len({tuple(b) for b in budgets.values()}) > 1:
        return [
            f"{where}.models: unequal training budgets (images x epochs per configuration: {budgets}; allowed: the "
            f"same for every model, or a stated {where}.reason)"
        ]
    return []


def _fold_errors(config: dict, system: str) -> list[str]:
    """k folds need k images of every class. Where the study's training images are a number (train_images), a
    class of the task can hold at most train_images / classes of them in the balanced case, so k above that
    cannot work; the job checks the drawn labels again before it trains (`fold_tasks`)."""
    folds = config["study"]["folds"]
    values = _system_values(config, system)
    images = values.get("train_images")
    classes = values.get("classes")
    n_classes = len(classes) if isinstance(classes, list) else (10 if "classes" in values else 2)
    if images is not None and folds > images // n_classes:
        return [
            f"study.folds = {folds}: larger than the smallest class can be ({images} training images of "
            f"{n_classes} classes, study.{system}.values / systems.{system}.train_images; allowed: <= "
            f"{images // n_classes})"
        ]
    return []


# --- the jobs (heavy imports inside) ------------------------------------------------------------------------


def fold_tasks(task, folds: int, split_seed: int, where: str = "study.folds") -> list:
    """k tasks from one task's training images: fold f trains on the other folds and is scored on fold f (its
    only evaluation set, `val`); no test image is in any of them. scikit-learn's StratifiedKFold, shuffled with
    `split_seed`. Every fold trains on the same number of rows (a group trains on equal sizes): the smallest
    complement, the few extra rows of larger ones left out (the last of their shuffled order)."""
    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    from .systems.common import Task

    x, y = task.train
    smallest = int(np.bincount(y).min(initial=len(y)) if len(y) else 0)
    if folds > smallest:
        raise StudyError(
            f"{where} = {folds}: larger than the smallest class of the training images ({smallest} images; "
            f"allowed: <= {smallest})"
        )
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=split_seed)
    splits = list(splitter.split(np.zeros(len(y)), y))
    rows = min(len(train) for train, _ in splits)
    rng = np.random.default_rng(split_seed)
    tasks = []
    for train, held in splits:
        kept = np.sort(rng.permutation(train)[:rows])
        tasks.append(Task(train=(x[kept], y[kept]), evaluation={"val": (x[held], y[held])}, classes=task.classes))
    return tasks


def subsample(task, size: int, seed: int):
    """The task with `size` of its training images (stratified, drawn with `seed`), its evaluation sets kept;
    all of them when it has no more."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    from .systems.common import Task

    x, y = task.train
    if size >= len(y):
        return task
    kept, _ = train_test_split(np.arange(len(y)), train_size=size, stratify=y, random_state=seed)
    kept = np.sort(kept)
    return Task(train=(x[kept], y[kept]), evaluation=task.evaluation, classes=task.classes)


def fit_and_score(system, tasks: list, values: dict, seeds: list[int], eval_set: str) -> list[dict]:
    """Train one member per task as one group (training.setting_models, fit_group) and score each on its
    `eval_set` with the model's own forward pass (as run: exact for precision 0); no Aer. Per member: seed,
    rows trained, n, accuracy, final loss, and the labels and predictions."""
    from .systems import training

    _, models_ = training.setting_models(system, values, seeds)  # the model's own circuit, as a run builds it
    histories = training.fit_group(system, models_, tasks, values | {"history_sets": []}, seeds)
    scores = []
    for seed, task, model, history in zip(seeds, tasks, models_, histories):
        x, labels = task.evaluation[eval_set]
        predicted = system.decide(training.forward(model, x))
        scores.append(
            {"seed": seed, "train_rows": len(task.train[1]), "n": len(labels)}
            | {"accuracy": float((predicted == labels).mean()), "final_loss": float(history["loss"].iloc[-1])}
            | {"labels": labels.tolist(), "predictions": predicted.tolist()}
        )
    return scores


def cross_validate(system, inputs: dict, values: dict, folds: int, split_seed: int, seeds: list[int]):
    """One configuration's k folds as one group: the task drawn with `split_seed`, split by `fold_tasks`, fold f
    trained from seeds[f]. A DataFrame, one row per fold: fold, seed, train_rows, n (held-out images),
    accuracy (on them), final_loss."""
    import pandas as pd

    task = system.load_task(inputs, values, split_seed)
    tasks = fold_tasks(task, folds, split_seed)
    scores = fit_and_score(system, tasks, values, seeds, "val")
    rows = [
        {"fold": f} | {k: v for k, v in s.items() if k not in ("labels", "predictions")} for f, s in enumerate(scores)
    ]
    return pd.DataFrame(rows)


def chosen_job(named_inputs, values: dict) -> tuple[dict, dict, dict]:
    """What study_final and study_curve read: (the system's input files without the chosen configuration's,
    the model's values with the chosen point applied, the chosen configuration as study_select wrote it)."""
    import json
    from pathlib import Path

    chosen = json.loads(Path(named_inputs["chosen"]).read_text())
    inputs = {name: path for name, path in named_inputs.items() if name != "chosen"}
    return inputs, dict(values) | chosen["point"], chosen


def learning_curve(system, inputs: dict, values: dict, size: int, seeds: list[int]):
    """Test accuracy (as run) at `size` training images, over `seeds` as one group: each seed's task (drawn
    with its seed), cut to `size` stratified images with the same seed. One row per seed."""
    import pandas as pd

    tasks = [subsample(system.load_task(inputs, values, seed), size, seed) for seed in seeds]
    sizes = {len(task.train[1]) for task in tasks}
    scores = fit_and_score(system, tasks, values, seeds, "test")
    rows = [{k: v for k, v in s.items() if k not in ("labels", "predictions")} for s in scores]
    return pd.DataFrame(rows).assign(size=size, images=sizes.pop())


# --- selection and tables ---------------------------------------------------------------------------------


def search_table(scores: dict[str, object], points: dict[str, dict]):
    """Every configuration's fold scores, one row per (configuration, fold), with the configuration's values
    as columns and its mean validation accuracy."""
    import pandas as pd

    frames = []
    for configuration, frame in scores.items():
        point = points[configuration]
        frame = frame.assign(configuration=configuration, **{key: [value] * len(frame) for key, value in point.items()})
        frames.append(frame.assign(mean_accuracy=frame["accuracy"].mean()))
    return pd.concat(frames, ignore_index=True)


def choose(table) -> str:
    """The configuration of the highest mean validation accuracy; a tie goes to the first in grid order."""
    means = table.groupby("configuration", sort=False)["accuracy"].mean()
    order = sorted(means.index, key=lambda name: int(name.removeprefix("c")))
    return max(order, key=lambda name: (means[name], -order.index(name)))


def published(system_module) -> tuple[float | None, str]:
    """The source's own number for its circuit model (its first claim compared 'equal' on a test set), and
    the claim; None where the source publishes none (e.g. 'above chance')."""
    for claim in system_module.CLAIMS:
        if claim.compare == "equal" and claim.claimed is not None and "test" in claim.eval_set:
            return claim.claimed, f"{claim.claim} ({claim.source})"
    return None, "no number published"


SUMMARY_COLUMNS = [
    "system", "model", "configuration", "values", "cv_mean", "cv_std", "n_seeds", "n_trained", "test_mean",
    "test_low", "test_high", "test_median", "test_min", "test_max", "test_n", "published", "published_claim",
]  # fmt: skip


def summary_table(finals: dict, chosen: dict, published_by_system: dict, trained_confidence: float):
    """One row per (system, model): the chosen configuration, its cross-validated mean, and the final retrain's
    test accuracy (as run, percent) over seeds: mean with its 95% t interval (bounded to [0, 100]: where some
    runs stick, the distribution has two peaks and a symmetric interval can pass 100%), median and range, and
    how many runs trained by the verdicts' rule (`systems.report.run_trained`, on each run's training images)."""
    import json

    import numpy as np
    import pandas as pd

    from .stats import t_interval
    from .systems.report import run_trained

    rows = []
    for (system, model), runs in finals.items():
        accuracies = np.array([100 * m["sets"]["test"]["accuracy"] for m in runs.values()])
        mean, _, low, high = t_interval(accuracies) if len(accuracies) > 1 else (accuracies.mean(), 0, np.nan, np.nan)
        pick = chosen[(system, model)]
        claimed, claim = published_by_system[system]
        trained = sum(run_trained(m, trained_confidence) for m in runs.values())
        rows.append(
            {"system": system, "model": model, "configuration": pick["configuration"]}
            | {"values": json.dumps(pick["point"], sort_keys=True), "cv_mean": 100 * pick["cv_mean"]}
            | {"cv_std": 100 * pick["cv_std"], "n_seeds": len(accuracies), "n_trained": trained, "test_mean": mean}
            | dict(zip(("test_low", "test_high"), np.clip([low, high], 0.0, 100.0)))  # NaN stays NaN
            | {"test_median": float(np.median(accuracies)), "test_min": accuracies.min(), "test_max": accuracies.max()}
            | {"test_n": next(iter(runs.values()))["sets"]["test"]["n"], "published": claimed, "published_claim": claim}
        )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def comparison_tables(finals: dict, pairs: dict[str, list[tuple[str, str]]], rules):
    """The verdicts' paired tests (qtlmnist.systems.report.comparisons_table) over every pair of `pairs`, one
    Holm family; columns `model` and `against` (the verdicts' table says quantum and control)."""
    from .systems import Pair
    from .systems.report import comparisons_table

    runs = {(system, model, seed): m for (system, model), by_seed in finals.items() for seed, m in by_seed.items()}
    table, per_seed = comparisons_table(
        runs, {system: tuple(Pair(a, b) for a, b in chosen) for system, chosen in pairs.items()}, rules
    )
    table, per_seed = (frame.rename(columns={"quantum": "model", "control": "against"}) for frame in (table, per_seed))
    # the verdict names the model that is higher; "control" there means the second model of the pair
    table["verdict"] = [
        str(v).replace("quantum higher", f"{a} higher").replace("control higher", f"{b} higher")
        for v, a, b in zip(table["verdict"], table["model"], table["against"])
    ]
    return table, per_seed


def summary_markdown(summary) -> str:
    """Per system: as published | each model tuned (test accuracy over seeds, 95% interval, and its CV mean)."""
    from .report import markdown_table

    def cell(row) -> str:
        if row is None:
            return "not planned"
        interval = "" if row.test_low != row.test_low else f" [{row.test_low:.1f}, {row.test_high:.1f}]"
        stuck = "" if row.n_trained == row.n_seeds else f"; {row.n_trained} of {row.n_seeds} runs train"
        return f"{row.test_mean:.1f}%{interval} (CV {row.cv_mean:.1f}%{stuck})"

    model_order = [m for m in VARIANTS if m in set(summary["model"])]
    columns = ["system", "as published", *(f"tuned {m}" for m in model_order)]
    rows = []
    for system, frame in summary.groupby("system", sort=False):
        by_model = {r.model: r for r in frame.itertuples(index=False)}
        first = frame.iloc[0]
        claimed = "" if first["published"] != first["published"] else f"{first['published']:.1f}%"
        rows.append([system, claimed or first["published_claim"], *(cell(by_model.get(m)) for m in model_order)])
    return markdown_table(columns, rows)


def chosen_markdown(summary) -> str:
    """Each (system, model)'s chosen configuration, its values and its CV mean (sd over folds)."""
    from .report import markdown_table

    columns = ["system", "model", "configuration", "values", "CV mean (sd)"]
    rows = [
        [r.system, r.model, r.configuration, r.values, f"{r.cv_mean:.1f}% ({r.cv_std:.1f})"]
        for r in summary.itertuples(index=False)
    ]
    return markdown_table(columns, rows)


def comparisons_markdown(comparisons) -> str:
    """The paired comparisons that ran, with their Holm-corrected p ("" when none ran)."""
    from .report import markdown_table

    ran = comparisons[comparisons["n_seeds"] > 0]
    if not len(ran):
        return ""
    columns = ["system", "model vs against", "seeds", "difference, pp [95%]", "p", "Holm p", "verdict"]
    rows = [
        [r.system, f"{r.model} vs {r.against}", r.n_seeds,
         f"{r.mean_difference:+.1f} [{r.difference_low:.1f}, {r.difference_high:.1f}]", f"{r.p:.2g}",
         f"{r.p_holm:.2g}", r.verdict]
        for r in ran.itertuples(index=False)
    ]  # fmt: skip
    return markdown_table(columns, rows)


def markdown(summary, comparisons, rules, folds: int) -> str:
    """Per system: as published | each model tuned (test accuracy over seeds, 95% interval), then the paired
    comparisons with their Holm-corrected p."""
    out = ["# Tuned at equal budget: quantum vs separable vs control\n", summary_markdown(summary)]
    out.append(
        f"\nTest accuracy (as run) of each model's chosen configuration, retrained on all training images, mean "
        f"over seeds with its 95% t interval (bounded to [0, 100]); CV = its mean accuracy over {folds} stratified "
        "validation folds of the training images, which chose it; where some runs stuck, how many trained (the "
        "verdicts' rule, on each run's training images; summary.csv has the median and range). As published: the "
        "source's own number for its circuit model (its claim, not our run).\n"
    )
    out.append("\n## Chosen configurations\n\n" + chosen_markdown(summary))
    paired = comparisons_markdown(comparisons)
    if paired:
        ran = int((comparisons["n_seeds"] > 0).sum())
        out.append("\n## Paired over seeds\n\n" + paired)
        out.append(
            f"\nOne family: the {ran} comparisons above (every system: the tuned circuit against its tuned "
            f"control and against each variant without entanglement or re-upload), Holm-Bonferroni at alpha = "
            f"{rules.alpha:g}; across seeds the {rules.primary_test} test on per-seed test accuracies of the same "
            "seeds and images (docs/verdicts.md).\n"
        )
    return "\n".join(out)


def curves_figure(curves, title: str, path) -> None:
    """Test accuracy against training images, mean over seeds with each seed's point, one line per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4), dpi=120)
    for model, frame in curves.groupby("model", sort=False):
        means = frame.groupby("images")["accuracy"].mean()
        (line,) = axis.plot(means.index, 100 * means.values, marker="o", label=model)
        axis.scatter(frame["images"], 100 * frame["accuracy"], s=8, alpha=0.4, color=line.get_color())
    axis.set_xscale("log")
    axis.set_xlabel("training images")
    axis.set_ylabel("test accuracy, % (as run)")
    axis.set_title(title)
    axis.legend()
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, metadata={"Software": None})
    plt.close(figure)
