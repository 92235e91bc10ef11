"""The cockpit stays readable on terminals with only the 16 standard colours.

Textual styles everything in true colour and converts each colour when it writes the screen:
``Strip.render_ansi`` calls Rich's ``Color.downgrade`` with the console's colour system. These
tests run the app as on ``TERM=xterm`` without ``COLORTERM`` and convert the styles of the rendered
lines the same way. Each terminal draws the 16 colours with its own palette, so the contrast of
each text cell is measured in three common palettes.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Callable, Iterator

import pytest
import textual.constants
from rich.color import Color, ColorSystem
from rich.terminal_theme import DEFAULT_TERMINAL_THEME, MONOKAI, TerminalTheme
from textual.geometry import Region
from textual.pilot import Pilot
from textual.widget import Widget

from aipass_tui.core.models import AgentState, AgentStatus
from aipass_tui.core.orchestrator import Snapshot
from aipass_tui.ui.app import AipassApp
from aipass_tui.ui.screens.main import MainScreen
from aipass_tui.ui.screens.zoom import ZoomScreen
from aipass_tui.ui.widgets.agent_pane import AgentPane
from aipass_tui.ui.widgets.color_mode import STANDARD_COLORS
from aipass_tui.ui.widgets.fitting_footer import FittingFooter
from aipass_tui.ui.widgets.fleet_table import FleetTable
from aipass_tui.ui.widgets.status_badge import StatusBadge
from aipass_tui.ui.widgets.transcript_view import TranscriptView
from tests.ui import scenes
from tests.ui.conftest import wait_for

Rgb = tuple[int, int, int]

VGA = TerminalTheme(
    (0, 0, 0),
    (170, 170, 170),
    [(0, 0, 0), (170, 0, 0), (0, 170, 0), (170, 85, 0), (0, 0, 170), (170, 0, 170), (0, 170, 170), (170, 170, 170)],
    [(85, 85, 85), (255, 85, 85), (85, 255, 85), (255, 255, 85), (85, 85, 255), (255, 85, 255), (85, 255, 255),
     (255, 255, 255)],
)
"""The VGA colours, which Rich 15.0.0 matches true colours against when it converts them to 16."""
PALETTES = {"VGA": VGA, "Rich's DEFAULT_TERMINAL_THEME": DEFAULT_TERMINAL_THEME, "Monokai": MONOKAI}
MIN_CONTRAST = 3.0
"""WCAG 2's minimum contrast ratio for bold or large text: the badge words and footer keys are bold."""
DRAWING = {chr(code) for code in range(0x2500, 0x25A0)} | {" ", "·", "…"}
"""Box-drawing and block characters (borders, meters, sparklines) and separators, which are not words."""


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    return path


