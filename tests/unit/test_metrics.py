"""Metrics without live psutil readings: cgroup limits, snapshots, history, HoldTracker."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import MappingProxyType

import pytest

from aipass_tui.core.metrics import (
    AgentUsage,
    Cgroup,
    FixedSampler,
    HoldTracker,
    MetricsSnapshot,
    Reading,
    Sampler,
    affinity_cpus,
    usable_cpus,
)


def make_proc_self(tmp_path: Path, cgroup_lines: list[str], mounts: list[tuple[str, Path, str, str]]) -> Path:
    """Write a fake /proc/self (cgroup and mountinfo files) describing the given cgroup mounts."""
    proc_self = tmp_path / "proc_self"
    proc_self.mkdir()
    (proc_self / "cgroup").write_text("\n".join(cgroup_lines) + "\n")
    lines = []
    for number, (root, mountpoint, fstype, options) in enumerate(mounts, start=30):
        escaped = str(mountpoint).replace(" ", "\\040")
        lines.append(f"{number} 1 0:{number} {root} {escaped} rw,relatime - {fstype} {fstype} {options}")
    (proc_self / "mountinfo").write_text("\n".join(lines) + "\n")
    return proc_self


def v2_tree(tmp_path: Path, leaf: str = "app/worker") -> tuple[Path, Path]:
    mount = tmp_path / "cgroup v2"
    folder = mount.joinpath(*leaf.split("/"))
    folder.mkdir(parents=True)
    proc_self = make_proc_self(tmp_path, [f"0::/{leaf}"], [("/", mount, "cgroup2", "rw")])
    return proc_self, folder


def test_usable_cpus_real_machine():
    cpus = usable_cpus()
    assert 0 < cpus <= (os.cpu_count() or 1)
    assert cpus <= len(affinity_cpus())


def test_usable_cpus_v2_quota(tmp_path):
    proc_self, folder = v2_tree(tmp_path)
    (folder / "cpu.max").write_text("50000 100000\n")
    assert usable_cpus(proc_self) == pytest.approx(min(0.5, len(affinity_cpus())))


def test_usable_cpus_v2_no_quota(tmp_path):
    proc_self, folder = v2_tree(tmp_path)
    (folder / "cpu.max").write_text("max 100000\n")
    assert usable_cpus(proc_self) == len(affinity_cpus())


def test_usable_cpus_v2_ancestor_quota(tmp_path):
    proc_self, folder = v2_tree(tmp_path)
    (folder / "cpu.max").write_text("max 100000\n")
    (folder.parent / "cpu.max").write_text("25000 100000\n")
    assert Cgroup(proc_self).cpu_quota() == pytest.approx(0.25)


def test_usable_cpus_quota_above_affinity(tmp_path):
    proc_self, folder = v2_tree(tmp_path)
    (folder / "cpu.max").write_text(f"{(len(affinity_cpus()) + 3) * 100000} 100000\n")
    assert usable_cpus(proc_self) == len(affinity_cpus())


def test_usable_cpus_v1_quota(tmp_path):
    cpu_mount = tmp_path / "cpu,cpuacct"
    folder = cpu_mount / "docker" / "abc"
    folder.mkdir(parents=True)
    (folder / "cpu.cfs_quota_us").write_text("150000\n")
    (folder / "cpu.cfs_period_us").write_text("100000\n")
    proc_self = make_proc_self(
        tmp_path,
        ["4:cpu,cpuacct:/docker/abc", "0::/"],
        [("/", cpu_mount, "cgroup", "rw,cpu,cpuacct")],
    )
    assert Cgroup(proc_self).cpu_quota() == pytest.approx(1.5)


def test_usable_cpus_v1_unlimited(tmp_path):
    cpu_mount = tmp_path / "cpu"
    cpu_mount.mkdir()
    (cpu_mount / "cpu.cfs_quota_us").write_text("-1\n")
    (cpu_mount / "cpu.cfs_period_us").write_text("100000\n")
    proc_self = make_proc_self(tmp_path, ["3:cpu:/"], [("/", cpu_mount, "cgroup", "rw,cpu")])
    assert Cgroup(proc_self).cpu_quota() is None


def test_cgroup_mount_root_is_stripped(tmp_path):
    # A container whose own cgroup is bind-mounted at the mount point (the mount root is not "/").
    mount = tmp_path / "cg"
    mount.mkdir()
    (mount / "cpu.max").write_text("200000 100000\n")
    proc_self = make_proc_self(tmp_path, ["0::/kubepods/pod1"], [("/kubepods/pod1", mount, "cgroup2", "rw")])
    assert Cgroup(proc_self).cpu_quota() == pytest.approx(2.0)


def test_cgroup_malformed_quota_ignored(tmp_path, caplog):
    proc_self, folder = v2_tree(tmp_path)
    (folder / "cpu.max").write_text("lots 100000\n")
    assert Cgroup(proc_self).cpu_quota() is None
    assert "ignoring unreadable CPU quota" in caplog.text


def test_cgroup_missing_proc_files(tmp_path):
    empty = tmp_path / "nothing"
    empty.mkdir()
    group = Cgroup(empty)
    assert group.cpu_quota() is None
    assert group.memory() is None
    assert group.cpu_usage_seconds() is None


def test_cgroup_v2_memory_limit(tmp_path):
    proc_self, folder = v2_tree(tmp_path)
    (folder / "memory.max").write_text("1073741824\n")
    (folder / "memory.current").write_text("600000000\n")
    (folder / "memory.stat").write_text("anon 400000000\ninactive_file 100000000\nactive_file 5\n")
    (folder.parent / "memory.max").write_text("max\n")
    (folder.parent / "memory.current").write_text("900000000\n")
    assert Cgroup(proc_self).memory() == (1073741824, 500000000)


def test_cgroup_v1_memory_unlimited(tmp_path):
    mount = tmp_path / "memory"
    mount.mkdir()
    (mount / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    (mount / "memory.usage_in_bytes").write_text("123\n")
    proc_self = make_proc_self(tmp_path, ["5:memory:/"], [("/", mount, "cgroup", "rw,memory")])
    assert Cgroup(proc_self).memory() is None


def test_cgroup_v2_cpu_usage(tmp_path):
    proc_self, folder = v2_tree(tmp_path)
    (folder / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 2000000\n")
    assert Cgroup(proc_self).cpu_usage_seconds() == pytest.approx(2.5)


def frozen_read(values: list[float]):
    """Return a read callable that yields the given total-CPU values in turn."""
    sequence = iter(values)

    def read(agents):
        cpu = next(sequence)
        usage = {name: AgentUsage(cpu / 2, 1000 * pid) for name, pid in agents.items()}
        return Reading(cpu, (cpu, cpu), 2.0, 4_000, 16_000, usage)

    return read


def test_sampler_frozen_readings():
    sampler = Sampler(read=frozen_read([10.0, 20.0, 30.0]), now=lambda: 1000.0)
    sampler.set_agents({"alpha": 7})
    first = sampler.sample()
    sampler.sample()
    third = sampler.sample()
    assert first.history == (10.0,)
    assert third.history == (10.0, 20.0, 30.0)
    assert third.time == 1000.0
    assert third.per_core == (30.0, 30.0)
    assert third.mem_available == 12_000
    assert dict(third.agents) == {"alpha": AgentUsage(15.0, 7000)}
    assert sampler.latest() is third


def test_sampler_history_bounded():
    sampler = Sampler(read=frozen_read([float(i) for i in range(100)]), history=60)
    for _ in range(100):
        snapshot = sampler.sample()
    assert len(snapshot.history) == 60
    assert snapshot.history[0] == 40.0
    assert snapshot.history[-1] == 99.0


def test_snapshot_is_frozen():
    snapshot = Sampler(read=frozen_read([5.0])).sample()
    with pytest.raises(AttributeError):
        snapshot.cpu_percent = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        snapshot.agents["x"] = AgentUsage(0, 0)  # type: ignore[index]


def test_sampler_thread_publishes():
    sampler = Sampler(interval=0.02, read=frozen_read([float(i) for i in range(10_000)]))
    received: list[MetricsSnapshot] = []
    enough = threading.Event()

    def store(snapshot: MetricsSnapshot) -> None:
        received.append(snapshot)
        if len(received) >= 3:
            enough.set()

    sampler.subscribe(store)
    sampler.start()
    try:
        assert enough.wait(5)
    finally:
        sampler.stop()
    assert threading.current_thread().name != "aipass-metrics"
    assert [s.cpu_percent for s in received[:3]] == [0.0, 1.0, 2.0]


def test_sampler_subscriber_error_tolerated():
    sampler = Sampler(read=frozen_read([1.0, 2.0]))
    received = []

    def broken(snapshot):
        raise RuntimeError("subscriber bug")

    sampler.subscribe(broken)
    unsubscribe = sampler.subscribe(received.append)
    sampler.sample()
    unsubscribe()
    sampler.sample()
    assert len(received) == 1


def test_sampler_set_agents_from_threads():
    sampler = Sampler(read=frozen_read([1.0] * 1000))
    errors = []

    def writer(offset: int) -> None:
        try:
            for i in range(200):
                sampler.set_agents({f"a{offset}-{i}": i})
        except Exception as exc:  # pragma: no cover - the assert below reports it
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for _ in range(100):
        snapshot = sampler.sample()
        assert len(snapshot.agents) <= 1
    for thread in threads:
        thread.join()
    assert errors == []


def test_sampler_rejects_bad_interval():
    with pytest.raises(ValueError, match="invalid metrics interval 0"):
        Sampler(interval=0)


def test_fixed_sampler_publishes_given_snapshot():
    snapshot = MetricsSnapshot(
        time=5.0,
        cpu_percent=97.0,
        per_core=(99.0, 95.0),
        usable_cpus=2.0,
        mem_used=1,
        mem_total=2,
        agents=MappingProxyType({"a": AgentUsage(50.0, 10)}),
        history=(90.0, 97.0),
    )
    sampler = FixedSampler(snapshot)
    received = []
    sampler.subscribe(received.append)
    sampler.set_agents({"a": 1})
    sampler.start()
    assert received == [snapshot]
    assert sampler.latest() is snapshot
    other = MetricsSnapshot(6.0, 10.0, (10.0, 10.0), 2.0, 1, 2)
    sampler.publish(other)
    assert received == [snapshot, other]
    assert sampler.latest() is other
    sampler.stop()


def test_hold_tracker_holds_after_time():
    tracker = HoldTracker(90, 5)
    assert tracker.observe(97, 100.0) is None
    assert tracker.observe(97, 104.9) is None
    assert tracker.observe(97, 105.0) == "CPU 97% above 90% for 5 s"
    assert tracker.holding
    assert tracker.observe(95, 108.0) == "CPU 95% above 90% for 8 s"


def test_hold_tracker_drop_resets():
    tracker = HoldTracker(90, 5)
    tracker.observe(97, 100.0)
    tracker.observe(97, 106.0)
    assert tracker.holding
    assert tracker.observe(80, 107.0) is None
    assert not tracker.holding
    assert tracker.observe(97, 108.0) is None
    assert tracker.observe(97, 112.0) is None
    assert tracker.observe(97, 113.0) is not None


def test_hold_tracker_threshold_not_above():
    tracker = HoldTracker(90, 0)
    assert tracker.observe(90, 1.0) is None
    assert tracker.observe(90.1, 2.0) == "CPU 90% above 90% for 0 s"


def test_hold_tracker_from_snapshots():
    tracker = HoldTracker(50, 2)
    snapshots = [MetricsSnapshot(float(t), 75.0, (75.0,), 1.0, 1, 2) for t in range(4)]
    reasons = [tracker.update(snapshot) for snapshot in snapshots]
    assert reasons == [None, None, "CPU 75% above 50% for 2 s", "CPU 75% above 50% for 3 s"]


def test_hold_tracker_clock_going_back():
    tracker = HoldTracker(50, 2)
    tracker.observe(80, 100.0)
    assert tracker.observe(80, 50.0) is None
    assert tracker.observe(80, 52.0) is not None


@pytest.mark.parametrize("threshold", [0, -5, 101])
def test_hold_tracker_rejects_threshold(threshold):
    with pytest.raises(ValueError, match=f"invalid CPU hold threshold {threshold}"):
        HoldTracker(threshold, 5)


def test_hold_tracker_rejects_negative_time():
    with pytest.raises(ValueError, match="invalid CPU hold time -1"):
        HoldTracker(90, -1)


def test_sampler_stop_wakes_thread():
    sampler = Sampler(interval=3600.0, read=frozen_read([1.0] * 10))
    sampler.start()
    thread = sampler._thread
    assert thread is not None and thread.is_alive()
    sampler.stop(timeout=5)
    assert not thread.is_alive()
