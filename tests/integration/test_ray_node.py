"""Cluster runs without a cluster: the node side in this process, the git flow, config errors.

``NodeRun`` is the class each cluster actor runs. Here it runs in the test process against a
real bare repository, so cloning, output, stopping and pushing are checked without Ray. The git
flow tests push and fetch through a bare repository as ``[cluster] repo_url``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from aipass_tui.config import Settings
from aipass_tui.core import clock
from aipass_tui.core.gitflow import GitWorkspace
from aipass_tui.core.models import Request, RunRecord, RunStatus, RunSummary
from aipass_tui.core.runners.ray_node import NodeRun
from aipass_tui.core.store import Paths
from aipass_tui.core.workspace import WorkspaceError
from tests.conftest import wait_until

IDENTITY = ["-c", "user.name=User", "-c", "user.email=user@example.invalid", "-c", "commit.gpgsign=false"]


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", *IDENTITY, *args], cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == 0, f"git {' '.join(args)} failed: {proc.stderr}"
    return proc.stdout.strip()


def make_remote(tmp_path: Path) -> tuple[Path, Path]:
    """Return a repository with one commit on main and a bare remote that has main."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("readme\n")
    git(repo, "add", "README.md")
    git(repo, "commit", "-q", "-m", "initial")
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "push", "-q", str(remote), "main")
    return repo, remote


def python_argv(script: str, *args: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(script), *args]


def node_spec(remote: Path, branch: str, argv: list[str], run_id: str) -> dict[str, Any]:
    env = {**os.environ, "AIPASS_RUN_ID": run_id, "AIPASS_AGENT": "alpha"}
    head = git(remote, "rev-parse", f"refs/heads/{branch}")
    return {"argv": argv, "env": env, "repo_url": str(remote), "branch": branch, "start_head": head, "agent": "alpha", "subject": "Add the result file"}


def poll_until_ended(node: NodeRun, timeout: float = 30.0) -> tuple[bytes, bytes, dict[str, Any]]:
    """Poll like the orchestrator does and return all stdout, all stderr and the final reply."""
    out, err = b"", b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = node.poll(len(out), len(err), 1 << 16, wait=0.5, linger=0.05)
        out += reply["stdout"]
        err += reply["stderr"]
        if reply["state"] == "ended" and len(reply["stdout"]) < 1 << 16 and len(reply["stderr"]) < 1 << 16:
            return out, err, reply
    raise AssertionError(f"run did not end within {timeout} s; stdout so far: {out[-500:]!r}")


@pytest.fixture
def node_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "node"
    monkeypatch.setenv("AIPASS_NODE_DIR", str(path))
    return path


# ---------------------------------------------------------------------- the node side


def test_node_run_clones_runs_and_pushes(tmp_path: Path, node_dir: Path) -> None:
    repo, remote = make_remote(tmp_path)
    git(repo, "push", "-q", str(remote), "main:refs/heads/aipass/alpha/work")
    argv = python_argv("""
        import os, pathlib, sys
        print("cwd", os.getcwd(), flush=True)
        print("run dir", os.environ["AIPASS_RUN_DIR"], flush=True)
        print("oops", file=sys.stderr, flush=True)
        pathlib.Path("result.txt").write_text("made on the node\\n")
    """)
    node = NodeRun("alpha-1", node_spec(remote, "aipass/alpha/work", argv, "alpha-1"))

    started = node.begin()
    out, err, reply = poll_until_ended(node)

    clone = node_dir / "alpha-1" / "repo"
    assert started["cwd"] == str(clone)
    assert started["pid"] > 0
    assert node.begin() == started
    assert out.decode().splitlines() == [f"cwd {clone}", f"run dir {node_dir / 'alpha-1'}"]
    assert err == b"oops\n"
    assert reply["exit_code"] == 0
    push = reply["push"]
    assert push["ok"] is True
    assert push["pushed"] is True
    assert git(remote, "rev-parse", "refs/heads/aipass/alpha/work") == push["head"]
    assert git(remote, "show", f"{push['head']}:result.txt") == "made on the node"
    assert git(remote, "log", "-1", "--format=%an <%ae>|%s", push["head"]) == "alpha <alpha@aipass.local>|Add the result file"
    assert reply["sample"]["memory_total"] > 0


