"""The Slurm pre-flight check (tools/slurm_preflight.py) on fixed `scontrol` text: no cluster needed.

THIS_MACHINE is what Slurm 22.05.8 (Debian bookworm) printed for the one-node test cluster of
`make test-slurm` (trailing blanks dropped); SITE is a three-partition cluster in the same format, with the
limits a site sets.
"""

import math
import subprocess
import sys
from pathlib import Path

import pytest

from tools.slurm_preflight import (
    Request,
    check_plugin,
    check_request,
    check_requests,
    format_minutes,
    main,
    parse_megabytes,
    parse_minutes,
    parse_records,
    read_partitions,
    requests_from_settings,
)

ROOT = Path(__file__).resolve().parents[1]

THIS_MACHINE_PARTITION = """\
PartitionName=test
   AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL
   AllocNodes=ALL Default=YES QoS=N/A
   DefaultTime=NONE DisableRootJobs=NO ExclusiveUser=NO GraceTime=0 Hidden=NO
   MaxNodes=UNLIMITED MaxTime=1-00:00:00 MinNodes=0 LLN=NO MaxCPUsPerNode=UNLIMITED
   Nodes=vm
   PriorityJobFactor=1 PriorityTier=1 RootOnly=NO ReqResv=NO OverSubscribe=NO
   OverTimeLimit=NONE PreemptMode=OFF
   State=UP TotalCPUs=2 TotalNodes=1 SelectTypeParameters=NONE
   JobDefaults=(null)
   DefMemPerNode=UNLIMITED MaxMemPerNode=UNLIMITED
   TRES=cpu=2,mem=24105M,node=1,billing=2

"""
THIS_MACHINE_NODE = """\
NodeName=vm Arch=x86_64 CoresPerSocket=2
   CPUAlloc=0 CPUEfctv=2 CPUTot=2 CPULoad=2.32
   AvailableFeatures=(null)
   ActiveFeatures=(null)
   Gres=(null)
   NodeAddr=127.0.0.1 NodeHostName=vm Version=22.05.8
   OS=Linux 6.18.44-fc-v657 #1 SMP PREEMPT_DYNAMIC @0
   RealMemory=24105 AllocMem=0 FreeMem=19545 Sockets=1 Boards=1
   State=IDLE ThreadsPerCore=1 TmpDisk=0 Weight=1 Owner=N/A MCS_label=N/A
   Partitions=test
   BootTime=2026-11-21T13:41:18 SlurmdStartTime=2026-11-21T13:52:01
   LastBusyTime=2026-11-21T13:52:01
   CfgTRES=cpu=2,mem=24105M,billing=2
   AllocTRES=
   CapWatts=n/a
   CurrentWatts=0 AveWatts=0
   ExtSensorsJoules=n/s ExtSensorsWatts=0 ExtSensorsTemp=n/s

"""

