"""Sign-in configuration, user ids, the --shared refusal and the access log, without a server
(the sign-in flow itself runs against a real provider in tests/test_auth_browser.py)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from dashboard.frame import access_log, auth, serve

ROOT = Path(__file__).resolve().parents[1]
GOOD = {
    "redirect_uri": "https://dash.example.org/oauth2callback",
    "cookie_secret": "x" * 40,
    "client_id": "id",
    "client_secret": "secret",
    "server_metadata_url": "https://login.example.org/.well-known/openid-configuration",
}


# --- configuration ------------------------------------------------------------------------------
def test_a_complete_section_is_configured_and_names_its_providers():
    assert auth.problem(GOOD) is None and auth.is_configured(GOOD)
    assert auth.providers(GOOD) == ["default"]
    two = {k: GOOD[k] for k in auth.SHARED_KEYS}
    two["microsoft"] = {k: GOOD[k] for k in auth.PROVIDER_KEYS}
    two["google"] = {k: GOOD[k] for k in auth.PROVIDER_KEYS}
    two["client_kwargs"] = {"prompt": "login"}  # a table, but not a provider
    assert auth.providers(two) == ["microsoft", "google"] and auth.is_configured(two)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"redirect_uri": None}, "lacks redirect_uri"),
        ({"cookie_secret": ""}, "lacks cookie_secret"),
        ({"client_secret": None}, "names no provider"),
        ({"redirect_uri": "https://dash.example.org/"}, "must end with /oauth2callback"),
        ({"cookie_secret": "short"}, "too short"),
    ],
)
def test_an_incomplete_section_says_what_is_missing(change, words):
    section = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    why = auth.problem(section)
    assert why is not None and words in why and "\n" not in why
    assert not auth.is_configured(section)


def test_no_section_means_local_use():
    assert (
        auth.problem(None) is None and not auth.is_configured(None) and auth.providers(None) == []
    )


def test_the_example_secrets_file_needs_a_real_cookie_secret_and_the_real_file_is_not_in_git():
    example = tomllib.loads((ROOT / ".streamlit" / "secrets.example.toml").read_text())["auth"]
    assert "cookie_secret is too short" in auth.problem(example)  # copied as is, it opens nothing
    assert auth.problem({**example, "cookie_secret": "0123456789abcdef" * 4}) is None
    ignored = subprocess.run(["git", "check-ignore", "-q", ".streamlit/secrets.toml"], cwd=ROOT)
    assert ignored.returncode == 0, ".streamlit/secrets.toml must be git-ignored"


def test_read_secrets_merges_files_later_wins(tmp_path):
    (tmp_path / "a.toml").write_text('[auth]\nclient_id = "a"\n[other]\nx = 1\n')
    (tmp_path / "b.toml").write_text('[auth]\nclient_id = "b"\n')
    merged = auth.read_secrets(
        [tmp_path / "a.toml", tmp_path / "missing.toml", tmp_path / "b.toml"]
    )
    assert merged == {"auth": {"client_id": "b"}, "other": {"x": 1}}


# --- who the user is ----------------------------------------------------------------------------
def test_user_id_is_stable_opaque_and_depends_on_issuer_and_subject():
    a = {"iss": "https://login.example.org", "sub": "123", "email": "a@example.org"}
    uid = auth.user_id(a)
    assert uid == hashlib.sha256(b"https://login.example.org\n123").hexdigest()[:32]
    assert uid == auth.user_id({**a, "email": "changed@example.org", "name": "New name"})
    assert uid != auth.user_id({**a, "sub": "124"})
    assert uid != auth.user_id({**a, "iss": "https://other.example.org"})
    assert "example" not in uid and auth.user_dir(uid).name == uid
    with pytest.raises(ValueError):
        auth.user_id({"iss": "https://login.example.org", "email": "a@example.org"})


def test_user_dir_refuses_what_is_not_an_id(tmp_path, monkeypatch):
    monkeypatch.setenv(auth.DATA_ROOT_ENV, str(tmp_path))
    assert auth.user_dir("0123abcd") == tmp_path / "users" / "0123abcd"
    for bad in ("", "..", "a/b", " x"):
        with pytest.raises(ValueError):
            auth.user_dir(bad)


def test_display_name():
    assert auth.display_name({"name": "Alice", "email": "a@x.org"}) == "Alice (a@x.org)"
    assert auth.display_name({"email": "a@x.org"}) == "a@x.org"
    assert auth.display_name({}) == "signed-in user"


def test_data_root_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(auth.DATA_ROOT_ENV, str(tmp_path / "root"))
    assert auth.data_root() == tmp_path / "root"
    monkeypatch.delenv(auth.DATA_ROOT_ENV)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert auth.data_root() == tmp_path / "xdg" / "explainers"


@pytest.mark.parametrize(
    ("address", "local"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("127.0.1.1", True),
        ("0.0.0.0", False),
        ("", False),
        (None, False),
        ("192.168.1.5", False),
        ("::", False),
    ],
)
def test_is_loopback(address, local):
    assert auth.is_loopback(address) is local


# --- local by default; --shared only with sign-in -----------------------------------------------
def test_config_binds_this_machine_and_keeps_the_protections():
    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    server = cfg["server"]
    assert server["address"] == "127.0.0.1"
    assert server["enableXsrfProtection"] is True
    # true is the protection: false makes Streamlit allow every origin (docs/SECURITY.md)
    assert server["enableCORS"] is True
    assert cfg["client"]["showErrorDetails"] == "none"
    assert cfg["browser"]["gatherUsageStats"] is False


def _serve(tmp_path: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m dashboard.frame.serve ARGS`` in the repository, stopped at once if it starts."""
    full_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("STREAMLIT_") and k != serve.SHARED_ENV
    }
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "dashboard.frame.serve", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--shared"], {}),
        ([], {serve.SHARED_ENV: "1"}),
        (["--server.address", "0.0.0.0"], {}),
        ([], {"STREAMLIT_SERVER_ADDRESS": "192.168.1.5"}),
    ],
)
def test_shared_without_sign_in_is_refused_with_one_line(tmp_path, args, env):
    empty = tmp_path / "secrets.toml"
    empty.write_text("[other]\nx = 1\n")
    out = _serve(tmp_path, *args, "--secrets.files", str(empty), env=env)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: refusing to listen on "), out.stderr
    assert "sign-in" in lines[0] and out.stdout == ""


