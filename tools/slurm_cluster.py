"""A throwaway single-node Slurm on this machine, for `make test-slurm`.

    with SlurmCluster(workdir) as cluster:      # installs the Debian packages if missing, starts the daemons
        subprocess.run(["sinfo"], env=cluster.env)
    # here every daemon it started is stopped, by pid, also when the body raised

Everything lives under `workdir`: slurm.conf, a fresh munge key, state, spool and logs. The daemons use free
ports and their own munge socket, so they neither need nor touch /etc/munge or another Slurm on the machine.
Client commands (sbatch, squeue, Snakemake's plugin) find this cluster through SLURM_CONF, which `cluster.env`
sets; nothing is exported into this process's own environment.

Inside a job, Snakemake's jobstep plugin runs the rule with `srun` after deleting every SLURM_* variable but
the job's identity, SLURM_CONF included, so srun looks for /etc/slurm/slurm.conf as on a real cluster. slurmd
therefore runs in a private mount namespace where `workdir/etc` is mounted on /etc/slurm: it and every job
see this cluster's config at the standard place, while /etc/slurm stays untouched for everyone else. The same
namespace tells teardown exactly which processes are this cluster's (job steps and jobs included).

CLI, from the repository root:
    python -m tools.slurm_cluster install        # only the Debian packages (root, or run it with sudo)
    python -m tools.slurm_cluster run -- CMD...  # bring up, run CMD with SLURM_CONF set, tear down
e.g. `python -m tools.slurm_cluster run -- bash` for a shell with a live cluster.

The daemons run as root (slurmd has to), so this needs root: CI runs it under sudo.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Debian/Ubuntu package for each program we run; slurm-client brings sbatch/squeue/scontrol/sinfo.
PACKAGES = {
    "munged": "munge",
    "slurmctld": "slurmctld",
    "slurmd": "slurmd",
    "sbatch": "slurm-client",
    "unshare": "util-linux",
}
SBIN = ("/usr/sbin", "/usr/bin", "/sbin", "/bin")
POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
PARTITION = "test"
# Long enough for any job of this workflow; finite so a runtime above it can be shown to fail pre-flight.
MAX_TIME = "1-00:00:00"
STARTUP_TIMEOUT = 60
STOP_TIMEOUT = 15


def which(program: str) -> str | None:
    """PATH first, then the sbin folders a non-login root shell may lack."""
    return shutil.which(program) or shutil.which(program, path=os.pathsep.join(SBIN))


def missing_packages() -> list[str]:
    return sorted({package for program, package in PACKAGES.items() if which(program) is None})


def install_packages() -> list[str]:
    """apt-get install what is missing, with services kept from starting; returns what it installed.

    On a host with systemd (GitHub's ubuntu-latest) the packages' postinst would start munge, slurmctld and
    slurmd from /etc: a policy-rc.d answering 101 ("action not allowed") prevents that, and is removed again
    unless one was there before us.
    """
    missing = missing_packages()
    if not missing:
        return []
    if os.geteuid() != 0:
        raise SystemExit(
            f"Slurm test cluster: packages missing: {' '.join(missing)}; install them as root "
            f"(sudo apt-get install {' '.join(missing)}) or run this as root"
        )
    ours = not POLICY_RC_D.exists()
    if ours:
        POLICY_RC_D.write_text("#!/bin/sh\n# tools/slurm_cluster.py, for the length of one install\nexit 101\n")
        POLICY_RC_D.chmod(0o755)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]
    try:
        if subprocess.run(command, env=env).returncode != 0:
            # stale or absent package lists (a fresh container): refresh once and try again
            subprocess.run(["apt-get", "update", "-qq"], env=env, check=True)
            subprocess.run(command, env=env, check=True)
    finally:
        if ours:
            POLICY_RC_D.unlink(missing_ok=True)
    still = missing_packages()
    if still:
        raise SystemExit(f"Slurm test cluster: still missing after apt-get install: {' '.join(still)}")
    return missing


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_line(slurmd: str) -> str:
    """This machine as Slurm sees it (`slurmd -C`: NodeName, CPUs, sockets, cores, RealMemory)."""
    out = subprocess.run([slurmd, "-C"], capture_output=True, text=True, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("NodeName="))
    return f"{line} NodeAddr=127.0.0.1 State=UNKNOWN"


def slurm_conf(root: Path, node: str, host: str, ports: tuple[int, int], socket_path: Path) -> str:
    """slurm.conf for one node, one partition, no accounting; each non-default line says why it is there."""
    return "\n".join(
        [
            "ClusterName=qtlmnist-test",
            f"SlurmctldHost={host}(127.0.0.1)",
            "SlurmUser=root",
            f"SlurmctldPort={ports[0]}",
            f"SlurmdPort={ports[1]}",
            # our own munged, so no shared /etc/munge/munge.key is needed or touched
            f"AuthInfo=socket={socket_path}",
            f"StateSaveLocation={root}/state",
            f"SlurmdSpoolDir={root}/spool",
            f"SlurmctldPidFile={root}/slurmctld.pid",
            f"SlurmdPidFile={root}/slurmd.pid",
            f"SlurmctldLogFile={root}/log/slurmctld.log",
            f"SlurmdLogFile={root}/log/slurmd.log",
            # no cgroups: works in containers and on CI runners alike
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            # no slurmdbd: sacct answers "accounting storage is disabled", so Snakemake must poll with squeue
            "AccountingStorageType=accounting_storage/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            # without it a job that asks for no memory is given the whole node, and jobs run one at a time
            "DefMemPerCPU=1024",
            # finished jobs stay visible to squeue/scontrol for an hour: the plugin's squeue status checks need
            # at least 3x its first status delay, and the test reads every job's record back at the end
            "MinJobAge=3600",
            "MailProg=/bin/true",
            "ReturnToService=2",
            "SlurmdTimeout=60",
            node,
            f"PartitionName={PARTITION} Nodes=ALL Default=YES MaxTime={MAX_TIME} State=UP",
            "",
        ]
    )


class SlurmCluster:
    """Start munged, slurmctld and slurmd under `workdir`; stop exactly those processes on exit."""

    def __init__(self, workdir: Path, install: bool = True):
        self.root = Path(workdir).resolve()
        self.install = install
        self.procs: dict[str, subprocess.Popen] = {}
        self.conf = self.root / "etc" / "slurm.conf"
        self.namespace: str | None = None  # slurmd's mount namespace, once it is up
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.startup_seconds: float | None = None

    # -- bring-up ------------------------------------------------------------------------------------------
    def start(self) -> SlurmCluster:
        began = time.monotonic()
        if self.install:
            install_packages()
        elif missing_packages():
            raise SystemExit(f"Slurm test cluster: packages missing: {' '.join(missing_packages())}")
        for sub in ("etc", "state", "spool", "log", "munge"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        munge = self.root / "munge"
        munge.chmod(0o700)  # munged refuses a socket or key folder others can write to
        key = munge / "munge.key"
        key.write_bytes(secrets.token_bytes(1024))
        key.chmod(0o400)
        socket_path = munge / "munge.socket"
        host = socket.gethostname().split(".")[0]
        ports = (free_port(), free_port())
        self.conf.write_text(slurm_conf(self.root, node_line(which("slurmd")), host, ports, socket_path))
        try:
            self._spawn(
                "munged",
                [
                    which("munged"),
                    "--foreground",
                    "--force",
                    f"--socket={socket_path}",
                    f"--key-file={key}",
                    f"--pid-file={munge}/munged.pid",
                    f"--log-file={self.root}/log/munged.log",
                    f"--seed-file={munge}/munged.seed",
                ],
            )
            self._wait_for(lambda: socket_path.exists(), "munged to open its socket")
            self._spawn("slurmctld", [which("slurmctld"), "-D", "-i", "-f", str(self.conf)])
            Path("/etc/slurm").mkdir(exist_ok=True)  # the mount point; the packages ship it
            self._spawn(
                "slurmd",
                [
                    which("unshare"),
                    "--mount",
                    "--propagation",
                    "private",
                    "sh",
                    "-c",
                    'mount --bind "$0" /etc/slurm && exec "$@"',
                    str(self.conf.parent),
                    which("slurmd"),
                    "-D",
                    "-f",
                    str(self.conf),
                ],
            )
            self._wait_for(self._node_idle, "the node to be idle in sinfo")
            namespace = os.readlink(f"/proc/{self.procs['slurmd'].pid}/ns/mnt")
            # only trust it as a marker if it really is a namespace of its own (never the host's)
            self.namespace = namespace if namespace != os.readlink("/proc/self/ns/mnt") else None
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def _spawn(self, name: str, command: list[str]) -> None:
        log = open(self.root / "log" / f"{name}.stdout", "wb")  # noqa: SIM115 -- the daemon writes it while it runs
        # own session: a Ctrl-C in the terminal reaches our stop(), not the daemons directly
        self.procs[name] = subprocess.Popen(
            command,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()

    def _node_idle(self) -> bool:
        out = subprocess.run(["sinfo", "--noheader", "--format=%t"], env=self.env, capture_output=True, text=True)
        return out.returncode == 0 and out.stdout.split() == ["idle"]

    def _wait_for(self, ready, what: str) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            dead = [name for name, proc in self.procs.items() if proc.poll() is not None]
            if dead:
                raise RuntimeError(
                    f"Slurm test cluster: {', '.join(dead)} exited while waiting for {what}\n" + self.log_tails()
                )
            if ready():
                return
            time.sleep(0.25)
        raise RuntimeError(
            f"Slurm test cluster: timed out after {STARTUP_TIMEOUT} s waiting for {what}\n" + self.log_tails()
        )

    def log_tails(self, chars: int = 3000) -> str:
        parts = []
        for path in sorted((self.root / "log").glob("*")):
            parts.append(f"--- {path}\n{path.read_text(errors='replace')[-chars:]}")
        return "\n".join(parts)

    # -- use -----------------------------------------------------------------------------------------------
    def run(self, *command: str, check: bool = True) -> str:
        """A Slurm client command against this cluster; its stdout."""
        return subprocess.run(list(command), env=self.env, capture_output=True, text=True, check=check).stdout

    # -- teardown ------------------------------------------------------------------------------------------
    def stop(self) -> list[str]:
        """Cancel this cluster's jobs, stop the daemons we started, then any process left carrying our
        SLURM_CONF (job steps, a job's children). Returns what had to be killed hard."""
        killed = []
        ctld = self.procs.get("slurmctld")
        if ctld is not None and ctld.poll() is None:
            subprocess.run(["scancel", "--full", "--user", str(os.geteuid())], env=self.env, capture_output=True)
            deadline = time.monotonic() + STOP_TIMEOUT
            while time.monotonic() < deadline:
                active = subprocess.run(
                    ["squeue", "--noheader", "--format=%i", "--states=PD,R,CG,CF,S"],
                    env=self.env,
                    capture_output=True,
                    text=True,
                )
                if active.returncode != 0 or not active.stdout.strip():
                    break
                time.sleep(0.5)
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                killed.append(f"{name} (pid {proc.pid})")
        for pid in self.stray_pids():
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(f"stray pid {pid}")
            except ProcessLookupError:
                pass
        return killed

    def stray_pids(self) -> list[int]:
        """Live processes of this cluster other than us: those in slurmd's private mount namespace (slurmd,
        job steps, jobs) or carrying this cluster's SLURM_CONF (daemons, client commands). Both markers
        belong to this cluster alone, so the sweep cannot hit anyone else's process."""
        marker = f"SLURM_CONF={self.conf}".encode()
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                    continue  # exited, waiting for its parent to collect it
                ours = self.namespace is not None and os.readlink(entry / "ns/mnt") == self.namespace
                if ours or marker in (entry / "environ").read_bytes().split(b"\0"):
                    pids.append(int(entry.name))
            except (OSError, IndexError):
                continue
        return pids

    def alive(self) -> list[str]:
        return [f"{name} (pid {p.pid})" for name, p in self.procs.items() if p.poll() is None] + [
            f"pid {pid}" for pid in self.stray_pids()
        ]

    def __enter__(self) -> SlurmCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("install", help="apt-get install the missing Slurm and munge packages")
    run = sub.add_parser("run", help="bring up a cluster, run a command against it, tear it down")
    run.add_argument("--keep", action="store_true", help="keep the cluster folder (config, logs) afterwards")
    run.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)

    if args.action == "install":
        installed = install_packages()
        print(f"installed: {' '.join(installed)}" if installed else "all Slurm packages present")
        return 0
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("run: give a command after --")
    workdir = Path(tempfile.mkdtemp(prefix="qtlmnist-slurm-"))
    try:
        with SlurmCluster(workdir) as cluster:
            print(f"Slurm up in {cluster.startup_seconds:.1f} s (SLURM_CONF={cluster.conf})", file=sys.stderr)
            return subprocess.run(command, env=cluster.env).returncode
    finally:
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
