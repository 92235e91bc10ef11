"""CPU and memory sampling with psutil, limited to the CPUs and memory this process may use.

A ``Sampler`` thread reads the machine once per interval and publishes a frozen
``MetricsSnapshot``. It contains the total CPU against the usable CPUs (the affinity set, capped
by a cgroup CPU quota) and the per-core CPU of the cores in the affinity set. It also contains
memory, capped by a cgroup memory limit, and each registered agent's CPU and RSS summed over its
whole process tree.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Callable, Mapping, NamedTuple

import psutil

from aipass_tui.core import clock

log = logging.getLogger(__name__)

HISTORY_LENGTH = 60
"""Total-CPU samples kept for the sparkline."""

_UNLIMITED_BYTES = 1 << 60
"""cgroup v1 reports "no memory limit" as a huge number close to 2**63; anything above this counts as none."""


class AgentUsage(NamedTuple):
    """CPU and memory of one agent's whole process tree.

    ``cpu_percent`` is in percent of one CPU, as ``top`` shows it (200 means two busy CPUs).
    """

    cpu_percent: float
    rss_bytes: int


_NO_AGENTS: Mapping[str, AgentUsage] = MappingProxyType({})


@dataclass(frozen=True)
class Reading:
    """The raw values of one sample, before the history is added."""

    cpu_percent: float
    per_core: tuple[float, ...]
    usable_cpus: float
    mem_used: int
    mem_total: int
    agents: Mapping[str, AgentUsage] = field(default_factory=lambda: _NO_AGENTS)


@dataclass(frozen=True)
class MetricsSnapshot:
    """One published sample.

    ``cpu_percent`` is 0-100 of the usable CPUs; ``per_core`` has one 0-100 value per core in
    the affinity set; ``mem_used`` and ``mem_total`` are bytes, capped by a cgroup memory
    limit; ``history`` contains the last total-CPU values, oldest first, this one included.
    """

    time: float
    cpu_percent: float
    per_core: tuple[float, ...]
    usable_cpus: float
    mem_used: int
    mem_total: int
    agents: Mapping[str, AgentUsage] = field(default_factory=lambda: _NO_AGENTS)
    history: tuple[float, ...] = ()

    @property
    def mem_available(self) -> int:
        return max(0, self.mem_total - self.mem_used)


# cgroup limits


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _unescape_mount(text: str) -> str:
    """Decode the octal escapes (``\\040`` for a space) that /proc/self/mountinfo uses."""
    out = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and text[i + 1 : i + 4].isdigit() and len(text[i + 1 : i + 4]) == 3:
            out.append(chr(int(text[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


class Cgroup:
    """The cgroup folders of this process (v1 and v2), found through ``/proc/self``.

    ``proc_self`` can point to another folder holding ``cgroup`` and ``mountinfo`` files, which
    the tests use to describe containers. Every value that cannot be read counts as no limit.
    """

    def __init__(self, proc_self: Path = Path("/proc/self")) -> None:
        self.v2: list[Path] = []
        self.v1: dict[str, list[Path]] = {}
        memberships = self._memberships(proc_self)
        for mount_root, mountpoint, fstype, options in self._mounts(proc_self):
            if fstype == "cgroup2" and "" in memberships:
                self.v2 = self._chain(mountpoint, mount_root, memberships[""])
            elif fstype == "cgroup":
                for controller in ("cpu", "cpuacct", "memory"):
                    if controller in options and controller in memberships and controller not in self.v1:
                        self.v1[controller] = self._chain(mountpoint, mount_root, memberships[controller])

    @staticmethod
    def _memberships(proc_self: Path) -> dict[str, str]:
        """Map each controller (``""`` for cgroup v2) to this process's cgroup path."""
        result: dict[str, str] = {}
        for line in (_read_text(proc_self / "cgroup") or "").splitlines():
            parts = line.split(":", 2)
            if len(parts) != 3:
                continue
            _, controllers, path = parts
            if controllers == "":
                result[""] = path
            for controller in controllers.split(","):
                if controller:
                    result[controller] = path
        return result

    @staticmethod
    def _mounts(proc_self: Path) -> list[tuple[str, Path, str, set[str]]]:
        mounts = []
        for line in (_read_text(proc_self / "mountinfo") or "").splitlines():
            left, sep, right = line.partition(" - ")
            fields = left.split()
            tail = right.split()
            if not sep or len(fields) < 5 or len(tail) < 3 or not tail[0].startswith("cgroup"):
                continue
            mount_root = _unescape_mount(fields[3])
            mountpoint = Path(_unescape_mount(fields[4]))
            mounts.append((mount_root, mountpoint, tail[0], set(tail[2].split(","))))
        return mounts

    @staticmethod
    def _chain(mountpoint: Path, mount_root: str, path: str) -> list[Path]:
        """Return the process's cgroup folder and its ancestors up to the mount point."""
        relative = path
        if mount_root != "/" and (path == mount_root or path.startswith(mount_root.rstrip("/") + "/")):
            relative = path[len(mount_root) :]
        folder = mountpoint.joinpath(*[part for part in relative.split("/") if part])
        chain = [folder]
        while folder != mountpoint and folder.parent != folder:
            folder = folder.parent
            chain.append(folder)
        return chain

    def cpu_quota(self) -> float | None:
        """Return the smallest CPU quota on the way to the root, in CPUs (fractions allowed), or None."""
        quotas: list[float] = []
        for folder in self.v2:
            text = _read_text(folder / "cpu.max")
            if text is None:
                continue
            parts = text.split()
            if len(parts) == 2 and parts[0] == "max":
                continue
            try:
                quota, period = float(parts[0]), float(parts[1])
            except (ValueError, IndexError):
                log.warning("ignoring unreadable CPU quota %r in %s", text, folder / "cpu.max")
                continue
            if quota > 0 and period > 0:
                quotas.append(quota / period)
        for folder in self.v1.get("cpu", []):
            quota_text = _read_text(folder / "cpu.cfs_quota_us")
            period_text = _read_text(folder / "cpu.cfs_period_us")
            if quota_text is None or period_text is None:
                continue
            try:
                quota, period = float(quota_text), float(period_text)
            except ValueError:
                log.warning("ignoring unreadable CPU quota %r/%r in %s", quota_text, period_text, folder)
                continue
            if quota > 0 and period > 0:
                quotas.append(quota / period)
        return min(quotas) if quotas else None

    def cpu_usage_seconds(self) -> float | None:
        """Return the CPU time used by this process's cgroup so far, in seconds, or None."""
        if self.v2:
            for line in (_read_text(self.v2[0] / "cpu.stat") or "").splitlines():
                name, _, value = line.partition(" ")
                if name == "usage_usec" and value.strip().isdigit():
                    return int(value) / 1e6
        for controller in ("cpuacct", "cpu"):
            chain = self.v1.get(controller)
            if chain:
                text = _read_text(chain[0] / "cpuacct.usage")
                if text and text.isdigit():
                    return int(text) / 1e9
        return None

    def memory(self) -> tuple[int, int] | None:
        """Return (limit, used) bytes of the tightest cgroup memory limit, or None without a limit.

        ``used`` leaves out inactive file cache, which the kernel reclaims before it runs out.
        """
        best: tuple[int, int] | None = None
        for folder in self.v2:
            limit = _read_int(folder / "memory.max")
            current = _read_int(folder / "memory.current")
            if limit is not None and current is not None and (best is None or limit < best[0]):
                best = (limit, max(0, current - _stat_value(folder / "memory.stat", "inactive_file")))
        for folder in self.v1.get("memory", []):
            limit = _read_int(folder / "memory.limit_in_bytes")
            current = _read_int(folder / "memory.usage_in_bytes")
            if limit is not None and current is not None and limit < _UNLIMITED_BYTES and (best is None or limit < best[0]):
                best = (limit, max(0, current - _stat_value(folder / "memory.stat", "total_inactive_file")))
        return best


