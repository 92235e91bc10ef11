"""The orchestrator against real subprocesses in real git repositories."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from aipass_tui.config import load_settings
from aipass_tui.core.models import RequestStatus, RunStatus
from aipass_tui.core.notices import RunFinished, RunOutput
from aipass_tui.core.orchestrator import Orchestrator
from aipass_tui.core.store import LockHeld
from tests.conftest import processes_of, py_command, wait_until, write_config

SLOW = py_command(
    """
    import sys, time
    for i in range(int(sys.argv[1]) if len(sys.argv) > 1 else 200):
        print(f"tick {i}", flush=True)
        time.sleep(0.05)
    """
)


def start(repo: Path, orchestrators: list, **kwargs) -> Orchestrator:
    orchestrator = Orchestrator(repo, load_settings(repo), role="test", **kwargs)
    orchestrator.start_thread()
    orchestrators.append(orchestrator)
    return orchestrator


def request_status(orchestrator: Orchestrator, request_id: str) -> RequestStatus:
    return next(r for r in orchestrator.snapshot().requests if r.id == request_id).status


def finished(orchestrator: Orchestrator, request_id: str) -> bool:
    return request_status(orchestrator, request_id) in (RequestStatus.DONE, RequestStatus.FAILED, RequestStatus.CANCELLED)


def test_run_succeeds_and_writes_state(repo: Path, orchestrators: list) -> None:
    write_config(repo, """
        [agents.echo]
        kind = "command"
        command = ["sh", "-c", "echo \\"got: $1\\"; echo env=$AIPASS_AGENT/$AIPASS_REQUEST_ID", "sh", "{prompt}"]
        isolation = "shared"
    """)
    orchestrator = start(repo, orchestrators)
    request = orchestrator.dispatch("echo", "say hello", "with a body")
    wait_until(lambda: finished(orchestrator, request.id), message="run to finish")
    snapshot = orchestrator.snapshot()
    done = next(r for r in snapshot.requests if r.id == request.id)
    assert done.status == RequestStatus.DONE
    run = snapshot.runs[done.run]
    assert run.status == RunStatus.SUCCEEDED
    assert run.exit_code == 0
    assert "<prompt>" in run.argv
    lines = [json.loads(line)["text"] for line in (repo / ".aipass/runs" / run.id / "events.jsonl").read_text().splitlines()]
    assert lines[0] == "got: say hello\n\nwith a body".split("\n")[0]
    assert f"env=echo/{request.id}" in lines
    local = json.loads((repo / ".aipass/state/agents/echo/local.json").read_text())
    wait_until(lambda: json.loads((repo / ".aipass/state/agents/echo/local.json").read_text())["status"] == "done")
    assert local["schema_version"] == 1
    state_path = repo / ".aipass/state/orchestrator.json"
    wait_until(lambda: json.loads(state_path.read_text())["requests"][request.id]["status"] == "done", message="state written")


def test_identical_requests_are_coalesced(repo: Path, orchestrators: list) -> None:
    write_config(repo, f"""
        [agents.slow]
        kind = "command"
        command = {SLOW}
        isolation = "shared"
    """)
    orchestrator = start(repo, orchestrators)
    first = orchestrator.dispatch("slow", "same work", "body")
    second = orchestrator.dispatch("slow", "same work", "body", sender="other")
    third = orchestrator.dispatch("slow", "same work", "different body")
    assert second.id == first.id
    assert second.duplicates == 1
    assert second.duplicate_senders == ["other"]
    assert third.id != first.id


def test_one_run_per_agent_in_priority_order(repo: Path, orchestrators: list) -> None:
    log = repo / "order.log"
    write_config(repo, f"""
        [agents.worker]
        kind = "command"
        command = ["sh", "-c", "echo start $1 >> {log}; sleep 0.3; echo end $1 >> {log}", "sh", "{{subject}}"]
        isolation = "shared"
    """)
    orchestrator = Orchestrator(repo, load_settings(repo), role="test")
    orchestrators.append(orchestrator)
    orchestrator.start()
    first = orchestrator.dispatch("worker", "a")
    orchestrator.dispatch("worker", "b", priority=0)
    last = orchestrator.dispatch("worker", "c", priority=5)
    orchestrator.start_thread()
    wait_until(lambda: finished(orchestrator, first.id) and finished(orchestrator, last.id), message="all runs")
    wait_until(lambda: log.read_text().count("end") == 3)
    assert log.read_text().split() == ["start", "c", "end", "c", "start", "a", "end", "a", "start", "b", "end", "b"]


def test_global_cap_holds_with_reason(repo: Path, orchestrators: list) -> None:
    write_config(repo, f"""
        [limits]
        max_parallel = 1

        [agents.one]
        kind = "command"
        command = {SLOW}
        isolation = "shared"

        [agents.two]
        kind = "command"
        command = {SLOW}
        isolation = "shared"
    """)
    orchestrator = start(repo, orchestrators)
    orchestrator.dispatch("one", "first")
    held = orchestrator.dispatch("two", "second")
    wait_until(lambda: request_status(orchestrator, held.id) == RequestStatus.HELD)
    reason = next(r for r in orchestrator.snapshot().requests if r.id == held.id).held_reason
    assert reason == "global cap: 1 runs already executing"


def test_stop_leaves_no_process(repo: Path, orchestrators: list) -> None:
    script = py_command(
        """
        import os, signal, sys, time
        if os.fork() == 0:
            os.setsid()
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            if os.fork() == 0:
                time.sleep(120)
                os._exit(0)
            time.sleep(120)
            os._exit(0)
        print("working", flush=True)
        time.sleep(120)
        """
    )
    write_config(repo, f"""
        [limits]
        stop_grace = "0.5s"

        [agents.forker]
        kind = "command"
        command = {script}
        isolation = "shared"
    """)
    orchestrator = start(repo, orchestrators)
    request = orchestrator.dispatch("forker", "fork and hide")
    run_id = wait_until(lambda: orchestrator.snapshot().agents["forker"].run if orchestrator.snapshot().agents["forker"].status == "running" else None)
    wait_until(lambda: len(processes_of(run_id)) >= 4, message="the process tree to exist")
    assert orchestrator.stop("forker") == [run_id]
    wait_until(lambda: finished(orchestrator, request.id), message="the stop to finish")
    run = orchestrator.snapshot().runs[run_id]
    assert run.status == RunStatus.STOPPED
    wait_until(lambda: not processes_of(run_id), timeout=5, message="no process left")


def test_timeout_marks_timed_out(repo: Path, orchestrators: list) -> None:
    write_config(repo, """
        [limits]
        stop_grace = "0.5s"

        [agents.sleeper]
        kind = "command"
        command = ["sleep", "60"]
        isolation = "shared"
        timeout = "0.5s"
    """)
    orchestrator = start(repo, orchestrators)
    request = orchestrator.dispatch("sleeper", "sleep too long")
    wait_until(lambda: finished(orchestrator, request.id))
    run = next(iter(orchestrator.snapshot().runs.values()))
    assert run.status == RunStatus.TIMED_OUT
    assert request_status(orchestrator, request.id) == RequestStatus.FAILED


def test_prompt_waiting_for_answer_stalls(repo: Path, orchestrators: list) -> None:
    script = py_command(
        """
        import sys, time
        print("Continue? [y/n] ", end="", flush=True)
        answer = sys.stdin.readline()
        if not answer:
            time.sleep(60)
        """
    )
    write_config(repo, f"""
        [agents.asker]
        kind = "command"
        command = {script}
        isolation = "shared"
        stall_after = "0.5s"
    """)
    orchestrator = start(repo, orchestrators)
    orchestrator.dispatch("asker", "ask a question")
    other = orchestrator.dispatch("asker", "queued behind it")
    wait_until(lambda: orchestrator.snapshot().agents["asker"].status == "stalled", message="stall")
    assert request_status(orchestrator, other.id) == RequestStatus.QUEUED
    orchestrator.stop("asker")
    wait_until(lambda: request_status(orchestrator, other.id) != RequestStatus.QUEUED, message="the next request to start")


def test_stalled_run_recovers_when_output_resumes(repo: Path, orchestrators: list) -> None:
    script = py_command(
        """
        import time
        print("first", flush=True)
        time.sleep(1.2)
        print("second", flush=True)
        time.sleep(0.5)
        """
    )
    write_config(repo, f"""
        [agents.pauser]
        kind = "command"
        command = {script}
        isolation = "shared"
        stall_after = "0.5s"
    """)
    orchestrator = start(repo, orchestrators)
    request = orchestrator.dispatch("pauser", "pause a while")
    wait_until(lambda: orchestrator.snapshot().agents["pauser"].status == "stalled", message="stall")
    wait_until(lambda: orchestrator.snapshot().agents["pauser"].status in ("running", "done"), message="running again")
    wait_until(lambda: finished(orchestrator, request.id))
    assert request_status(orchestrator, request.id) == RequestStatus.DONE


def test_stdin_is_closed(repo: Path, orchestrators: list) -> None:
    write_config(repo, """
        [agents.reader]
        kind = "command"
        command = ["cat"]
        isolation = "shared"
    """)
    orchestrator = start(repo, orchestrators)
    request = orchestrator.dispatch("reader", "read stdin")
    wait_until(lambda: finished(orchestrator, request.id), timeout=5)
    assert request_status(orchestrator, request.id) == RequestStatus.DONE


def test_env_drop_and_agent_env(repo: Path, orchestrators: list, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_TOKEN", "do-not-pass")
    monkeypatch.setenv("KEEP_ME", "kept")
    write_config(repo, """
        [limits]
        env_drop = ["SECRET_*"]

        [agents.env]
        kind = "command"
        command = ["sh", "-c", "echo secret=${SECRET_TOKEN:-none} keep=$KEEP_ME extra=$EXTRA tmp=$TMPDIR"]
        isolation = "shared"
        env = { EXTRA = "yes" }
    """)
    orchestrator = start(repo, orchestrators)
    request = orchestrator.dispatch("env", "print env")
    wait_until(lambda: finished(orchestrator, request.id))
    text = orchestrator.snapshot().agents["env"].last_run_message
    events = orchestrator.recent_events("env")
    line = next(e.text for e in events if e.text.startswith("secret="))
    assert "secret=none" in line
    assert "keep=kept" in line
    assert "extra=yes" in line
    assert "/.aipass/runs/env-" in line and line.endswith("/tmp")
    assert text == "finished"


def test_missing_binary_fails_with_message(repo: Path, orchestrators: list) -> None:
    write_config(repo, """
        [agents.ghost]
        kind = "command"
        command = ["/nonexistent/agent-cli"]
        isolation = "shared"
    """)
    orchestrator = start(repo, orchestrators)
    request = orchestrator.dispatch("ghost", "run something missing")
    wait_until(lambda: finished(orchestrator, request.id))
    failed = next(r for r in orchestrator.snapshot().requests if r.id == request.id)
    assert failed.status == RequestStatus.FAILED
    assert failed.message == (
        "ghost: program '/nonexistent/agent-cli' was not found or is not executable; "
        "install it or fix command in [agents.ghost] of .aipass/config.toml"
    )
    assert orchestrator.snapshot().runs == {}


def test_second_orchestrator_is_refused(repo: Path, orchestrators: list) -> None:
    write_config(repo, """
        [agents.a]
        kind = "command"
        command = ["true"]
    """)
    start(repo, orchestrators)
    second = Orchestrator(repo, load_settings(repo), role="second")
    with pytest.raises(LockHeld) as excinfo:
        second.start()
    assert f"pid {os.getpid()}" in str(excinfo.value)


def test_reattach_continues_output_after_restart(repo: Path, orchestrators: list) -> None:
    write_config(repo, f"""
        [agents.slow]
        kind = "command"
        command = {SLOW}
        args = ["40"]
        isolation = "shared"
    """)
    first = Orchestrator(repo, load_settings(repo), role="first")
    first.start_thread()
    request = first.dispatch("slow", "count slowly")
    wait_until(lambda: any(e.text == "tick 5" for e in first.recent_events("slow")), message="some output")
    run_id = first.snapshot().agents["slow"].run
    first.close()  # leave the run going
    assert processes_of(run_id), "the run must survive the orchestrator"
    second = start(repo, orchestrators)
    assert run_id in second.snapshot().runs
    wait_until(lambda: finished(second, request.id), timeout=20, message="the re-attached run to finish")
    texts = [json.loads(line).get("text") for line in (repo / ".aipass/runs" / run_id / "events.jsonl").read_text().splitlines()]
    assert texts == [f"tick {i}" for i in range(40)], "output must be continuous and never repeated"
    assert request_status(second, request.id) == RequestStatus.DONE


def test_run_that_ended_while_no_orchestrator_is_finalized(repo: Path, orchestrators: list) -> None:
    write_config(repo, """
        [agents.quick]
        kind = "command"
        command = ["sh", "-c", "sleep 0.5; echo done; exit 4"]
        isolation = "shared"
    """)
    first = Orchestrator(repo, load_settings(repo), role="first")
    first.start_thread()
    request = first.dispatch("quick", "end while nobody watches")
    run_id = wait_until(lambda: first.snapshot().agents["quick"].run)
    first.close()
    wait_until(lambda: (repo / ".aipass/runs" / run_id / "exit").exists(), message="the exit file")
    second = start(repo, orchestrators)
    wait_until(lambda: finished(second, request.id))
    run = second.snapshot().runs[run_id]
    assert run.status == RunStatus.FAILED
    assert run.exit_code == 4


def test_run_that_never_started_is_queued_again(repo: Path, orchestrators: list) -> None:
    write_config(repo, """
        [agents.quick]
        kind = "command"
        command = ["echo", "ran"]
        isolation = "shared"
    """)
    orchestrator = Orchestrator(repo, load_settings(repo), role="first")
    orchestrator.start()
    request = orchestrator.dispatch("quick", "start me")
    orchestrator.flush(force=True)
    # Simulate a crash between recording the run and starting its process.
    state_path = repo / ".aipass/state/orchestrator.json"
    state = json.loads(state_path.read_text())
    state["requests"][request.id].update(status="running", run="quick-19990101-000000-aaaaaa", runs=["quick-19990101-000000-aaaaaa"])
    state["runs"]["quick-19990101-000000-aaaaaa"] = "starting"
    run_dir = repo / ".aipass/runs/quick-19990101-000000-aaaaaa"
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps({"id": run_dir.name, "agent": "quick", "request": request.id, "kind": "command"}))
    orchestrator._state.requests.clear()  # the crashed process wrote its state and died
    orchestrator._lock_file.release()
    state_path.write_text(json.dumps(state))
    second = start(repo, orchestrators)
    wait_until(lambda: finished(second, request.id))
    snapshot = second.snapshot()
    done = next(r for r in snapshot.requests if r.id == request.id)
    assert done.status == RequestStatus.DONE
    assert len(done.runs) == 2
    never = json.loads((run_dir / "run.json").read_text())
    assert never["status"] == "lost"
    assert "never started" in never["message"]


def test_corrupt_state_is_moved_aside_and_rebuilt(repo: Path, orchestrators: list) -> None:
    write_config(repo, """
        [agents.quick]
        kind = "command"
        command = ["echo", "ran"]
        isolation = "shared"
    """)
    first = start(repo, orchestrators)
    request = first.dispatch("quick", "remember me")
    wait_until(lambda: finished(first, request.id))
    first.close()
    orchestrators.remove(first)
    state_path = repo / ".aipass/state/orchestrator.json"
    state_path.write_bytes(b"\x00" * 100)
    notices: list = []
    second = Orchestrator(repo, load_settings(repo), role="second")
    second.subscribe(notices.extend)
    second.start()
    orchestrators.append(second)
    second._publish()
    moved = list(state_path.parent.glob("orchestrator.json.corrupt-*"))
    assert len(moved) == 1
    assert moved[0].read_bytes() == b"\x00" * 100
    rebuilt = next(r for r in second.snapshot().requests if r.id == request.id)
    assert rebuilt.status == RequestStatus.DONE
    assert any("unreadable" in getattr(n, "title", "").lower() for n in notices)


def test_output_notices_batch_events(repo: Path, orchestrators: list) -> None:
    write_config(repo, """
        [agents.burst]
        kind = "command"
        command = ["sh", "-c", "seq 1 5000"]
        isolation = "shared"
    """)
    notices: list = []
    orchestrator = Orchestrator(repo, load_settings(repo), role="test")
    orchestrator.subscribe(notices.extend)
    orchestrator.start_thread()
    orchestrators.append(orchestrator)
    orchestrator.dispatch("burst", "print a lot")
    wait_until(lambda: any(isinstance(n, RunFinished) for n in list(notices)), message="the finish notice")
    outputs = [n for n in list(notices) if isinstance(n, RunOutput)]
    texts = [e.text for n in outputs for e in n.events]
    assert texts == [str(i) for i in range(1, 5001)]
    assert len(outputs) < 100, "output must arrive in batches, not one notice per line"


def test_old_finished_requests_move_to_history(repo: Path, orchestrators: list, monkeypatch: pytest.MonkeyPatch) -> None:
    import aipass_tui.core.orchestrator as orchestrator_module

    monkeypatch.setattr(orchestrator_module, "ARCHIVE_ABOVE_FINISHED", 10)
    monkeypatch.setattr(orchestrator_module, "KEEP_FINISHED", 4)
    write_config(repo, """
        [limits]
        start_rate = 100

        [agents.quick]
        kind = "command"
        command = ["true"]
        isolation = "shared"
    """)
    first = start(repo, orchestrators)
    ids = [first.dispatch("quick", f"job {n}").id for n in range(14)]
    wait_until(lambda: all(finished(first, rid) for rid in ids if any(r.id == rid for r in first.snapshot().requests)), timeout=30)
    wait_until(lambda: len(first.snapshot().requests) <= 10, timeout=10, message="archiving")
    first.close()
    orchestrators.remove(first)
    state = json.loads((repo / ".aipass/state/orchestrator.json").read_text())
    history = [json.loads(line)["id"] for line in (repo / ".aipass/state/history/requests.jsonl").read_text().splitlines()]
    assert set(history) | set(state["requests"]) == set(ids)
    assert not set(history) & set(state["requests"])
    archived_runs = (repo / ".aipass/state/history/runs.txt").read_text().split()
    assert len(archived_runs) == len(history)
    second = start(repo, orchestrators)
    assert {r.id for r in second.snapshot().requests} == set(state["requests"]), "archived requests stay archived"


def test_starts_keep_the_start_rate(repo: Path, orchestrators: list) -> None:
    agents = "\n".join(
        f'[agents.a{n}]\nkind = "command"\ncommand = ["sleep", "30"]\nisolation = "shared"\n' for n in range(12)
    )
    write_config(repo, "[limits]\nstart_rate = 10\nmax_parallel = 20\n\n" + agents)
    orchestrator = start(repo, orchestrators)
    for n in range(12):
        orchestrator.dispatch(f"a{n}", "wait")
    wait_until(lambda: len(orchestrator.live_pids()) == 12, timeout=30, message="12 runs started")
    starts = sorted(run.started_at for run in orchestrator.snapshot().runs.values() if run.started_at)
    assert len(starts) == 12
    # However the ticks fall, k further starts take at least about k/10 s: at most two runs
    # (the catch-up for a late tick) come early.
    for first in range(len(starts)):
        for last in range(first + 1, len(starts)):
            assert last - first <= (starts[last] - starts[first]) * 10 + 2, (first, last, starts)


def test_two_requests_with_one_id_are_reported(repo: Path, orchestrators: list) -> None:
    from aipass_tui.core.notices import UserNotice
    from aipass_tui.core.orchestrator import new_request_message
    from aipass_tui.core.store import Paths, write_json

    write_config(repo, '[agents.a]\nkind = "command"\ncommand = ["true"]\nisolation = "shared"\n')
    paths = Paths(repo)
    paths.ensure()
    first = new_request_message("a", "first task")
    second = dict(new_request_message("a", "second task"), id=first["id"])
    write_json(paths.inbox / f"{first['id']}-1.json", first)
    write_json(paths.inbox / f"{first['id']}-2.json", second)
    orchestrator = Orchestrator(repo, load_settings(repo), role="test")
    notices: list = []
    orchestrator.subscribe(notices.extend)
    orchestrator.start_thread()
    orchestrator.wake()
    orchestrators.append(orchestrator)
    wait_until(lambda: any(isinstance(n, UserNotice) and n.title == "Request id already used" for n in notices),
               timeout=10, message="the collision reported")
    assert [r.subject for r in orchestrator.snapshot().requests] == ["first task"]