# `scontrol show partition -o` (one line per record) and `scontrol show node -o`, as a site prints them.
SITE_PARTITION = (
    "PartitionName=short AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL AllocNodes=ALL Default=YES QoS=N/A "
    "DefaultTime=00:30:00 DisableRootJobs=NO ExclusiveUser=NO GraceTime=0 Hidden=NO MaxNodes=UNLIMITED "
    "MaxTime=04:00:00 MinNodes=0 LLN=NO MaxCPUsPerNode=UNLIMITED Nodes=cn[01-02] PriorityJobFactor=1 "
    "PriorityTier=1 RootOnly=NO ReqResv=NO OverSubscribe=NO OverTimeLimit=NONE PreemptMode=OFF State=UP "
    "TotalCPUs=96 TotalNodes=2 SelectTypeParameters=NONE JobDefaults=(null) DefMemPerCPU=2000 "
    "MaxMemPerNode=UNLIMITED TRES=cpu=96,mem=375G,node=2,billing=96\n"
    "PartitionName=long AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL AllocNodes=ALL Default=NO QoS=N/A "
    "DefaultTime=NONE DisableRootJobs=NO ExclusiveUser=NO GraceTime=0 Hidden=NO MaxNodes=1 "
    "MaxTime=7-00:00:00 MinNodes=0 LLN=NO MaxCPUsPerNode=32 Nodes=cn[01-02] PriorityJobFactor=1 "
    "PriorityTier=1 RootOnly=NO ReqResv=NO OverSubscribe=NO OverTimeLimit=NONE PreemptMode=OFF State=UP "
    "TotalCPUs=96 TotalNodes=2 SelectTypeParameters=NONE JobDefaults=(null) DefMemPerCPU=2000 "
    "MaxMemPerNode=64000 TRES=cpu=96,mem=375G,node=2,billing=96\n"
    "PartitionName=bigmem AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL AllocNodes=ALL Default=NO QoS=N/A "
    "DefaultTime=NONE DisableRootJobs=NO ExclusiveUser=NO GraceTime=0 Hidden=NO MaxNodes=UNLIMITED "
    "MaxTime=2-12:00:00 MinNodes=0 LLN=NO MaxCPUsPerNode=UNLIMITED Nodes=bm01 PriorityJobFactor=1 "
    "PriorityTier=1 RootOnly=NO ReqResv=NO OverSubscribe=NO OverTimeLimit=NONE PreemptMode=OFF State=UP "
    "TotalCPUs=16 TotalNodes=1 SelectTypeParameters=NONE JobDefaults=(null) DefMemPerNode=UNLIMITED "
    "MaxMemPerCPU=64000 TRES=cpu=16,mem=1500G,node=1,billing=16\n"
)
SITE_NODE = (
    "NodeName=cn01 Arch=x86_64 CoresPerSocket=24 CPUAlloc=0 CPUEfctv=46 CPUTot=48 CPULoad=0.01 "
    "AvailableFeatures=(null) ActiveFeatures=(null) Gres=(null) NodeAddr=cn01 NodeHostName=cn01 "
    "Version=22.05.8 OS=Linux 5.14.0-362.el9.x86_64 #1 SMP PREEMPT_DYNAMIC Tue Oct 3 11:12:36 EDT 2023 "
    "RealMemory=192000 AllocMem=0 FreeMem=180011 Sockets=2 Boards=1 CoreSpecCount=2 CPUSpecList=0,24 "
    "MemSpecLimit=4000 State=IDLE ThreadsPerCore=1 TmpDisk=0 Weight=1 Owner=N/A MCS_label=N/A "
    "Partitions=short,long BootTime=2026-11-01T08:00:00 SlurmdStartTime=2026-11-01T08:01:00\n"
    "NodeName=cn02 Arch=x86_64 CoresPerSocket=24 CPUAlloc=12 CPUEfctv=48 CPUTot=48 CPULoad=11.90 "
    "AvailableFeatures=(null) ActiveFeatures=(null) Gres=(null) NodeAddr=cn02 NodeHostName=cn02 "
    "Version=22.05.8 OS=Linux 5.14.0-362.el9.x86_64 #1 SMP PREEMPT_DYNAMIC Tue Oct 3 11:12:36 EDT 2023 "
    "RealMemory=192000 AllocMem=48000 FreeMem=120100 Sockets=2 Boards=1 State=MIXED ThreadsPerCore=1 "
    "TmpDisk=0 Weight=1 Owner=N/A MCS_label=N/A Partitions=short,long BootTime=2026-11-01T08:00:00 "
    "SlurmdStartTime=2026-11-01T08:01:00\n"
    "NodeName=bm01 Arch=x86_64 CoresPerSocket=8 CPUAlloc=0 CPUEfctv=16 CPUTot=16 CPULoad=0.00 "
    "AvailableFeatures=(null) ActiveFeatures=(null) Gres=(null) NodeAddr=bm01 NodeHostName=bm01 "
    "Version=22.05.8 OS=Linux 5.14.0-362.el9.x86_64 #1 SMP PREEMPT_DYNAMIC Tue Oct 3 11:12:36 EDT 2023 "
    "RealMemory=1536000 AllocMem=0 FreeMem=1500000 Sockets=2 Boards=1 State=IDLE ThreadsPerCore=1 "
    "TmpDisk=0 Weight=1 Owner=N/A MCS_label=N/A Partitions=bigmem BootTime=2026-11-01T08:00:00 "
    "SlurmdStartTime=2026-11-01T08:01:00\n"
)


@pytest.fixture
def site():
    return read_partitions(SITE_PARTITION, SITE_NODE)


