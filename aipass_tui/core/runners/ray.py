"""Cluster runs: each run executes on a node of a Ray cluster, behind the same runner interface.

``RayRunner.start`` creates one named, detached actor per run (``ray_node.NodeRun``). The actor
clones ``[cluster] repo_url`` on its node, checks out the agent's branch, runs the argv through
the same ``sh`` wrapper as a local run, and commits and pushes the branch when the agent ends.

The tick never waits for a node. Each live run has at most one outstanding call (``begin`` or
a ``poll``), and every tick collects the finished ones with ``ray.wait(timeout=0)``. The calls
the tick does make to the cluster go to its GCS: creating an actor, and ``ray.nodes()`` at most
every few seconds while runs start. Output arrives in batches and is appended to the local run folder's
``stdout`` and ``stderr`` files, so ``read`` works on local files exactly like the local runner,
and panes, ``logs`` and transcripts need no change. A run counts as ended only after its final
output is local and its branch push has finished.

Files this runner adds to the local run folder: ``pid`` (the process id on the node, written
when the process has started, which tells recovery the run did start), ``exit`` (the exit
status reported by the node) and ``remote.json`` (node, node folder, state and push result).

Importing this module imports Ray; only ``Orchestrator.runner_for("ray")`` does that.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import socket
import threading
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, GetTimeoutError, RayActorError, RayError

from aipass_tui.config import AgentConfig, ClusterSettings, Resources
from aipass_tui.core import clock
from aipass_tui.core.models import Request, RunRecord
from aipass_tui.core.runners.base import RunHandle
from aipass_tui.core.runners.ray_node import NodeRun
from aipass_tui.core.store import Paths, StateError, read_model, write_json

log = logging.getLogger(__name__)
cluster_log = logging.getLogger("aipass_tui.cluster")  # warnings the Ray cluster sends to this driver

ACTOR_PREFIX = "aipass-run-"
POLL_LIMIT = 512 * 1024  # bytes per stream per poll
POLL_WAIT = 5.0  # seconds a poll may wait on the node for new output; sets the call rate of a quiet run
MIN_LINGER = 0.1  # seconds a poll holds back new output to send it in one batch
MAX_LINGER = 2.0
CALLS_PER_SECOND = 400.0  # target rate of poll replies across all runs, which sets the linger
RETRY_SECONDS = 1.0  # pause before calling a node again after a transient error
MAX_CALL_ERRORS = 60  # failed calls in a row (about a minute) before a run is given up as lost
KILL_PENDING_SECONDS = 10.0  # a stopped run whose begin call is still unanswered then was never placed
CONNECT_TIMEOUT = 5.0
NODES_CACHE_SECONDS = 5.0
MAX_CONCURRENCY = 6  # begin, poll, terminate, kill and cleanup can run at once in one actor
GCS_RECONNECT_VARIABLE = "RAY_gcs_rpc_server_reconnect_timeout_s"
GCS_RECONNECT_SECONDS = 10_000_000  # about 115 days: in effect, never give up on the head node

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
          "t": 1000**4, "tb": 1000**4, "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4}
_MEMORY = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*")

_connect_lock = threading.Lock()
_runners: "weakref.WeakSet[RayRunner]" = weakref.WeakSet()


class ClusterError(RuntimeError):
    """The cluster cannot be used; the message names the setting or address and what to do."""


def parse_memory(value: str) -> int:
    """Parse ``"1GB"``, ``"512MiB"`` or ``"2000000"`` (bytes) into bytes."""
    match = _MEMORY.fullmatch(value)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise ValueError(f"invalid memory {value!r}: use bytes or a size such as '512MB', '2GB' or '1GiB'")
    return int(float(match.group(1)) * _UNITS[unit])


def actor_name(run_id: str) -> str:
    return ACTOR_PREFIX + run_id


def namespace_for(repo: Path) -> str:
    """Return the Ray namespace of a repository's runs: ``aipass-`` and a hash of its path."""
    digest = hashlib.sha256(str(Path(repo).resolve()).encode("utf-8", "surrogateescape")).hexdigest()
    return f"aipass-{digest[:12]}"


