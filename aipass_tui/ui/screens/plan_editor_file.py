"""The plan editor's side of the plan file: loading, atomic saving, and changes made on disk by others.

The file is polled once a second. A change made elsewhere is loaded at once when there are no
unsaved edits, and otherwise offered for reload. A save that finds the file changed since it
was loaded writes nothing and offers the reload instead.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from textual import work
from textual.message import Message

from aipass_tui.ui.plan_document import parse, write_atomic
from aipass_tui.ui.widgets.plan_outline import PlanOutline

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
"""Seconds between two looks at the plan file's modification time."""
Signature = tuple[int, int, int] | None


def file_signature(path: Path) -> Signature:
    """Return the modification time, size and inode of a file, or None when it does not exist."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


class PlanLoaded(Message):
    def __init__(self, text: str, signature: Signature) -> None:
        super().__init__()
        self.text = text
        self.signature = signature


class PlanLoadFailed(Message):
    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


class PlanSaved(Message):
    def __init__(self, text: str, signature: Signature, then_run: bool) -> None:
        super().__init__()
        self.text = text
        self.signature = signature
        self.then_run = then_run


class PlanSaveFailed(Message):
    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


class DiskChanged(Message):
    """The plan file on disk differs from the version loaded or saved last.

    ``text`` is None when the file is gone or cannot be read, and ``reason`` then gives the cause.
    """

    def __init__(self, text: str | None, signature: Signature, reason: str = "", *, from_save: bool = False) -> None:
        super().__init__()
        self.text = text
        self.signature = signature
        self.reason = reason
        self.from_save = from_save
        """Whether a save found the change (it then wrote nothing)."""


class PlanFileMixin:
    """Loading, saving and watching the plan file, for ``PlanEditorScreen``.

    The screen provides ``path``, ``source``, ``dirty``, ``cockpit`` and the document methods
    these handlers call after a load or a reload.
    """

    # Loading -------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="plan-load", exit_on_error=False)
    def _load_worker(self) -> None:
        try:
            text = self.path.read_bytes().decode("utf-8-sig")
        except FileNotFoundError:
            self.post_message(PlanLoadFailed(f"plan file {self.path} not found: it was moved or deleted"))
            return
        except OSError as exc:
            self.post_message(PlanLoadFailed(f"cannot read plan file {self.path}: {exc.strerror or exc}"))
            return
        except UnicodeDecodeError as exc:
            self.post_message(PlanLoadFailed(f"cannot open plan file {self.path}: it is not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8"))
            return
        self.post_message(PlanLoaded(text, file_signature(self.path)))

    def on_plan_load_failed(self, message: PlanLoadFailed) -> None:
        log.error("plan editor: %s", message.reason)
        self.notify(message.reason, title="Plan editor", severity="error", timeout=10)
        self.dismiss()

    def on_plan_loaded(self, message: PlanLoaded) -> None:
        self.source.load_text(message.text)
        self._saved_text = message.text
        self._disk_signature = message.signature
        self.loaded = True
        document = parse(message.text)
        if document is not None:
            self._use_document(document, message.text)
        else:
            self._show_syntax_error()
        self._update_title()
        self._start_check()
        self.query_one(PlanOutline).focus()

    # Saving ----------------------------------------------------------------------------------

    def action_save(self) -> None:
        if self.loaded:
            self._save(False)

    def _save(self, then_run: bool) -> None:
        self._saving = True
        self._save_worker(self.source.text, self._disk_signature, then_run)

    @work(thread=True, exclusive=True, group="plan-save", exit_on_error=False)
    def _save_worker(self, text: str, expected: Signature, then_run: bool) -> None:
        current = file_signature(self.path)
        if current is not None and current != expected:
            # Another program wrote the file since it was loaded, so the user decides before it is replaced.
            self._report_disk_change(current, from_save=True)
            return
        hub = automation_hub(self.cockpit.source)
        if hub is not None:
            hub.suppress(self.path)
        try:
            write_atomic(self.path, text)
        except OSError as exc:
            log.error("saving %s failed: %s", self.path, exc)
            self.post_message(PlanSaveFailed(f"cannot save {self.path}: {exc.strerror or exc}; your edits are still here"))
            return
        log.info("saved plan %s", self.path)
        self.post_message(PlanSaved(text, file_signature(self.path), then_run))

    def on_plan_saved(self, message: PlanSaved) -> None:
        self._saving = False
        self._saved_text = message.text
        self._disk_signature = message.signature
        self._gone_reported = False
        self._update_title()
        stale = self.checked_text != message.text
        count = len(self.problems)
        if count and not stale:
            self.notify(f"saved {self.path.name} with {count} problem{'s' if count != 1 else ''}: fix them before running it",
                        title="Saved", severity="warning")
        else:
            self.notify(f"saved {self.path.name}", title="Saved")
        if message.then_run:
            self._run_worker()

    def on_plan_save_failed(self, message: PlanSaveFailed) -> None:
        self._saving = False
        self.notify(message.reason, title="Save failed", severity="error", timeout=10)

    # Changes on disk -------------------------------------------------------------------------

    def _poll(self) -> None:
        if self.loaded and not self._asking_reload and not self._saving:
            self._poll_worker(self._disk_signature)

    @work(thread=True, exclusive=True, group="plan-disk", exit_on_error=False)
    def _poll_worker(self, known: Signature) -> None:
        current = file_signature(self.path)
        if current != known:
            self._report_disk_change(current)

    def _report_disk_change(self, signature: Signature, *, from_save: bool = False) -> None:
        """Read the file as it is on disk now and post DiskChanged (called on a worker thread)."""
        if signature is None:
            self.post_message(DiskChanged(None, None, "deleted or moved away", from_save=from_save))
            return
        try:
            text = self.path.read_bytes().decode("utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            self.post_message(DiskChanged(None, signature, f"changed but cannot be read ({exc})", from_save=from_save))
            return
        self.post_message(DiskChanged(text, signature, from_save=from_save))

    def on_disk_changed(self, message: DiskChanged) -> None:
        if message.from_save:
            self._saving = False
        elif self._saving:
            return  # a poll that may have seen this editor's own write; the save reports the outcome
        if message.signature == self._disk_signature and message.signature is not None:
            return
        if message.text is None:
            self._disk_signature = message.signature
            if not self._gone_reported:
                self._gone_reported = True
                self.notify(f"{self.path.name} was {message.reason} on disk: your text is kept, ctrl+s writes it",
                            title="Plan file", severity="warning", timeout=10)
            self._saved_text = None
            self._update_title()
            return
        self._gone_reported = False
        if message.text == self.source.text:
            self._mark_saved(message.text, message.signature)
        elif not self.dirty:
            self._reload(message.text, message.signature)
            self.notify(f"{self.path.name} changed on disk and was reloaded (ctrl+z undoes the reload)", title="Plan file")
        elif not self._asking_reload:
            self._offer_reload(message.text, message.signature)

    def _offer_reload(self, text: str, signature: Signature) -> None:
        from aipass_tui.ui.screens.confirm import ConfirmScreen

        self._asking_reload = True

        def answer(reload: bool | None) -> None:
            self._asking_reload = False
            if reload:
                self._reload(text, signature)
                self.notify("loaded the version on disk; ctrl+z brings your edits back", title="Plan file")
            else:
                self._mark_saved(text, signature)
                self.notify("kept your edits; saving (ctrl+s) replaces the version on disk", title="Plan file")

        self.app.push_screen(
            ConfirmScreen(
                f"{self.path.name} changed on disk",
                "Another program saved this plan while you have unsaved edits here. y loads its version "
                "(ctrl+z brings your edits back); n keeps your edits, and saving then replaces the file.",
                "Reload",
            ),
            answer,
        )

    def _mark_saved(self, text: str, signature: Signature) -> None:
        self._saved_text = text
        self._disk_signature = signature
        self._update_title()

    def _reload(self, text: str, signature: Signature) -> None:
        self._replace_source(text, checkpoint=True)
        self._mark_saved(text, signature)
        document = parse(text)
        if document is not None:
            self._use_document(document, text)
        self._schedule_check()


def automation_hub(source: Any) -> Any:
    """Return the orchestrator's automation hub when one is attached, so the cockpit's own plan writes are not reported as changes from elsewhere."""
    extensions = getattr(source, "extensions", None)
    hub = extensions.get("automation") if isinstance(extensions, dict) else None
    return hub if hub is not None and hasattr(hub, "suppress") else None
