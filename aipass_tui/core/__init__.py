"""The orchestrator core. Nothing below this package imports Textual."""
