"""A scripted demo agent: streams plausible progress lines, edits a file, uses some CPU.

It is not an AI model. ``aipass-tui demo`` runs it as a ``command`` agent so a newcomer can see
the cockpit work on a machine with no agent CLI installed.
"""

from __future__ import annotations

import hashlib
import random
import sys
import time
from pathlib import Path

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


def burn(seconds: float) -> None:
    """Use CPU for about ``seconds`` so the cockpit's meters have something to show."""
    end = time.monotonic() + seconds
    digest = b"demo"
    while time.monotonic() < end:
        digest = hashlib.sha256(digest).digest()


def main() -> int:
    role = sys.argv[1] if len(sys.argv) > 1 else "coder"
    prompt = sys.argv[2] if len(sys.argv) > 2 else ""
    rng = random.Random(hash((role, prompt)) & 0xFFFF)
    steps = STEPS.get(role, STEPS["coder"])
    print(f"[scripted demo agent: {role}] this is a demo program, not an AI model", flush=True)
    print(f"Task: {prompt.splitlines()[0] if prompt else '(no prompt)'}", flush=True)
    for round_number in range(3):
        for step in steps:
            print(step, flush=True)
            time.sleep(rng.uniform(0.3, 1.2))
            if rng.random() < 0.3:
                burn(rng.uniform(0.1, 0.4))
        print(f"Progress: round {round_number + 1} of 3 finished", flush=True)
    notes = Path(f"DEMO-{role.upper()}.md")
    with notes.open("a", encoding="utf-8") as handle:
        handle.write(f"- {time.strftime('%H:%M:%S')} {role}: {prompt.splitlines()[0] if prompt else 'work'}\n")
    print(f"Wrote {notes}", flush=True)
    print("Done: the change is ready for review", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
