"""The git flow: one worktree and branch per agent, pull requests from finished runs, review commands.

``GitWorkspace`` implements the orchestrator's Workspace interface. ``prepare`` gives a run its
folder: the repository itself for ``isolation = "shared"``, else the agent's worktree in
``.aipass/worktrees/<agent>`` on a branch ``aipass/<agent>/<slug>``. ``finish`` turns the
changes of a finished run into a pull request, holding the repo lock. For an agent with
``runner = "ray"`` the branch is also pushed to ``[cluster] repo_url`` before the run and fetched
from there after it (``gitflow_remote``), because the run works in a clone on a cluster node.
Merging and the other review actions live in ``gitflow_review``. Importing this module imports ``gitflow_commands``,
which registers them as commands (``pr.merge``, ``pr.close``, ...) that the CLI hands to the
running orchestrator.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from pathlib import Path
from typing import Any, Callable

from aipass_tui.config import AgentConfig, Settings
from aipass_tui.core import clock
from aipass_tui.core.diff import display, list_files
from aipass_tui.core.gitflow_checks import run_checks
from aipass_tui.core.gitflow_git import (
    GitError,
    agent_identity,
    common_dir,
    current_branch,
    git_dir,
    has_uncommitted,
    is_ancestor,
    list_worktrees,
    merge_base,
    operation_in_progress,
    rebasing_branch,
    rev_parse,
    run_git,
    status_entries,
    toplevel,
)
from aipass_tui.core.gitflow_lock import RepoLock, RepoLockHeld, repo_lock_holder
from aipass_tui.core.gitflow_commands import list_pull_summaries
from aipass_tui.core.gitflow_remote import fetch_run_branch, push_branch, remote_branches
from aipass_tui.core.gitflow_review import find_violations, merge_pull
from aipass_tui.core.models import Request, RunRecord
from aipass_tui.core.pulls import ACTIVE_STATUSES, PULL_WRITE_LOCK, PullFile, PullRequest, PullStatus, PullStore
from aipass_tui.core.store import Paths
from aipass_tui.core.workspace import WorkspaceError, WorkspaceInfo

__all__ = [
    "GitWorkspace",
    "find_violations",
    "list_pull_summaries",
    "merge_pull",
    "repo_lock_holder",
    "RepoLock",
    "RepoLockHeld",
]

log = logging.getLogger(__name__)

BRANCH_PREFIX = "aipass"
_SLUG_MAX = 40


def slugify(subject: str) -> str:
    """Return a branch-safe slug of ``subject`` (lowercase ASCII words joined by ``-``), or ``work``."""
    ascii_text = unicodedata.normalize("NFKD", subject).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    slug = slug[:_SLUG_MAX].rstrip("-")
    return slug or "work"


class GitWorkspace:
    """Worktrees, branches and pull requests for the agents of one repository.

    ``allowed_globs``, when set, returns the file globs a request may change (from its plan
    task), or None when the request has no such limit. Changed files outside those globs are
    recorded as the pull request's violations.
    """

    def __init__(
        self,
        repo: Path,
        paths: Paths,
        settings: Settings,
        *,
        allowed_globs: Callable[[Request], list[str] | None] | None = None,
        lock_timeout: float = 3600.0,
    ) -> None:
        self.repo = toplevel(repo)
        self.paths = paths
        self.settings = settings
        self.allowed_globs = allowed_globs
        self.lock_timeout = lock_timeout
        self.pulls = PullStore(paths)
        self.started_branch = current_branch(self.repo)
        self._mutex = threading.Lock()
        self._finishing: set[str] = set()

    # Target branch -------------------------------------------------------------------------

    def target_branch(self) -> str:
        """Return the branch agents branch from and merge into; raise WorkspaceError when unknown."""
        configured = self.settings.git.target_branch
        if configured:
            return configured
        if self.started_branch:
            return self.started_branch
        rebasing = rebasing_branch(self.repo)
        cause = f"a rebase of {rebasing} was in progress" if rebasing else "its HEAD was detached"
        raise WorkspaceError(
            f"the main checkout {self.repo} has no branch checked out ({cause}) when aipass-tui started, "
            f"so the target branch is unknown: set git.target_branch in .aipass/config.toml, "
            f"or check out a branch (git switch main) and start aipass-tui again"
        )

    def _target_head(self, target: str) -> str:
        head = rev_parse(self.repo, f"refs/heads/{target}")
        if head is None:
            raise WorkspaceError(
                f"the target branch {target!r} does not exist in {self.repo}: create it, "
                f"or set git.target_branch in .aipass/config.toml to an existing branch"
            )
        return head

    def _check_main_checkout(self, target: str) -> None:
        if operation_in_progress(self.repo) != "rebase":
            return
        rebasing = rebasing_branch(self.repo)
        if rebasing in (None, target):
            raise WorkspaceError(
                f"a rebase of {rebasing or 'the target branch'} is in progress in {self.repo}: finish it "
                f"(git rebase --continue) or abort it (git rebase --abort), then start the request again"
            )

    # Worktrees ------------------------------------------------------------------------------

    def worktree_path(self, agent: str) -> Path:
        return self.paths.worktrees / agent

    def busy(self, agent: str) -> bool:
        """Tell whether ``finish`` is still recording the previous run of ``agent``."""
        with self._mutex:
            return agent in self._finishing

    def prepare(self, agent: str, config: AgentConfig, request: Request) -> WorkspaceInfo:
        """Return the folder for a run of ``request``; create or move the agent's worktree as needed.

        For ``runner = "ray"`` the branch is also pushed to ``[cluster] repo_url``, where the
        run's node clones it; the returned ``cwd`` is the local worktree, which that run does
        not use (it works in its clone on the node).
        """
        repo_url = self._cluster_repo_url(agent, config)
        if config.isolation == "shared":
            return WorkspaceInfo(cwd=self.repo)
        with self._mutex:
            if agent in self._finishing:
                raise WorkspaceError(
                    f"the previous run of agent {agent} is still being committed and checked: "
                    f"start request {request.id} after it is recorded"
                )
            try:
                info = self._prepare_worktree(agent, request, repo_url)
                if repo_url is not None and info.branch is not None:
                    # NOTE: the push runs on the orchestrator's tick; a slow remote delays other runs.
                    push_branch(self.repo, repo_url, info.branch)
                return info
            except GitError as exc:
                raise WorkspaceError(f"could not prepare the worktree of agent {agent}: {exc}") from exc

    def _cluster_repo_url(self, agent: str, config: AgentConfig) -> str | None:
        """Return ``[cluster] repo_url`` for a cluster agent, None for a local one."""
        if config.runner != "ray":
            return None
        if config.isolation == "shared":
            raise WorkspaceError(
                f'agent {agent} has runner = "ray" and isolation = "shared", but a cluster run works in '
                f'its own clone on a node: set isolation = "worktree" for agent {agent}'
            )
        repo_url = self.settings.cluster.repo_url
        if not repo_url:
            raise WorkspaceError(
                f'agent {agent} has runner = "ray", which needs a git remote that the nodes can reach: '
                f"set [cluster] repo_url in .aipass/config.toml"
            )
        return repo_url

    def _prepare_worktree(self, agent: str, request: Request, repo_url: str | None = None) -> WorkspaceInfo:
        target = self.target_branch()
        self._check_main_checkout(target)
        target_head = self._target_head(target)
        self._ensure_excluded()
        path = self.worktree_path(agent)
        registered = self._registered(path)

        if request.branch:
            branch = request.branch
            if rev_parse(self.repo, f"refs/heads/{branch}") is None:
                raise WorkspaceError(
                    f"branch {branch!r} named by request {request.id} does not exist in {self.repo}: "
                    f"dispatch the request without a branch, or create the branch first"
                )
            if registered:
                self._switch(path, agent, branch, start=None)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                run_git(self.repo, "worktree", "add", "--quiet", str(path), branch)
            base = merge_base(self.repo, target_head, f"refs/heads/{branch}") or target_head
        else:
            taken = remote_branches(self.repo, repo_url, f"{BRANCH_PREFIX}/{agent}/") if repo_url else set()
            branch = self._new_branch_name(agent, request.subject, taken)
            if registered:
                self._switch(path, agent, branch, start=target_head)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                run_git(self.repo, "worktree", "add", "--quiet", "--no-track", "-b", branch, str(path), target_head)
            base = target_head

        log.info("agent %s works in %s on branch %s (base %s)", agent, path, branch, base[:12])
        return WorkspaceInfo(cwd=path, branch=branch, worktree=path, base_commit=base)

    def _registered(self, path: Path) -> bool:
        """Tell whether ``path`` is a live worktree; prune git's entry when the folder was deleted by hand."""
        entry = next((e for e in list_worktrees(self.repo) if e.path.resolve() == path.resolve()), None)
        if entry is not None and (entry.prunable or not (path / ".git").exists()):
            log.warning(
                "the worktree %s was deleted by hand; pruned git's entry for it and creating it again "
                "(its branch %s and commits are kept)",
                path,
                entry.branch or entry.head,
            )
            run_git(self.repo, "worktree", "prune")
            entry = None
        if entry is None and path.exists():
            if path.is_dir() and not any(path.iterdir()):
                path.rmdir()
            else:
                raise WorkspaceError(
                    f"{path} exists but is not a git worktree of {self.repo}: move it away or delete it, "
                    f"then start the request again"
                )
        return entry is not None

    def _switch(self, path: Path, agent: str, branch: str, start: str | None) -> None:
        """Check out ``branch`` in the agent's worktree (created at ``start`` when given)."""
        operation = operation_in_progress(path)
        if operation:
            raise WorkspaceError(
                f"a {operation} is in progress in the worktree {path}: finish it or abort it there "
                f"(git -C {path} {operation} --abort), then start the request again"
            )
        current = current_branch(path)
        if current == branch:
            return
        if current is None and not self._head_reachable(path):
            raise WorkspaceError(
                f"the worktree {path} has a detached HEAD with commits on no branch: save them with "
                f"git -C {path} switch -c <new-branch>, then start the request again"
            )
        if has_uncommitted(path):
            raise WorkspaceError(
                f"the worktree {path} has uncommitted changes on {current or 'a detached HEAD'}: commit or "
                f"discard them there (git -C {path} status), then start the request again"
            )
        if start is None:
            run_git(path, "switch", "--quiet", "--no-guess", branch)
        else:
            run_git(path, "switch", "--quiet", "--no-track", "-c", branch, start)
        if current and current.startswith(f"{BRANCH_PREFIX}/{agent}/"):
            self._drop_merged_branch(current)

    def _head_reachable(self, path: Path) -> bool:
        out = run_git(path, "for-each-ref", "--count=1", "--contains", "HEAD", "refs/heads", read_only=True).stdout
        return bool(out.strip())

    def _drop_merged_branch(self, branch: str) -> None:
        """Delete an agent branch whose commits are all in the target branch and that has no open pull request."""
        head = rev_parse(self.repo, f"refs/heads/{branch}")
        target_head = rev_parse(self.repo, f"refs/heads/{self.target_branch()}")
        if head is None or target_head is None or not is_ancestor(self.repo, head, target_head):
            return
        if self.pulls.find_active(branch) is not None:
            return
        proc = run_git(self.repo, "branch", "-d", "--quiet", branch, check=False)
        if proc.returncode == 0:
            log.info("deleted branch %s: all its commits are in %s", branch, self.target_branch())

    def _new_branch_name(self, agent: str, subject: str, taken: set[str] | None = None) -> str:
        """Return a branch name free locally and not in ``taken`` (the names used on the remote)."""
        stem = f"{BRANCH_PREFIX}/{agent}/{slugify(subject)}"
        name = stem
        counter = 2
        while name in (taken or ()) or rev_parse(self.repo, f"refs/heads/{name}") is not None:
            name = f"{stem}-{counter}"
            counter += 1
        check = run_git(self.repo, "check-ref-format", "--branch", name, check=False, read_only=True)
        if check.returncode != 0:
            raise WorkspaceError(f"cannot make a valid branch name from agent {agent!r}: {name!r} is rejected by git")
        return name

    def _ensure_excluded(self) -> None:
        """Make sure git ignores ``.aipass/`` in the main checkout, so worktrees and state are never staged."""
        try:
            relative = self.paths.root.resolve().relative_to(self.repo.resolve())
        except ValueError:
            return
        exclude = common_dir(self.repo) / "info" / "exclude"
        pattern = f"/{relative.as_posix()}/"
        lines = exclude.read_text(encoding="utf-8", errors="replace").splitlines() if exclude.exists() else []
        accepted = {pattern, pattern.rstrip("/"), pattern.lstrip("/"), pattern.strip("/")}
        if any(line.strip() in accepted for line in lines):
            return
        exclude.parent.mkdir(parents=True, exist_ok=True)
        with exclude.open("a", encoding="utf-8") as handle:
            if lines and not exclude.read_bytes().endswith(b"\n"):
                handle.write("\n")
            handle.write(f"{pattern}\n")
        log.info("added %s to %s", pattern, exclude)

    def prune_removed(self, agent_names: list[str] | set[str]) -> dict[str, Any]:
        """Remove the worktrees of agents that are no longer configured.

        A worktree with uncommitted changes is kept and named in ``kept`` with the reason, so no
        work is lost. Branches are kept in every case.
        """
        removed: list[str] = []
        skipped: dict[str, str] = {}
        folder = self.paths.worktrees.resolve()
        with self._mutex:
            run_git(self.repo, "worktree", "prune")
            for entry in list_worktrees(self.repo):
                if entry.path.resolve().parent != folder or entry.path.name in agent_names:
                    continue
                name = entry.path.name
                if has_uncommitted(entry.path):
                    skipped[name] = f"the worktree {entry.path} has uncommitted changes: commit or discard them, then remove it"
                    log.warning("kept the worktree of removed agent %s: %s", name, skipped[name])
                    continue
                proc = run_git(self.repo, "worktree", "remove", str(entry.path), check=False)
                if proc.returncode != 0:
                    skipped[name] = proc.stderr.decode("utf-8", "replace").strip()
                    log.warning("could not remove the worktree of removed agent %s: %s", name, skipped[name])
                    continue
                removed.append(name)
                log.info("removed the worktree %s of removed agent %s (branch %s kept)", entry.path, name, entry.branch)
        return {"removed": removed, "kept": skipped}

    # Finished runs --------------------------------------------------------------------------

    def finish(self, run: RunRecord, request: Request, config: AgentConfig) -> dict[str, Any] | None:
        """Commit a finished run's changes, run the checks and record or update its pull request.

        Returns the pull request record, or None when the run left no changes. Holds the repo lock
        while it works; raises WorkspaceError when the worktree is missing or in a state that
        needs the user.
        """
        if config.isolation == "shared":
            return None
        with self._mutex:
            self._finishing.add(run.agent)
        try:
            lock = RepoLock(self.repo, holder=f"pull request of run {run.id} (agent {run.agent})")
            try:
                lock.acquire(timeout=self.lock_timeout)
            except RepoLockHeld as exc:
                raise WorkspaceError(f"could not record the changes of run {run.id}: {exc}") from exc
            try:
                return self._record(run, request, config)
            except GitError as exc:
                raise WorkspaceError(f"could not record the changes of run {run.id}: {exc}") from exc
            finally:
                lock.release()
        finally:
            with self._mutex:
                self._finishing.discard(run.agent)

    def _record(self, run: RunRecord, request: Request, config: AgentConfig) -> dict[str, Any] | None:
        path = Path(run.worktree) if run.worktree else self.worktree_path(run.agent)
        if not (path / ".git").exists():
            raise WorkspaceError(
                f"the worktree {path} of agent {run.agent} is missing, so the changes of run {run.id} "
                f"cannot be recorded: commits already on its branch are kept; uncommitted work is lost"
            )
        operation = operation_in_progress(path)
        if operation:
            raise WorkspaceError(
                f"run {run.id} left a {operation} unfinished in {path}: finish or abort it there, "
                f"then send the agent a new request"
            )
        branch = current_branch(path)
        if branch is None:
            raise WorkspaceError(
                f"run {run.id} left a detached HEAD in {path}: check out a branch there "
                f"(git -C {path} switch -c <branch>) so its commits are kept"
            )
        if run.branch and branch != run.branch:
            log.warning("run %s started on branch %s but ended on %s; recording %s", run.id, run.branch, branch, branch)
        if run.runner == "ray":
            repo_url = self.settings.cluster.repo_url
            if not repo_url:
                raise WorkspaceError(f"run {run.id} ran on the cluster, but [cluster] repo_url is not set, so its branch cannot be fetched")
            fetch_run_branch(path, repo_url, branch, run.id, self.paths.run_dir(run.id))

        if has_uncommitted(path):
            self._commit(path, run, request)
        head = rev_parse(path, "HEAD")
        existing = self.pulls.find_active(branch)
        target = existing.target if existing else self.target_branch()
        target_head = self._target_head(target)
        base = merge_base(self.repo, target_head, head) if head else None
        base = base or run.base_commit
        if head is None or base is None:
            raise WorkspaceError(f"branch {branch} in {path} shares no history with {target}: rebase it onto {target}")

        files = list_files(self.repo, base, head)
        if not files:
            log.info("run %s of agent %s ended without changes on %s", run.id, run.agent, branch)
            return None

        pull_id = existing.id if existing else self.pulls.next_id()
        commands = self._checks_for(request, config)
        log_dir = self.pulls.artifacts(pull_id) / "checks"
        checks = run_checks(commands, path, log_dir, f"{pull_id}/checks", self.settings.git.check_timeout)
        leftovers = self._restore_after_checks(path) if commands else []

        globs = self.allowed_globs(request) if self.allowed_globs else None
        violations = find_violations([display(f.path) for f in files], globs) if globs is not None else []
        summary = (run.summary.result_text or run.summary.last_message or "").strip()
        pull_files = [PullFile.model_validate(f.to_dict()) for f in files]
        message = None
        if leftovers:
            names = ", ".join(display(name) for name in leftovers[:10])
            message = f"the checks changed files in the worktree, which were discarded to keep the branch as reviewed: {names}"

        with PULL_WRITE_LOCK:
            return self._save_pull(run, request, existing, pull_id, target, branch, base, head, pull_files, checks, violations, summary, message)

    def _save_pull(
        self,
        run: RunRecord,
        request: Request,
        existing: PullRequest | None,
        pull_id: str,
        target: str,
        branch: str,
        base: str,
        head: str,
        pull_files: list[PullFile],
        checks: list[Any],
        violations: list[str],
        summary: str,
        message: str | None,
    ) -> dict[str, Any]:
        # Review actions may have changed the record while the checks ran: update the stored copy.
        if existing is not None:
            existing = self.pulls.load(existing.id)
            if existing.status not in ACTIVE_STATUSES:
                log.info("pull request %s was %s while run %s was checked; recording a new one", existing.id, existing.status.value, run.id)
                existing = None
                pull_id = self.pulls.next_id()
        now = clock.now()
        if existing:
            pull = existing
            pull.head, pull.base, pull.files, pull.checks = head, base, pull_files, checks
            pull.status = PullStatus.OPEN
            pull.violations, pull.conflict_files, pull.message = violations, [], message
            pull.run = run.id
            pull.runs.append(run.id)
            if request.id not in pull.requests:
                pull.requests.append(request.id)
            pull.body = summary or pull.body
            pull.updated_at = now
        else:
            pull = PullRequest(
                id=pull_id,
                agent=run.agent,
                request=request.id,
                requests=[request.id],
                run=run.id,
                runs=[run.id],
                branch=branch,
                target=target,
                base=base,
                head=head,
                title=request.subject.strip().splitlines()[0] if request.subject.strip() else f"Work of {run.agent}",
                body=summary,
                files=pull_files,
                checks=checks,
                violations=violations,
                plan_task=request.plan_task,
                message=message,
                created_at=now,
                updated_at=now,
            )
        self.pulls.save(pull)
        log.info("%s pull request %s of agent %s: %s (%d files)", "updated" if existing else "recorded", pull.id, run.agent, branch, len(pull_files))
        return pull.record()

    def _commit(self, path: Path, run: RunRecord, request: Request) -> None:
        index_lock = git_dir(path) / "index.lock"
        if index_lock.exists():
            raise WorkspaceError(
                f"{index_lock} exists, so the changes of run {run.id} cannot be committed: a git command "
                f"in the worktree was interrupted; delete the file if no git process runs there"
            )
        subject = request.subject.strip().splitlines()[0] if request.subject.strip() else f"Work of {run.agent}"
        summary = (run.summary.result_text or run.summary.last_message or "").strip()
        message = f"{subject}\n\n{summary}\n" if summary else f"{subject}\n"
        identity = agent_identity(run.agent).env()
        run_git(path, "add", "--all")
        run_git(path, "-c", "commit.gpgsign=false", "commit", "--quiet", "--no-verify", "-F", "-", input=message.encode("utf-8"), env=identity)
        log.info("committed the uncommitted changes of run %s in %s", run.id, path)

    def _checks_for(self, request: Request, config: AgentConfig) -> list[str]:
        """Return the checks of a run: the plan task's own, else the agent's, else ``git.checks``."""
        if request.plan_task:
            from aipass_tui.core.plans.files import task_checks

            try:
                task = task_checks(self.paths, self.settings, request.plan_task)
            except ValueError as exc:
                log.warning("could not read the checks of plan task %s: %s", request.plan_task, exc)
                task = None
            if task is not None:
                return task
        return config.checks if config.checks is not None else self.settings.git.checks

    def _restore_after_checks(self, path: Path) -> list[str]:
        """Discard files the checks changed or created (ignored files stay); return their paths."""
        changed = [name for _, name in status_entries(path)]
        if changed:
            run_git(path, "reset", "--hard", "--quiet")
            run_git(path, "clean", "-d", "--force", "--quiet")
            log.warning("discarded %d files the checks changed in %s: %s", len(changed), path, ", ".join(changed[:10]))
        return changed
