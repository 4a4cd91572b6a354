"""Audit: a whole batch at once. Open one of your batch runs (run one over the bundled samples
here, or point `python -m explainers batch --out` into your runs folder), see the scores per diagnosis with their uncertainty, their
distributions, and a gallery that puts the worst cases first; one click opens a case on
Explain with the run's settings. Numbers come from ``explainers.batch.results_stats``."""

import base64
import hashlib
import io
from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from dashboard.frame import fair_share, loaders, state, workspace
from dashboard.frame.auth import current_user_id
from dashboard.frame.errors import guard
from dashboard.frame.notices import code, plain
from dashboard.page_parts.audit_cases import explain_target, open_on_explain
from dashboard.widgets import sidebar
from explainers import zoo
from explainers.batch import results_stats
from explainers.batch import run as batch
from explainers.batch.trust_columns import TRUST_LABELS
from explainers.engine.core import method_label
from explainers.errors import ExplainerError
from explainers.evaluation import scoring as metrics

FOLDER = "audit_folder"  # the name of the run shown (one of the user's runs; never a path)
NOTE = "audit_note"  # why the last "Open on Explain" could not be done
LABELS = {**metrics.SCORE_LABELS, **metrics.INFO_LABELS, **TRUST_LABELS}
GALLERY_MAX = 200  # thumbnails drawn at most (each is a small PNG inlined in the page)
GALLERY_ROW_PX = 50  # a row's height: the strip (input + up to 4 maps) is about 5 rows wide

sidebar.selection()  # drawn by app.py already; also sends a first visit here through it
st.title("Audit a dataset")
st.caption(
    "Does the model look at the lesion across a whole test set, and which cases should a "
    "person look at first? Every number below comes from the results.csv of one batch run."
)


# --- where the results come from ---------------------------------------------------------------
def _samples_out(methods: tuple, steps: int, samples: int) -> Path:
    """The user's run folder for these settings (and this version of the results' columns):
    running the same batch again resumes the newest such run (instantly when complete); a
    newer version of the package never tries to resume an older one's table."""
    columns = batch.result_columns(batch.variants(methods, samples))
    version = hashlib.sha1("|".join(columns).encode()).hexdigest()[:8]
    label = workspace.safe_name(
        f"samples-{'-'.join(methods)}-steps{steps}-samples{samples}-{version}".replace("+", "p")
    )
    user = current_user_id()
    for run in workspace.user_runs(user):
        if run.name.endswith("-" + label):
            return run
    return workspace.new_run_folder(user, label)


def run_on_samples() -> None:
    c1, c2, c3 = st.columns(3)
    method = c1.selectbox(
        "Methods",
        ["default", *batch.CHOICES],
        key="w:audit_method",
        format_func=lambda m: (
            " and ".join(method_label(k) for k in batch.METHODS)
            if m == "default"
            else method_label(m)
        ),
    )
    steps = c2.select_slider(
        "Deletion / insertion steps",
        [4, 8, 16],
        value=8,
        key="w:audit_steps",
        help="Each image costs about steps × 8 forward passes of the model.",
    )
    samples = c3.select_slider(
        "Noise samples (0 = plain maps only)", [0, 8, 16], value=0, key="w:audit_samples"
    )
    methods = batch.METHODS if method == "default" else (method,)
    st.caption(
        f"The skin-lesion model on the {len(loaders.samples())} bundled HAM10000 samples, "
        "with their recorded age, sex and site. About 10–30 s per image on a 2-core CPU."
    )
    if not st.button("Run the batch", type="primary", key="w:audit_run"):
        return
    out = _samples_out(methods, int(steps), int(samples))
    bar = st.progress(0.0, text="Loading the model ...")

    def on_image(done: int, total: int) -> None:
        bar.progress(done / max(total, 1), text=f"{done}/{total} images")
        fair_share.checkpoint()  # between images: let a waiting person's step go first

    with guard("running the batch"):
        fair_share.check_settings(int(samples))
        bundle = loaders.catalogue_model(state.DEFAULT_MODEL)
        with fair_share.heavy():  # one per user at a time, users in turn
            batch.run_batch(
                bundle,
                zoo.SAMPLES_DIR,
                out,
                metadata=zoo.SAMPLES_DIR / "samples.csv",
                methods=methods,
                n_steps=int(steps),
                samples=int(samples),
                progress=False,
                on_image=on_image,
                on_wait=lambda message: bar.progress(0.0, text=message[:1].upper() + message[1:]),
            )
        st.session_state[FOLDER] = out.name