@pytest.fixture
def xterm(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let Textual detect the colour system as on ``TERM=xterm`` without ``COLORTERM``."""
    monkeypatch.setattr(textual.constants, "COLOR_SYSTEM", "auto")
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.delenv("COLORTERM", raising=False)


def luminance(rgb: Rgb) -> float:
    """Return the WCAG 2 relative luminance of an sRGB colour."""

    def linear(channel: int) -> float:
        value = channel / 255
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

    red, green, blue = rgb
    return 0.2126 * linear(red) + 0.7152 * linear(green) + 0.0722 * linear(blue)


def contrast(first: Rgb, second: Rgb) -> float:
    """Return the WCAG 2 contrast ratio of two colours, from 1 (none) to 21."""
    high, low = sorted((luminance(first), luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def standard_number(color: Color) -> int:
    """Return the 0-15 number that a colour becomes on a 16-colour terminal."""
    number = color.downgrade(ColorSystem.STANDARD).number
    assert number is not None
    return number


def rgb(theme: TerminalTheme, number: int) -> Rgb:
    red, green, blue = theme.ansi_colors[number]
    return red, green, blue


def text_cells(widget: Widget) -> Iterator[tuple[str, int, int]]:
    """Yield ``(text, foreground, background)`` for each rendered segment of ``widget`` that contains words."""
    width, height = widget.outer_size
    for strip in widget.render_lines(Region(0, 0, width, height)):
        for segment in strip:
            style = segment.style
            if style is None or style.color is None or style.bgcolor is None:
                continue
            if set(segment.text) <= DRAWING:
                continue
            yield segment.text, standard_number(style.color), standard_number(style.bgcolor)


def visible_widgets(pilot: Pilot) -> list[Widget]:
    return [widget for widget in pilot.app.screen.query(Widget) if widget.display and widget.region.area]


def unreadable(cells: list[tuple[str, int, int]], owner: str) -> list[str]:
    """Return one line per cell whose colours fall below ``MIN_CONTRAST`` in some palette."""
    problems = []
    for text, foreground, background in cells:
        for name, theme in PALETTES.items():
            ratio = contrast(rgb(theme, foreground), rgb(theme, background))
            if ratio < MIN_CONTRAST:
                problems.append(f"{owner} {text.strip()!r}: colour {foreground} on {background} is {ratio:.1f}:1 in {name}")
    return problems


def badge_colors(pilot: Pilot) -> dict[str, tuple[str, int, int]]:
    """Return each agent pane's badge word with its 16-colour foreground and background, by agent name."""
    badges = {}
    for pane in pilot.app.screen.query(AgentPane):
        badge = pane.query_one(StatusBadge)
        cells = list(text_cells(badge))
        assert cells, f"badge {badge!r} rendered no word"
        word = "".join(text for text, _fg, _bg in cells).strip()
        pairs = {(foreground, background) for _text, foreground, background in cells}
        assert len(pairs) == 1, f"badge {word} mixes colours {pairs}"
        foreground, background = pairs.pop()
        badges[pane.agent] = (word, foreground, background)
    return badges


def every_status(repo: Path) -> AipassApp:
    """Build a frozen cockpit with one command agent in each status, named after it."""
    names = {status.value: ("command", None) for status in AgentStatus}
    settings = scenes.settings_for(names)
    agents = {status.value: AgentState(name=status.value, kind="command", status=status) for status in AgentStatus}
    snapshot = Snapshot(agents=agents, requests=[], runs={}, metrics=scenes.metrics())
    return scenes.app_for(repo, settings, snapshot)


async def settle(pilot: Pilot, screen_type: type = MainScreen) -> None:
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, screen_type), message=f"{screen_type.__name__} shown")
    footer = pilot.app.screen.query_one(FittingFooter)
    await pilot.pause(0.1)
    await wait_for(pilot, lambda: footer.query("FooterKey") and all(key.region.width for key in footer.query("FooterKey")),
                   message="footer keys laid out")


@pytest.mark.parametrize(
    ("term", "colorterm", "expected"),
    [
        ("xterm", None, "standard"),
        ("screen", None, "standard"),
        ("tmux-16color", None, "standard"),
        ("xterm-256color", None, "256"),
        ("tmux-256color", None, "256"),
        ("xterm", "truecolor", "truecolor"),
        ("xterm-256color", "24bit", "truecolor"),
    ],
)
def test_color_system_from_environment(monkeypatch: pytest.MonkeyPatch, repo_dir: Path, term: str,
                                       colorterm: str | None, expected: str) -> None:
    monkeypatch.setattr(textual.constants, "COLOR_SYSTEM", "auto")
    monkeypatch.setenv("TERM", term)
    if colorterm is None:
        monkeypatch.delenv("COLORTERM", raising=False)
    else:
        monkeypatch.setenv("COLORTERM", colorterm)

    app = scenes.three_agents(repo_dir)

    assert app.console.color_system == expected


async def test_badges_readable_in_16_colors(xterm: None, repo_dir: Path, frozen_clock: float) -> None:
    app = scenes.three_agents(repo_dir)
    assert app.console.color_system == "standard"
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        badges = badge_colors(pilot)

        assert {agent: word for agent, (word, _fg, _bg) in badges.items()} == {
            "claude-a": "RUNNING", "codex-b": "FAILED", "gemini-c": "QUEUED",
        }
        for agent, (word, foreground, background) in badges.items():
            assert foreground != background, f"{word} badge of {agent}: text and background are both colour {foreground}"
        cells = [(word, foreground, background) for word, foreground, background in badges.values()]
        assert unreadable(cells, "badge") == []