def _read_int(path: Path) -> int | None:
    text = _read_text(path)
    if text is None or not text.isdigit():
        return None
    return int(text)


def _stat_value(path: Path, key: str) -> int:
    for line in (_read_text(path) or "").splitlines():
        name, _, value = line.partition(" ")
        if name == key and value.strip().isdigit():
            return int(value)
    return 0


def affinity_cpus() -> list[int]:
    """Return the CPU numbers this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def usable_cpus(proc_self: Path = Path("/proc/self")) -> float:
    """Return how many CPUs this process may use: its affinity set, capped by a cgroup CPU quota.

    The result may be fractional (a quota of 150000/100000 gives 1.5).
    """
    cpus = float(len(affinity_cpus()))
    quota = Cgroup(proc_self).cpu_quota()
    return min(cpus, quota) if quota is not None else cpus


# Process trees

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(slots=True)
class _ProcessStat:
    """One process from a scan. ``cpu_seconds`` and ``rss`` are None when psutil must read them."""

    ppid: int
    start: object
    cpu_seconds: float | None = None
    rss: int | None = None
    zombie: bool = False


def _scan_proc() -> dict[int, _ProcessStat] | None:
    """Read every ``/proc/<pid>/stat`` once: parent, start time, CPU time and RSS. None without /proc.

    NOTE: One read per process keeps a sample of 500 processes within its 40 ms budget. With
    psutil.Process objects (stat and statm reads per process, plus a scan for parents) a sample
    took 87-113 ms on a 2-core VM, and 11-23 ms this way (benchmarks/bench_metrics.py).
    """
    try:
        folder = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    table: dict[int, _ProcessStat] = {}
    try:
        for name in os.listdir(folder):
            if not name.isdigit():
                continue
            try:
                handle = os.open(f"{name}/stat", os.O_RDONLY, dir_fd=folder)
                try:
                    data = os.read(handle, 4096)
                finally:
                    os.close(handle)
            except OSError:
                continue
            # The command name may contain spaces and parentheses, so split after its last ")".
            rest = data[data.rfind(b")") + 2 :].split()
            if len(rest) < 22:
                continue
            table[int(name)] = _ProcessStat(
                ppid=int(rest[1]),
                start=int(rest[19]),
                cpu_seconds=(int(rest[11]) + int(rest[12])) / _CLOCK_TICKS,
                rss=int(rest[21]) * _PAGE_SIZE,
                zombie=rest[0] in (b"Z", b"X"),
            )
    finally:
        os.close(folder)
    return table


def _scan_psutil() -> dict[int, _ProcessStat]:
    table: dict[int, _ProcessStat] = {}
    for process in psutil.process_iter(["ppid", "create_time"]):
        table[process.pid] = _ProcessStat(process.info["ppid"] or 0, process.info["create_time"])
    return table


class PsutilReader:
    """Reads the machine; ``__call__(agents)`` returns one ``Reading``.

    CPU percent of a process is the CPU time it used since the previous sample, so the
    previous value is kept per pid together with the process's start time (a reused pid
    starts over). A process's first sample therefore counts 0 % CPU. On Linux the values
    come from one read of ``/proc/<pid>/stat`` per process; elsewhere, or with
    ``use_proc_stat=False``, from cached psutil.Process objects.
    """

    def __init__(self, cgroup: Cgroup | None = None, use_proc_stat: bool = True) -> None:
        self.cgroup = cgroup if cgroup is not None else Cgroup()
        self.use_proc_stat = use_proc_stat
        self.affinity = affinity_cpus()
        quota = self.cgroup.cpu_quota()
        self.usable_cpus = min(float(len(self.affinity)), quota) if quota is not None else float(len(self.affinity))
        self.quota_limited = quota is not None and quota < len(self.affinity)
        self._processes: dict[int, tuple[object, psutil.Process]] = {}
        self._cpu_times: dict[int, tuple[object, float, float]] = {}
        psutil.cpu_percent(percpu=True)
        self._last_usage = (time.monotonic(), self.cgroup.cpu_usage_seconds())

    def __call__(self, agents: Mapping[str, int]) -> Reading:
        per_core_all = psutil.cpu_percent(percpu=True)
        per_core = tuple(per_core_all[i] for i in self.affinity if i < len(per_core_all))
        total = self._total_cpu(per_core)
        mem_used, mem_total = self._memory()
        usage = self._agents(agents) if agents else _NO_AGENTS
        return Reading(total, per_core, self.usable_cpus, mem_used, mem_total, usage)

    def _total_cpu(self, per_core: tuple[float, ...]) -> float:
        now = time.monotonic()
        used = self.cgroup.cpu_usage_seconds() if self.quota_limited else None
        previous_time, previous_used = self._last_usage
        self._last_usage = (now, used)
        if used is not None and previous_used is not None and now > previous_time:
            busy = (used - previous_used) / (now - previous_time)
            return max(0.0, min(100.0, 100.0 * busy / self.usable_cpus))
        return sum(per_core) / len(per_core) if per_core else 0.0

    def _memory(self) -> tuple[int, int]:
        memory = psutil.virtual_memory()
        total, used = int(memory.total), int(memory.total - memory.available)
        limited = self.cgroup.memory()
        if limited is not None and limited[0] < total:
            total, used = limited[0], min(limited[1], limited[0])
        return used, total

    def _agents(self, agents: Mapping[str, int]) -> Mapping[str, AgentUsage]:
        table = _scan_proc() if self.use_proc_stat else None
        if table is None:
            table = _scan_psutil()
        now = time.monotonic()
        children: dict[int, list[int]] = {}
        for pid, stat in table.items():
            children.setdefault(stat.ppid, []).append(pid)
        seen: set[int] = set()
        result: dict[str, AgentUsage] = {}
        for name, root in agents.items():
            cpu = 0.0
            rss = 0
            stack = [root] if root in table else []
            while stack:
                pid = stack.pop()
                stack.extend(children.get(pid, ()))
                seen.add(pid)
                sample = self._sample(pid, table[pid], now)
                cpu += sample[0]
                rss += sample[1]
            result[name] = AgentUsage(round(cpu, 1), rss)
        for cache in (self._processes, self._cpu_times):
            for pid in [pid for pid in cache if pid not in seen]:
                del cache[pid]
        return MappingProxyType(result)

    def _sample(self, pid: int, stat: _ProcessStat, now: float) -> tuple[float, int]:
        if stat.zombie:
            return 0.0, 0
        if stat.cpu_seconds is not None and stat.rss is not None:
            previous = self._cpu_times.get(pid)
            self._cpu_times[pid] = (stat.start, stat.cpu_seconds, now)
            if previous is None or previous[0] != stat.start or now <= previous[2]:
                return 0.0, stat.rss
            return max(0.0, 100.0 * (stat.cpu_seconds - previous[1]) / (now - previous[2])), stat.rss
        return self._sample_psutil(pid, stat.start)

    def _sample_psutil(self, pid: int, start: object) -> tuple[float, int]:
        cached = self._processes.get(pid)
        try:
            if cached is None or cached[0] != start:
                cached = (start, psutil.Process(pid))
                self._processes[pid] = cached
            process = cached[1]
            with process.oneshot():
                return process.cpu_percent(None), process.memory_info().rss
        except psutil.ZombieProcess:
            return 0.0, 0
        except psutil.NoSuchProcess:
            self._processes.pop(pid, None)
            return 0.0, 0
        except psutil.AccessDenied:
            return 0.0, 0


# Publishing


Subscriber = Callable[[MetricsSnapshot], None]


class _Publisher:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: list[Subscriber] = []
        self._latest: MetricsSnapshot | None = None
        self._agents: dict[str, int] = {}

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Add a callback for each new snapshot; return a function that removes it."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def latest(self) -> MetricsSnapshot | None:
        with self._lock:
            return self._latest

    def set_agents(self, agents: Mapping[str, int]) -> None:
        """Replace the agents to measure: agent name to the root pid of its current run."""
        with self._lock:
            self._agents = dict(agents)

    def agents(self) -> dict[str, int]:
        with self._lock:
            return dict(self._agents)

    def _publish(self, snapshot: MetricsSnapshot) -> None:
        with self._lock:
            self._latest = snapshot
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(snapshot)
            except Exception:
                log.exception("a metrics subscriber failed")


class Sampler(_Publisher):
    """A daemon thread that takes one sample per ``interval`` seconds and publishes it.

    ``read(agents)`` returns a ``Reading``; the default reads psutil. Tests pass their own to
    freeze the values. Subscribers are called on the sampler thread and must only store the
    snapshot (for example hand it to the UI loop).
    """

    def __init__(
        self,
        interval: float = 1.0,
        read: Callable[[Mapping[str, int]], Reading] | None = None,
        *,
        now: Callable[[], float] = clock.now,
        history: int = HISTORY_LENGTH,
    ) -> None:
        super().__init__()
        if not interval > 0 or math.isinf(interval):
            raise ValueError(f"invalid metrics interval {interval!r}: use a positive number of seconds such as 1.0")
        self.interval = interval
        self._read = read
        self._now = now
        self._history: deque[float] = deque(maxlen=history)
        self._read_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="aipass-metrics", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def sample(self) -> MetricsSnapshot:
        """Take one sample now, publish it and return it."""
        with self._read_lock:
            if self._read is None:
                self._read = PsutilReader()
            reading = self._read(self.agents())
            self._history.append(reading.cpu_percent)
            snapshot = MetricsSnapshot(
                time=self._now(),
                cpu_percent=reading.cpu_percent,
                per_core=tuple(reading.per_core),
                usable_cpus=reading.usable_cpus,
                mem_used=reading.mem_used,
                mem_total=reading.mem_total,
                agents=MappingProxyType(dict(reading.agents)),
                history=tuple(self._history),
            )
        self._publish(snapshot)
        return snapshot

    def _run(self) -> None:
        due = time.monotonic() + self.interval
        if self._read is None:
            # The first psutil CPU reading covers no interval, so it primes the counters instead.
            with self._read_lock:
                self._read = PsutilReader()
        while not self._stop.wait(max(0.0, due - time.monotonic())):
            try:
                self.sample()
            except Exception:
                log.exception("taking a metrics sample failed")
            due += self.interval
            if due < time.monotonic():
                due = time.monotonic() + self.interval


class FixedSampler(_Publisher):
    """Publishes a given snapshot, for tests and screenshots: no thread, no psutil."""

    def __init__(self, snapshot: MetricsSnapshot) -> None:
        super().__init__()
        self._snapshot = snapshot
        self._latest = snapshot

    def start(self) -> None:
        self._publish(self._snapshot)

    def stop(self, timeout: float = 5.0) -> None:
        return None

    def publish(self, snapshot: MetricsSnapshot) -> None:
        """Replace the snapshot and publish it to the subscribers on the caller's thread."""
        self._snapshot = snapshot
        self._publish(snapshot)


