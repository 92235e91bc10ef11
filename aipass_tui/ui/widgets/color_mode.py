"""Terminals limited to the 16 standard colours, and the CSS class that restyles widgets for them.

Textual styles everything in true colour. When it writes the screen, each colour is converted to
the nearest one the terminal supports (``Strip.render_ansi`` calls Rich's ``Color.downgrade``).
The app's console decides which colours the terminal supports: ``TEXTUAL_COLOR_SYSTEM`` when it is
set, otherwise Rich reads ``COLORTERM`` (``truecolor`` or ``24bit``) and then the end of ``TERM``
(``-256color`` and ``-kitty`` mean 256 colours, anything else 16). Checked in Textual 8.2.8 and
Rich 15.0.0. So plain ``TERM=xterm`` (PuTTY's default, for one) gets 16 colours.

The conversion keeps hue, not contrast: in the default dark theme the footer's orange key letters
and its dark panel become bright red on bright black, which many terminal palettes draw in nearly
the same brightness. Widgets that show text on a coloured background add ``STANDARD_COLORS`` to
themselves with ``mark_standard_colors`` and give their text the theme's full foreground there.
"""

from __future__ import annotations

from textual.app import App
from textual.dom import DOMNode

STANDARD_COLORS = "-standard-colors"
"""CSS class of a widget drawn on a terminal that shows only the 16 standard colours."""


def uses_standard_colors(app: App[object]) -> bool:
    """Tell whether ``app`` writes only the 16 standard colours (Rich's ``standard`` or ``windows`` system)."""
    return app.console.color_system in ("standard", "windows")


def mark_standard_colors(node: DOMNode) -> None:
    """Add ``STANDARD_COLORS`` to ``node`` when its app writes only the 16 standard colours."""
    node.set_class(uses_standard_colors(node.app), STANDARD_COLORS)