def connect(address: str, namespace: str) -> None:
    """Connect this process to the cluster once; later calls reuse the connection.

    Raises ClusterError when the address is unreachable or this process is already connected
    to another cluster.
    """
    with _connect_lock:
        if ray.is_initialized():
            connected = ray.get_runtime_context().gcs_address
            if _host_port(connected) != _host_port(address) and address != "auto":
                raise ClusterError(
                    f"this process is already connected to the Ray cluster at {connected}, not to {address}: "
                    f"use one cluster per process, or restart aipass-tui after changing [cluster] address"
                )
            return
        _check_reachable(address)
        # Ray's own stream handler would write into the cockpit's terminal: its records go to
        # this process's logging instead, and the nodes' output stays on the nodes.
        ray_logger = logging.getLogger("ray")
        for handler in list(ray_logger.handlers):
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
                ray_logger.removeHandler(handler)
        ray_logger.propagate = True
        ray_logger.setLevel(logging.WARNING)
        # A Ray driver ends its own process when the cluster's GCS stays unreachable for
        # gcs_rpc_server_reconnect_timeout_s (60 s in Ray 2.60), which would end the cockpit.
        # The variable must be set before ray.init.
        os.environ.setdefault(GCS_RECONNECT_VARIABLE, str(GCS_RECONNECT_SECONDS))
        try:
            ray.init(address=address, namespace=namespace, configure_logging=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ClusterError(f"could not connect to the Ray cluster at {address}: {exc}") from exc
        _route_cluster_messages()
        log.info("connected to the Ray cluster at %s (namespace %s)", address, namespace)


def _route_cluster_messages() -> None:
    """Send the warnings that Ray pushes to every driver into this process's log, not to stdout.

    A connected driver runs a thread that prints cluster warnings (for example "(raylet)
    WARNING: 12 PYTHON worker processes have been started") to ``sys.stdout`` even with
    ``log_to_driver=False``. In the cockpit that would write over the screen.
    """
    # NOTE: this replaces a private Ray 2.60 function; with another Ray version the warnings
    # may reach stdout again.
    worker_module = getattr(ray, "_private", None) and getattr(ray._private, "worker", None)
    if worker_module is None or not hasattr(worker_module, "print_to_stdstream"):
        log.warning("this Ray version has no print_to_stdstream: cluster warnings may be printed to stdout")
        return

    def to_log(data: dict[str, Any], ignore_prefix: bool = False) -> None:
        for line in data.get("lines", []):
            cluster_log.warning("%s: %s", data.get("pid", "cluster"), line)

    worker_module.print_to_stdstream = to_log


def _host_port(address: str) -> str:
    return address.removeprefix("ray://").strip().lower()


def _check_reachable(address: str) -> None:
    """Fail fast on an address nothing listens on: ``ray.init`` would retry for minutes."""
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        return  # "auto" and other forms that Ray resolves itself
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT):
            pass
    except OSError as exc:
        raise ClusterError(
            f"the Ray cluster at {address} is not reachable ({exc}): start it with "
            f"`ray start --head --port={port}`, or fix [cluster] address in .aipass/config.toml"
        ) from exc


