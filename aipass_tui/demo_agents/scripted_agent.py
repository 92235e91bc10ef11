"""A scripted demo agent: streams plausible progress lines, writes a notes file, uses some CPU.

It is not an AI model. ``aipass-tui demo`` runs it as a ``command`` agent so a newcomer can see
the cockpit work on a machine with no agent CLI installed.

Each request gets a notes file of its own, ``demo-notes/<role>/<request id>.md``, so the pull
requests of one agent never change the same file and each of them merges. A request to rebase a
pull request (worded as in ``gitflow_review.rebase_suggestion``) makes the agent run ``git
rebase`` onto the named branch. Conflicts in demo notes files are resolved by keeping both
sides. A conflict in any other file aborts the rebase, and the agent exits with status 1.

``DEMO_AGENT_PACE`` scales the pauses between progress lines and the CPU bursts: 1 (the default)
is the demo's pace, 0 runs without pauses (for tests).
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NOTES_DIR = Path("demo-notes")
LEGACY_NOTES = re.compile(r"DEMO-[A-Z]+\.md")
"""Notes files of earlier demo versions, one per agent: their conflicts are resolved the same way."""
REBASE_SUBJECT = re.compile(r"^Rebase pull request #\S+ onto (\S+?)(?: and resolve conflicts)?$")
MAX_REBASE_STEPS = 200
"""Upper bound on conflict rounds in one rebase: one round per replayed commit that conflicts."""

STEPS = {
    "planner": [
        "Reading the repository layout",
        "→ Read README.md",
        "→ Glob src/**/*.py",
        "Outlining the change in three steps",
        "Writing notes to PLAN-NOTES.md",
    ],
    "coder": [
        "→ Read src/calc.py",
        "The divide() function does not handle a zero divisor",
        "→ Edit src/calc.py",
        "→ Bash(python -m pytest -q)",
        "← 3 passed in 0.02s",
        "Adding a docstring to divide()",
    ],
    "tester": [
        "→ Read tests/test_calc.py",
        "Coverage misses the error branch of divide()",
        "→ Write tests/test_calc_extra.py",
        "→ Bash(python -m pytest -q)",
        "← 4 passed in 0.03s",
    ],
    "docs": [
        "→ Read README.md",
        "The usage section lacks an example",
        "→ Edit README.md",
        "Checking the links",
    ],
}


def pace() -> float:
    """Return the ``DEMO_AGENT_PACE`` factor, or 1 when it is missing or invalid."""
    try:
        value = float(os.environ.get("DEMO_AGENT_PACE", "1"))
    except ValueError:
        return 1.0
    return value if value >= 0 else 1.0


def burn(seconds: float) -> None:
    """Use CPU for about ``seconds`` so the cockpit's meters have something to show."""
    end = time.monotonic() + seconds
    digest = b"demo"
    while time.monotonic() < end:
        digest = hashlib.sha256(digest).digest()


def notes_path(role: str, request_id: str) -> Path:
    """Return the notes file of one request, relative to the worktree."""
    safe_id = re.sub(r"[^A-Za-z0-9._-]", "_", request_id) or "request"
    return NOTES_DIR / role / f"{safe_id}.md"


def is_notes_file(name: str) -> bool:
    path = Path(name)
    return path.parts[:1] == (NOTES_DIR.name,) or LEGACY_NOTES.fullmatch(path.name) is not None


def rebase_target(prompt: str) -> str | None:
    """Return the branch a rebase request names on its first line, or None for any other request."""
    first_line = prompt.splitlines()[0].strip() if prompt.strip() else ""
    match = REBASE_SUBJECT.match(first_line)
    return match.group(1) if match else None


