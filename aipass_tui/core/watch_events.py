"""File changes as the Watcher reports them, and the file names it never reports."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Literal

ChangeKind = Literal["created", "modified", "deleted", "moved"]

# Swap, lock and backup files of common editors, and the temp files of store.write_json
# (".<name>.<random>.tmp"). Vim's write test file is handled in is_ignored_name.
_IGNORED_NAME = re.compile(
    r"""
    ^\..*\.sw[a-p]$            # vim swap files: .foo.swp, .foo.swo
    | ~$                       # backups: foo~
    | ^\.\#                    # emacs lock files: .#foo
    | ^\#.*\#$                 # emacs auto-save files: #foo#
    | ^\.~lock\..*\#$          # LibreOffice lock files
    | \.kate-swp$              # Kate swap files
    | ^\.goutputstream-        # GLib safe-save temp files
    | \.___jb_(tmp|old)___$    # JetBrains safe-write files
    | ^\.DS_Store$
    | ^\..+\.[A-Za-z0-9_]+\.tmp$   # store.write_json temp files
    """,
    re.VERBOSE,
)
_VIM_PROBE_FIRST = 4913
_VIM_PROBE_STEP = 123

def absolute(path: str | os.PathLike[str]) -> Path:
    """Return an absolute path with ``..`` resolved but symbolic links kept, as watchdog reports paths."""
    return Path(os.path.abspath(path))


def is_ignored_name(name: str) -> bool:
    """Tell whether a file name is an editor's swap, lock or backup file, or one of our temp files."""
    if _IGNORED_NAME.search(name):
        return True
    # Vim checks that a folder is writable by creating "4913" (then 5036, 5159, ... if taken).
    if name.isdigit() and len(name) < 9:
        number = int(name)
        return number >= _VIM_PROBE_FIRST and (number - _VIM_PROBE_FIRST) % _VIM_PROBE_STEP == 0
    return False


@dataclass(frozen=True)
class FileChange:
    """One debounced change of one file.

    A file that arrived by a rename is reported as ``modified`` with ``src_path`` set. That
    covers atomic saves (a temp file renamed over the target) and files moved in. The path the
    file left is reported as ``moved`` with ``dest_path`` set.
    """

    path: Path
    kind: ChangeKind
    src_path: Path | None = None
    dest_path: Path | None = None


def merge_changes(old: FileChange | None, new: FileChange) -> FileChange | None:
    """Combine two changes of one path inside one debounce window; None when nothing remains."""
    if old is None:
        return new
    if old.kind == "created":
        if new.kind in ("deleted", "moved"):
            return None
        return replace(old, src_path=old.src_path or new.src_path)
    if old.kind in ("deleted", "moved"):
        if new.kind in ("created", "modified"):
            return FileChange(new.path, "modified", src_path=new.src_path)
        return new
    if new.kind in ("deleted", "moved"):
        return new
    return FileChange(old.path, "modified", src_path=new.src_path or old.src_path)


ChangeCallback = Callable[[FileChange], None]