class RayRunner:
    """Runs on the nodes of a Ray cluster; see the module docstring for the flow."""

    name = "ray"

    def __init__(self, cluster: ClusterSettings, paths: Paths, agents: Mapping[str, AgentConfig] | None = None) -> None:
        if not cluster.address:
            raise ClusterError('runner = "ray" needs the cluster address: set [cluster] address = "<head-ip>:6379" in .aipass/config.toml')
        if not cluster.repo_url:
            raise ClusterError('runner = "ray" needs a git remote the nodes can reach: set [cluster] repo_url in .aipass/config.toml')
        self.cluster = cluster
        self.paths = paths
        self.namespace = namespace_for(paths.repo)
        self._agents = agents
        self._handles: dict[str, RunHandle] = {}
        self._samples: dict[str, dict[str, Any]] = {}
        self._nodes_cache: tuple[float, list[dict[str, Any]]] = (0.0, [])
        connect(cluster.address, self.namespace)
        self._actor_class = ray.remote(ClusterRun)
        _runners.add(self)
        self._remove_finished_actors()

    # ------------------------------------------------------------------ start

    def start(self, run_id: str, run_dir: Path, argv: list[str], cwd: Path, env: dict[str, str]) -> RunHandle:
        """Create the run's actor and ask it to start; return at once without waiting for the node.

        ``cwd`` (the local worktree) is not used: the run works in its own clone on the node.
        Reads the branch and base commit from ``run.json``, which the orchestrator writes first.
        Raises OSError naming the problem when the run cannot be placed on the cluster.
        """
        try:
            return self._start(run_id, run_dir, argv, env)
        except RayError as exc:
            raise _start_error(f"the Ray cluster at {self.cluster.address} failed to take run {run_id}: {exc}") from exc

    def _start(self, run_id: str, run_dir: Path, argv: list[str], env: dict[str, str]) -> RunHandle:
        record = _read_record(run_dir)
        if record.branch is None:
            raise _start_error(
                f"run {run_id} has no branch: a cluster run works on its own branch, so agent {record.agent} "
                f'needs isolation = "worktree" in a git repository'
            )
        options = self._actor_options(run_id, record.agent)
        request = _read_request(run_dir)
        spec = {
            "argv": list(argv),
            "env": dict(env),
            "repo_url": self.cluster.repo_url,
            "branch": record.branch,
            "start_head": _branch_head(self.paths.repo, record.branch),
            "agent": record.agent,
            "subject": request.subject if request else "",
        }
        run_dir.mkdir(parents=True, exist_ok=True)
        handle = RunHandle(run_id, run_dir, extra={"ended": False, "exit_code": None})
        self._open(handle)
        try:
            actor = self._actor_class.options(**options).remote(run_id, spec)
        except (ValueError, TypeError, RayError) as exc:  # Ray rejected the options or the call
            self.release(handle)
            raise _start_error(f"could not create the cluster actor of run {run_id}: {exc}") from exc
        handle.extra["actor"] = actor
        handle.extra["ref"] = actor.begin.remote()
        handle.extra["call"] = "begin"
        self._write_remote(handle, state="scheduling", actor=actor_name(run_id), namespace=self.namespace, resources=_describe(options))
        self._handles[run_id] = handle
        log.info("run %s submitted to the cluster as actor %s (%s)", run_id, actor_name(run_id), _describe(options))
        return handle

    def _actor_options(self, run_id: str, agent: str) -> dict[str, Any]:
        resources = self._resources_for(agent)
        options: dict[str, Any] = {
            "name": actor_name(run_id),
            "namespace": self.namespace,
            "lifetime": "detached",
            "max_restarts": 0,
            "max_task_retries": 0,
            "max_concurrency": MAX_CONCURRENCY,
            "num_cpus": resources.cpus,
            "scheduling_strategy": "SPREAD",
        }
        if resources.memory:
            try:
                options["memory"] = parse_memory(resources.memory)
            except ValueError as exc:
                raise _start_error(f"agent {agent}: resources.{exc}") from exc
        if resources.custom:
            reserved = sorted({"CPU", "GPU", "memory", "object_store_memory"} & set(resources.custom))
            if reserved:
                raise _start_error(f"agent {agent}: resources.custom must not name {', '.join(reserved)}; use resources.cpus and resources.memory")
            options["resources"] = dict(resources.custom)
        self._check_feasible(agent, options)
        return options

    def _resources_for(self, agent: str) -> Resources:
        if self._agents is None:
            # NOTE: without an agents mapping the runner reads the repository's config file, which
            # can differ from settings an embedding program passed to the orchestrator.
            from aipass_tui.config import load_settings

            self._agents = load_settings(self.paths.repo).agents
        config = self._agents.get(agent)
        return config.resources if config is not None else Resources()

    def _check_feasible(self, agent: str, options: dict[str, Any]) -> None:
        """Reject a run that no alive node could ever hold, because Ray would keep it pending for ever."""
        needed = {"CPU": float(options["num_cpus"]), **{k: float(v) for k, v in options.get("resources", {}).items()}}
        if "memory" in options:
            needed["memory"] = float(options["memory"])
        nodes = self._alive_nodes()
        if not nodes:
            raise _start_error(f"the Ray cluster at {self.cluster.address} has no alive node")
        if any(all(node["Resources"].get(key, 0.0) >= amount for key, amount in needed.items() if amount > 0) for node in nodes):
            return
        wanted = ", ".join(f"{key}={amount:g}" for key, amount in needed.items())
        raise _start_error(
            f"agent {agent} needs {wanted}, which no node of the cluster has: lower [agents.{agent}.resources] "
            f"or start a node with those resources (ray start --resources=...)"
        )

    def _alive_nodes(self) -> list[dict[str, Any]]:
        fetched_at, nodes = self._nodes_cache
        now = clock.now()
        if now - fetched_at > NODES_CACHE_SECONDS or not nodes:
            nodes = [node for node in ray.nodes() if node.get("Alive")]
            self._nodes_cache = (now, nodes)
        return nodes

    # ------------------------------------------------------------------ re-attach

    def adopt(self, run_id: str, run_dir: Path, pid: int | None, create_time: float | None) -> RunHandle | None:
        """Re-attach to the run's actor by name; None when the actor no longer exists."""
        try:
            actor = ray.get_actor(actor_name(run_id), namespace=self.namespace)
        except ValueError:
            return None
        remote = _read_remote(run_dir)
        handle = RunHandle(run_id, run_dir, node=_node_label(remote), extra={"ended": False, "exit_code": None, "actor": actor, "remote": remote})
        handle.extra["node_id"] = remote.get("node_id")
        self._open(handle)
        # begin is idempotent: it returns where the run started, or starts it if the previous
        # orchestrator stopped before its begin call reached the node.
        handle.extra["ref"] = actor.begin.remote()
        handle.extra["call"] = "begin"
        self._handles[run_id] = handle
        log.info("re-attached to run %s on the cluster (node %s)", run_id, handle.node or "not known yet")
        return handle

    def adopt_ended(self, run_id: str, run_dir: Path) -> RunHandle:
        """Return a handle for a run whose actor is gone, so its local output can be finalized."""
        handle = RunHandle(run_id, run_dir, node=_node_label(_read_remote(run_dir)), extra={"ended": True})
        handle.extra["exit_code"] = _read_int(run_dir / "exit")
        self._open(handle)
        return handle

    # ------------------------------------------------------------------ local files

    def _open(self, handle: RunHandle) -> None:
        for stream in ("stdout", "stderr"):
            path = handle.run_dir / stream
            handle.extra[f"append_{stream}"] = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            handle.extra[stream] = os.open(path, os.O_RDONLY)
            handle.extra[f"size_{stream}"] = os.fstat(handle.extra[stream]).st_size

    def seek(self, handle: RunHandle, stream: str, offset: int) -> None:
        os.lseek(handle.extra[stream], offset, os.SEEK_SET)

    def read(self, handle: RunHandle, stream: str, limit: int) -> bytes:
        fd = handle.extra.get(stream)
        if fd is None:
            return b""
        return os.read(fd, limit)

    # ------------------------------------------------------------------ progress

    def exited(self, handles: list[RunHandle]) -> list[RunHandle]:
        """Collect finished calls, append their output locally and return the runs that ended."""
        self._pump(handles)
        return [handle for handle in handles if handle.extra.get("ended")]

    def alive(self, handle: RunHandle) -> bool:
        self._pump([handle])
        return not handle.extra.get("ended")

    def exit_code(self, handle: RunHandle) -> int | None:
        return handle.extra.get("exit_code")

    def _pump(self, handles: list[RunHandle]) -> None:
        now = clock.now()
        pending: dict[Any, RunHandle] = {}
        for handle in handles:
            if handle.extra.get("ended") or "actor" not in handle.extra:
                continue
            if handle.extra.get("ref") is None and now >= handle.extra.get("retry_at", 0.0):
                self._submit_poll(handle)
            ref = handle.extra.get("ref")
            if ref is not None:
                pending[ref] = handle
        if not pending:
            return
        ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0)
        for ref in ready:
            handle = pending[ref]
            call = handle.extra.pop("call", "poll")
            handle.extra["ref"] = None
            try:
                result = ray.get(ref, timeout=0)
            except ActorUnavailableError as exc:
                self._retry_later(handle, exc)
                continue
            except (ActorDiedError, RayActorError) as exc:
                self._lost(handle, exc)
                continue
            except GetTimeoutError:
                handle.extra["ref"], handle.extra["call"] = ref, call
                continue
            except RayError as exc:
                if handle.extra.get("errors", 0) + 1 >= MAX_CALL_ERRORS:
                    self._lost(handle, exc)
                else:
                    self._retry_later(handle, exc)
                continue
            handle.extra["errors"] = 0
            if call == "begin":
                self._started(handle, result)
            else:
                self._received(handle, result)
            if not handle.extra.get("ended") and clock.now() >= handle.extra.get("retry_at", 0.0):
                self._submit_poll(handle)
        self._kill_unplaced(handles, now)

    def _kill_unplaced(self, handles: list[RunHandle], now: float) -> None:
        """Remove actors that a kill did not reach in time: Ray has not placed them on a node."""
        for handle in handles:
            killed_at = handle.extra.get("killed_at")
            if killed_at is None or handle.extra.get("ended") or handle.extra.get("call") != "begin":
                continue
            if now - killed_at >= KILL_PENDING_SECONDS:
                log.warning("run %s: its actor was not placed on a node; removing it", handle.run_id)
                ray.kill(handle.extra["actor"], no_restart=True)
                handle.extra["killed_at"] = None
                handle.extra["removed_unplaced"] = True

    def _submit_poll(self, handle: RunHandle) -> None:
        linger = min(MAX_LINGER, max(MIN_LINGER, len(self._handles) / CALLS_PER_SECOND))
        handle.extra["ref"] = handle.extra["actor"].poll.remote(
            handle.extra["size_stdout"], handle.extra["size_stderr"], POLL_LIMIT, POLL_WAIT, linger,
        )
        handle.extra["call"] = "poll"

    def _started(self, handle: RunHandle, started: dict[str, Any]) -> None:
        handle.node = _node_label(started)
        handle.extra["remote_pid"] = started.get("pid")
        if started.get("pid") is not None:
            try:
                write_json(handle.run_dir / "pid", started["pid"], fsync=False)
            except StateError as exc:
                log.error("run %s: could not write its pid file: %s", handle.run_id, exc)
        self._write_remote(handle, state="running" if not started.get("error") else "ended", **started)

    def _received(self, handle: RunHandle, result: dict[str, Any]) -> None:
        complete = True
        for stream in ("stdout", "stderr"):
            data: bytes = result[stream]
            if len(data) >= POLL_LIMIT:
                complete = False
            if data and not self._append(handle, stream, data):
                complete = False
                handle.extra["retry_at"] = clock.now() + RETRY_SECONDS
        sample = result.get("sample")
        if sample and sample.get("node_id"):
            self._samples[sample["node_id"]] = {**sample, "received_at": clock.now()}
        if result["state"] == "ended" and complete:
            self._finish(handle, result["exit_code"], result.get("push"))

    def _append(self, handle: RunHandle, stream: str, data: bytes) -> bool:
        """Append ``data`` to the local stream file; False when not all of it was written."""
        fd = handle.extra[f"append_{stream}"]
        view = memoryview(data)
        try:
            while view:
                written = os.write(fd, view)
                handle.extra[f"size_{stream}"] += written
                view = view[written:]
        except OSError as exc:
            self._warn_once(handle, f"write_{stream}", "run %s: could not append to the local %s file (%s); retrying", handle.run_id, stream, exc)
            return False
        return True

    def _finish(self, handle: RunHandle, exit_code: int | None, push: dict[str, Any] | None) -> None:
        handle.extra["ended"] = True
        handle.extra["exit_code"] = exit_code
        if exit_code is not None:
            try:
                write_json(handle.run_dir / "exit", exit_code)
            except StateError as exc:
                log.error("run %s: could not write its exit file: %s", handle.run_id, exc)
        self._write_remote(handle, state="ended", exit_code=exit_code, push=push)
        log.info("run %s ended on node %s (exit %s)", handle.run_id, handle.node, exit_code)

    def _lost(self, handle: RunHandle, exc: Exception) -> None:
        """End a run whose actor died (with its node, or removed before placement): no exit status."""
        if handle.extra.get("removed_unplaced"):
            message = "aipass-tui: stopped while waiting for a cluster node with free resources\n"
            state = "stopped"
        else:
            message = f"aipass-tui: the cluster node running this run was lost ({type(exc).__name__}); its process and uncommitted work on that node are gone\n"
            state = "lost"
            log.warning("run %s: its actor on node %s died: %s", handle.run_id, handle.node, exc)
        self._append(handle, "stderr", message.encode())
        handle.extra["ended"] = True
        handle.extra["exit_code"] = None
        self._write_remote(handle, state=state, error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)

    def _retry_later(self, handle: RunHandle, exc: Exception) -> None:
        handle.extra["errors"] = handle.extra.get("errors", 0) + 1
        handle.extra["retry_at"] = clock.now() + RETRY_SECONDS
        self._warn_once(handle, "call", "run %s: call to its node failed (%s); retrying every %s s", handle.run_id, exc, RETRY_SECONDS)

    def _warn_once(self, handle: RunHandle, key: str, message: str, *args: Any) -> None:
        warned = handle.extra.setdefault("warned", set())
        if key not in warned:
            warned.add(key)
            log.warning(message, *args)

    # ------------------------------------------------------------------ stop and release

    def terminate(self, handle: RunHandle) -> None:
        actor = handle.extra.get("actor")
        if actor is not None and not handle.extra.get("ended"):
            actor.terminate.remote()

    def kill(self, handle: RunHandle) -> None:
        actor = handle.extra.get("actor")
        if actor is not None and not handle.extra.get("ended"):
            actor.kill.remote()
            handle.extra.setdefault("killed_at", clock.now())

    def release(self, handle: RunHandle) -> None:
        """Close the local files; for an ended run, also delete its node folder and its actor."""
        for key in ("stdout", "stderr", "append_stdout", "append_stderr"):
            fd = handle.extra.pop(key, None)
            if fd is not None:
                os.close(fd)
        self._handles.pop(handle.run_id, None)
        actor = handle.extra.pop("actor", None)
        handle.extra.pop("ref", None)
        if actor is not None and handle.extra.get("ended"):
            _remove_actor(handle.run_id, actor)

    def _remove_finished_actors(self) -> None:
        """Remove actors left by an earlier orchestrator for runs that are already finalized."""
        try:
            names = ray.util.list_named_actors(all_namespaces=True)
        except RayError as exc:
            log.warning("could not list the cluster's actors: %s", exc)
            return
        for entry in names:
            name = entry.get("name", "") if isinstance(entry, dict) else entry
            namespace = entry.get("namespace") if isinstance(entry, dict) else self.namespace
            if namespace != self.namespace or not name.startswith(ACTOR_PREFIX):
                continue
            run_id = name[len(ACTOR_PREFIX):]
            try:
                record = read_model(self.paths.run_dir(run_id) / "run.json", RunRecord)
            except StateError:
                continue
            if record is None or record.status.value in ("starting", "running"):
                continue
            try:
                actor = ray.get_actor(name, namespace=self.namespace)
            except ValueError:
                continue
            log.info("removing the actor of finished run %s (%s)", run_id, record.status.value)
            _remove_actor(run_id, actor)

    # ------------------------------------------------------------------ node view

    def repo_changed(self, handle: RunHandle) -> bool | None:
        """Tell whether the run pushed new commits, or None when its push result is unknown.

        A cluster run changes its clone on the node, so the local worktree cannot tell.
        """
        push = handle.extra.get("remote", {}).get("push") or _read_remote(handle.run_dir).get("push")
        if not isinstance(push, dict) or not push.get("ok"):
            return None
        return bool(push.get("pushed"))

    def cluster_nodes(self) -> list[dict[str, Any]]:
        """Return the cluster's nodes for the CPU meter; see the module function ``cluster_nodes``."""
        return cluster_nodes()

    def live_runs_by_node(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for handle in self._handles.values():
            node_id = handle.extra.get("node_id")
            if node_id and not handle.extra.get("ended"):
                counts[node_id] = counts.get(node_id, 0) + 1
        return counts

    def _write_remote(self, handle: RunHandle, **fields: Any) -> None:
        current = handle.extra.setdefault("remote", _read_remote(handle.run_dir))
        current.update({key: value for key, value in fields.items() if value is not None or key in ("exit_code",)})
        if current.get("node_id"):
            handle.extra["node_id"] = current["node_id"]
        try:
            write_json(handle.run_dir / "remote.json", current, fsync=False)
        except StateError as exc:
            log.error("run %s: could not write remote.json: %s", handle.run_id, exc)


def cluster_nodes() -> list[dict[str, Any]]:
    """Return one plain dict per cluster node for the CPU meter, or [] when not connected.

    Keys: ``node_id``, ``address``, ``alive``, ``cpus`` and ``memory`` (the node's Ray
    resources: logical CPUs and bytes), ``agents`` (live runs of this process's runners there),
    and, from the latest output poll of a run on that node, ``cpu_percent``, ``memory_total``,
    ``memory_used`` (bytes) and ``sampled_at`` (None for a node with no run yet).
    """
    if not ray.is_initialized():
        return []
    agents: dict[str, int] = {}
    samples: dict[str, dict[str, Any]] = {}
    for runner in list(_runners):
        for node_id, count in runner.live_runs_by_node().items():
            agents[node_id] = agents.get(node_id, 0) + count
        for node_id, sample in runner._samples.items():  # noqa: SLF001 - same module
            if node_id not in samples or sample["received_at"] > samples[node_id]["received_at"]:
                samples[node_id] = sample
    nodes: list[dict[str, Any]] = []
    for node in ray.nodes():
        node_id = node.get("NodeID", "")
        sample = samples.get(node_id, {})
        resources = node.get("Resources", {})
        nodes.append({
            "node_id": node_id,
            "address": node.get("NodeManagerAddress"),
            "alive": bool(node.get("Alive")),
            "cpus": resources.get("CPU", 0.0),
            "memory": resources.get("memory", 0.0),
            "agents": agents.get(node_id, 0),
            "cpu_percent": sample.get("cpu_percent"),
            "memory_total": sample.get("memory_total"),
            "memory_used": sample.get("memory_used"),
            "sampled_at": sample.get("received_at"),
        })
    return nodes


class ClusterRun(NodeRun):
    """The actor class of a cluster run: ``NodeRun`` plus ending the actor itself."""

    def close(self) -> None:
        """Delete the node's run folder (kept when the push failed) and end this actor.

        The caller sees the actor's death instead of a return value, so nobody waits on it.
        """
        self.cleanup()
        ray.actor.exit_actor()


def _remove_actor(run_id: str, actor: Any) -> None:
    """Ask the run's actor to delete its node folder and exit, without waiting for it."""
    actor.close.remote()
    log.debug("asked the actor of run %s to clean up and exit", run_id)


def _start_error(message: str) -> OSError:
    return OSError(errno.EINVAL, message)


def _read_record(run_dir: Path) -> RunRecord:
    try:
        record = read_model(run_dir / "run.json", RunRecord)
    except StateError as exc:
        raise _start_error(f"could not read {run_dir / 'run.json'}: {exc}") from exc
    if record is None:
        raise _start_error(f"{run_dir / 'run.json'} is missing: the orchestrator writes it before starting a run")
    return record


def _read_request(run_dir: Path) -> Request | None:
    try:
        return read_model(run_dir / "request.json", Request)
    except StateError:
        return None


def _read_remote(run_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((run_dir / "remote.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _node_label(info: Mapping[str, Any]) -> str | None:
    """Return ``<ip>/<first 8 characters of the node id>``, short enough for a table cell."""
    node_id, node_ip = info.get("node_id"), info.get("node_ip")
    if not node_id:
        return None
    return f"{node_ip}/{node_id[:8]}" if node_ip else node_id[:8]


def _branch_head(repo: Path, branch: str) -> str | None:
    from aipass_tui.core.gitflow_git import rev_parse

    return rev_parse(repo, f"refs/heads/{branch}")


def _describe(options: Mapping[str, Any]) -> str:
    parts = [f"cpus={options['num_cpus']:g}"]
    if "memory" in options:
        parts.append(f"memory={options['memory']}")
    for key, value in sorted(options.get("resources", {}).items()):
        parts.append(f"{key}={value:g}")
    return ", ".join(parts)


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
