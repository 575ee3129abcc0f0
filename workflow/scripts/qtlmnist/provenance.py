"""Where a folder of results came from: the commit, command and config that wrote it, when, and on which CPU.

Each target writes one `provenance.json` beside its results (rules in workflow/rules/provenance.smk; `make bench`
writes `<name>.provenance.json` beside each of its files). It lists the sha256 of every file it vouches for, so
`make docs` (tools/docs.py) can refuse a result that changed after its provenance was written.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

# The main Snakemake process sets these when it parses the Snakefile (workflow/rules/common.smk); its jobs
# inherit the environment, so a job can say which command started the run without the command being a param
# (a param would make every differently spelled command rerun the job).
COMMAND_ENV = "QTLMNIST_COMMAND"
STARTED_ENV = "QTLMNIST_STARTED"

# oneDNN and Aer choose code paths by these instruction-set extensions, and the last bits of trained weights
# follow (docs/reproducibility.md): the flags that can change a result, not /proc/cpuinfo's whole list.
ISA_PREFIXES = ("sse", "ssse", "avx", "fma", "f16c", "amx", "bmi", "vnni", "asimd", "sve", "neon")


def now() -> str:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()


def invocation() -> dict[str, str]:
    """What this process was started as, for COMMAND_ENV and STARTED_ENV."""
    return {COMMAND_ENV: shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]), STARTED_ENV: now()}


def commit(root: str | Path = ".") -> dict:
    """HEAD of the checkout at `root`, and whether tracked files differ from it (then the commit is not the
    whole story). Outside a git checkout (a copied tree, an unpacked archive) the commit is None."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout.strip()

    try:
        head = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "uncommitted_changes": None}
    return {"commit": head, "uncommitted_changes": dirty}


def cpu(cpuinfo: str | Path = "/proc/cpuinfo") -> dict:
    """The CPU model and its instruction-set flags (Linux: /proc/cpuinfo; elsewhere only what platform knows)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return {"model": platform.processor() or platform.machine(), "isa_flags": None}
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())  # the first processor's values
    flags = (fields.get("flags") or fields.get("Features") or "").split()
    return {
        "model": fields.get("model name") or fields.get("CPU implementer") or platform.machine(),
        "isa_flags": sorted(f for f in flags if f.startswith(ISA_PREFIXES)),
    }


def config_sha256(config: dict) -> str:
    """The config as the run saw it (every file merged, defaults filled), canonically serialised."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def record(
    target: str, config: dict, files: list[str | Path], root: str | Path = ".", started: str | None = None
) -> dict:
    """The provenance of `files` (paths relative to `root`), written now by the target `target`. The command and
    start are the Snakemake run's (COMMAND_ENV, STARTED_ENV) inside a job, else this process's own (a tool)."""
    return {
        "target": target,
        "command": os.environ.get(COMMAND_ENV) or shlex.join([Path(sys.orig_argv[0]).name, *sys.orig_argv[1:]]),
        "started": os.environ.get(STARTED_ENV) or started,
        "written": now(),
        **commit(root),
        "config_sha256": config_sha256(config),
        "cpu": cpu(),
        "cpu_count": os.cpu_count(),
        "files": {Path(f).as_posix(): file_sha256(Path(root) / f) for f in files},
    }


def beside(path: str | Path) -> Path:
    """Where a tool writes the provenance of one results file: `<name>.provenance.json` next to it."""
    path = Path(path)
    return path.with_name(f"{path.stem}.provenance.json")
