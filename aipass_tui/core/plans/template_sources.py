"""The folders where plan templates are found, shared by ``templates`` and ``placeholders``."""

from __future__ import annotations

from pathlib import Path

import aipass_tui
from aipass_tui.core.store import Paths


def template_dirs(paths: Paths | None) -> list[tuple[str, Path]]:
    """Return the folders searched for templates, in order of precedence.

    Without ``paths`` (no repository), the repository's own template folder is left out.
    """
    package = Path(aipass_tui.__file__).resolve().parent
    dirs = [("repository", paths.plans / "templates")] if paths is not None else []
    dirs.append(("installed", package / "plan_templates"))
    source_root = package.parent
    if (source_root / "pyproject.toml").is_file() and (source_root / "plans").is_dir():
        dirs.append(("source checkout", source_root / "plans"))
    return dirs