# Admission control


class HoldTracker:
    """Tells whether new runs should be held because CPU use stayed high for a while.

    ``observe`` returns a reason such as "CPU 97% above 90% for 5 s" while CPU has been above
    ``threshold_percent`` for at least ``hold_seconds`` without a drop, and None otherwise.
    The text changes with every sample; compare ``holding`` to detect a change of state.
    """

    def __init__(self, threshold_percent: float, hold_seconds: float) -> None:
        if not 0 < threshold_percent <= 100:
            raise ValueError(f"invalid CPU hold threshold {threshold_percent!r}: use a percentage above 0 and at most 100")
        if not hold_seconds >= 0:
            raise ValueError(f"invalid CPU hold time {hold_seconds!r}: use 0 or more seconds")
        self.threshold_percent = threshold_percent
        self.hold_seconds = hold_seconds
        self._above_since: float | None = None
        self.reason: str | None = None

    @property
    def holding(self) -> bool:
        return self.reason is not None

    def observe(self, cpu_percent: float, at: float) -> str | None:
        """Feed one CPU reading taken at ``at`` (seconds); return the hold reason or None."""
        if cpu_percent <= self.threshold_percent:
            self._above_since = None
            self.reason = None
            return None
        if self._above_since is None or at < self._above_since:
            self._above_since = at
        elapsed = at - self._above_since
        if elapsed >= self.hold_seconds:
            self.reason = f"CPU {cpu_percent:.0f}% above {self.threshold_percent:g}% for {elapsed:.0f} s"
        else:
            self.reason = None
        return self.reason

    def update(self, snapshot: MetricsSnapshot) -> str | None:
        """Feed a snapshot; return the hold reason or None."""
        return self.observe(snapshot.cpu_percent, snapshot.time)
