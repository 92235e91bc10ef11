"""scripts/screenshots.py draws the cockpit in true colour whatever terminal runs it.

The script runs in a subprocess as on a 16-colour terminal (``TERM=xterm``, no ``COLORTERM``)
with ``TEXTUAL_COLOR_SYSTEM=standard`` on top. With 16 colours the footer's key letters lose
their accent colour (FittingFooter's 16-colour style), so each screenshot must still show them
in the dark theme's bold orange accent.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
SCRIPT = ROOT / "scripts" / "screenshots.py"
SCREENSHOTS = ("main.svg", "zoom.svg", "queue.svg", "fleet.svg")
ACCENT_KEY_STYLE = "fill: #ffa62b;font-weight: bold"
"""The SVG style of a footer key letter in true colour with the default textual-dark theme."""


def test_screenshots_in_true_colour_on_xterm(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "COLORTERM"}
    env.update(TERM="xterm", TEXTUAL_COLOR_SYSTEM="standard")
    out = tmp_path / "shots"

    proc = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)

    assert proc.returncode == 0, proc.stderr
    for name in SCREENSHOTS:
        svg = (out / name).read_text(encoding="utf-8")
        assert ACCENT_KEY_STYLE in svg, f"{name} shows the footer keys in 16-colour style"
