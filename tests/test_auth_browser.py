"""Sign-in against a real OpenID Connect provider, in a real browser.

The provider is the ``oidc-provider`` npm package (tests/oidc/provider.mjs, installed with
``npm ci --prefix tests/oidc``) on 127.0.0.1 with two users; the dashboard is
``python -m dashboard.frame.serve`` on a free port with a temporary secrets file pointing at it
(``--secrets.files``); Chromium signs in through the provider's login form. Checked: a
signed-out visitor sees the sign-in page only; user A signs in, is named in the sidebar,
uploads an image, signs out; user B, in a fresh browser, does not see A's upload; the access
log holds hashes and page titles only; no page asks any host but this machine.

Skipped only where Node.js is missing (and, like the other browser tests, where Chromium or
Playwright is, unless CI is set).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests import browser_support as bs

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
OIDC = ROOT / "tests" / "oidc"
SAMPLE = ROOT / "explainers" / "data" / "samples" / "ISIC_0024338.jpg"
UPLOAD_NAME = "jane-doe-lesion.jpg"  # a file name that must never reach the access log
USERS = {"a": ("user-a", "password-a", "Alice Able"), "b": ("user-b", "password-b", "Bob Baker")}
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
LIMIT_MS = 120_000


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip(
            "node is missing: this test runs a real OpenID Connect provider (tests/oidc, Node.js 20+)"
        )
    if not (OIDC / "node_modules" / "oidc-provider").is_dir():
        npm = shutil.which("npm")
        assert npm, "npm is missing: install it with Node.js, or run npm ci --prefix tests/oidc"
        done = subprocess.run(
            [npm, "ci", "--prefix", str(OIDC), "--no-audit", "--no-fund"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"npm ci --prefix tests/oidc failed: {done.stderr[-800:]}"
    return node


# Everything here is on this machine: a proxy the machine sets (CI reaches its package registries
# through one) must not carry a request to 127.0.0.1, neither ours nor the dashboard's to the
# provider.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_LOCAL_ONLY = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


def _wait_http(url: str, proc: subprocess.Popen, what: str, limit_s: float = 180) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode}")
        try:
            with _DIRECT.open(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{what} did not answer {url} within {limit_s:.0f} s")


@contextlib.contextmanager
def _process(args: list[str], log_name: str, **kwargs):
    (ROOT / "artifacts").mkdir(exist_ok=True)
    with open(ROOT / "artifacts" / log_name, "w") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, **kwargs)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The provider and the dashboard, both on 127.0.0.1; yields (app url, data root)."""
    node = _node()
    missing = bs.chromium_missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing} (CI is set, so the browser test must run)")
        pytest.skip(missing)
    tmp = tmp_path_factory.mktemp("auth")
    app_port, idp_port = bs.free_port(), bs.free_port()
    app, idp = f"http://127.0.0.1:{app_port}", f"http://127.0.0.1:{idp_port}"
    client_secret = secrets.token_hex(16)
    secrets_file = tmp / "secrets.toml"
    secrets_file.write_text(
        "[auth]\n"
        f'redirect_uri = "{app}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_hex(32)}"\n'
        'client_id = "explainers-dashboard"\n'
        f'client_secret = "{client_secret}"\n'
        f'server_metadata_url = "{idp}/.well-known/openid-configuration"\n'
        # oidc-provider, like Keycloak, has no "select_account" (Streamlit's default prompt)
        'client_kwargs = { prompt = "login" }\n'
    )
    data_root = tmp / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")}
    env.update(
        _LOCAL_ONLY,
        TF_CPP_MIN_LOG_LEVEL="3",
        PYTHONUNBUFFERED="1",
        EXPLAINERS_DATA_ROOT=str(data_root),
    )
    with contextlib.ExitStack() as stack:
        provider = stack.enter_context(
            _process(
                [
                    node,
                    str(OIDC / "provider.mjs"),
                    str(idp_port),
                    "explainers-dashboard",
                    client_secret,
                    app,
                ],
                "auth_provider.log",
                cwd=OIDC,
            )
        )
        dashboard = stack.enter_context(
            _process(
                [
                    sys.executable,
                    "-m",
                    "dashboard.frame.serve",
                    "--server.port",
                    str(app_port),
                    "--server.address",
                    "127.0.0.1",
                    "--server.headless",
                    "true",
                    "--secrets.files",
                    str(secrets_file),
                ],
                "auth_streamlit.log",
                cwd=ROOT,
                env=env,
            )
        )
        _wait_http(
            f"{idp}/.well-known/openid-configuration", provider, "the OpenID Connect provider"
        )
        _wait_http(f"{app}/_stcore/health", dashboard, "the dashboard")
        yield app + "/", data_root


