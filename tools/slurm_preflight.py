"""Pre-flight check for a run on Slurm: stop with one clear message, before any job is submitted, when the
Slurm executor plugin is missing or a job asks for more than its partition can give.

Why: Slurm itself is no help here. With its default EnforcePartLimits=NO, `sbatch` accepts a job that wants
more CPUs than any node of the partition has, or a longer runtime than the partition's MaxTime, and the job
then pends forever (reason PartitionConfig or PartitionTimeLimit): Snakemake waits with it. Too much memory
is refused, but only when that job's turn comes, after hours of upstream jobs.

Two ways in, one set of rules (`check_request`):
  * `check_workflow(workflow)`, called from an `onstart:` handler in workflow/rules/common.smk. It runs in
    the main Snakemake process once the DAG is built, the executor chosen and before the first submission
    (spawned Slurm jobs run with --no-hooks, so never there), and it sees every job's final threads and
    resources: the rule's own, the profile's default-resources, --set-threads and --set-resources.
    Under any executor other than slurm it does nothing.
  * `python -m tools.slurm_preflight [--profile P ...] [snakemake resource options]` (called by
    `make replicate-slurm`): the plugin is importable in this Python, Slurm answers, and the profile's and
    command line's default-resources / set-resources / set-threads fit. It cannot see what a rule declares
    itself; the hook does. It also catches the missing plugin, which the hook cannot: Snakemake stops at
    argument parsing ("invalid choice: 'slurm'") before it reads the Snakefile.

The parsers are pure functions on the text of `scontrol show partition` and `scontrol show node`, so the
tests check them on fixed text without a cluster.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

PLUGIN_MODULE = "snakemake_executor_plugin_slurm"
PLUGIN_PACKAGE = "snakemake-executor-plugin-slurm"
UNLIMITED = ("UNLIMITED", "INFINITE", "NONE", "N/A")


# -- parsing Slurm's text ------------------------------------------------------------------------------------


def parse_records(text: str) -> list[dict[str, str]]:
    """`scontrol show partition|node` output (multi-line or -o) as one dict per record.

    Records start at their first key (PartitionName=, NodeName=). Words without '=' continue the previous
    value (e.g. `OS=Linux 6.1.0 #1 SMP`); a value keeps any '=' after the first (`TRES=cpu=2,mem=24105M`).
    """
    records: list[dict[str, str]] = []
    first_key = None
    key = None
    for word in text.split():
        name, sep, value = word.partition("=")
        if sep and re.fullmatch(r"[A-Za-z][A-Za-z0-9_/:.]*", name):
            if first_key is None:
                first_key = name
            if name == first_key:
                records.append({})
            if records:
                records[-1][name] = value
                key = name
        elif records and key is not None:
            records[-1][key] += " " + word
    return records


def parse_minutes(value: str | int | float) -> float:
    """A Slurm time limit in minutes; `math.inf` for UNLIMITED/INFINITE.

    Slurm's forms: minutes, minutes:seconds, hours:minutes:seconds, days-hours, days-hours:minutes,
    days-hours:minutes:seconds (scontrol prints [days-]hours:minutes:seconds).
    """
    if isinstance(value, (int, float)):
        return float(value)
    text = value.strip()
    if text.upper() in UNLIMITED:
        return math.inf
    days, _, rest = text.rpartition("-") if "-" in text else ("", "", text)
    parts = [int(p) for p in rest.split(":")]
    if days:
        hours, minutes, seconds = [*parts, 0, 0, 0][:3]
        total = int(days) * 1440 + hours * 60 + minutes + seconds / 60
    elif len(parts) == 1:
        total = parts[0]
    elif len(parts) == 2:
        total = parts[0] + parts[1] / 60
    elif len(parts) == 3:
        total = parts[0] * 60 + parts[1] + parts[2] / 60
    else:
        raise ValueError(f"not a Slurm time: {value!r}")
    return float(total)


def parse_megabytes(value: str | int) -> float:
    """Slurm memory (MB, or with a K/M/G/T suffix) in MB; `math.inf` for UNLIMITED."""
    if isinstance(value, int):
        return float(value)
    text = value.strip().upper()
    if text in UNLIMITED:
        return math.inf
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]?)B?", text)
    if not match:
        raise ValueError(f"not a Slurm memory size: {value!r}")
    scale = {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024**2}[match.group(2)]
    return float(match.group(1)) * scale


def parse_count(value: str | int) -> float:
    """A Slurm count such as MaxCPUsPerNode; `math.inf` for UNLIMITED."""
    text = str(value).strip()
    return math.inf if text.upper() in UNLIMITED else float(int(text))


def format_minutes(minutes: float) -> str:
    if math.isinf(minutes):
        return "UNLIMITED"
    days, rest = divmod(round(minutes), 1440)
    return f"{days}-{rest // 60:02d}:{rest % 60:02d}:00" if days else f"{rest // 60:02d}:{rest % 60:02d}:00"


@dataclass(frozen=True)
class Node:
    name: str
    cpus: int
    memory_mb: float
    partitions: tuple[str, ...]


@dataclass(frozen=True)
class Partition:
    name: str
    default: bool
    state: str
    max_time_min: float
    max_cpus_per_node: float
    max_mem_per_node_mb: float
    max_mem_per_cpu_mb: float
    nodes: tuple[Node, ...] = field(default=())

    def node_cpus(self, node: Node) -> float:
        return min(node.cpus, self.max_cpus_per_node)

    def node_memory(self, node: Node) -> float:
        return min(node.memory_mb, self.max_mem_per_node_mb)


def read_nodes(node_text: str) -> list[Node]:
    nodes = []
    for record in parse_records(node_text):
        # CPUEfctv (22.05+) leaves out cores reserved by CoreSpecCount; older versions only have CPUTot
        cpus = int(record.get("CPUEfctv") or record.get("CPUTot") or 0)
        memory = parse_megabytes(record.get("RealMemory", "0") or "0")
        if "MemSpecLimit" in record:
            memory -= parse_megabytes(record["MemSpecLimit"])
        partitions = tuple(p for p in record.get("Partitions", "").split(",") if p)
        nodes.append(Node(record["NodeName"], cpus, memory, partitions))
    return nodes


def read_partitions(partition_text: str, node_text: str) -> dict[str, Partition]:
    """Each partition's limits and nodes, from `scontrol show partition` and `scontrol show node`."""
    nodes = read_nodes(node_text)
    partitions = {}
    for record in parse_records(partition_text):
        name = record["PartitionName"]
        partitions[name] = Partition(
            name=name,
            default=record.get("Default", "NO").upper() == "YES",
            state=record.get("State", "UP"),
            max_time_min=parse_minutes(record.get("MaxTime", "UNLIMITED")),
            max_cpus_per_node=parse_count(record.get("MaxCPUsPerNode", "UNLIMITED")),
            max_mem_per_node_mb=parse_megabytes(record.get("MaxMemPerNode", "UNLIMITED")),
            max_mem_per_cpu_mb=parse_megabytes(record.get("MaxMemPerCPU", "UNLIMITED")),
            nodes=tuple(node for node in nodes if name in node.partitions),
        )
    return partitions


