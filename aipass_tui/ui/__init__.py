"""The Textual cockpit. Nothing below ``aipass_tui.core`` imports this package."""
