"""The case report: a PDF opened again and read back (pypdf) for its pages and text, from data
and from the command line on a small model file."""

import datetime as dt
import hashlib

import numpy as np
import pytest
from matplotlib.figure import Figure

from explainers import report
from explainers.cli import main
from tests.helpers import small_cnn

pypdf = pytest.importorskip("pypdf", reason="pypdf reads the PDF back (requirements-dev.txt)")


def _pages(data: bytes) -> list[str]:
    import io

    reader = pypdf.PdfReader(io.BytesIO(data))
    return [" ".join(p.extract_text().split()) for p in reader.pages]


def _case(**kw) -> report.CaseData:
    rng = np.random.default_rng(0)
    strong = np.zeros((4, 4), np.float32)
    strong[1, 2] = 6.61
    weak = np.zeros((4, 4), np.float32)
    weak[2, 1] = 0.00225
    base = {
        "image": rng.integers(0, 256, (48, 64, 3), dtype=np.uint8),
        "image_name": "lesion.jpg",
        "model_label": "Tiny test model",
        "model_fingerprint": "SHA-256 of the weights: abc123",
        "class_labels": [
            "akiec — actinic keratosis / intraepithelial carcinoma",
            "mel — melanoma",
            "nv — melanocytic nevus",
        ],
        "probabilities": np.array([0.1, 0.7, 0.2]),
        "logits": np.array([0.5, 2.4, 1.2]),
        "explained": "mel — melanoma (70.0 %)",
        "maps": {
            "Smooth Grad-CAM (8 samples, σ=0.15)": weak,
            "Smooth Grad-CAM++ (8 samples, σ=0.15)": strong,
        },
        "methods": {
            "Smooth Grad-CAM (8 samples, σ=0.15)": "gradcam",
            "Smooth Grad-CAM++ (8 samples, σ=0.15)": "gradcam++",
        },
        "settings": {"layer": "conv", "noise": "8 samples, σ = 0.15"},
        "scale": "shared",
        "patient": "60 years, male, trunk",
        "record": "mel — melanoma",
        "verdicts": {
            "Smooth Grad-CAM (8 samples, σ=0.15)": (
                "pass",
                "Passed the checks: it changes with the model and with the class.",
            ),
            "Smooth Grad-CAM++ (8 samples, σ=0.15)": (
                "fail",
                "Do not read this map as evidence: it is the same for every class.",
            ),
        },
        "created": dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.timezone.utc),
    }
    base.update(kw)
    return report.CaseData(**base)


def test_report_pages_and_text():
    trust = Figure()
    trust.text(0.1, 0.5, "cascade curve here")
    data = report.write_report(
        _case(
            extra_figures={"Sanity checks": trust},
            extra_lines={"Trust card": ["class sensitivity 0.42: the map tells mel from nv"]},
        )
    )
    assert data.startswith(b"%PDF")
    pages = _pages(data)
    assert len(pages) == 4
    first, second = pages[0], pages[1]
    # page 1: who, what, the maps with each one's verdict beside it, the settings
    assert "Research model, not a diagnostic device" in first
    assert "Created 2026-11-24 12:00 UTC" in first
    assert "Model: Tiny test model" in first and "SHA-256 of the weights: abc123" in first
    assert "60 years, male, trunk" in first and "Recorded diagnosis: mel — melanoma" in first
    assert "class explained mel — melanoma" in first
    assert "Do not read this map as evidence: it is the same for every class." in first
    assert "Passed the checks: it changes with the model and with the class." in first
    assert (
        "raw max 6.61 class-score units" in first and "raw max 0.00225 class-score units" in first
    )
    assert first.count("WEAK EVIDENCE") == 1  # the Grad-CAM map, 0.00225 beside 6.61/8 (4x4 grid)
    assert "raw map value (class-score units), shared scale" in first
    assert "layer: conv" in first and "colour map viridis" in first
    # page 2: every class, the software
    for label, p in (
        ("mel — melanoma", "70.0 %"),
        ("nv — melanocytic nevus", "20.0 %"),
        ("akiec", "10.0 %"),
    ):
        assert label in second and p in second
    assert "numpy" in second and "matplotlib" in second and "python" in second
    assert "Sanity checks" in pages[2] and "cascade curve here" in pages[2]
    assert "class sensitivity 0.42" in pages[3]


def test_own_scale_bar_and_many_classes_are_summed():
    n = 40
    probs = np.full(n, 0.5 / (n - 1))
    probs[3] = 0.5
    case = _case(
        class_labels=[f"class {i}" for i in range(n)],
        probabilities=probs,
        logits=np.log(probs),
        scale="own",
    )
    pages = _pages(report.write_report(case))
    assert "The other 10 classes together" in pages[1]
    assert "each map ÷ its own maximum" in pages[0]


def test_write_to_a_path_and_no_maps_is_refused(tmp_path):
    out = tmp_path / "case.pdf"
    data = report.write_report(_case(), out)
    assert out.read_bytes() == data
    with pytest.raises(report.ExplainerError, match="at least one map"):
        report.write_report(_case(maps={}, methods={}))


def test_weights_fingerprint_follows_the_weights():
    a, b = small_cnn(), small_cnn()
    b.set_weights(a.get_weights())
    assert report.weights_sha256(a) == report.weights_sha256(b)
    w = b.get_weights()
    w[0] = w[0] + 1.0
    b.set_weights(w)
    assert report.weights_sha256(a) != report.weights_sha256(b)


@pytest.fixture(scope="module")
def model_and_image(tmp_path_factory):
    from PIL import Image

    d = tmp_path_factory.mktemp("report")
    path = d / "tiny.keras"
    small_cnn().save(path)
    img = d / "photo.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(
        img
    )
    return path, img


def test_cli_writes_the_report(model_and_image, tmp_path, capsys):
    path, img = model_and_image
    out = tmp_path / "case.pdf"
    assert (
        main(
            [
                "report",
                "--model",
                str(path),
                "--image",
                str(img),
                "--out",
                str(out),
                "--scale",
                "absolute",
                "--absolute-max",
                "2",
            ]
        )
        == 0
    )
    assert f"wrote {out}" in capsys.readouterr().out
    pages = _pages(out.read_bytes())
    assert len(pages) == 3
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert f"SHA-256 of tiny.keras: {digest}" in pages[0]
    assert "Research model, not a diagnostic device" in pages[0]
    assert "Image: photo.png" in pages[0]
    assert "Grad-CAM" in pages[0] and "absolute scale" in pages[0]
    # no sanity figures for this model: page 1 says so under each map, never silently
    assert pages[0].count("Not checked yet for this model and layer") == 2
    assert pages[2].startswith("How far to trust the maps") and "class sensitivity" in pages[2]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--out", "case.txt"], "--out must end in .pdf"),
        (["--out", "no/such/dir/case.pdf"], "the folder for --out does not exist"),
        (["--out", "case.pdf", "--scale", "absolute"], "--scale absolute needs --absolute-max"),
        (["--out", "case.pdf", "--cmap", "rainbowish"], "unknown colour map"),
        (["--out", "case.pdf", "--age", "50"], "only for the skin-lesion model"),
    ],
)
def test_cli_bad_input_is_one_error_line(
    model_and_image, tmp_path, monkeypatch, capsys, extra, message
):
    path, img = model_and_image
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--model", str(path), "--image", str(img), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