def test_shared_with_incomplete_sign_in_says_what_is_missing(tmp_path):
    bad = tmp_path / "secrets.toml"
    bad.write_text('[auth]\nredirect_uri = "https://dash.example.org/oauth2callback"\n')
    out = _serve(tmp_path, "--shared", "--secrets.files", str(bad))
    assert out.returncode == 2 and out.stderr.strip().count("\n") == 0
    assert out.stderr.startswith(
        "error: refusing to listen on 0.0.0.0: [auth] in secrets.toml lacks cookie_secret"
    )


@pytest.fixture
def streamlit_config_restored():
    """``serve.check_open`` loads Streamlit's config in this process: put the plain one back so
    that the AppTest tests after this one see no test secrets."""
    from streamlit import config

    yield
    config.get_config_options(force_reparse=True)


def test_shared_with_sign_in_opens_to_the_network_and_names_the_public_host(
    tmp_path, monkeypatch, streamlit_config_restored
):
    pytest.importorskip("authlib", reason="Authlib comes with requirements.txt (streamlit[auth])")
    good = tmp_path / "secrets.toml"
    good.write_text("[auth]\n" + "".join(f'{k} = "{v}"\n' for k, v in GOOD.items()))
    monkeypatch.chdir(ROOT)
    for name in [n for n in os.environ if n.startswith("STREAMLIT_")] + [serve.SHARED_ENV]:
        monkeypatch.delenv(name, raising=False)
    args = serve.shared_args(["--shared", "--secrets.files", str(good)])
    assert args == [
        "--secrets.files",
        str(good),
        "--server.address",
        "0.0.0.0",
        "--browser.serverAddress",
        "dash.example.org",
    ]
    local = serve.shared_args(["--secrets.files", str(tmp_path / "none.toml")])
    assert local == ["--secrets.files", str(tmp_path / "none.toml")]  # 127.0.0.1: no sign-in needed


def test_run_sh_passes_shared_to_serve():
    text = (ROOT / "run.sh").read_text()
    assert "bash run.sh dashboard [--shared]" in text  # the usage line names the switch
    assert 'exec "$VENV/bin/python" -m dashboard.frame.serve "$@"' in text


# --- the access log -----------------------------------------------------------------------------
def test_access_log_records_the_fields_only(tmp_path):
    log = access_log.AccessLog(tmp_path / "log" / "access.jsonl")
    uid = auth.user_id({"iss": "https://login.example.org", "sub": "1"})
    log.record(uid, "session", who="Alice Able (a@example.org)")
    log.record(uid, "view", "Explain")
    log.record(uid, "upload-image", "Explain", image="0123456789abcdef")
    rows = [json.loads(line) for line in log.path.read_text().splitlines()]
    assert [r["action"] for r in rows] == ["session", "view", "upload-image"]
    assert set(rows[2]) == {"time", "user", "action", "page", "image"}
    assert rows[0]["who"] == "Alice Able (a@example.org)" and rows[2]["image"] == "0123456789abcdef"
    assert all(r["user"] == uid for r in rows)
    assert (log.path.stat().st_mode & 0o777) == 0o600


