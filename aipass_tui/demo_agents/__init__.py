"""Scripted programs used as demo agents by ``aipass-tui demo``. They are not AI models."""
