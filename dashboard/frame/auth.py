"""Sign-in for a shared server (Streamlit's ``st.login``, OpenID Connect) and who the user is.

Why first in ``app.py``: a signed-out visitor must get nothing of the app but the sign-in page
(no model loaded for them, no page list), so ``require_sign_in`` runs before anything heavy.
Without an ``[auth]`` section in ``.streamlit/secrets.toml`` nothing changes: local use, one
user called ``"local"``, no access log. An ``[auth]`` section that is incomplete stops the app
with a one-line error rather than opening it.

For other modules: ``current_user_id()`` is a stable id of the signed-in person (a hash of
the provider's issuer and subject, safe as a folder name) or ``"local"``; ``user_dir()`` is
their folder under the data root (``EXPLAINERS_DATA_ROOT``; not created here). The pure
helpers (``problem``, ``user_id``, ``configured_in_files``, ...) need no server.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import tomllib

LOCAL_USER = "local"
ANONYMOUS = "anonymous"
DATA_ROOT_ENV = "EXPLAINERS_DATA_ROOT"
PROVIDER_KEYS = ("client_id", "client_secret", "server_metadata_url")
SHARED_KEYS = ("redirect_uri", "cookie_secret")
_SEEN = "_auth_seen"  # session state: what this session has already put in the access log


# --- pure helpers -------------------------------------------------------------------------------
def providers(section: Mapping[str, Any] | None) -> list[str]:
    """The provider names ``st.login`` accepts: ``"default"`` when the credentials sit at the
    top of ``[auth]``, and each sub-table that has them (``[auth.microsoft]`` ...)."""
    if not section:
        return []
    names = ["default"] if all(k in section for k in PROVIDER_KEYS) else []
    names += [
        k
        for k, v in section.items()
        if isinstance(v, Mapping) and all(p in v for p in PROVIDER_KEYS)
    ]
    return names


def problem(section: Mapping[str, Any] | None) -> str | None:
    """Why an ``[auth]`` section cannot sign anyone in, or None when it can (or is absent)."""
    if section is None:
        return None
    missing = [k for k in SHARED_KEYS if not section.get(k)]
    if missing:
        return f"[auth] in secrets.toml lacks {', '.join(missing)}"
    if not providers(section):
        return f"[auth] in secrets.toml names no provider with {', '.join(PROVIDER_KEYS)}"
    bad = [p for p in providers(section) if "_" in p]
    if bad:
        return f"provider names cannot contain '_' ({', '.join(bad)})"
    if not str(section["redirect_uri"]).endswith("/oauth2callback"):
        return "[auth] redirect_uri must end with /oauth2callback"
    if len(str(section["cookie_secret"])) < 32:
        return "[auth] cookie_secret is too short: use 32 or more random characters"
    return None


def is_configured(section: Mapping[str, Any] | None) -> bool:
    """Whether sign-in is configured completely."""
    return section is not None and problem(section) is None


def user_id(claims: Mapping[str, Any]) -> str:
    """A stable, opaque id for a signed-in person: the first 32 hex digits of SHA-256 of the
    provider's issuer and the person's subject. Why not the e-mail: it can change and it is
    personal; issuer + subject is what OpenID Connect guarantees to be unique and stable."""
    sub = claims.get("sub")
    if not sub:
        raise ValueError("the identity token has no subject (sub) claim")
    issuer = str(claims.get("iss") or claims.get("provider") or "")
    return hashlib.sha256(f"{issuer}\n{sub}".encode()).hexdigest()[:32]


def display_name(claims: Mapping[str, Any]) -> str:
    """What the sidebar calls the user: name and e-mail where the provider gives them."""
    name, email = str(claims.get("name") or "").strip(), str(claims.get("email") or "").strip()
    if name and email and name != email:
        return f"{name} ({email})"
    return name or email or "signed-in user"


def is_loopback(address: str | None) -> bool:
    """Whether a ``server.address`` accepts connections from this machine only (empty means
    every interface)."""
    address = (address or "").strip().strip("[]")
    return address in ("localhost", "::1") or address.startswith("127.")


def read_secrets(paths: Iterable[str | Path]) -> dict[str, Any]:
    """The secrets of the TOML files among ``paths`` merged as Streamlit merges them (later
    files win per top-level key); missing files are skipped."""
    merged: dict[str, Any] = {}
    for path in paths:
        p = Path(path).expanduser()
        if p.is_file():
            with p.open("rb") as f:
                merged.update(tomllib.load(f))
    return merged


def data_root() -> Path:
    """Where the server keeps its data (the access log, per-user folders):
    ``$EXPLAINERS_DATA_ROOT``, else ``$XDG_DATA_HOME/explainers``, else
    ``~/.local/share/explainers``."""
    if os.environ.get(DATA_ROOT_ENV):
        return Path(os.environ[DATA_ROOT_ENV]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base).expanduser() / "explainers"


def user_dir(uid: str) -> Path:
    """A user's own folder under the data root (not created here)."""
    if not uid or any(c in uid for c in "/\\.") or uid != uid.strip():
        raise ValueError("not a user id")
    return data_root() / "users" / uid


