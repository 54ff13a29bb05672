"""Who gets into the dashboard: the token link, the HTTP-only cookie it sets, and what it does not open."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from conftest import RunningDaemon, start_daemon


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    running = start_daemon(tmp_path_factory.mktemp("home"), kill_grace=2.0)
    yield running
    running.client.close()
    running.daemon.shutdown()


@pytest.fixture
def browser_like(served: RunningDaemon) -> Iterator[httpx.Client]:
    """A client without the bearer header that keeps cookies, as a browser does."""
    root = served.base_url.removesuffix("/api/v1")
    with httpx.Client(base_url=root, trust_env=False, follow_redirects=False) as client:
        yield client


def cookie_name(served: RunningDaemon) -> str:
    return f"nasctl_token_{served.daemon.port}"


def logged_in(client: httpx.Client, served: RunningDaemon) -> httpx.Client:
    response = client.get("/", params={"token": served.token})
    assert response.status_code == 303, response.text
    return client


def test_the_token_link_sets_an_http_only_cookie_and_sends_the_browser_to_the_dashboard(
    served: RunningDaemon, browser_like: httpx.Client
) -> None:
    response = browser_like.get("/", params={"token": served.token})
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{cookie_name(served)}=")
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    page = browser_like.get("/")
    assert page.status_code == 200 and '<meta name="nasctl-mode" content="daemon">' in page.text


def test_a_link_with_a_wrong_token_is_refused_and_sets_no_cookie(browser_like: httpx.Client) -> None:
    response = browser_like.get("/", params={"token": "not-the-token"})
    assert response.status_code == 401 and "set-cookie" not in response.headers
    assert "Wrong token" in response.text


def test_the_dashboard_without_its_token_says_where_the_link_is(browser_like: httpx.Client) -> None:
    response = browser_like.get("/")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("text/html") and "nasctl status" in response.text


def test_the_cookie_opens_the_api_for_reading(served: RunningDaemon, browser_like: httpx.Client) -> None:
    logged_in(browser_like, served)
    assert browser_like.get("/api/v1/experiments").status_code == 200


def test_a_wrong_cookie_is_refused(served: RunningDaemon, browser_like: httpx.Client) -> None:
    browser_like.cookies.set(cookie_name(served), "guess")
    response = browser_like.get("/api/v1/experiments")
    assert response.status_code == 401 and response.json()["detail"] == "invalid token"


def test_a_change_made_with_the_cookie_alone_needs_the_dashboard_header(
    served: RunningDaemon, browser_like: httpx.Client
) -> None:
    logged_in(browser_like, served)
    forged = browser_like.post("/api/v1/experiments/nope/stop")  # what a form on another local page sends
    assert forged.status_code == 403 and "X-Requested-By" in forged.json()["detail"]
    real = browser_like.post("/api/v1/experiments/nope/stop", headers={"X-Requested-By": "nasctl-dashboard"})
    assert real.status_code == 404  # authenticated: the experiment just does not exist


def test_the_cookie_belongs_to_one_port(served: RunningDaemon, browser_like: httpx.Client) -> None:
    browser_like.cookies.set("nasctl_token_1", served.token)  # another daemon's cookie, same host
    assert browser_like.get("/api/v1/experiments").status_code == 401


def test_dashboard_files_need_the_cookie(served: RunningDaemon, browser_like: httpx.Client) -> None:
    assert browser_like.get("/static/js/app.js").status_code == 401
    logged_in(browser_like, served)
    script = browser_like.get("/static/js/app.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")


def test_only_the_packaged_files_are_served(served: RunningDaemon, browser_like: httpx.Client) -> None:
    logged_in(browser_like, served)
    assert browser_like.get("/static/vendor/uplot/LICENSE").status_code == 200
    for path in (
        "/static/../api.py",
        "/static/%2e%2e/api.py",
        "/static/js/../../dashboard.py",
        "/static/nope.js",
    ):
        assert browser_like.get(path).status_code == 404, path


def test_an_unchanged_file_is_answered_304(served: RunningDaemon, browser_like: httpx.Client) -> None:
    logged_in(browser_like, served)
    first = browser_like.get("/static/app.css")
    again = browser_like.get("/static/app.css", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_pages_allow_no_foreign_script_no_framing_and_no_cors(
    served: RunningDaemon, browser_like: httpx.Client
) -> None:
    logged_in(browser_like, served)
    page = browser_like.get("/", headers={"Origin": "http://evil.example"})
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["x-frame-options"] == "DENY"
    assert "access-control-allow-origin" not in page.headers
    api = browser_like.get("/api/v1/experiments", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in api.headers


def test_the_bearer_header_still_wins_over_the_cookie(
    served: RunningDaemon, browser_like: httpx.Client
) -> None:
    logged_in(browser_like, served)
    response = browser_like.get("/api/v1/experiments", headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401
