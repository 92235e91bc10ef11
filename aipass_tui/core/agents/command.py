"""Adapter for ``kind = "command"``: any program, plain text output."""

from __future__ import annotations

from aipass_tui.core.agents.base import Adapter, RunContext


class CommandAdapter(Adapter):
    kind = "command"

    def program(self) -> str:
        assert self.config.command
        return self.config.binary or self.config.command[0]

    def build_argv(self, ctx: RunContext) -> list[str]:
        """Substitute ``{prompt}``, ``{subject}`` and ``{body}`` as whole arguments, never through a shell."""
        assert self.config.command
        values = {"{prompt}": ctx.prompt, "{subject}": ctx.subject, "{body}": ctx.body}
        argv = [self.program()]
        for arg in [*self.config.command[1:], *self.config.args]:
            argv.append(values.get(arg, arg))
        return argv

    def extra_env(self, ctx: RunContext) -> dict[str, str]:
        return {"PYTHONUNBUFFERED": "1"}