@pytest.fixture(scope="module")
def browser():
    with bs.chromium() as b:
        yield b


def _new_page(browser, hosts: set[str]):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(LIMIT_MS)
    context.on("request", lambda request: hosts.add(urlsplit(request.url).hostname or request.url))
    return context, page


def _assert_sign_in_page_only(page, where: str) -> None:
    page.get_by_role("button", name="Sign in").wait_for()
    bs.wait_idle(page)
    assert page.get_by_text("Sign in with your organisation's account").count() == 1, where
    assert page.get_by_test_id("stSidebar").count() == 0, f"{where}: a sidebar is shown"
    for hidden in ("Model", "Explain", "Sample dermoscopy image", "Signed in as"):
        assert page.get_by_text(hidden, exact=True).count() == 0, f"{where}: {hidden!r} is shown"
    assert not bs.errors(page), f"{where}: {bs.errors(page)}"


def _sign_in(page, app: str, who: str) -> None:
    user, password, name = USERS[who]
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/interaction/"))  # the provider's own login form
    page.locator('input[name="login"]').fill(user)
    page.locator('input[name="password"]').fill(password)
    page.locator('form button[type="submit"]').click()
    page.wait_for_url(re.compile("^" + re.escape(app)))
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_text(re.compile(f"Signed in as {name}")).wait_for()
    sidebar.get_by_role("button", name="Sign out").wait_for()


def _sign_out(page, app: str) -> None:
    page.get_by_test_id("stSidebar").get_by_role("button", name="Sign out").click()
    # The provider asks to confirm (its end_session_endpoint), then returns to the dashboard.
    page.get_by_role("button", name="Yes, sign me out").click()
    page.wait_for_url(re.compile("^" + re.escape(app)))
    _assert_sign_in_page_only(page, "after signing out")


def _upload_panel(page) -> None:
    page.get_by_test_id("stSidebar").get_by_text("Upload", exact=True).click()
    page.get_by_test_id("stSidebar").get_by_test_id("stFileUploaderDropzoneInput").wait_for(
        state="attached"
    )


def _local_favicon(page, app: str) -> None:
    icons = page.eval_on_selector_all("link[rel~='icon']", "els => els.map(e => e.href)")
    assert icons, "no favicon link"
    for href in icons:
        assert href.startswith((app, "data:")), f"favicon from elsewhere: {href}"