# --- in the app ---------------------------------------------------------------------------------
def auth_section() -> Mapping[str, Any] | None:
    """The ``[auth]`` table of the secrets Streamlit loaded, or None."""
    import streamlit as st

    if not st.secrets.load_if_toml_exists():
        return None
    section = st.secrets.get("auth")
    return section if isinstance(section, Mapping) else None


def enabled() -> bool:
    """Whether this server signs people in."""
    return is_configured(auth_section())


def current_user_id() -> str:
    """``"local"`` without sign-in; the signed-in person's ``user_id``; ``"anonymous"`` for a
    signed-out visitor (who only ever sees the sign-in page)."""
    import streamlit as st

    if not enabled():
        return LOCAL_USER
    if not signed_in():
        return ANONYMOUS
    return user_id(st.user.to_dict())


def signed_in() -> bool:
    """Whether Streamlit holds a signed-in identity for this session (False, never an error,
    when its own view of the secrets has no [auth])."""
    import streamlit as st

    return st.user.to_dict().get("is_logged_in") is True


def require_sign_in() -> None:
    """The gate, called at the top of ``app.py``: returns when the visitor may use the app;
    otherwise draws the sign-in page (or a one-line error) and stops the run."""
    import streamlit as st

    section = auth_section()
    if section is None:
        address = st.get_option("server.address")
        if not is_loopback(address):
            st.error(
                f"This server listens on {address or 'every network interface'} but sign-in "
                "is not configured: see docs/DEPLOY.md.",
                icon=":material/lock:",
            )
            st.stop()
        return
    why = problem(section)
    if why is None and not _authlib_installed():
        why = "sign-in needs the Authlib package (pip install -r requirements.txt)"
    if why:
        st.error(f"Sign-in is not set up correctly: {why}.", icon=":material/lock:")
        st.stop()
    if signed_in():
        seen = st.session_state.setdefault(_SEEN, {})
        if not seen.get("session"):
            seen["session"] = True
            record("session", who=display_name(st.user.to_dict()))
        return
    _sign_in_page(providers(section))
    st.stop()


def _authlib_installed() -> bool:
    try:
        import authlib  # noqa: F401
    except ImportError:
        return False
    return True


def _sign_in_page(names: list[str]) -> None:
    import streamlit as st

    st.title("Grad-CAM explorer")
    st.write(
        "This dashboard runs on a shared server, so it asks who you are first. Sign in "
        "with your organisation's account to explain images. Your uploads stay in your "
        "own session and are never shown to anyone else."
    )
    for name in names:
        label = "Sign in" if len(names) == 1 else f"Sign in with {name.capitalize()}"
        if st.button(label, key=f"sign-in:{name}", type="primary", icon=":material/login:"):
            st.login(name)


def account_box() -> None:
    """In the sidebar, when sign-in is on: who is signed in, and a Sign out button."""
    import streamlit as st

    if not enabled() or not signed_in():
        return
    st.caption(f"Signed in as **{display_name(st.user.to_dict())}**")
    if st.button("Sign out", key="sign-out", icon=":material/logout:"):
        record("sign-out")
        st.logout()


def record(action: str, page: str = "", image: str | None = None, who: str | None = None) -> None:
    """Append to the access log when sign-in is on (a local, single-user run keeps none).
    A failure to write is logged on the server and never stops the page."""
    if not enabled():
        return
    import logging

    from dashboard.frame import access_log

    try:
        access_log.for_root(data_root()).record(current_user_id(), action, page, image, who)
    except (OSError, ValueError) as exc:
        logging.getLogger("dashboard").warning("access log not written: %s", exc)


def note_run(page: str, selection: Any, image_source: str | None) -> None:
    """Log what this run shows that the session has not logged yet: a page first viewed (or
    returned to), a new uploaded image or camera photo, a new uploaded model file (by content
    hash only)."""
    if not enabled():
        return
    import streamlit as st

    seen = st.session_state.setdefault(_SEEN, {})
    if seen.get("page") != page:
        seen["page"] = page
        record("view", page)
    digest = getattr(selection, "image_digest", None)
    if image_source in ("upload", "camera") and digest and seen.get("image") != digest:
        seen["image"] = digest
        record("upload-image" if image_source == "upload" else "camera-image", page, digest)
    token = getattr(selection, "model_token", None) or ""
    if token.startswith("file:") and seen.get("model") != token:
        seen["model"] = token
        record("upload-model", page, token.split(":")[1])
