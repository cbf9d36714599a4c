"""The console page in a real headless Chromium, driven by Playwright (issue 8, item 3).

Debian's ``chromium`` (``/usr/bin/chromium``) is driven through Playwright's bundled driver
(``executable_path``; Playwright never downloads a browser here), with the flags this
machine needs (no background networking, no component updates, no sync) and a fresh
``--user-data-dir`` per module. The console runs in-thread on 127.0.0.1 (port 0) over the
seeded fleet of ``tests/test_console_api.py`` and is always stopped.

If Chromium or Playwright is missing these tests FAIL and say to run
``scripts/install-browser.sh``; set ``OPS_MANAGER_SKIP_BROWSER_TESTS=1`` to skip them.

Screenshots of the main views go to ``tmp_path``, or to ``docs/console/`` when
``OPS_MANAGER_CONSOLE_SCREENSHOTS=1`` (how the PNGs referenced by ``docs/console.md`` were
made).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.test_console_api import (
    LOOPS,
    RED_INTENT,
    Client,
    SeededFleet,
    running_console,
    seed_fleet,
)

CHROMIUM = os.environ.get("OPS_MANAGER_CHROMIUM") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL_HINT = "run scripts/install-browser.sh (or set OPS_MANAGER_SKIP_BROWSER_TESTS=1 to skip)"
DOCS_SHOTS = Path(__file__).resolve().parent.parent / "docs" / "console"
VIEWPORT = {"width": 1440, "height": 1000}
# read once, at import: the fleet seeding clears OPS_MANAGER_* from the environment
SKIP = os.environ.get("OPS_MANAGER_SKIP_BROWSER_TESTS") == "1"
SAVE_SHOTS = os.environ.get("OPS_MANAGER_CONSOLE_SCREENSHOTS") == "1"


def _require_browser() -> Any:
    """Playwright's sync API, or fail (skip only when explicitly asked to)."""
    if SKIP:
        pytest.skip("OPS_MANAGER_SKIP_BROWSER_TESTS=1")
    if not Path(CHROMIUM).is_file() or not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"Chromium not found at {CHROMIUM}: {INSTALL_HINT}", pytrace=False)
    try:
        from playwright import sync_api
    except ImportError:
        pytest.fail(
            f"the Python package playwright is not installed: {INSTALL_HINT}", pytrace=False
        )
    return sync_api


@pytest.fixture(scope="module")
def browser_context() -> Iterator[Any]:
    """A persistent Chromium context on a fresh user-data-dir (closed at the end)."""
    sync_api = _require_browser()
    profile = Path(tempfile.mkdtemp(prefix="ops-console-chromium-"))
    try:
        with sync_api.sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                str(profile),
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport=VIEWPORT,
                timeout=60_000,
            )
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeededFleet]:
    _require_browser()
    with pytest.MonkeyPatch.context() as mp:
        fleet_root = tmp_path_factory.mktemp("console-browser-fleet")
        yield seed_fleet(fleet_root, mp, history=4 if SAVE_SHOTS else 0)


