"""The "Copy link" button: every setting that changes the picture is in the URL
(``dashboard.frame.state.URL_KEYS``), so the browser's own address is the link to the view.

The button runs in the browser (a small component) and reads the address when it is clicked:
a colour map or opacity change reruns only the maps' fragment, so a link built on the server
at the last full run could be out of date.
"""

from __future__ import annotations

import streamlit as st

from dashboard.frame import state

_BUTTON = """
<style>
  body { margin: 0; font-family: "Source Sans Pro", sans-serif; font-size: 14px; }
  button { width: 100%%; padding: 6px 10px; border-radius: 8px; cursor: pointer;
           border: 1px solid rgba(49, 51, 63, 0.2); background: white; color: #31333f; }
  button:hover { border-color: %(primary)s; color: %(primary)s; }
  #link { margin-top: 4px; font-size: 11px; color: #555; word-break: break-all; }
</style>
<button id="copy" type="button" title="Copy the address of this view: the same image, model,
settings and pictures open in a new session">Copy link</button>
<div id="link"></div>
<script>
  const button = document.getElementById("copy"), shown = document.getElementById("link");
  button.addEventListener("click", async () => {
    let href = "";
    try { href = window.parent.location.href; } catch (e) { href = document.referrer; }
    shown.textContent = href;
    try { await navigator.clipboard.writeText(href); button.textContent = "Link copied"; }
    catch (e) { button.textContent = "Copy the link below"; }
    setTimeout(() => { button.textContent = "Copy link"; }, 4000);
  });
</script>
"""


def share_link(container) -> None:
    """Draw the copy-link button (and, for an upload, the note that it cannot travel)."""
    primary = st.get_option("theme.primaryColor") or "#b4235a"
    with container:
        st.iframe(_BUTTON % {"primary": primary}, height=96)
        if (
            state.get(state.IMAGE_SOURCE) != "sample"
            or state.get(state.MODEL) == state.UPLOAD_MODEL
        ):
            st.caption(
                "An uploaded image or model cannot travel in a link: the link opens the "
                "default sample or model instead."
            )
