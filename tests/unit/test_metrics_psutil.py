"""Metrics against real processes: process-tree sums, vanished and zombie processes, real samples."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator

import psutil
import pytest

from aipass_tui.core.metrics import AgentUsage, PsutilReader, Sampler, affinity_cpus

# The root sleeps while two children burn CPU, so only a sum over the whole tree shows the load.
BURNER = textwrap.dedent(
    """
    import os, sys, time
    children = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            end = time.monotonic() + 60
            blob = bytearray(8 * 1024 * 1024)
            while time.monotonic() < end:
                pass
            os._exit(0)
        children.append(pid)
    print(" ".join(map(str, children)), flush=True)
    time.sleep(60)
    """
)


def wait_for(condition: Callable[[], object], timeout: float = 10.0, interval: float = 0.05) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def kill_group(process: subprocess.Popen[str]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


@pytest.fixture
def burner() -> Iterator[tuple[subprocess.Popen[str], list[int]]]:
    process = subprocess.Popen(
        [sys.executable, "-c", BURNER], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert process.stdout is not None
        children = [int(pid) for pid in process.stdout.readline().split()]
        yield process, children
    finally:
        kill_group(process)


@pytest.mark.parametrize("use_proc_stat", [True, False], ids=["proc-stat", "psutil"])
def test_tree_sum_sees_children(burner, use_proc_stat):
    process, children = burner
    reader = PsutilReader(use_proc_stat=use_proc_stat)
    root_rss = psutil.Process(process.pid).memory_info().rss

    def busy_reading() -> AgentUsage | None:
        usage = reader({"burner": process.pid}).agents["burner"]
        return usage if usage.cpu_percent > 20 else None

    reader({"burner": process.pid})
    usage = wait_for(busy_reading, interval=0.3)
    assert isinstance(usage, AgentUsage)
    own = psutil.Process(process.pid).cpu_percent(interval=0.2)
    assert own < 20
    assert usage.rss_bytes > root_rss
    assert len(children) == 2


def test_agents_split_by_tree(burner):
    process, _ = burner
    idle = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        reader = PsutilReader()
        reader({"busy": process.pid, "idle": idle.pid})
        time.sleep(0.5)
        reading = reader({"busy": process.pid, "idle": idle.pid})
        assert reading.agents["idle"].cpu_percent < 5
        assert reading.agents["idle"].rss_bytes > 0
        assert reading.agents["busy"].cpu_percent > reading.agents["idle"].cpu_percent
    finally:
        idle.kill()
        idle.wait()


@pytest.mark.parametrize("use_proc_stat", [True, False], ids=["proc-stat", "psutil"])
def test_vanishing_children_tolerated(use_proc_stat):
    # A shell that starts short-lived children continuously: some vanish in the middle of a sample.
    churn = subprocess.Popen(
        ["sh", "-c", "end=$(($(date +%s)+30)); while [ $(date +%s) -lt $end ]; do /bin/true; done"],
        start_new_session=True,
    )
    try:
        reader = PsutilReader(use_proc_stat=use_proc_stat)
        for _ in range(50):
            usage = reader({"churn": churn.pid}).agents["churn"]
            assert usage.rss_bytes > 0
    finally:
        os.killpg(churn.pid, signal.SIGKILL)
        churn.wait()


@pytest.mark.parametrize("use_proc_stat", [True, False], ids=["proc-stat", "psutil"])
def test_missing_and_exited_roots(use_proc_stat):
    short = subprocess.Popen(["sleep", "30"])
    reader = PsutilReader(use_proc_stat=use_proc_stat)
    first = reader({"short": short.pid})
    assert first.agents["short"].rss_bytes > 0
    short.kill()
    short.wait()
    exited = reader({"short": short.pid})
    assert exited.agents["short"] == AgentUsage(0.0, 0)
    never = reader({"never": 2**22 + 12345})
    assert never.agents["never"] == AgentUsage(0.0, 0)


@pytest.mark.parametrize("use_proc_stat", [True, False], ids=["proc-stat", "psutil"])
def test_zombie_child_counts_zero(use_proc_stat):
    # The parent never reaps its child, which stays a zombie for the parent's life.
    script = "import os, time\npid = os.fork()\nif pid == 0:\n    os._exit(0)\nprint(pid, flush=True)\ntime.sleep(30)\n"
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        wait_for(lambda: psutil.Process(child).status() == psutil.STATUS_ZOMBIE)
        reader = PsutilReader(use_proc_stat=use_proc_stat)
        for _ in range(3):
            usage = reader({"parent": parent.pid}).agents["parent"]
            assert usage.rss_bytes == pytest.approx(psutil.Process(parent.pid).memory_info().rss, rel=0.05)
    finally:
        kill_group(parent)


def test_real_sample_values_sane():
    sampler = Sampler(interval=0.1)
    sampler.set_agents({"self": os.getpid()})
    sampler.sample()
    time.sleep(0.2)
    snapshot = sampler.sample()
    assert 0.0 <= snapshot.cpu_percent <= 100.0
    assert len(snapshot.per_core) == len(affinity_cpus())
    assert all(0.0 <= core <= 100.0 for core in snapshot.per_core)
    assert 0 < snapshot.mem_used <= snapshot.mem_total
    assert snapshot.agents["self"].rss_bytes == pytest.approx(psutil.Process().memory_info().rss, rel=0.5)
    assert snapshot.usable_cpus > 0