def test_records_keep_values_with_spaces_and_equals_signs():
    (node,) = parse_records(THIS_MACHINE_NODE)
    assert node["NodeName"] == "vm"
    assert node["OS"] == "Linux 6.18.44-fc-v657 #1 SMP PREEMPT_DYNAMIC @0"
    assert node["CfgTRES"] == "cpu=2,mem=24105M,billing=2"
    assert node["RealMemory"] == "24105" and node["Partitions"] == "test" and node["AllocTRES"] == ""
    assert [r["PartitionName"] for r in parse_records(SITE_PARTITION)] == ["short", "long", "bigmem"]


@pytest.mark.parametrize(
    "text, minutes",
    [
        ("30", 30),
        ("90:30", 90.5),
        ("04:00:00", 240),
        ("1-00:00:00", 1440),
        ("2-12:00:00", 3600),
        ("2-12", 3600),
        ("1-02:03", 1563),
        ("7-00:00:00", 10080),
        ("UNLIMITED", math.inf),
        ("INFINITE", math.inf),
    ],
)
def test_slurm_time_limits_in_minutes(text, minutes):
    assert parse_minutes(text) == minutes


def test_sizes_and_formatting():
    assert parse_megabytes("24105") == 24105
    assert parse_megabytes("375G") == 384000
    assert parse_megabytes("512K") == 0.5
    assert parse_megabytes("UNLIMITED") == math.inf
    assert format_minutes(1440) == "1-00:00:00" and format_minutes(240) == "04:00:00"
    assert format_minutes(math.inf) == "UNLIMITED"


def test_this_machines_partition():
    (test,) = read_partitions(THIS_MACHINE_PARTITION, THIS_MACHINE_NODE).values()
    assert (test.name, test.default, test.state) == ("test", True, "UP")
    assert test.max_time_min == 1440
    assert test.max_cpus_per_node == math.inf and test.max_mem_per_node_mb == math.inf
    ((name, cpus, memory, partitions),) = [(n.name, n.cpus, n.memory_mb, n.partitions) for n in test.nodes]
    assert (name, cpus, memory, partitions) == ("vm", 2, 24105, ("test",))


def test_site_partitions_take_limits_from_partition_and_nodes(site):
    assert list(site) == ["short", "long", "bigmem"]
    assert [p.name for p in site.values() if p.default] == ["short"]
    assert [site[p].max_time_min for p in site] == [240, 10080, 3600]
    assert site["long"].max_cpus_per_node == 32 and site["long"].max_mem_per_node_mb == 64000
    assert site["bigmem"].max_mem_per_cpu_mb == 64000
    # cn01 keeps 2 cores and 4000 MB for the system (CoreSpecCount, MemSpecLimit): CPUEfctv and RealMemory - spec
    cn01, cn02 = site["short"].nodes
    assert (cn01.cpus, cn01.memory_mb) == (46, 188000)
    assert (cn02.cpus, cn02.memory_mb) == (48, 192000)
    assert [n.name for n in site["bigmem"].nodes] == ["bm01"]


def test_a_request_that_fits_has_no_problems(site):
    assert check_request(Request("train_autoencoder", cpus=2, mem_mb=4000, runtime_min=60), site) == []
    assert check_request(Request("big", cpus=48, mem_mb=190000, runtime_min=240), site) == []  # cn02 only
    assert check_request(Request("huge", cpus=16, mem_mb=1_000_000, partition="bigmem"), site) == []


def test_each_limit_is_named_with_the_setting_and_where_it_came_from(site):
    sources = {
        "mem_mb": "--set-resources train_autoencoder:mem_mb",
        "runtime": "default-resources",
        "threads": "--set-threads train_autoencoder",
    }
    request = Request("train_autoencoder", cpus=64, mem_mb=200000, runtime_min=300, sources=sources)
    assert check_request(request, site) == [
        "rule train_autoencoder: runtime=300 min (from default-resources) is more than the MaxTime of partition "
        "'short' (the default), 04:00:00 (240 min)",
        "rule train_autoencoder: threads=64 (from --set-threads train_autoencoder) asks for more CPUs than any "
        "node of partition 'short' (the default) has (at most 48)",
        "rule train_autoencoder: mem_mb=200000 MB (from --set-resources train_autoencoder:mem_mb) is more memory "
        "than any node of partition 'short' (the default) has (at most 192000 MB)",
    ]


