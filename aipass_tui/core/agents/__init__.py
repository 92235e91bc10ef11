"""Agent adapters, one module per kind."""

from __future__ import annotations

from aipass_tui.config import AgentConfig
from aipass_tui.core.agents.base import Adapter


def adapter_for(name: str, config: AgentConfig) -> Adapter:
    """Return the adapter for an agent's kind."""
    from aipass_tui.core.agents import aider, claude, codex, command, gemini, ollama

    classes = {
        "claude": claude.ClaudeAdapter,
        "codex": codex.CodexAdapter,
        "gemini": gemini.GeminiAdapter,
        "aider": aider.AiderAdapter,
        "ollama": ollama.OllamaAdapter,
        "command": command.CommandAdapter,
    }
    return classes[config.kind](name, config)
