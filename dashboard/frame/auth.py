"""Who is asking: the user id the dashboard's per-user limits are keyed on.

A placeholder until sign-in: the sign-in module replaces this function with the signed-in
user's id. ``"local"`` means "nobody signed in"; ``dashboard.frame.fair_share`` then counts each
browser session as its own user."""


def current_user_id() -> str:
    return "local"