def pick_run() -> None:
    """A select box of the user's own runs, newest first: nothing typed becomes a path."""
    runs = [p.name for p in workspace.user_runs(current_user_id())]
    if not runs:
        st.info(
            "You have no batch runs yet: run one over the bundled samples (above), or run "
            "`python -m explainers batch` with `--out` in your runs folder (see the README)."
        )
        st.session_state.pop(FOLDER, None)
        return
    current = st.session_state.get(FOLDER)
    if st.session_state.get("w:audit_run_pick") not in runs:
        st.session_state["w:audit_run_pick"] = current if current in runs else runs[0]
    st.session_state[FOLDER] = st.selectbox(
        f"Your runs ({len(runs)}, newest first)",
        runs,
        key="w:audit_run_pick",
        help="The batch runs in your own folder on the server.",
    )


source = st.radio(
    "Results",
    ["runs", "samples"],
    horizontal=True,
    key="w:audit_source",
    format_func={
        "runs": "Open one of your runs",
        "samples": "Run a batch over the bundled samples",
    }.get,
)
if source == "runs":
    pick_run()
else:
    run_on_samples()


@st.cache_data(show_spinner=False, max_entries=8)
def _load(folder: str, stamp: float) -> results_stats.Results:
    return results_stats.load_results(folder)


def load(name: str) -> results_stats.Results:
    """The results of the user's run ``name`` (only a run of theirs; errors name no path)."""
    folder = workspace.find_run(current_user_id(), str(name))
    csv_path = folder / "results.csv"
    stamp = csv_path.stat().st_mtime if csv_path.is_file() else 0.0
    try:
        return _load(str(folder), stamp)
    except ExplainerError:
        raise ExplainerError(
            f"the results of the run {name} cannot be read: is it a finished batch run?"
        ) from None