def test_node_run_without_changes_pushes_nothing(tmp_path: Path, node_dir: Path) -> None:
    repo, remote = make_remote(tmp_path)
    git(repo, "push", "-q", str(remote), "main:refs/heads/aipass/alpha/look")
    node = NodeRun("alpha-2", node_spec(remote, "aipass/alpha/look", python_argv("print('looked')"), "alpha-2"))

    node.begin()
    _, _, reply = poll_until_ended(node)

    assert reply["push"] == {"ok": True, "pushed": False, "head": git(repo, "rev-parse", "main"), "branch": "aipass/alpha/look"}


def test_node_run_reports_a_failed_clone(tmp_path: Path, node_dir: Path) -> None:
    spec = {"argv": ["true"], "env": dict(os.environ), "repo_url": str(tmp_path / "missing.git"), "branch": "aipass/alpha/x", "start_head": None, "agent": "alpha", "subject": "x"}
    node = NodeRun("alpha-3", spec)

    started = node.begin()
    _, err, reply = poll_until_ended(node)

    assert "could not prepare the clone" in started["error"]
    assert started["pid"] is None
    assert reply["exit_code"] == 1
    assert err.decode().startswith(f"aipass-tui: could not prepare the clone of {tmp_path / 'missing.git'}")


def test_node_run_stopped_before_start(tmp_path: Path, node_dir: Path) -> None:
    repo, remote = make_remote(tmp_path)
    git(repo, "push", "-q", str(remote), "main:refs/heads/aipass/alpha/never")
    node = NodeRun("alpha-4", node_spec(remote, "aipass/alpha/never", ["sleep", "60"], "alpha-4"))

    node.terminate()
    started = node.begin()
    _, _, reply = poll_until_ended(node)

    assert started["error"] == "stopped before its process started"
    assert reply["exit_code"] == 128 + 15
    assert node.processes() == []


def test_node_kill_ends_escaped_processes(tmp_path: Path, node_dir: Path) -> None:
    repo, remote = make_remote(tmp_path)
    git(repo, "push", "-q", str(remote), "main:refs/heads/aipass/alpha/escape")
    argv = python_argv("""
        import subprocess, sys, time
        subprocess.Popen(["sleep", "300"], start_new_session=True)
        print("ready", flush=True)
        time.sleep(300)
    """)
    node = NodeRun("alpha-5", node_spec(remote, "aipass/alpha/escape", argv, "alpha-5"))
    node.begin()
    wait_until(lambda: b"ready" in node.poll(0, 0, 1024, 0, 0)["stdout"], message="agent ready")
    assert len(node.processes()) >= 3  # wrapper, agent, escaped sleep

    node.terminate()
    node.kill()
    _, _, reply = poll_until_ended(node)

    wait_until(lambda: node.processes() == [], timeout=5, message="no process of the run left")
    assert reply["exit_code"] is None  # the wrapper itself was killed, as with a local stop


def test_node_cleanup_keeps_folder_when_push_fails(tmp_path: Path, node_dir: Path) -> None:
    repo, remote = make_remote(tmp_path)
    git(repo, "push", "-q", str(remote), "main:refs/heads/aipass/alpha/rejected")
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'pushes are closed' >&2\nexit 1\n")
    hook.chmod(0o755)
    node = NodeRun("alpha-6", node_spec(remote, "aipass/alpha/rejected", python_argv("open('f.txt', 'w').write('x')"), "alpha-6"))

    node.begin()
    _, _, reply = poll_until_ended(node)
    result = node.cleanup()

    assert reply["push"]["ok"] is False
    assert "pushes are closed" in reply["push"]["error"]
    assert result["removed"] is False
    assert (node_dir / "alpha-6" / "repo" / "f.txt").exists()


def test_node_cleanup_removes_folder(tmp_path: Path, node_dir: Path) -> None:
    repo, remote = make_remote(tmp_path)
    git(repo, "push", "-q", str(remote), "main:refs/heads/aipass/alpha/clean")
    node = NodeRun("alpha-7", node_spec(remote, "aipass/alpha/clean", ["true"], "alpha-7"))
    assert node.cleanup()["removed"] is False  # not started yet: nothing is deleted

    node.begin()
    poll_until_ended(node)

    assert node.cleanup() == {"removed": True, "kept": None}
    assert not (node_dir / "alpha-7").exists()


# ---------------------------------------------------------------------- the git flow


def ray_settings(remote: Path | None, isolation: str = "worktree") -> Settings:
    cluster = {"address": "127.0.0.2:6379", "repo_url": str(remote)} if remote else {}
    return Settings(
        agents={"alpha": {"kind": "command", "command": ["true"], "runner": "ray", "isolation": isolation}},
        cluster=cluster,
    )