def query_partitions(env: dict | None = None) -> dict[str, Partition]:
    """The live cluster's partitions (needs `scontrol` and a reachable slurmctld)."""
    texts = []
    for what in ("partition", "node"):
        result = subprocess.run(["scontrol", "show", what], capture_output=True, text=True, env=env)
        if result.returncode != 0:
            raise RuntimeError(f"`scontrol show {what}` failed: {result.stderr.strip()}")
        texts.append(result.stdout)
    return read_partitions(*texts)


# -- what a job asks for, and whether it fits ----------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """What one rule's jobs ask Slurm for, as the plugin will pass it to sbatch.

    `sources` says, per setting (threads, mem_mb, mem_mb_per_cpu, runtime, slurm_partition), where its
    value came from, so a message can name the setting to change.
    """

    rule: str
    cpus: int = 1
    mem_mb: float | None = None
    mem_mb_per_cpu: float | None = None
    runtime_min: float | None = None
    partition: str | None = None
    sources: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def source(self, setting: str) -> str:
        return self.sources.get(setting, "")


def _named(request: Request, setting: str, value, unit: str = "") -> str:
    """`mem_mb=999999 MB (from --set-resources train_autoencoder:mem_mb)`: the setting, then where it is set."""
    where = request.source(setting)
    return f"{setting}={_number(value)}{unit}" + (f" (from {where})" if where else "")


def check_request(request: Request, partitions: dict[str, Partition]) -> list[str]:
    """Problems, one readable line each; empty when some node of the job's partition can run it."""
    if request.partition:
        partition = partitions.get(request.partition)
        if partition is None:
            known = ", ".join(p.name + ("*" if p.default else "") for p in partitions.values())
            return [
                f"rule {request.rule}: {_named(request, 'slurm_partition', request.partition)}: "
                f"no such partition (this cluster has: {known})"
            ]
    else:
        partition = next((p for p in partitions.values() if p.default), None)
        if partition is None:
            return [
                f"rule {request.rule}: no slurm_partition given and the cluster has no default partition; "
                "set default-resources slurm_partition=<name> in the profile"
            ]
    where = f"partition '{partition.name}'" + ("" if request.partition else " (the default)")
    if not partition.nodes:
        return [f"rule {request.rule}: {where} has no nodes"]
    problems = []
    if request.runtime_min is not None and request.runtime_min > partition.max_time_min:
        problems.append(
            f"rule {request.rule}: {_named(request, 'runtime', request.runtime_min, ' min')} is more "
            f"than the MaxTime of {where}, {format_minutes(partition.max_time_min)} "
            f"({partition.max_time_min:g} min)"
        )
    memory = request.mem_mb
    memory_setting = "mem_mb"
    if request.mem_mb_per_cpu is not None:
        memory, memory_setting = request.mem_mb_per_cpu * request.cpus, "mem_mb_per_cpu"
        if request.mem_mb_per_cpu > partition.max_mem_per_cpu_mb:
            setting = _named(request, "mem_mb_per_cpu", request.mem_mb_per_cpu, " MB")
            problems.append(
                f"rule {request.rule}: {setting} is more than the MaxMemPerCPU of {where}, "
                f"{partition.max_mem_per_cpu_mb:.0f} MB"
            )
    most_cpus = max(partition.node_cpus(n) for n in partition.nodes)
    most_memory = max(partition.node_memory(n) for n in partition.nodes)
    if request.cpus > most_cpus:
        problems.append(
            f"rule {request.rule}: {_named(request, 'threads', request.cpus)} asks for more CPUs than "
            f"any node of {where} has (at most {most_cpus:g})"
        )
    if memory is not None and memory > most_memory:
        shown = request.mem_mb if memory_setting == "mem_mb" else request.mem_mb_per_cpu
        per = "" if memory_setting == "mem_mb" else f" x {request.cpus} CPUs = {memory:.0f} MB"
        problems.append(
            f"rule {request.rule}: {_named(request, memory_setting, shown, ' MB')}{per} is more memory "
            f"than any node of {where} has (at most {most_memory:.0f} MB)"
        )
    if not problems and not any(
        partition.node_cpus(n) >= request.cpus and (memory is None or partition.node_memory(n) >= memory)
        for n in partition.nodes
    ):
        problems.append(
            f"rule {request.rule}: no single node of {where} has both "
            f"{request.cpus} CPUs and {memory:.0f} MB ({_named(request, 'threads', request.cpus)})"
        )
    return problems