@st.cache_data(show_spinner=False, max_entries=512)
def thumbnail(path: str, stamp: float, height: int = 72) -> str | None:
    """The overlay strip of one image as a small PNG data URI (None if it is missing)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            im.thumbnail((height * 8, height))
            buf = io.BytesIO()
            im.save(buf, format="PNG")
    except (OSError, ValueError):
        return None
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def variant_label(key: str, settings: dict) -> str:
    if key in batch.BASELINES:
        return batch.BASELINES[key]
    if key.startswith("smooth-"):
        return method_label(
            key[len("smooth-") :], int(settings.get("samples") or 0), settings.get("sigma")
        )
    return method_label(key)


def column_label(column: str) -> str:
    key, _, score = column.partition(":")
    return LABELS.get(score, score or key)


if st.session_state.pop("audit_go", False):
    st.switch_page("pages/explain.py")


# --- the results ---------------------------------------------------------------------------------
def show(res: results_stats.Results) -> None:
    frame, ok = res.frame, res.ok
    errors = frame[~frame.index.isin(ok.index)]
    s = res.settings
    c = st.columns(4)
    c[0].metric("Images explained", len(ok))
    c[1].metric("Images that failed", len(errors))
    if "correct" in ok and pd.to_numeric(ok["correct"], errors="coerce").notna().any():
        mean, low, high = results_stats.bootstrap_interval(
            pd.to_numeric(ok["correct"], errors="coerce").tolist()
        )
        interval = f"; 95 % bootstrap interval {low:.0%} – {high:.0%}" if np.isfinite(low) else ""
        c[2].metric(
            "Accuracy",
            f"{mean:.0%}",
            help=f"Share of images whose prediction is the recorded diagnosis{interval}.",
        )
    c[3].metric("Model", str(s.get("model", "?")))
    seed = f" · seed {plain(s['seed'])}" if s.get("seed") is not None else ""
    st.caption(
        f"Run {code(res.folder.name)} · layer {code(s.get('layer', '?'))} · "
        f"{s.get('steps', '?')} deletion / insertion steps{seed}"
    )
    if len(errors):
        with st.expander(f"{len(errors)} image(s) could not be explained"):
            st.dataframe(errors[["image", "error"]], hide_index=True, width="stretch")
    if ok.empty:
        st.info("No image in this folder was explained: nothing to aggregate.")
        return
    if not res.variants:
        st.info("This results.csv has no score columns.")
        return
    variant = st.selectbox(
        "Map", res.variants, key="w:audit_variant", format_func=lambda k: variant_label(k, s)
    )
    scores = [
        c
        for c in results_stats.numeric_columns(ok)
        if c.startswith(variant + ":") and c.split(":", 1)[1] in metrics.SCORE_LABELS
    ]

    key, key_label = results_stats.group_column(ok)
    st.subheader(f"Per {key_label.split(' (')[0].lower()}")
    st.caption(
        "Mean per group with its 95 % bootstrap interval (percentile method, "
        f"{results_stats.BOOTSTRAP_RESAMPLES} resamples of the group's images). A group of one image "
        "has no interval. Higher or lower is better as the column's help says."
    )
    table = results_stats.per_group(res, scores)
    shown = pd.DataFrame({"Group": table["group"], "Images": table["images"]})
    config = {"Images": st.column_config.NumberColumn("Images", format="%d")}
    for col in scores:
        label = column_label(col)
        better = "higher" if metrics.HIGHER_IS_BETTER.get(col.split(":", 1)[1], True) else "lower"
        shown[label] = table[col]
        shown[f"{label} 95 % CI"] = [
            ("" if not np.isfinite(lo) else f"{lo:.3g} – {hi:.3g}")
            for lo, hi in zip(table[f"{col} low"], table[f"{col} high"], strict=False)
        ]
        config[label] = st.column_config.NumberColumn(
            label, format="%.3g", help=f"mean; {better} is better"
        )
    st.dataframe(shown, hide_index=True, width="stretch", column_config=config)

    st.subheader("Distributions")
    if scores:
        score = st.selectbox("Score", scores, format_func=column_label, key="w:audit_dist")
        data = pd.DataFrame(
            {
                "group": ok[key].fillna("?").astype(str),
                "value": pd.to_numeric(ok[score], errors="coerce"),
                "image": ok["image"],
            }
        ).dropna()
        label = column_label(score)
        chart = alt.layer(
            alt.Chart(data)
            .mark_boxplot(extent="min-max", opacity=0.4)
            .encode(x=alt.X("group:N", title=key_label), y=alt.Y("value:Q", title=label)),
            alt.Chart(data)
            .mark_circle(size=40, opacity=0.8)
            .encode(
                x="group:N",
                y="value:Q",
                tooltip=["image", alt.Tooltip("value:Q", title=label, format=".3g")],
            ),
        )
        st.altair_chart(
            chart,
            width="stretch",
            theme="streamlit",
            alt=f"Box plot of {label} per {key_label}, one dot per image.",
        )
        st.caption(
            f"One dot per image; the box spans the middle half, the line is the median ({label})."
        )
    gallery(res, variant)


def gallery(res: results_stats.Results, variant: str) -> None:
    st.subheader("Gallery: worst cases first")
    numeric = results_stats.numeric_columns(res.ok)
    presets = results_stats.orderings(numeric, variant)
    names = [p.label for p in presets] + ["Any column ..."]
    choice = st.selectbox("Order", names, key="w:audit_order")
    preset = next((p for p in presets if p.label == choice), None)
    if preset is None:
        c1, c2 = st.columns([3, 1])
        column = c1.selectbox(
            "Column",
            numeric,
            key="w:audit_column",
            format_func=lambda c: f"{c} — {column_label(c)}" if ":" in c else c,
        )
        direction = c2.radio("Direction", ["lowest first", "highest first"], key="w:audit_dir")
        ascending = direction == "lowest first"
        preset = results_stats.Ordering(choice, column, ascending)
    rows = results_stats.sorted_rows(
        res, preset.column, preset.ascending, preset.misclassified_only
    )
    if rows.empty:
        st.info("No image matches this ordering (for example: no image is misclassified).")
        return
    rows = rows.head(GALLERY_MAX)
    # Name, diagnoses and the ranking score first: they stay in view beside the thumbnails at
    # 1280 px, and on a phone the name comes before the (wide) strip.
    view = pd.DataFrame(
        {
            "Image": rows["image"].astype(str),
            "Recorded": rows.get("dx", ""),
            "Predicted": rows["prediction_name"].astype(str),
            column_label(preset.column): pd.to_numeric(rows[preset.column], errors="coerce"),
            "Maps": [
                thumbnail(str(case_file(res, i, ".png")), _mtime(case_file(res, i, ".png")))
                for i in rows["image"]
            ],
            "Probability": pd.to_numeric(rows["probability"], errors="coerce"),
        }
    )
    event = st.dataframe(
        view,
        hide_index=True,
        width="stretch",
        on_select="rerun",
        selection_mode="single-row",
        key="w:audit_gallery",
        row_height=GALLERY_ROW_PX,
        column_config={
            "Recorded": st.column_config.TextColumn("Recorded", width="small"),
            "Predicted": st.column_config.TextColumn("Predicted", width="small"),
            "Maps": st.column_config.ImageColumn("Input and maps", width=GALLERY_ROW_PX * 5 + 10),
            "Probability": st.column_config.NumberColumn(
                "Probability (0–1)", format="%.3f", help="of the predicted class"
            ),
            column_label(preset.column): st.column_config.NumberColumn(
                column_label(preset.column), format="%.3g", help=f"the ordering: {preset.column}"
            ),
        },
    )
    picked = list(getattr(getattr(event, "selection", None), "rows", []) or [])
    index = picked[0] if picked and picked[0] < len(rows) else 0
    row = rows.iloc[index]
    how = "selected" if picked else "first in this order (click a row to pick another)"
    st.markdown(f"**{plain(row['image'])}** — {how}")
    png = case_file(res, row["image"], ".png")
    if png.is_file():
        st.image(
            str(png),
            width="stretch",
            alt=f"The input {row['image']} and its maps side by side, as the batch run wrote them.",
        )
    target, why = explain_target(row, res, variant)
    if target is not None:
        st.button(
            "Open on Explain",
            key="w:audit_open_explain",
            on_click=open_on_explain,
            args=(target, NOTE),
            type="primary",
            help="The same model, layer, class and noise settings as this run",
        )
    else:
        st.info(why)
        npz = case_file(res, row["image"], ".npz")
        with guard("reading the image of this case"):
            if npz.is_file():
                with np.load(npz) as data:
                    picture = loaders.png_bytes(np.asarray(data["image"], dtype=np.uint8))
                st.download_button(
                    "Download the image the model saw (PNG)",
                    picture,
                    file_name=f"{Path(str(row['image'])).stem}_input.png",
                    mime="image/png",
                    on_click="ignore",
                    key="dl:audit_image",
                )
    if st.session_state.get(NOTE):
        st.warning(st.session_state[NOTE])


def case_file(res: results_stats.Results, image: object, suffix: str) -> Path:
    """The run's own file for one image (``<stem>.png``, ``<stem>.npz``): a plain file inside
    the run's folder, else a path that does not exist (a link or a name that leaves the folder
    is never opened)."""
    path = res.folder / f"{Path(str(image)).stem}{suffix}"
    try:
        if not path.is_symlink() and path.resolve().parent == res.folder.resolve():
            return path
    except OSError:
        pass
    return res.folder / f".missing{suffix}"


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


folder = st.session_state.get(FOLDER)
if folder:
    res = None
    with guard("opening the run"):
        res = load(folder)
    if res is not None:
        with guard("showing the results"):
            show(res)
else:
    st.info("Open one of your runs, or run a batch over the bundled samples, to audit it.")