def make_request(subject: str, branch: str | None = None) -> Request:
    return Request(id=clock.new_id("r"), agent="alpha", subject=subject, created_at=clock.now(), branch=branch)


def node_work(remote: Path, tmp_path: Path, branch: str, files: dict[str, str]) -> str:
    """Do what a node does: clone the branch, commit ``files``, push; return the new head."""
    clone = tmp_path / f"node-clone-{len(list(tmp_path.glob('node-clone-*')))}"
    git(tmp_path, "clone", "-q", "--branch", branch, str(remote), str(clone))
    for name, text in files.items():
        (clone / name).write_text(text)
    git(clone, "add", "-A")
    git(clone, "commit", "-q", "-m", "node work")
    git(clone, "push", "-q", "origin", f"HEAD:refs/heads/{branch}")
    return git(clone, "rev-parse", "HEAD")


def cluster_run(request: Request, info: Any, run_dir: Path, push: dict[str, Any] | None) -> RunRecord:
    run = RunRecord(
        id=clock.new_id("alpha"), agent="alpha", request=request.id, kind="command", runner="ray",
        status=RunStatus.SUCCEEDED, cwd=str(info.cwd), branch=info.branch, worktree=str(info.worktree),
        base_commit=info.base_commit, summary=RunSummary(result_text="Done on a node."),
    )
    folder = run_dir / run.id
    folder.mkdir(parents=True)
    if push is not None:
        (folder / "remote.json").write_text(json.dumps({"push": push}))
    return run


def test_prepare_pushes_branch_for_cluster_agent(tmp_path: Path) -> None:
    repo, remote = make_remote(tmp_path)
    paths = Paths(repo)
    paths.ensure()
    workspace = GitWorkspace(repo, paths, ray_settings(remote))
    settings = workspace.settings

    info = workspace.prepare("alpha", settings.agents["alpha"], make_request("Fix the parser"))

    assert info.branch == "aipass/alpha/fix-the-parser"
    assert info.base_commit == git(repo, "rev-parse", "main")
    assert git(remote, "rev-parse", f"refs/heads/{info.branch}") == info.base_commit


def test_prepare_skips_branch_names_taken_on_remote(tmp_path: Path) -> None:
    repo, remote = make_remote(tmp_path)
    git(repo, "push", "-q", str(remote), "main:refs/heads/aipass/alpha/fix-the-parser")
    paths = Paths(repo)
    paths.ensure()
    workspace = GitWorkspace(repo, paths, ray_settings(remote))

    info = workspace.prepare("alpha", workspace.settings.agents["alpha"], make_request("Fix the parser"))

    assert info.branch == "aipass/alpha/fix-the-parser-2"


def test_config_rejects_shared_cluster_agent(tmp_path: Path) -> None:
    _, remote = make_remote(tmp_path)

    with pytest.raises(ValueError, match='runner = "ray" needs isolation = "worktree"'):
        ray_settings(remote, isolation="shared")


def test_prepare_needs_repo_url(tmp_path: Path) -> None:
    repo, _ = make_remote(tmp_path)
    paths = Paths(repo)
    workspace = GitWorkspace(repo, paths, ray_settings(None))

    with pytest.raises(WorkspaceError, match=r"set \[cluster\] repo_url"):
        workspace.prepare("alpha", workspace.settings.agents["alpha"], make_request("Anything"))


def test_prepare_keeps_remote_work_it_lacks(tmp_path: Path) -> None:
    repo, remote = make_remote(tmp_path)
    paths = Paths(repo)
    paths.ensure()
    workspace = GitWorkspace(repo, paths, ray_settings(remote))
    config = workspace.settings.agents["alpha"]
    info = workspace.prepare("alpha", config, make_request("First"))
    remote_head = node_work(remote, tmp_path, info.branch, {"node.txt": "pushed by a node\n"})

    with pytest.raises(WorkspaceError, match="has commits that the local branch lacks"):
        workspace.prepare("alpha", config, make_request("Second", branch=info.branch))

    assert git(remote, "rev-parse", f"refs/heads/{info.branch}") == remote_head