def _number(value):
    return int(value) if isinstance(value, float) and value.is_integer() else value


def check_requests(requests: list[Request], partitions: dict[str, Partition]) -> list[str]:
    """All problems of all requests, each line once (a rule's many shards ask for the same)."""
    seen: dict[str, None] = {}
    for request in requests:
        for line in check_request(request, partitions):
            seen.setdefault(line)
    return list(seen)


def check_plugin(module: str = PLUGIN_MODULE) -> list[str]:
    if importlib.util.find_spec(module) is None:
        return [
            f"the Snakemake executor plugin for Slurm ({PLUGIN_PACKAGE}) is not installed in {sys.prefix}: "
            "run `make venv-slurm` and use .venv-slurm/bin/snakemake (pins: requirements-slurm.lock); "
            "without it Snakemake says only \"--executor: invalid choice: 'slurm'\""
        ]
    return []


def check_slurm_reachable(env: dict | None = None) -> list[str]:
    if shutil.which("sinfo") is None or shutil.which("scontrol") is None:
        return ["the Slurm commands (sinfo, scontrol, sbatch) are not on PATH: run this on a login node of the cluster"]
    result = subprocess.run(["sinfo", "--noheader", "--format=%P"], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        return [f"sinfo cannot reach the Slurm controller: {result.stderr.strip()}"]
    return []


# -- the hook: every job of a built workflow -----------------------------------------------------------------


def _source(workflow, rule, setting: str) -> str:
    """Where a rule's setting came from, in the words of the option that sets it."""
    settings = workflow.resource_settings
    if setting == "threads":
        if rule.name in dict(settings.overwrite_threads or {}):
            return f"--set-threads {rule.name}"
        return f"the threads: of rule {rule.name}"
    if setting in dict(settings.overwrite_resources or {}).get(rule.name, {}):
        return f"--set-resources {rule.name}:{setting}"
    defaults = settings.default_resources
    if defaults is not None and setting in defaults:
        try:
            from snakemake.resources import Resources

            if Resources.from_mapping(defaults).get(setting) == rule.resources.get(setting):
                return "default-resources"
        except Exception:  # attribution is a courtesy; never let it hide the real problem
            return "default-resources or the rule's resources:"
    return f"the resources: of rule {rule.name}"


def _number_or_none(value):
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def requests_from_workflow(workflow) -> list[Request]:
    """One request per distinct (rule, resources) among the jobs Snakemake is about to submit."""
    requests = {}
    for job in workflow.dag.needrun_jobs():
        if job.is_local:
            continue  # runs in the main process (e.g. rule all), never submitted
        resources = job.resources
        cpus = resources.get("cpus_per_task") or job.threads
        request = Request(
            rule=job.rule.name,
            cpus=int(cpus),
            mem_mb=_number_or_none(resources.get("mem_mb")),
            mem_mb_per_cpu=_number_or_none(resources.get("mem_mb_per_cpu")),
            runtime_min=_number_or_none(resources.get("runtime")),
            partition=resources.get("slurm_partition") or None,
        )
        if request not in requests:
            sources = {
                s: _source(workflow, job.rule, s) for s in ("mem_mb", "mem_mb_per_cpu", "runtime", "slurm_partition")
            }
            sources["threads"] = (
                _source(workflow, job.rule, "cpus_per_task")
                if resources.get("cpus_per_task")
                else _source(workflow, job.rule, "threads")
            )
            requests[request] = Request(**{**request.__dict__, "sources": sources})
    return list(requests.values())


def check_workflow(workflow) -> None:
    """The `onstart:` hook: under --executor slurm, raise before any submission if a job cannot fit."""
    plugin = getattr(workflow, "executor_plugin", None)
    if plugin is None or getattr(plugin, "name", None) != "slurm":
        return
    from snakemake_interface_common.exceptions import WorkflowError

    try:
        partitions = query_partitions()
    except RuntimeError as error:
        raise WorkflowError(f"Slurm pre-flight: {error}") from None
    problems = check_requests(requests_from_workflow(workflow), partitions)
    if problems:
        raise WorkflowError(report(problems))


def report(problems: list[str]) -> str:
    return (
        "Slurm pre-flight: nothing was submitted, because\n"
        + "\n".join(f"  - {p}" for p in problems)
        + "\nLower the setting named (e.g. --set-resources RULE:mem_mb=N, --set-threads RULE=N), or pick a "
        "partition that allows it (default-resources slurm_partition=NAME in the profile)."
    )


# -- the CLI: plugin, Slurm, and what the profile and command line set ---------------------------------------


def _load_profile(path: Path) -> dict:
    import yaml

    path = Path(path)
    file = (
        path
        if path.is_file()
        else next((path / n for n in ("profile.yaml", "config.yaml") if (path / n).is_file()), None)
    )
    if file is None:
        raise SystemExit(f"Slurm pre-flight: no profile.yaml or config.yaml in {path}")
    return yaml.safe_load(file.read_text()) or {}


def _pairs(value, separator: str = "=") -> dict[str, str]:
    """A profile's `key: value` mapping or a command line's `key=value` words, as a dict."""
    if isinstance(value, dict):
        return dict(value)
    items = [value] if isinstance(value, str) else list(value or [])
    return dict(item.split(separator, 1) for item in items)


def _rule_pairs(value) -> dict[str, dict[str, str]]:
    """set-resources: `{rule: {key: value}}` or `rule:key=value` words."""
    if isinstance(value, dict):
        return {rule: _pairs(keys) for rule, keys in value.items()}
    out: dict[str, dict[str, str]] = {}
    for item in [value] if isinstance(value, str) else list(value or []):
        rule, _, assignment = item.partition(":")
        key, _, number = assignment.partition("=")
        out.setdefault(rule, {})[key] = number
    return out


def _normalised(resources: dict) -> dict:
    """mem: 4GB / runtime: 2h as Snakemake reads them (mem_mb, runtime in minutes); expressions dropped."""
    from snakemake.resources import Resources

    out = {}
    for name, raw in resources.items():
        try:
            parsed = Resources.from_mapping({name: _literal(raw)})
            out.update({key: resource.value for key, resource in parsed.items()})
        except Exception:  # an expression such as 2*input.size_mb: only the hook can evaluate it
            continue
    return out


def _literal(value):
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return value.strip("'\"")
    return value


def requests_from_settings(default_resources: dict, set_resources: dict, set_threads: dict) -> list[Request]:
    """What the profile and command line ask for: the defaults alone (any rule declaring nothing), and each
    rule named in set-resources / set-threads."""
    defaults = _normalised(default_resources)
    requests = []

    def build(rule: str, values: dict, cpus: int, sources: dict) -> Request:
        return Request(
            rule=rule,
            cpus=cpus,
            mem_mb=_number_or_none(values.get("mem_mb")),
            mem_mb_per_cpu=_number_or_none(values.get("mem_mb_per_cpu")),
            runtime_min=_number_or_none(values.get("runtime")),
            partition=values.get("slurm_partition") or None,
            sources=sources,
        )

    requests.append(build("(default-resources)", defaults, 1, dict.fromkeys(defaults, "default-resources")))
    for rule in sorted(set(set_resources) | set(set_threads)):
        own = _normalised(set_resources.get(rule, {}))
        sources = {**dict.fromkeys(defaults, "default-resources"), **{k: f"--set-resources {rule}:{k}" for k in own}}
        cpus = int(set_threads.get(rule, 1))
        if rule in set_threads:
            sources["threads"] = f"--set-threads {rule}"
        if own.get("cpus_per_task"):
            cpus = int(own["cpus_per_task"])
            sources["threads"] = f"--set-resources {rule}:cpus_per_task"
        requests.append(build(rule, {**defaults, **own}, cpus, sources))
    return requests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--profile",
        action="append",
        default=[],
        type=Path,
        help="Snakemake profile folder or file; repeat to layer them, later ones win per key",
    )
    parser.add_argument("--default-resources", nargs="+")
    parser.add_argument("--set-resources", nargs="+")
    parser.add_argument("--set-threads", nargs="+")
    args, _ = parser.parse_known_args(argv)  # the rest of a snakemake command line is not ours to check

    problems = check_plugin()
    if problems:  # before anything else: a venv without the plugin may not even have PyYAML
        print(report(problems), file=sys.stderr)
        return 1
    profile: dict = {}
    for path in args.profile:
        profile.update(_load_profile(path))
    if profile.get("executor", "slurm") != "slurm":
        print(f"Slurm pre-flight: the profile's executor is {profile['executor']!r}, not slurm", file=sys.stderr)
        return 1
    problems = check_slurm_reachable()
    if problems:
        print(report(problems), file=sys.stderr)
        return 1
    try:
        requests = requests_from_settings(
            _pairs(args.default_resources if args.default_resources is not None else profile.get("default-resources")),
            _rule_pairs(args.set_resources if args.set_resources is not None else profile.get("set-resources")),
            _pairs(args.set_threads if args.set_threads is not None else profile.get("set-threads")),
        )
    except ValueError as error:
        print(f"Slurm pre-flight: cannot read a resource setting: {error}", file=sys.stderr)
        return 1
    partitions = query_partitions()
    problems = check_requests(requests, partitions)
    if problems:
        print(report(problems), file=sys.stderr)
        return 1
    names = ", ".join(p.name + ("*" if p.default else "") for p in partitions.values())
    print(
        f"Slurm pre-flight: plugin present, partitions {names}; the profile's and command line's resource "
        "settings fit (each job is checked again by the workflow's onstart hook)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