def git(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    # GIT_EDITOR=true accepts the message git proposes when a rebase continues.
    env = {**os.environ, "GIT_EDITOR": "true"}
    result = subprocess.run(["git", *args], capture_output=True, text=True, env=env)
    if check and result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed (exit {result.returncode}): {result.stderr.strip()}")
    return result


def stage_text(stage: int, name: str) -> str | None:
    """Return one side of a conflicted file from the index (1 base, 2 ours, 3 theirs), or None when absent."""
    result = git("show", f":{stage}:{name}", check=False)
    return result.stdout if result.returncode == 0 else None


def keep_both_sides(name: str) -> None:
    """Resolve a conflicted notes file with the lines of both sides (``git merge-file --union``) and stage it."""
    sides = [stage_text(stage, name) or "" for stage in (2, 1, 3)]
    with tempfile.TemporaryDirectory(prefix="demo-rebase-") as scratch:
        files = []
        for label, text in zip(("ours", "base", "theirs"), sides):
            path = Path(scratch) / label
            path.write_text(text, encoding="utf-8")
            files.append(str(path))
        merged = git("merge-file", "-p", "--union", *files, check=False).stdout
    Path(name).parent.mkdir(parents=True, exist_ok=True)
    Path(name).write_text(merged, encoding="utf-8")
    git("add", "--", name)


def rebase_in_progress() -> bool:
    for marker in ("rebase-merge", "rebase-apply"):
        path = git("rev-parse", "--git-path", marker).stdout.strip()
        if Path(path).exists():
            return True
    return False


def rebase(target: str) -> int:
    """Rebase the current branch onto ``target``; return the exit status for the run."""
    if git("status", "--porcelain", "--untracked-files=no").stdout.strip():
        print(f"Rebase not started: the worktree {Path.cwd()} has uncommitted changes. "
              f"Commit or discard them, then send the rebase request again.", flush=True)
        return 1
    print(f"→ Bash(git rebase {target})", flush=True)
    result = git("rebase", target, check=False)
    for _ in range(MAX_REBASE_STEPS):
        if result.returncode == 0 and not rebase_in_progress():
            print(f"Rebased onto {target}: the pull request is up to date", flush=True)
            return 0
        conflicted = [name for name in git("diff", "--name-only", "--diff-filter=U").stdout.splitlines() if name]
        others = [name for name in conflicted if not is_notes_file(name)]
        if others or not conflicted:
            git("rebase", "--abort", check=False)
            reason = (f"conflicts in {', '.join(others)}" if others else
                      f"git stopped without naming a conflict: {result.stderr.strip() or result.stdout.strip()}")
            print(f"Rebase aborted: {reason}. The demo agent resolves conflicts only in its own notes files, "
                  f"so rebase the branch by hand in {Path.cwd()} or close the pull request.", flush=True)
            return 1
        for name in conflicted:
            keep_both_sides(name)
            print(f"← Kept both sides of {name}", flush=True)
        result = git("rebase", "--continue", check=False)
    git("rebase", "--abort", check=False)
    print(f"Rebase aborted: still conflicting after {MAX_REBASE_STEPS} rounds", flush=True)
    return 1


def stream_steps(role: str, prompt: str) -> None:
    factor = pace()
    rng = random.Random(hash((role, prompt)) & 0xFFFF)
    steps = STEPS.get(role, STEPS["coder"])
    for round_number in range(3):
        for step in steps:
            print(step, flush=True)
            time.sleep(rng.uniform(0.3, 1.2) * factor)
            if rng.random() < 0.3:
                burn(rng.uniform(0.1, 0.4) * factor)
        print(f"Progress: round {round_number + 1} of 3 finished", flush=True)


def main() -> int:
    role = sys.argv[1] if len(sys.argv) > 1 else "coder"
    prompt = sys.argv[2] if len(sys.argv) > 2 else ""
    print(f"[scripted demo agent: {role}] this is a demo program, not an AI model", flush=True)
    print(f"Task: {prompt.splitlines()[0] if prompt.strip() else '(no prompt)'}", flush=True)

    target = rebase_target(prompt)
    if target is not None:
        try:
            return rebase(target)
        except RuntimeError as exc:
            print(f"Rebase failed: {exc}", flush=True)
            return 1

    stream_steps(role, prompt)
    request_id = os.environ.get("AIPASS_REQUEST_ID") or hashlib.sha256(prompt.encode()).hexdigest()[:12]
    notes = notes_path(role, request_id)
    notes.parent.mkdir(parents=True, exist_ok=True)
    with notes.open("a", encoding="utf-8") as handle:
        handle.write(f"- {time.strftime('%H:%M:%S')} {role}: {prompt.splitlines()[0] if prompt.strip() else 'work'}\n")
    print(f"Wrote {notes}", flush=True)
    print("Done: the change is ready for review", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
