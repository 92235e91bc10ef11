"""The cockpit model: notices, live panes, pending output, queue order; and the pane layout."""

from __future__ import annotations

from aipass_tui.core.models import AgentState, AgentStatus, Event, EventKind, Request, RequestStatus
from aipass_tui.core.notices import AgentChanged, HoldChanged, RequestChanged, RunOutput, UserNotice
from aipass_tui.core.orchestrator import Snapshot
from aipass_tui.ui.model import CockpitModel
from aipass_tui.ui.widgets.agent_grid import MAX_PANES, pane_grid


def model_with(*names: str, scrollback: int = 100) -> CockpitModel:
    model = CockpitModel(scrollback)
    snapshot = Snapshot(agents={name: AgentState(name=name, kind="command") for name in names}, requests=[], runs={})
    changes = model.apply_snapshot(snapshot)
    assert changes.roster
    return model


def output(agent: str, *lines: str) -> RunOutput:
    return RunOutput(agent, "run-1", [Event(EventKind.RAW, line) for line in lines])


def test_hidden_agent_keeps_scrollback_without_pending() -> None:
    model = model_with("a")
    changes = model.apply_notices([output("a", "one", "two")])
    assert changes.output == {"a"}
    assert list(model.agents["a"].lines) == ["one", "two"]
    assert model.agents["a"].pending == []


def test_agent_becoming_live_is_refilled_once() -> None:
    model = model_with("a")
    model.apply_notices([output("a", "one")])
    model.set_live(["a"])
    assert model.take_output("a") == (True, ["one"])
    model.apply_notices([output("a", "two")])
    assert model.take_output("a") == (False, ["two"])
    assert model.take_output("a") == (False, [])


def test_leaving_live_drops_pending() -> None:
    model = model_with("a")
    model.set_live(["a"])
    model.take_output("a")
    model.apply_notices([output("a", "x")])
    model.set_live([])
    assert model.agents["a"].pending == []


def test_scrollback_and_pending_are_bounded() -> None:
    model = model_with("a", scrollback=10)
    model.set_live(["a"])
    model.take_output("a")
    model.apply_notices([output("a", *[str(i) for i in range(25)])])
    assert list(model.agents["a"].lines) == [str(i) for i in range(15, 25)]
    clear, lines = model.take_output("a")
    assert not clear
    assert lines == [str(i) for i in range(15, 25)]


def test_notices_update_state_queue_hold_and_user_notices() -> None:
    model = model_with("a")
    request = Request(id="r-1", agent="a", subject="s", created_at=1.0)
    notice = UserNotice("error", "a: run failed", "exit code 1", "a", "run-1")
    changes = model.apply_notices([
        AgentChanged(AgentState(name="a", kind="command", status=AgentStatus.RUNNING)),
        RequestChanged(request),
        HoldChanged("CPU 97% above 90% for 5 s"),
        notice,
    ])
    assert changes.agents == {"a"}
    assert changes.queue and changes.holding
    assert changes.user_notices == [notice]
    assert model.agents["a"].state.status == AgentStatus.RUNNING
    assert model.holding == "CPU 97% above 90% for 5 s"
    assert model.queued_count() == 1


def test_output_for_unknown_agent_is_ignored() -> None:
    model = model_with("a")
    assert not model.apply_notices([output("ghost", "x")]).output


def test_request_order_and_retryable() -> None:
    model = model_with("a")
    for request in (
        Request(id="done", agent="a", subject="s", created_at=1, status=RequestStatus.DONE, updated_at=5),
        Request(id="low", agent="a", subject="s", created_at=2),
        Request(id="high", agent="a", subject="s", created_at=3, priority=5),
        Request(id="run", agent="a", subject="s", created_at=4, status=RequestStatus.RUNNING),
        Request(id="failed", agent="a", subject="s", created_at=0, status=RequestStatus.FAILED, updated_at=9),
    ):
        model.requests[request.id] = request
    assert [r.id for r in model.request_list()] == ["run", "high", "low", "failed", "done"]
    assert model.last_retryable("a").id == "failed"


def test_pane_grid_fits_or_falls_back_to_cards() -> None:
    assert pane_grid(1, 80, 22) == (1, 1)
    assert pane_grid(3, 80, 22) == (2, 2)
    assert pane_grid(4, 200, 60) is not None
    assert pane_grid(40, 300, 100) is None
    assert pane_grid(MAX_PANES + 1, 1000, 1000) is None
    assert pane_grid(6, 80, 22) is None
    assert pane_grid(0, 80, 22) is None
