"""A key footer that keeps every important key on screen in narrow terminals.

Textual's ``Footer`` lays its keys out on one line and cuts off whatever passes the right edge.
``FittingFooter`` measures the keys first. When the full descriptions do not fit, it switches to
the compact style with short descriptions, and if that is still too wide it leaves out the
optional keys, least needed first. A key left out stays bound, and the command palette and the
F1 keys screen still list it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from rich.cells import cell_len
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer

# NOTE: FooterKey is not exported by textual.widgets (checked in Textual 8.2.8), so it comes
# from the private module that defines it.
from textual.widgets._footer import FooterKey

from aipass_tui.ui.widgets.color_mode import mark_standard_colors

# Cell widths of one key in each style, taken from the DEFAULT_CSS of Footer and FooterKey in
# Textual 8.2.8. Tests check them against the laid-out footer at several terminal widths.
FULL_KEY_EXTRA = 3
"""A space on both sides of the key, and one after the description."""
COMPACT_KEY_EXTRA = 2
"""A space between key and description, and a margin of one after the description."""
PALETTE_KEY_EXTRA = 3
"""The palette key (always compact): a space after the key, the border on its left and one cell
of padding or margin on its right."""


@dataclass(frozen=True)
class FooterFit:
    """A footer form: the full or the ``compact`` style with short descriptions, and the binding ids ``left_out``."""

    compact: bool = False
    left_out: frozenset[str] = field(default_factory=frozenset)


class FittingFooter(Footer):
    """A footer that shortens its descriptions and leaves out optional keys to stay within its width.

    ``short`` maps binding ids to the descriptions shown in the compact style. ``optional`` lists
    binding ids that may leave the footer, in the order they leave.
    """

    DEFAULT_CSS = """
    FittingFooter.-standard-colors FooterKey .footer-key--key {
        color: $footer-description-foreground;
    }
    """
    """With 16 colours the accent-coloured key letters lose their contrast on the footer, so
    they take the description colour and keep only their bold style."""

    def __init__(self, short: Mapping[str, str], optional: Sequence[str] = (), **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.short = dict(short)
        self.optional = tuple(optional)
        self.fit = FooterFit()

    def compose(self) -> ComposeResult:
        bindings = self.shown_bindings()
        self.fit = self.choose_fit(bindings, self.available_width())
        self.set_reactive(Footer.compact, self.fit.compact)
        self.set_class(self.fit.compact, "-compact")
        ids = {binding.action: binding.id for binding in bindings}
        for widget in super().compose():
            if isinstance(widget, FooterKey) and not widget.has_class("-command-palette"):
                binding_id = ids.get(widget.action)
                if binding_id in self.fit.left_out:
                    continue
                if self.fit.compact and binding_id in self.short:
                    widget.description = self.short[binding_id]
            yield widget

    def on_mount(self) -> None:
        mark_standard_colors(self)

    def on_resize(self, event: events.Resize) -> None:
        if self.choose_fit(self.shown_bindings(), event.size.width) != self.fit:
            self.call_after_refresh(self.recompose)

    def available_width(self) -> int:
        """Return the footer's width, or the terminal's before the footer is first laid out."""
        return self.size.width or self.app.size.width

    def shown_bindings(self) -> list[Binding]:
        """Return the bindings the footer shows, one per action, in the order Footer shows them."""
        if not self.is_attached:
            return []
        bindings: dict[str, Binding] = {}
        for _node, binding, _enabled, _tooltip in self.screen.active_bindings.values():
            if binding.show and binding.action not in bindings:
                bindings[binding.action] = binding
        return list(bindings.values())

    def choose_fit(self, bindings: Sequence[Binding], width: int) -> FooterFit:
        """Return the first form that fits ``width``: full, compact, then compact without optional keys."""
        if self.needed_width(bindings, FooterFit()) <= width:
            return FooterFit()
        left_out: set[str] = set()
        fit = FooterFit(compact=True)
        for binding_id in self.optional:
            if self.needed_width(bindings, fit) <= width:
                return fit
            left_out.add(binding_id)
            fit = FooterFit(compact=True, left_out=frozenset(left_out))
        return fit

    def needed_width(self, bindings: Iterable[Binding], fit: FooterFit) -> int:
        """Return how many cells the keys take in ``fit``, the palette key included."""
        extra = COMPACT_KEY_EXTRA if fit.compact else FULL_KEY_EXTRA
        total = 0
        for binding in bindings:
            if binding.id in fit.left_out:
                continue
            description = binding.description
            if fit.compact:
                description = self.short.get(binding.id or "", description)
            key = self.app.get_key_display(binding)
            total += cell_len(key) + cell_len(description) + extra if description else cell_len(key)
        return total + self.palette_width()

    def palette_width(self) -> int:
        """Return the cells of the command palette key docked on the right, or 0 when it is hidden."""
        if not (self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE) or not self.is_attached:
            return 0
        entry = self.screen.active_bindings.get(self.app.COMMAND_PALETTE_BINDING)
        if entry is None:
            return 0
        binding = entry[1]
        return cell_len(self.app.get_key_display(binding)) + cell_len(binding.description) + PALETTE_KEY_EXTRA
