"""A real multi-node Ray cluster on this machine, on loopback addresses only, for tests and benchmarks.

Each node is a separate ``ray start --block`` process with its own temp folder and node IP
(127.0.0.2 for the head, 127.0.0.3 and up for workers). Distinct 127.x addresses are needed:
Ray replaces 127.0.0.1 and ``localhost`` in ``--address`` with the machine's external IP
(``services.resolve_ip_for_localhost`` in Ray 2.60), and other loopback addresses are kept as
given. Every node carries a custom resource named after it (``node_a: 100``), so a run can be
placed on a chosen node.

What keeps traffic on this machine:

- ``RAY_USAGE_STATS_ENABLED=0`` and ``--disable-usage-stats``; ``--include-dashboard=false``.
- ``RAY_AUTH_MODE=disabled``, so a token in the user's ``~/.ray/auth_token`` does not turn on
  token authentication for some processes of the test cluster and not for others.
- The head runs with ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, which makes Ray take the
  loopback address instead of probing the route to a public resolver. Worker nodes cannot use
  it, because ``ray start`` then refuses to join a cluster. So their ``ray start`` and runtime
  env agent each call ``connect()`` on a UDP socket aimed at 8.8.8.8:53 to learn the route.
  That call sends no packet.
- Even with the dashboard off, Ray 2.60 starts a dashboard process on the head whose usage
  module asks cloud metadata addresses (169.254.169.254) and sends a "usage disabled" report
  to Ray's server. The proxy variables point every HTTP(S) request of the node processes at
  127.0.0.1:9, where nothing listens, and ``RAY_USAGE_STATS_REPORT_URL`` points there too.

``stop()`` ends every process of every node (SIGTERM to ``ray start``, then SIGKILL to each
process left in its tree or carrying the cluster's marker variable) and raises if any remains.
``ray stop`` is never used, because it stops every Ray process of the machine.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psutil

RAY = Path(sys.executable).with_name("ray")
HEAD_IP = "127.0.0.2"
MARKER = "AIPASS_TEST_CLUSTER_ID"
CLOSED_PORT_URL = "http://127.0.0.1:9"
START_TIMEOUT = 60.0
# Fast failure detection, so a killed node is declared dead within a few seconds.
SYSTEM_CONFIG = {
    "health_check_initial_delay_ms": 1000,
    "health_check_period_ms": 1000,
    "health_check_timeout_ms": 1000,
    "health_check_failure_threshold": 3,
}


@dataclass
class Node:
    name: str
    ip: str
    temp_dir: Path
    node_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    pids: set[int] = field(default_factory=set)


class LoopbackCluster:
    """A head and worker nodes started with ``ray start`` on 127.x addresses."""

    def __init__(self, root: Path | None = None, *, fast_failure_detection: bool = True) -> None:
        # Short root: Ray's Unix socket paths below it must stay under 108 bytes.
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix="aipray-", dir="/tmp"))
        # Fast detection lets a test see a killed node within seconds. Under heavy load (a
        # benchmark with hundreds of workers on two cores) it also declares busy nodes dead.
        self.fast_failure_detection = fast_failure_detection
        self.token = uuid.uuid4().hex[:12]
        self.port = _free_port(HEAD_IP)
        self.address = f"{HEAD_IP}:{self.port}"
        self.nodes: dict[str, Node] = {}
        self._next_ip = 3

    # ------------------------------------------------------------------ start

    def start(self, workers: dict[str, int], head_cpus: int = 1) -> "LoopbackCluster":
        """Start the head and one worker node per ``{name: cpus}``, and wait until all are alive."""
        try:
            self._start_node("head", HEAD_IP, head_cpus, head=True)
            self.wait_for_node("head")
            for name, cpus in workers.items():
                self.add_node(name, cpus)
        except BaseException:
            self.stop()
            raise
        return self

    def add_node(self, name: str, cpus: int) -> Node:
        """Start a worker node with custom resource ``{name: 100}`` and wait until it is alive."""
        ip = f"127.0.0.{self._next_ip}"
        self._next_ip += 1
        node = self._start_node(name, ip, cpus, head=False)
        self.wait_for_node(name)
        return node

    def _start_node(self, name: str, ip: str, cpus: int, *, head: bool) -> Node:
        temp_dir = self.root / name
        node_dir = self.root / f"{name}-runs"
        temp_dir.mkdir(parents=True, exist_ok=True)
        node_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            str(RAY), "start", "--block", f"--node-ip-address={ip}", f"--num-cpus={cpus}",
            f"--temp-dir={temp_dir}", "--object-store-memory=80000000", "--disable-usage-stats",
            f"--resources={json.dumps({name: 100})}",
        ]
        if head:
            argv += ["--head", f"--port={self.port}", "--include-dashboard=false"]
            if self.fast_failure_detection:
                argv.append(f"--system-config={json.dumps(SYSTEM_CONFIG)}")
        else:
            argv += [f"--address={self.address}"]
        log_path = self.root / f"{name}.log"
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                argv, env=self.node_env(node_dir, head=head), stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, cwd=self.root,
            )
        node = Node(name, ip, temp_dir, node_dir, process, log_path)
        self.nodes[name] = node
        return node

    def node_env(self, node_dir: Path, *, head: bool) -> dict[str, str]:
        """Return the environment of a node's processes (see the module docstring)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "AIPASS_")) and k.lower() not in ("http_proxy", "https_proxy", "no_proxy", "all_proxy")}
        env.update(
            RAY_USAGE_STATS_ENABLED="0",
            RAY_AUTH_MODE="disabled",
            RAY_USAGE_STATS_REPORT_URL=CLOSED_PORT_URL + "/",
            http_proxy=CLOSED_PORT_URL, https_proxy=CLOSED_PORT_URL, all_proxy=CLOSED_PORT_URL,
            HTTP_PROXY=CLOSED_PORT_URL, HTTPS_PROXY=CLOSED_PORT_URL, ALL_PROXY=CLOSED_PORT_URL,
            no_proxy="127.0.0.0/8,localhost", NO_PROXY="127.0.0.0/8,localhost",
            AIPASS_NODE_DIR=str(node_dir),
            PYTHONPATH=os.pathsep.join(p for p in (str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")) if p),
        )
        env[MARKER] = self.token
        if head:
            env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
        return env

    def wait_for_node(self, name: str) -> None:
        """Wait until ``ray start`` reports success for the node; raise with its log if it exits."""
        node = self.nodes[name]
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if node.process.poll() is not None:
                raise RuntimeError(f"ray start for node {name} exited with {node.process.returncode}:\n{node.log_path.read_text(errors='replace')[-4000:]}")
            if "Ray runtime started" in node.log_path.read_text(errors="replace"):
                self._remember_pids(node)
                return
            time.sleep(0.1)
        raise RuntimeError(f"node {name} did not start within {START_TIMEOUT:.0f} s:\n{node.log_path.read_text(errors='replace')[-4000:]}")

    def _remember_pids(self, node: Node) -> None:
        try:
            root = psutil.Process(node.process.pid)
            node.pids.add(root.pid)
            node.pids.update(child.pid for child in root.children(recursive=True))
        except psutil.NoSuchProcess:
            pass

    # ------------------------------------------------------------------ failure and stop

    def kill_node(self, name: str) -> list[int]:
        """Kill a node the way a crashed machine ends: SIGKILL to every process in its tree."""
        node = self.nodes[name]
        self._remember_pids(node)
        victims = _processes(node.pids)
        for proc in victims:
            _kill(proc)
        psutil.wait_procs(victims, timeout=10)
        node.process.wait(timeout=10)
        return [proc.pid for proc in victims]

    def stop(self) -> None:
        """Stop every node and check that no process of the cluster is left; raise if one is."""
        for node in self.nodes.values():
            self._remember_pids(node)
        for node in reversed(list(self.nodes.values())):
            if node.process.poll() is None:
                node.process.send_signal(signal.SIGTERM)
        for node in self.nodes.values():
            try:
                node.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                _kill(psutil.Process(node.process.pid))
                node.process.wait(timeout=5)
        leftovers = self.leftover_processes()
        for proc in leftovers:
            _kill(proc)
        psutil.wait_procs(leftovers, timeout=10)
        remaining = self.leftover_processes()
        if remaining:
            names = ", ".join(f"{proc.pid} {_name(proc)}" for proc in remaining)
            raise RuntimeError(f"processes of the test Ray cluster are still running: {names}")
        shutil.rmtree(self.root, ignore_errors=True)

    def leftover_processes(self) -> list[psutil.Process]:
        """Return live processes of this cluster: in a node's tree, marked, or started in a node folder."""
        known = set().union(*(node.pids for node in self.nodes.values())) if self.nodes else set()
        found: dict[int, psutil.Process] = {proc.pid: proc for proc in _processes(known)}
        root = str(self.root)
        for proc in psutil.process_iter(["pid", "status"]):
            if proc.pid in found or proc.pid == os.getpid() or proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            try:
                env = proc.environ()
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            if env.get(MARKER) == self.token or env.get("AIPASS_RUN_DIR", "").startswith(root):
                found[proc.pid] = proc
        return list(found.values())


def _processes(pids: set[int]) -> list[psutil.Process]:
    alive = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            if proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.NoSuchProcess:
            continue
    return alive


def _kill(proc: psutil.Process) -> None:
    try:
        proc.kill()
    except psutil.NoSuchProcess:
        pass


def _name(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())[:120] or proc.name()
    except psutil.Error:
        return "?"


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
