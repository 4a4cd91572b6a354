"""Who is using the dashboard.

A placeholder until sign-in: every visitor is the one local user. Sign-in replaces this module
(``current_user_id`` then returns the signed-in user's id); nothing else needs to change, as
``dashboard.frame.workspace`` turns any id into a safe folder name.
"""

from __future__ import annotations


def current_user_id() -> str:
    """The id of the user of this session (``"local"`` until sign-in replaces this module)."""
    return "local"