def test_finish_fetches_node_branch_and_records_pull(tmp_path: Path) -> None:
    repo, remote = make_remote(tmp_path)
    paths = Paths(repo)
    paths.ensure()
    workspace = GitWorkspace(repo, paths, ray_settings(remote))
    config = workspace.settings.agents["alpha"]
    request = make_request("Add notes")
    info = workspace.prepare("alpha", config, request)
    head = node_work(remote, tmp_path, info.branch, {"notes.txt": "notes\n"})
    run = cluster_run(request, info, paths.runs, {"ok": True, "pushed": True, "head": head, "branch": info.branch})

    pull = workspace.finish(run, request, config)

    assert pull is not None
    assert pull["head"] == head
    assert pull["base"] == info.base_commit
    assert [f["path"] for f in pull["files"]] == ["notes.txt"]
    assert git(repo, "rev-parse", f"refs/heads/{info.branch}") == head
    assert (info.worktree / "notes.txt").read_text() == "notes\n"


def test_finish_reports_failed_node_push(tmp_path: Path) -> None:
    repo, remote = make_remote(tmp_path)
    paths = Paths(repo)
    paths.ensure()
    workspace = GitWorkspace(repo, paths, ray_settings(remote))
    config = workspace.settings.agents["alpha"]
    request = make_request("Add notes")
    info = workspace.prepare("alpha", config, request)
    run = cluster_run(request, info, paths.runs, {"ok": False, "pushed": False, "head": None, "branch": info.branch, "error": "remote rejected"})

    with pytest.raises(WorkspaceError, match="could not push branch .* from its node: remote rejected"):
        workspace.finish(run, request, config)


def test_finish_refuses_dirty_local_worktree(tmp_path: Path) -> None:
    repo, remote = make_remote(tmp_path)
    paths = Paths(repo)
    paths.ensure()
    workspace = GitWorkspace(repo, paths, ray_settings(remote))
    config = workspace.settings.agents["alpha"]
    request = make_request("Add notes")
    info = workspace.prepare("alpha", config, request)
    node_work(remote, tmp_path, info.branch, {"notes.txt": "notes\n"})
    (info.worktree / "local.txt").write_text("typed by the user\n")
    run = cluster_run(request, info, paths.runs, None)

    with pytest.raises(WorkspaceError, match="has uncommitted changes, but run .* worked on a cluster node"):
        workspace.finish(run, request, config)

    assert (info.worktree / "local.txt").read_text() == "typed by the user\n"


# ---------------------------------------------------------------------- optional import


def test_local_path_never_imports_ray(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / ".aipass").mkdir()
    (repo / ".aipass" / "config.toml").write_text('[agents.echo]\nkind = "command"\ncommand = ["echo", "hello"]\nisolation = "shared"\n')
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        import aipass_tui.cli
        import aipass_tui.core.orchestrator
        from aipass_tui.core.orchestrator import Orchestrator
        orchestrator = Orchestrator(Path({str(repo)!r}), role="test")
        orchestrator.start()
        orchestrator.dispatch("echo", "say hello")
        code = orchestrator.run_forever(until_idle=True)
        print(code, sorted(name for name in sys.modules if name == "ray" or name.startswith("ray.")))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path)

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-2:] == ["0", "[]"]


# ---------------------------------------------------------------------- runner settings


def test_parse_memory_sizes() -> None:
    pytest.importorskip("ray")
    from aipass_tui.core.runners.ray import parse_memory

    assert parse_memory("2000") == 2000
    assert parse_memory("512MB") == 512 * 1000**2
    assert parse_memory("1.5 GiB") == int(1.5 * 1024**3)
    with pytest.raises(ValueError, match="invalid memory '12 parsecs'"):
        parse_memory("12 parsecs")


def test_runner_needs_address_and_repo_url(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    from aipass_tui.config import ClusterSettings
    from aipass_tui.core.runners.ray import ClusterError, RayRunner

    with pytest.raises(ClusterError, match=r"set \[cluster\] address"):
        RayRunner(ClusterSettings(repo_url="x"), Paths(tmp_path))
    with pytest.raises(ClusterError, match=r"set \[cluster\] repo_url"):
        RayRunner(ClusterSettings(address="127.0.0.2:6379"), Paths(tmp_path))


def test_runner_rejects_unreachable_cluster(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    from aipass_tui.config import ClusterSettings
    from aipass_tui.core.runners.ray import ClusterError, RayRunner
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused
        with pytest.raises(ClusterError, match=f"127.0.0.1:{port}"):
            RayRunner(ClusterSettings(address=f"127.0.0.1:{port}", repo_url="x"), Paths(tmp_path))
