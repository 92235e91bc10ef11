"""The core must work without Textual: importing it in a fresh interpreter loads no Textual module."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import aipass_tui.core

SCRIPT = """
import importlib, json, pkgutil, sys
import aipass_tui.core
names = ["aipass_tui.core"]
for info in pkgutil.walk_packages(aipass_tui.core.__path__, "aipass_tui.core."):
    names.append(info.name)
    importlib.import_module(info.name)
print(json.dumps({"imported": names, "textual": sorted(m for m in sys.modules if m == "textual" or m.startswith("textual."))}))
"""


def test_core_imports_no_textual() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["textual"] == [], f"core modules imported Textual: {report['textual']}"


def test_every_core_module_was_checked() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=False)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    expected = {info.name for info in pkgutil.walk_packages(aipass_tui.core.__path__, "aipass_tui.core.")}
    assert "aipass_tui.core.orchestrator" in expected
    assert expected <= set(report["imported"])


def test_ui_model_and_text_import_no_textual() -> None:
    script = (
        "import sys, aipass_tui.ui.model, aipass_tui.ui.text, aipass_tui.ui.transcript, aipass_tui.ui.describe;"
        "print(any(m == 'textual' or m.startswith('textual.') for m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
