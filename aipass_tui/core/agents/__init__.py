"""Agent adapters, one module per kind."""

from __future__ import annotations

from aipass_tui.config import AgentConfig
from aipass_tui.core.agents.base import Adapter


def adapter_for(name: str, config: AgentConfig) -> Adapter:
    """Return the adapter for an agent's kind."""
    import importlib

    module = importlib.import_module(f"aipass_tui.core.agents.{config.kind}")
    return getattr(module, _CLASSES[config.kind])(name, config)


_CLASSES = {
    "claude": "ClaudeAdapter",
    "codex": "CodexAdapter",
    "gemini": "GeminiAdapter",
    "aider": "AiderAdapter",
    "ollama": "OllamaAdapter",
    "command": "CommandAdapter",
}
