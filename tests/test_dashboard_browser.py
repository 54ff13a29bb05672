"""The dashboard in a real browser (headless Chromium through Playwright) against a real daemon.

Each test logs in through the token link, as a person would, and fails on any script error or
any request that leaves 127.0.0.1 (the dashboard must work with no internet). Screenshots go to
tests/artifacts/ (ignored by git) for a person to look at.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from chromium import REQUIRED, browser_problem, launch
from conftest import (
    RunningDaemon,
    fast_trial_config,
    start_daemon,
    wait_until,
)
from dashboard_data import make_experiment, write_search_log
from pareto_data import make_experiment as make_pareto_experiment

from manager.http.viewnas import ViewNasServer

ARTIFACTS = Path(__file__).parent / "artifacts"
TIMEOUT_MS = 30_000

problem = browser_problem()
if problem is not None:
    if REQUIRED:
        raise RuntimeError(f"browser tests required (NASCTL_REQUIRE_BROWSER=1) but cannot run: {problem}")
    pytest.skip(problem, allow_module_level=True)

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

expect.set_options(timeout=TIMEOUT_MS)


def config_for(args: str = "", **overrides: Any) -> dict[str, Any]:
    return fast_trial_config("browser", args, **overrides)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def finished(served: RunningDaemon) -> dict[str, Any]:
    exp = served.create(config_for(experimentName="six-architectures"))
    return served.wait_for_status(exp["id"], "DONE")


def root_of(served: RunningDaemon) -> str:
    return served.base_url.removesuffix("/api/v1")


class Session:
    """A browser page plus what it did: script errors and every URL it asked for."""

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.page: Page = self.context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("request", lambda request: self.requests.append(request.url))

    def login(self, link: str) -> Page:
        self.page.goto(link)
        return self.page

    def foreign(self) -> list[str]:
        return [url for url in self.requests if urlparse(url).hostname not in ("127.0.0.1", None)]


@pytest.fixture
def session(browser: Any) -> Iterator[Session]:
    opened = Session(browser)
    yield opened
    opened.context.close()
    assert opened.errors == [], f"script errors in the page: {opened.errors}"
    assert opened.foreign() == [], f"requests that left this machine: {opened.foreign()}"


def open_experiment(session: Session, served: RunningDaemon, experiment_id: str, tab: str = "") -> Page:
    page = session.login(f"{root_of(served)}/?token={served.token}#/experiments/{experiment_id}{tab}")
    expect(page.locator("#experiment-card")).to_be_visible()
    return page


def metrics_in_rows(page: Page) -> list[float]:
    return [float(text) for text in page.locator(".ttable .trow .c-metric").all_inner_texts()]


# -- overview and trial table ---------------------------------------------------------------------


def test_trials_appear_live_without_reloading(session: Session, served: RunningDaemon) -> None:
    exp = served.create(config_for("--sleep 1", trialConcurrency=1, maxTrialNumber=4, experimentName="live"))
    page = open_experiment(session, served, exp["id"])
    page.evaluate("() => { window.__sameDocument = true; }")
    succeeded = page.locator('.ttable .trow[data-status="SUCCEEDED"]')
    expect(page.locator(".ttable .trow[data-trial-id]").first).to_be_visible()
    seen_first = succeeded.count()
    expect(succeeded).to_have_count(4)
    assert seen_first < 4  # the page saw trials that had not finished yet, then saw them finish
    assert page.evaluate("() => window.__sameDocument === true")  # no reload happened
    expect(page.locator("#final-chart")).to_have_attribute("data-points", "4")
    expect(page.locator("#experiment-card")).to_contain_text("DONE")
    page.screenshot(path=ARTIFACTS / "dashboard-overview.png", full_page=True)


def test_sorting_the_table_by_final_metric_reorders_it_on_the_server(
    session: Session, served: RunningDaemon, finished: dict
) -> None:
    page = open_experiment(session, served, finished["id"])
    expect(page.locator(".ttable .trow[data-trial-id]")).to_have_count(6)
    values = sorted(t["finalMetric"] for t in served.trials(finished["id"]))
    header = page.locator('.ttable .thead [data-col="finalMetric"]')
    header.click()
    wait_until(lambda: metrics_in_rows(page) == pytest.approx(values[::-1], rel=1e-4), 15, "descending")
    best = served.client.get(f"/experiments/{finished['id']}/best").json()[0]
    expect(page.locator(".ttable .trow").first).to_have_attribute("data-trial-id", best["id"])
    header.click()
    wait_until(lambda: metrics_in_rows(page) == pytest.approx(values, rel=1e-4), 15, "ascending")
    sort_requests = [parse_qs(urlparse(u).query) for u in session.requests if "/trials?" in u]
    assert {"finalMetric"} <= {q["sort"][0] for q in sort_requests}
    page.locator(".ttable").screenshot(path=ARTIFACTS / "dashboard-trial-table.png")


def test_a_trial_opens_with_its_parameters_exit_code_and_log(
    session: Session, served: RunningDaemon, finished: dict
) -> None:
    trial = served.trials(finished["id"])[2]
    page = open_experiment(session, served, finished["id"])
    page.locator(f'.ttable .trow[data-trial-id="{trial["id"]}"]').click()
    drawer = page.locator(f'#drawer[data-trial-id="{trial["id"]}"]')
    expect(drawer).to_be_visible()
    expect(drawer).to_contain_text(f"Trial #{trial['sequenceId']}")
    expect(drawer).to_contain_text(trial["parameters"]["conv"]["_value"])
    expect(drawer.locator(".kv").first).to_contain_text("exit code0")
    expect(page.locator("#trial-log")).to_contain_text("fast_trial:")
    expect(page.locator("#trial-curve")).to_have_attribute("data-series", "1")
    page.screenshot(path=ARTIFACTS / "dashboard-trial-detail.png")
    drawer.locator('button[data-stream="stderr"]').click()
    expect(page.locator("#trial-log")).to_have_attribute("data-stream", "stderr")


def test_a_running_trial_is_killed_from_the_page(session: Session, served: RunningDaemon) -> None:
    exp = served.create(config_for("--sleep 60", trialConcurrency=1, maxTrialNumber=1, experimentName="kill"))
    trial = wait_until(
        lambda: next(iter(served.trials(exp["id"], status="RUNNING")), None), 30, "a RUNNING trial"
    )
    page = open_experiment(session, served, exp["id"], f"/trial/{trial['id']}")
    kill = page.locator("#kill-trial")
    kill.click()
    expect(kill).to_have_text("Click again to kill")  # one stray click kills nothing
    assert served.trial(exp["id"], trial["id"])["status"] == "RUNNING"
    kill.click()
    expect(page.locator("#drawer")).to_have_attribute("data-status", "USER_CANCELED")
    assert served.trial(exp["id"], trial["id"])["status"] == "USER_CANCELED"


def test_concurrency_is_changed_from_the_page(session: Session, served: RunningDaemon) -> None:
    exp = served.create(
        config_for("--sleep 60", trialConcurrency=1, maxTrialNumber=2, experimentName="limits")
    )
    try:
        page = open_experiment(session, served, exp["id"])
        page.locator("#limit-concurrency").fill("2")
        page.locator("#set-trialConcurrency").click()
        wait_until(lambda: served.experiment(exp["id"])["trialConcurrency"] == 2, 15, "concurrency 2")
        wait_until(lambda: len(served.trials(exp["id"], status="RUNNING")) == 2, 30, "two trials running")
        page.locator("#stop-exp").click()
        expect(page.locator("#exp-status")).to_have_text("STOPPED")
    finally:
        served.client.post(f"/experiments/{exp['id']}/stop")


def test_the_header_says_why_trials_failed(session: Session, served: RunningDaemon) -> None:
    config = config_for("--no-final", trialConcurrency=1, maxTrialNumber=2, experimentName="failing")
    exp = served.wait_for_status(served.create(config)["id"], "DONE")
    page = open_experiment(session, served, exp["id"])
    expect(page.locator("#failure-reasons")).to_have_text("failed: no final result (2)")
    one = page.locator("#failure-reasons a")
    expect(one).to_have_attribute(
        "href", f"#/experiments/{exp['id']}/trial/{exp['failureReasons'][0]['trialId']}"
    )
    page.locator("#experiment-card").screenshot(path=ARTIFACTS / "dashboard-failure-reasons.png")


def test_the_header_shows_what_ended_the_experiment_unfolded(session: Session, served: RunningDaemon) -> None:
    config = config_for(
        "--no-final", trialConcurrency=1, maxTrialNumber=4, maxConsecutiveFailures=2, experimentName="ended"
    )
    exp = served.wait_for_status(served.create(config)["id"], "ERROR")
    page = open_experiment(session, served, exp["id"])
    expect(page.locator("#experiment-error summary")).to_have_text(
        "error: stopped after 2 consecutive failed trials (maxConsecutiveFailures: 2); "
        "the last: no final result"
    )


def test_the_experiment_list_shows_progress_and_best_metric(
    session: Session, served: RunningDaemon, finished: dict
) -> None:
    page = session.login(f"{root_of(served)}/?token={served.token}")
    row = page.locator(f'#experiments tr[data-id="{finished["id"]}"]')
    expect(row).to_contain_text("six-architectures")
    expect(row).to_contain_text("6 done, 0 running of 6")
    expect(row).to_contain_text(str(round(finished["bestMetric"], 4))[:5])
    page.screenshot(path=ARTIFACTS / "dashboard-experiments.png")


# -- architecture and NAS views ----------------------------------------------------------------------


def test_the_architecture_tab_shows_which_ops_matter(
    session: Session, served: RunningDaemon, finished: dict
) -> None:
    page = open_experiment(session, served, finished["id"], "/architecture")
    conv = page.locator('#choice-stats .card[data-key="conv"]')
    expect(conv.locator("table.stats tbody tr")).to_have_count(3)
    expect(page.locator('#choice-stats .card[data-key="skip"] table.stats tbody tr')).to_have_count(2)
    best = served.client.get(f"/experiments/{finished['id']}/best").json()[0]
    graph = page.locator("#best-graph")
    expect(graph).to_have_attribute("data-top", re.compile('"conv"'))
    top = json.loads(graph.get_attribute("data-top") or "{}")
    assert top["conv"] == [best["parameters"]["conv"]["_value"]]
    page.screenshot(path=ARTIFACTS / "dashboard-architecture.png", full_page=True)


def test_the_nas_view_of_a_classic_experiment_shows_how_often_each_op_was_chosen(
    session: Session, served: RunningDaemon, finished: dict
) -> None:
    page = open_experiment(session, served, finished["id"], "/supernet")
    expect(page.locator("#tab-body")).to_have_attribute("data-loaded", "1")
    expect(page.locator("#weights-chart")).to_have_attribute("data-series", "3")  # conv's candidates
    top = json.loads(page.locator("#supernet-graph").get_attribute("data-top") or "{}")
    assert set(top) == {"conv", "skip"}
    page.screenshot(path=ARTIFACTS / "dashboard-supernet-classic.png", full_page=True)


def test_the_nas_view_of_a_one_shot_log_follows_the_slider(session: Session, tmp_path: Path) -> None:
    folder = write_search_log(tmp_path / "darts-log", steps=60, seed=3)
    architecture = json.loads((folder / "architecture.json").read_text())
    server = ViewNasServer.for_folder(folder).start()
    try:
        page = session.login(server.link)
        main = page.locator("#main")
        expect(main).to_have_attribute("data-loaded", "1")
        expect(main).to_have_attribute("data-step", str(59 * 50))  # it opens on the newest step
        graph = page.locator("#supernet-graph")
        last = json.loads(graph.get_attribute("data-top") or "{}")
        for key in ("normal_n2_p0", "reduce_n3_p1"):
            assert last[key] == [architecture[key]["_value"]]  # the strongest now is what gets exported
        expect(page.locator("#weights-chart")).to_have_attribute("data-series", "7")
        page.screenshot(path=ARTIFACTS / "dashboard-nas.png", full_page=True)
        slider = page.locator("#step-slider")
        slider.focus()
        page.keyboard.press("Home")
        expect(main).to_have_attribute("data-step", "0")
        first = json.loads(graph.get_attribute("data-top") or "{}")
        assert first != last  # the weights drawn are those of the step under the slider
        page.locator("#nas-mode").select_option("architecture")
        switch = "normal_n3_switch"

        def drawn_switch() -> Any:
            return json.loads(graph.get_attribute("data-top") or "{}").get(switch)

        wait_until(lambda: drawn_switch() == architecture[switch]["_value"], 15, "the exported inputs drawn")
    finally:
        server.stop()


# -- scale ---------------------------------------------------------------------------------------------


def test_a_big_experiment_is_paged_never_fetched_whole(session: Session, tmp_path: Path) -> None:
    home = tmp_path / "big"
    experiment_id = make_experiment(home, trials=2000, intermediates=5)
    running = start_daemon(home, kill_grace=2.0)
    try:
        page = open_experiment(session, running, experiment_id)
        table = page.locator(".ttable")
        expect(table).to_have_attribute("data-total", "2000")
        page.locator(".ttable .scroller").evaluate("el => { el.scrollTop = el.scrollHeight; }")
        expect(page.locator('.ttable .trow[data-seq="0"]')).to_be_visible()  # newest first: #0 is last
        succeeded = running.experiment(experiment_id)["trialCounts"]["SUCCEEDED"]
        expect(page.locator("#final-chart")).to_have_attribute("data-points", str(succeeded))
        pages = [parse_qs(urlparse(u).query) for u in session.requests if "/trials?" in u]
        assert pages and all(int(q["limit"][0]) <= 50 for q in pages)
        assert not [u for u in session.requests if "/export" in u or "/metrics?" in u]
    finally:
        running.client.close()
        running.daemon.shutdown()


def test_the_nas_view_of_a_staged_search_says_which_stage_each_step_belongs_to(
    session: Session, tmp_path: Path
) -> None:
    folder = tmp_path / "pdarts-log"
    staged_search_log(folder)
    server = ViewNasServer.for_folder(folder).start()
    try:
        page = session.login(server.link)
        main = page.locator("#main")
        expect(main).to_have_attribute("data-loaded", "1")
        info = page.locator("#step-info")
        expect(info).to_contain_text("stage 2, 4 cells")  # it opens on the newest step
        # stage and depth are shown beside the step, not drawn among the metrics
        expect(page.locator("#metrics-chart")).to_have_attribute("data-series", "5")
        page.screenshot(path=ARTIFACTS / "dashboard-nas-staged.png", full_page=True)
        page.locator("#step-slider").focus()
        page.keyboard.press("Home")
        expect(info).to_contain_text("stage 1, 3 cells")
    finally:
        server.stop()


def staged_search_log(folder: Path) -> None:
    """A real P-DARTS search of two one-epoch stages (3 then 4 cells) on random images."""
    import torch

    from trials.nas.oneshot import PdartsTrainer
    from trials.nas.zoo import DartsNetwork

    generator = torch.Generator().manual_seed(0)
    batches = [(torch.randn(8, 1, 8, 8, generator=generator), torch.randint(0, 10, (8,))) for _ in range(4)]
    PdartsTrainer(
        lambda depth: DartsNetwork(1, 4, 10, n_layers=depth, n_nodes=2),
        depths=(3, 4),
        epochs_per_stage=1,
        warmup_epochs=0,
        num_to_drop=(3,),
        skip_dropout=(0.1, 0.4),
        train_data=batches,
        valid_data=batches,
        log_dir=folder,
        log_every=2,
        progress=False,
        seed=0,
    ).fit()


# -- Pareto front ----------------------------------------------------------------------------------

PARETO_RESULTS = [
    ("SUCCEEDED", {"accuracy": 0.9, "latency_ms": 20.0, "params": 5.0}),
    ("SUCCEEDED", {"accuracy": 0.8, "latency_ms": 5.0, "params": 9.0}),
    ("SUCCEEDED", {"accuracy": 0.7, "latency_ms": 25.0, "params": 9.5}),  # dominated
    ("SUCCEEDED", {"accuracy": 0.99, "latency_ms": 90.0, "params": 1.0}),  # latency_ms > 50
]


@pytest.fixture
def multi_objective(tmp_path: Path) -> Iterator[tuple[RunningDaemon, str, list[str]]]:
    home = tmp_path / "pareto"
    objectives = [
        {"metric": "accuracy", "mode": "maximize"},
        {"metric": "latency_ms", "mode": "minimize"},
        {"metric": "params", "mode": "minimize"},
    ]
    experiment_id, ids = make_pareto_experiment(home, PARETO_RESULTS, objectives, ["latency_ms <= 50"])
    running = start_daemon(home, kill_grace=2.0)
    yield running, experiment_id, ids
    running.client.close()
    running.daemon.shutdown()


def test_a_multi_objective_experiment_shows_its_front_dominated_and_infeasible_trials(
    session: Session, multi_objective: tuple[RunningDaemon, str, list[str]]
) -> None:
    running, experiment_id, _ = multi_objective
    page = open_experiment(session, running, experiment_id)
    chart = page.locator("#pareto-chart")
    expect(chart).to_have_attribute("data-points", "4")
    expect(chart).to_have_attribute("data-front", "2")
    expect(chart).to_have_attribute("data-infeasible", "1")
    expect(page.locator("#pareto-note")).to_contain_text("2 on the front, 1 dominated, 1 infeasible")
    page.locator("#pareto-card").screenshot(path=ARTIFACTS / "dashboard-pareto.png")


def test_the_pareto_choosers_pick_the_two_objectives_drawn(
    session: Session, multi_objective: tuple[RunningDaemon, str, list[str]]
) -> None:
    running, experiment_id, _ = multi_objective
    page = open_experiment(session, running, experiment_id)
    chart = page.locator("#pareto-chart")
    expect(chart).to_have_attribute("data-y", "latency_ms")
    page.locator("#pareto-y").select_option("params")
    expect(chart).to_have_attribute("data-y", "params")
    expect(chart).to_have_attribute("data-points", "4")


def test_clicking_a_pareto_point_opens_its_trial(
    session: Session, multi_objective: tuple[RunningDaemon, str, list[str]]
) -> None:
    running, experiment_id, ids = multi_objective
    page = open_experiment(session, running, experiment_id)
    expect(page.locator("#pareto-chart")).to_have_attribute("data-points", "4")
    point = page.locator("#pareto-chart").evaluate(f"el => el.pointOf({json.dumps(ids[1])})")
    page.mouse.click(point["x"], point["y"])
    expect(page.locator(f'#drawer[data-trial-id="{ids[1]}"]')).to_be_visible()


def test_a_single_objective_experiment_has_no_pareto_card(
    session: Session, served: RunningDaemon, finished: dict
) -> None:
    page = open_experiment(session, served, finished["id"])
    expect(page.locator("#final-chart")).to_have_attribute("data-points", "6")
    expect(page.locator("#pareto-card")).to_be_hidden()
    assert not [u for u in session.requests if u.endswith("/pareto")]
