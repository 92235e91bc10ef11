"""Kill -9 the orchestrator at random moments: every request still runs exactly once."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from aipass_tui.core.orchestrator import new_request_message
from aipass_tui.core.store import Paths, read_lock_info, write_json
from tests.conftest import write_config

REQUESTS = 240
AGENTS = 12
KILLS = 25


def test_kill_nine_runs_each_request_once(repo: Path) -> None:
    record = repo.parent / "record.log"
    agents = "\n".join(
        f"""
        [agents.a{i}]
        kind = "command"
        command = ["sh", "-c", "echo \\"$AIPASS_REQUEST_ID\\" >> {record}; sleep 0.0$(( $$ % 9 ))"]
        isolation = "shared"
        """
        for i in range(AGENTS)
    )
    write_config(repo, f"""
        [limits]
        max_parallel = 8
        start_rate = 200
        {agents}
    """)
    paths = Paths(repo)
    paths.ensure()
    ids = []
    for n in range(REQUESTS):
        message = new_request_message(f"a{n % AGENTS}", f"task {n}", f"body {n}")
        write_json(paths.inbox / f"{message['id']}-{n:04d}.json", message)
        ids.append(message["id"])
    rng = random.Random(20261204)
    for _ in range(KILLS):
        proc = subprocess.Popen(
            [sys.executable, "-m", "aipass_tui", "work", "--until-idle", "--repo", str(repo)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        # Kill at a random moment after the orchestrator took its lock, so each kill lands
        # somewhere in real work rather than during interpreter start-up.
        lock_taken = time.monotonic() + 30
        while time.monotonic() < lock_taken and proc.poll() is None:
            if read_lock_info(paths.orchestrator_lock).get("pid") == proc.pid:
                break
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    ran_while_killing = len(record.read_text().split()) if record.exists() else 0
    assert ran_while_killing > 0, "runs must have started between the kills"
    final = subprocess.run(
        [sys.executable, "-m", "aipass_tui", "work", "--until-idle", "--repo", str(repo)],
        capture_output=True, text=True, timeout=300,
    )
    assert final.returncode == 0, f"work exited {final.returncode}: {final.stderr}"
    counts = Counter(record.read_text().split())
    assert set(counts) == set(ids), "every request must run"
    assert [rid for rid, c in counts.items() if c != 1] == [], "no request may run twice"
    state = json.loads(paths.orchestrator.read_text())
    assert {r["status"] for r in state["requests"].values()} == {"done"}
    for path in (repo / ".aipass").rglob("*.json"):
        json.loads(path.read_text())
    for path in paths.runs.rglob("events.jsonl"):
        for line in path.read_text().splitlines():
            json.loads(line)