@pytest.mark.parametrize(
    "kwargs",
    [
        {"image": "patient_jane_doe.jpg"},  # a file name, not a hash
        {"image": "ffd8ffe000104a46494600010101" + "zz"},  # not hex
        {"image": b"\x89PNG\r\n\x1a\n".hex() + "0" * 100},  # too long to be a hash: data
        {"page": "Explain\nage 54, female, trunk"},  # patient data smuggled into the page
        {"page": "x" * 81},
        {"who": "Alice"},  # a name outside the session record
    ],
)
def test_access_log_refuses_anything_but_hashes_and_page_titles(tmp_path, kwargs):
    log = access_log.AccessLog(tmp_path / "access.jsonl")
    fields = {"page": "Explain", "image": None, **kwargs}
    with pytest.raises(ValueError):
        log.record("local", "upload-image", **fields)
    assert not log.path.exists()


def test_access_log_refuses_unknown_users_and_actions(tmp_path):
    log = access_log.AccessLog(tmp_path / "access.jsonl")
    with pytest.raises(ValueError):
        log.record("alice@example.org", "view", "Explain")
    with pytest.raises(ValueError):
        log.record("local", "download-pixels", "Explain")


def test_access_log_is_bounded_by_size_and_number_of_files(tmp_path):
    log = access_log.AccessLog(tmp_path / "access.jsonl", max_bytes=2048, backups=3)
    for i in range(400):  # about 40 kB of records: many times what may be kept
        log.record("local", "view", f"Page {i}")
    files = log.files()
    assert [f.name for f in files] == [
        "access.jsonl",
        "access.jsonl.1",
        "access.jsonl.2",
        "access.jsonl.3",
    ]
    assert all(f.stat().st_size <= 2048 for f in files)
    assert not (tmp_path / "access.jsonl.4").exists()
    assert sum(f.stat().st_size for f in files) <= (3 + 1) * 2048
    newest = json.loads(log.path.read_text().splitlines()[-1])
    assert newest["page"] == "Page 399"  # the newest records are kept, the oldest dropped
    oldest_kept = json.loads(files[-1].read_text().splitlines()[0])["page"]
    assert int(oldest_kept.split()[1]) > 300


def test_access_log_for_root_is_one_per_root(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLAINERS_ACCESS_LOG_MAX_BYTES", "4096")
    monkeypatch.setenv("EXPLAINERS_ACCESS_LOG_FILES", "2")
    log = access_log.for_root(tmp_path)
    assert log is access_log.for_root(tmp_path)
    assert log.path == tmp_path.resolve() / "access-log" / "access.jsonl"
    assert (log.max_bytes, log.backups) == (4096, 2)


def test_auth_and_access_log_stay_out_of_the_explainers_package():
    for module in (access_log, auth):
        text = Path(module.__file__).read_text()
        assert "import tensorflow" not in text and "from explainers" not in text
    assert "import streamlit" not in Path(access_log.__file__).read_text()


# --- the gate in the app (Streamlit's AppTest; the signed-in side runs in the browser test) -----
def _app_with_secrets(auth_table: dict, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from dashboard.frame import bootstrap

    started = []
    monkeypatch.setattr(bootstrap, "start_warmup", lambda: started.append(True))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.secrets["auth"] = auth_table
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at, started


def test_a_signed_out_visitor_gets_the_sign_in_page_only(monkeypatch):
    at, started = _app_with_secrets(dict(GOOD), monkeypatch)
    assert [b.label for b in at.button] == ["Sign in"]
    assert [t.value for t in at.title] == ["Grad-CAM explorer"]
    assert len(at.sidebar.children) == 0  # no page list, no model or image widgets
    assert not at.selectbox and not at.radio and not at.error
    assert started == []  # nothing loads TensorFlow or the model for them


def test_an_incomplete_auth_section_stops_the_app_with_one_line(monkeypatch):
    at, started = _app_with_secrets(
        {k: v for k, v in GOOD.items() if k != "cookie_secret"}, monkeypatch
    )
    assert [e.value for e in at.error] == [
        "Sign-in is not set up correctly: [auth] in secrets.toml lacks cookie_secret."
    ]
    assert not at.button and len(at.sidebar.children) == 0 and started == []