@pytest.fixture(scope="module")
def console_url(seeded: SeededFleet) -> Iterator[str]:
    with running_console(seeded.repo) as (server, _):
        yield server.url


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where this test writes its screenshots."""
    if SAVE_SHOTS:
        DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
        return DOCS_SHOTS
    return tmp_path


class PageErrors:
    """Console errors and uncaught exceptions of one page."""

    def __init__(self, page: Any) -> None:
        self.messages: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.messages.append(f"pageerror: {exc}"))
        page.on(
            "requestfailed",
            lambda req: self.messages.append(f"requestfailed: {req.url} {req.failure}"),
        )

    def _console(self, message: Any) -> None:
        if message.type in ("error", "warning"):
            self.messages.append(f"console.{message.type}: {message.text}")


@pytest.fixture
def page(browser_context: Any) -> Iterator[tuple[Any, PageErrors]]:
    tab = browser_context.new_page()
    errors = PageErrors(tab)
    try:
        yield tab, errors
    finally:
        tab.close()


def _open(tab: Any, url: str) -> None:
    tab.goto(url, wait_until="load")
    tab.wait_for_selector("body[data-loaded='true']", timeout=30_000)


def _api(url: str, path: str) -> Any:
    status, body = Client(url).get_json(path)
    assert status == 200
    return body


# --- the tests ---------------------------------------------------------------------------------


def test_page_loads_without_errors_and_shows_the_fleet(
    page: tuple[Any, PageErrors], console_url: str, shots: Path
) -> None:
    tab, errors = page
    _open(tab, console_url)
    fleet = _api(console_url, "/api/fleet")
    rows = tab.locator("#loops-table tbody tr.loop-row")
    assert rows.count() == len(LOOPS)
    assert [rows.nth(i).get_attribute("data-loop-id") for i in range(rows.count())] == list(LOOPS)
    for row in fleet["loops"]:
        tr = tab.locator(f"#loops-table tr[data-loop-id='{row['loopId']}']")
        assert tr.get_attribute("data-health") == row["healthStatus"]
        assert tr.locator("td.health").inner_text().strip().endswith(row["healthStatus"].upper())
        lifecycle = tr.locator("td.lifecycle").inner_text()
        assert lifecycle.splitlines()[0].strip() == (row["lifecycleState"] or "unknown")
        for code in row["healthReasonCodes"]:
            assert code in tr.inner_text()
    for key, count in fleet["posture"].items():
        card = tab.locator(f"#posture-{key}")
        assert card.get_attribute("data-count") == str(count)
        assert card.locator(".count").inner_text() == str(count)
    assert tab.locator("#posture-backlog .count").inner_text() == "3"
    assert "loop-gone" in tab.locator("[data-exception='reconcileFailures']").inner_text()
    assert tab.locator("#fleet-id").inner_text() == "fleet console-fleet"
    tab.screenshot(path=str(shots / "overview.png"), full_page=False)
    # it refreshes itself
    before = int(tab.locator("body").get_attribute("data-refreshes") or "0")
    # (a CSS wait: the page's CSP forbids the string evaluation wait_for_function uses)
    tab.wait_for_selector(f"body[data-refreshes='{before + 1}']", timeout=15_000)
    assert errors.messages == []


def test_critical_loop_is_visibly_flagged(page: tuple[Any, PageErrors], console_url: str) -> None:
    tab, errors = page
    _open(tab, console_url)
    red = tab.locator("#loops-table tr[data-loop-id='loop-red']")
    green = tab.locator("#loops-table tr[data-loop-id='loop-green']")
    assert "loop-critical" in (red.get_attribute("class") or "")
    assert "loop-critical" not in (green.get_attribute("class") or "")
    # not color alone: a flag with text, and the badge's word
    flag = red.locator(".critical-flag")
    assert flag.is_visible() and "CRITICAL" in flag.inner_text()
    assert green.locator(".critical-flag").count() == 0
    assert "CRITICAL" in red.locator("td.health").inner_text()
    # and it does look different (background + a left bar)
    style = "el => { const s = getComputedStyle(el); return [s.backgroundColor, s.boxShadow]; }"
    assert red.evaluate(style) != green.evaluate(style)
    critical = _api(console_url, "/api/fleet")["exceptions"]["criticalLoops"]
    assert "loop-red" in critical
    assert tab.locator("#posture-critical").get_attribute("data-count") == str(len(critical))
    flagged = tab.locator("#loops-table tr.loop-critical")
    assert sorted(
        flagged.nth(i).get_attribute("data-loop-id") for i in range(flagged.count())
    ) == sorted(critical)
    assert "nonzero" in (tab.locator("#posture-critical").get_attribute("class") or "")
    assert errors.messages == []


def test_drilldown_shows_events_escalations_and_deliveries_per_sink(
    page: tuple[Any, PageErrors], console_url: str, shots: Path
) -> None:
    tab, errors = page
    _open(tab, console_url)
    tab.locator("#loops-table tr[data-loop-id='loop-red']").click()
    tab.wait_for_selector("#drilldown[data-loop-id='loop-red']:not([hidden])")
    section = tab.locator("#drilldown")
    sinks = section.locator("#dd-deliveries .sink")
    outcomes = {
        sinks.nth(i).get_attribute("data-sink"): sinks.nth(i).get_attribute("data-outcome")
        for i in range(sinks.count())
    }
    assert outcomes == {"ops-webhook": "delivered", "ops-flaky": "retrying", "ops-broken": "failed"}
    text = section.inner_text()
    assert "http_error" in text and "HTTP 503" in text and "HTTP 400" in text
    assert "health_critical" in section.locator("#dd-escalations").inner_text()
    assert "loop_start" in section.locator("#dd-events").inner_text()
    assert "runtime_heartbeat_stale" in text
    assert (
        tab.locator("#loops-table tr[data-loop-id='loop-red']")
        .get_attribute("class")
        .split()
        .count("selected")
        == 1
    )
    section.screenshot(path=str(shots / "loop-drilldown.png"))
    assert errors.messages == []


def test_slo_charts_are_drawn_as_inline_svg(
    page: tuple[Any, PageErrors], console_url: str, shots: Path
) -> None:
    tab, errors = page
    _open(tab, console_url)
    for chart in ("latency", "lag", "delivery", "autonomous"):
        body = tab.locator(f"#chart-{chart} .chart-body")
        assert body.locator("svg[role='img']").count() == 1, chart
        assert body.locator("svg[role='img'] circle").count() >= 1, chart
    legend = tab.locator("#chart-latency .legend").inner_text()
    for name in ("loop-red", "fleet reconcile"):
        assert name in legend
    totals = _api(console_url, "/api/slo")["deliverySuccess"]["totals"]
    note = tab.locator("#chart-delivery .chart-note").inner_text()
    for outcome in ("delivered", "retrying", "failed"):
        assert f"{outcome} {totals[outcome]}" in note
    assert "ambiguous 1" in tab.locator("#chart-autonomous .chart-note").inner_text()
    tab.locator("#slo").screenshot(path=str(shots / "slo.png"))
    assert errors.messages == []


def test_confirming_a_backlog_intent_changes_the_handoff_state_on_disk(
    browser_context: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    shots: Path,
) -> None:
    fleet = seed_fleet(tmp_path / "fleet", monkeypatch)
    assert fleet.intent(RED_INTENT)["status"] == "pending_operator_confirmation"
    tab = browser_context.new_page()
    errors = PageErrors(tab)
    try:
        with running_console(fleet.repo) as (server, _):
            _open(tab, server.url + "#backlog")
            form = tab.locator(f"form.confirm-form[data-intent-id='{RED_INTENT}']")
            assert tab.locator("#backlog-table tbody tr.backlog-row").count() == 3
            tab.locator("#backlog").screenshot(path=str(shots / "backlog.png"))
            # 'by' is required: an empty one is refused in the page, nothing runs
            form.locator("input.by").fill("")
            form.locator("button.confirm").click()  # the browser's own required check
            assert form.locator("input.by:invalid").count() == 1
            form.locator("input.by").fill("   ")
            form.locator("button.confirm").click()  # the page's check (blank after trim)
            assert "Enter who confirms" in tab.locator("#confirm-outcome").inner_text()
            assert fleet.intent(RED_INTENT)["status"] == "pending_operator_confirmation"
            form.locator("input.by").fill("alice")
            form.locator("input.note").fill("confirmed from the console")
            form.locator("button.confirm").click()
            tab.wait_for_selector("#confirm-outcome[data-state='executed']", timeout=60_000)
            assert RED_INTENT in tab.locator("#confirm-outcome").inner_text()
            # the state on disk changed, as fleet-handoff --execute --confirm would change it
            state = json.loads(fleet.handoff_state_file.read_text("utf-8"))
            intent = next(i for i in state["intents"] if i["intentId"] == RED_INTENT)
            assert intent["status"] == "executed"
            assert intent["execution"]["requestedBy"] == "alice"
            assert intent["execution"]["reasonCode"] == "control_confirmed"
            assert state["execution"]["mode"] == "manual"
            assert state["execution"]["note"] == "confirmed from the console"
            # the page shows it as handled and no longer pending
            tab.wait_for_selector(f"#handled-table tr[data-intent-id='{RED_INTENT}']")
            assert tab.locator(f"form.confirm-form[data-intent-id='{RED_INTENT}']").count() == 0
            handled = tab.locator(f"#handled-table tr[data-intent-id='{RED_INTENT}']")
            assert handled.get_attribute("data-status") == "executed"
            assert "alice" in handled.inner_text()
            tab.locator("#backlog").screenshot(path=str(shots / "backlog-confirmed.png"))
        assert errors.messages == []
    finally:
        tab.close()


def test_token_protected_console_logs_in_through_the_url(
    page: tuple[Any, PageErrors], seeded: SeededFleet
) -> None:
    tab, errors = page
    with running_console(seeded.repo, token="browser-token-7") as (server, _):
        response = tab.goto(server.url)
        assert response is not None and response.status == 401
        _open(tab, server.url + "?token=browser-token-7")
        assert tab.url == server.url  # redirected: the token left the address bar
        assert tab.locator("#loops-table tbody tr.loop-row").count() == len(LOOPS)
    # the 401 of the first visit is the only error the browser saw
    assert [m for m in errors.messages if "401" not in m] == []