async def test_status_colors_stay_apart(xterm: None, repo_dir: Path, frozen_clock: float) -> None:
    app = every_status(repo_dir)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        badges = badge_colors(pilot)
        words_by_pair: dict[tuple[int, int], list[str]] = defaultdict(list)
        for word, foreground, background in badges.values():
            words_by_pair[(foreground, background)].append(word)

        assert set(badges) == {status.value for status in AgentStatus}
        assert unreadable(list(badges.values()), "badge") == []
        for pair, words in words_by_pair.items():
            assert len(set(words)) == len(words), f"badges {words} share colours {pair} and their word"
        # Converting to 16 colours merges warning with error and done with idle, but the four
        # groups (working, waiting, in trouble, at rest) keep apart.
        groups = {status: badges[status][1:] for status in ("running", "queued", "failed", "idle")}
        assert len(set(groups.values())) == 4, f"status groups share colours: {groups}"


SCENES: dict[str, tuple[Callable[[Path], AipassApp], tuple[str, ...], type]] = {
    "main": (scenes.three_agents, (), MainScreen),
    "fleet": (scenes.three_agents, ("t",), MainScreen),
    "zoom": (scenes.zoom_scene, ("enter",), ZoomScreen),
}


@pytest.mark.parametrize("scene", list(SCENES))
async def test_text_readable_in_16_colors(xterm: None, repo_dir: Path, frozen_clock: float, scene: str) -> None:
    build, keys, screen_type = SCENES[scene]
    app = build(repo_dir)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        await pilot.press(*keys)
        await settle(pilot, screen_type)
        if screen_type is ZoomScreen:
            view = app.screen.query_one(TranscriptView)
            await wait_for(pilot, lambda: view.row_count > 0 and not view.indexing, message="transcript indexed")
            await pilot.pause(0.1)
        problems: list[str] = []
        for widget in visible_widgets(pilot):
            problems += unreadable(list(text_cells(widget)), type(widget).__name__)

        assert problems == []


async def test_restyle_only_with_16_colors(repo_dir: Path, frozen_clock: float, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(textual.constants, "COLOR_SYSTEM", "truecolor")
    app = scenes.three_agents(repo_dir)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        await pilot.press("t")
        await wait_for(pilot, lambda: app.screen.query_one(FleetTable).row_count == 3, message="fleet rows")

        assert not app.screen.query_one(FittingFooter).has_class(STANDARD_COLORS)
        assert not app.screen.query_one(FleetTable).has_class(STANDARD_COLORS)


async def test_restyle_with_16_colors(xterm: None, repo_dir: Path, frozen_clock: float) -> None:
    app = scenes.zoom_scene(repo_dir)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot, ZoomScreen)

        assert app.screen.has_class(STANDARD_COLORS)
        assert app.screen.query_one(FittingFooter).has_class(STANDARD_COLORS)


def corner_color(widget: Widget) -> int:
    """Return the 16-colour number of a widget's top-left border corner."""
    width, height = widget.outer_size
    strip = widget.render_lines(Region(0, 0, width, height))[0]
    segment = next(segment for segment in strip if segment.text.strip())
    assert segment.style is not None and segment.style.color is not None
    return standard_number(segment.style.color)


async def test_focused_pane_not_coloured_as_failed(xterm: None, repo_dir: Path, frozen_clock: float) -> None:
    app = scenes.three_agents(repo_dir)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        panes = {pane.agent: pane for pane in app.screen.query(AgentPane)}
        panes["claude-a"].focus()
        await pilot.pause()

        assert app.screen.has_class(STANDARD_COLORS)
        assert corner_color(panes["claude-a"]) != corner_color(panes["codex-b"])
