"""A scripted agent for cockpit tests: the request subject sets what it does.

Tokens in the subject: ``lines=N`` lines of output, ``delay=S`` seconds between lines,
``exit=C`` exit code, ``hold=1`` keep running (printing a line every 0.2 s) until stopped, ``say=WORD``
print WORD on the last line, ``ansi=1`` colour the lines and end with a carriage-return spinner.
"""

from __future__ import annotations

import re
import sys
import time


def main() -> int:
    subject = sys.argv[1] if len(sys.argv) > 1 else ""
    knobs = dict(re.findall(r"(\w+)=(\S+)", subject))
    lines = int(knobs.get("lines", 3))
    delay = float(knobs.get("delay", 0.01))
    for index in range(lines):
        if knobs.get("ansi"):
            print(f"\x1b[32mline {index}\x1b[0m working |\rworking /\rworking done", flush=True)
        else:
            print(f"line {index} of {subject.split()[0] if subject else 'work'}", flush=True)
        time.sleep(delay)
    if "say" in knobs:
        print(f"the word is {knobs['say']}", flush=True)
    if knobs.get("hold"):
        beat = 0
        while True:
            print(f"holding until stopped ({beat})", flush=True)
            beat += 1
            time.sleep(0.2)
    return int(knobs.get("exit", 0))


if __name__ == "__main__":
    sys.exit(main())