def test_sign_in_upload_sign_out_and_isolation_against_a_real_provider(site, browser):
    app, data_root = site
    hosts: set[str] = set()
    data = SAMPLE.read_bytes()

    # A signed-out visitor: the sign-in page only, at the start page and at a page's address.
    context_a, page = _new_page(browser, hosts)
    page.goto(app + "trust")
    _assert_sign_in_page_only(page, "signed out, at /trust")
    page.goto(app)
    _assert_sign_in_page_only(page, "signed out")
    _local_favicon(page, app.rstrip("/"))

    # User A signs in through the provider's form, uploads an image, signs out.
    _sign_in(page, app, "a")
    _upload_panel(page)
    page.get_by_test_id("stSidebar").get_by_test_id("stFileUploaderDropzoneInput").set_input_files(
        files=[{"name": UPLOAD_NAME, "mimeType": "image/jpeg", "buffer": data}]
    )
    page.get_by_test_id("stSidebar").get_by_text(UPLOAD_NAME).wait_for()
    page.get_by_test_id("stImageCaption").filter(
        has_text=re.compile(r"^Input \(600×450 px")
    ).first.wait_for(timeout=bs.PAGE_LIMIT_S * 1000)
    bs.wait_idle(page)
    assert not bs.errors(page), bs.errors(page)
    _local_favicon(page, app.rstrip("/"))
    _sign_out(page, app)
    context_a.close()

    # User B, in a fresh browser context: signed in, and nothing of A's upload anywhere.
    context_b, page = _new_page(browser, hosts)
    page.goto(app)
    _assert_sign_in_page_only(page, "B before signing in")
    _sign_in(page, app, "b")
    assert page.get_by_test_id("stSidebar").get_by_text(re.compile("Alice Able")).count() == 0
    _upload_panel(page)
    page.get_by_text("Upload an image to explain it.").first.wait_for()
    bs.wait_idle(page)
    assert page.get_by_text(UPLOAD_NAME).count() == 0, "B sees A's upload"
    assert page.get_by_test_id("stFileUploaderFile").count() == 0, "B sees an uploaded file"
    _sign_out(page, app)
    context_b.close()

    # Nothing was asked of any host but this machine (the provider is on 127.0.0.1 too).
    assert hosts and hosts <= LOCAL_HOSTS, f"requests to other hosts: {sorted(hosts - LOCAL_HOSTS)}"

    # The access log: both users under different opaque ids; A's upload by its hash only.
    log_file = data_root / "access-log" / "access.jsonl"
    rows = [json.loads(line) for line in log_file.read_text().splitlines()]
    by_who = {r["who"]: r["user"] for r in rows if r["action"] == "session"}
    ids = {k: v for k, v in by_who.items() if "Alice Able" in k or "Bob Baker" in k}
    assert len(ids) == 2 and len(set(ids.values())) == 2, rows
    user_a = next(v for k, v in ids.items() if "Alice Able" in k)
    user_b = next(v for k, v in ids.items() if "Bob Baker" in k)
    image = hashlib.sha1(data).hexdigest()[:16]  # the dashboard's content hash (loaders.digest)
    assert {"user": user_a, "action": "upload-image", "image": image}.items() <= next(
        r for r in rows if r["action"] == "upload-image"
    ).items()
    assert not [r for r in rows if r["user"] == user_b and r["action"].startswith("upload")]
    assert {r["action"] for r in rows if r["user"] == user_a} >= {
        "session",
        "view",
        "upload-image",
        "sign-out",
    }
    text = log_file.read_text()
    assert UPLOAD_NAME not in text and "jane" not in text.lower()
    assert all(set(r) <= {"time", "user", "action", "page", "image", "who"} for r in rows)


def test_without_sign_in_nothing_changes_and_no_page_asks_another_host(browser, tmp_path):
    """Local use (no [auth]): no sign-in page, no account box; and every page, the favicon
    included, asks nothing of any host but this machine."""
    no_auth = tmp_path / "secrets.toml"
    no_auth.write_text("# no [auth]: local use\n")
    port = bs.free_port()
    app = f"http://127.0.0.1:{port}/"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")}
    env.update(_LOCAL_ONLY, TF_CPP_MIN_LOG_LEVEL="3", EXPLAINERS_DATA_ROOT=str(tmp_path / "data"))
    with _process(
        [
            sys.executable,
            "-m",
            "dashboard.frame.serve",
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--secrets.files",
            str(no_auth),
        ],
        "local_streamlit.log",
        cwd=ROOT,
        env=env,
    ) as proc:
        _wait_http(app + "_stcore/health", proc, "the dashboard")
        hosts: set[str] = set()
        context, page = _new_page(browser, hosts)
        page.goto(app)
        bs.wait_maps(page)
        assert page.get_by_role("button", name="Sign in").count() == 0
        assert page.get_by_text(re.compile("Signed in as")).count() == 0
        _local_favicon(page, app.rstrip("/"))
        links = page.get_by_test_id("stSidebar").locator('[data-testid="stPageLink-NavLink"]')
        # The last line: the icon's ligature ("grid_on") comes first.
        titles = [links.nth(i).inner_text().strip().splitlines()[-1] for i in range(links.count())]
        assert len(titles) >= 5, titles
        for title in titles[1:]:
            links.filter(has_text=title).first.click()
            bs.wait_idle(page)
            assert not bs.errors(page), f"{title}: {bs.errors(page)}"
        context.close()
        assert hosts and hosts <= LOCAL_HOSTS, (
            f"requests to other hosts: {sorted(hosts - LOCAL_HOSTS)}"
        )
    assert not (tmp_path / "data").exists(), "a local run writes no access log"