def test_partition_limits_cap_what_its_nodes_have(site):
    # the long partition runs on the same 48-core, 192 GB nodes but allows 32 CPUs and 64000 MB per node
    problems = check_request(Request("r", cpus=40, mem_mb=100000, runtime_min=6000, partition="long"), site)
    assert problems == [
        "rule r: threads=40 asks for more CPUs than any node of partition 'long' has (at most 32)",
        "rule r: mem_mb=100000 MB is more memory than any node of partition 'long' has (at most 64000 MB)",
    ]


def test_memory_per_cpu_counts_times_cpus(site):
    request = Request("r", cpus=16, mem_mb_per_cpu=100000, partition="bigmem")
    assert check_request(request, site) == [
        "rule r: mem_mb_per_cpu=100000 MB is more than the MaxMemPerCPU of partition 'bigmem', 64000 MB",
        "rule r: mem_mb_per_cpu=100000 MB x 16 CPUs = 1600000 MB is more memory than any node of partition "
        "'bigmem' has (at most 1536000 MB)",
    ]


def test_cpus_and_memory_must_fit_on_one_node(site):
    # 47 CPUs and 190000 MB: only cn02 has either, and it has both
    assert check_request(Request("r", cpus=47, mem_mb=190000), site) == []
    nodes = read_partitions(
        "PartitionName=mixed Default=YES MaxTime=UNLIMITED State=UP",
        "NodeName=fat CPUTot=4 RealMemory=500000 Partitions=mixed\n"
        "NodeName=wide CPUTot=64 RealMemory=64000 Partitions=mixed",
    )
    assert check_request(Request("r", cpus=32, mem_mb=128000), nodes) == [
        "rule r: no single node of partition 'mixed' (the default) has both 32 CPUs and 128000 MB (threads=32)"
    ]


def test_unknown_or_missing_default_partition(site):
    assert check_request(Request("r", partition="gpu", sources={"slurm_partition": "default-resources"}), site) == [
        "rule r: slurm_partition=gpu (from default-resources): no such partition (this cluster has: short*, long, "
        "bigmem)"
    ]
    no_default = read_partitions("PartitionName=a Default=NO State=UP", "NodeName=n CPUTot=1 Partitions=a")
    assert "no default partition" in check_request(Request("r"), no_default)[0]


def test_many_shards_give_one_line(site):
    requests = [Request("quantum_features", cpus=64)] * 12
    assert len(check_requests(requests, site)) == 1


def test_settings_from_profile_and_command_line():
    requests = requests_from_settings(
        {"mem_mb": 4000, "runtime": 60},
        {"train_autoencoder": {"mem": "8GB", "runtime": "2h"}},
        {"quantum_features": "4"},
    )
    assert [(r.rule, r.cpus, r.mem_mb, r.runtime_min) for r in requests] == [
        ("(default-resources)", 1, 4000, 60),
        ("quantum_features", 4, 4000, 60),
        ("train_autoencoder", 1, 8000, 120),
    ]
    assert requests[2].sources["mem_mb"] == "--set-resources train_autoencoder:mem_mb"
    assert requests[1].sources["threads"] == "--set-threads quantum_features"
    # an expression only Snakemake can evaluate is left to the onstart hook, not misread
    (only,) = requests_from_settings({"mem_mb": "2*input.size_mb"}, {}, {})
    assert only.mem_mb is None


def test_missing_plugin_is_named_with_the_fix():
    (message,) = check_plugin("no_such_plugin_module")
    assert "snakemake-executor-plugin-slurm) is not installed" in message and "make venv-slurm" in message


def test_cli_in_a_venv_without_the_plugin(tmp_path):
    # a bare venv (no pip, no Snakemake, no plugin): the check still says what is missing and how to get it
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "bare")], check=True)
    result = subprocess.run(
        [str(tmp_path / "bare/bin/python"), "-m", "tools.slurm_preflight", "--profile", "profiles/slurm"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "Slurm pre-flight: nothing was submitted" in result.stderr
    assert "(snakemake-executor-plugin-slurm) is not installed in" in result.stderr
    assert "make venv-slurm" in result.stderr


def test_cli_refuses_a_profile_for_another_executor(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("tools.slurm_preflight.check_plugin", lambda: [])
    (tmp_path / "config.yaml").write_text("executor: local\n")
    assert main(["--profile", str(tmp_path)]) == 1
    assert "executor is 'local', not slurm" in capsys.readouterr().err
