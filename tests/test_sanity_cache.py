"""The sanity checks' disk cache believes only this installation's signed, well-formed entries:
a wrong type (`"maps": 5`, `"maps": []`), a truncated file, a hand-edited verdict (a forged
Spearman of 0) or an entry signed with another key is ignored, never raises, and the verdict
returned and shown comes from a fresh computation, which rewrites the entry."""

import hashlib
import hmac
import json
import stat

import numpy as np
import pytest

from explainers import zoo
from explainers.trust import sanity
from tests.test_sanity import tiny_model

N_IMAGES = 2


@pytest.fixture
def bundle(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLAINERS_SANITY_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "tiny.keras"
    tiny_model(same_head=True).save(path)  # class-insensitive: its true verdict is "fail"
    return zoo.load_model(path)


def checks(bundle):
    """The checks for Grad-CAM and what they said they did (computed or read)."""
    said = []
    report = sanity.sanity_for_bundle(
        bundle, methods=("gradcam",), n_images=N_IMAGES, progress=lambda f, text: said.append(text)
    )
    return report.methods["gradcam"], said


def figures(result):
    """The figures as the cache keeps them (4 decimals)."""
    return (
        [(s.step, round(s.spearman, 4), round(s.ssim, 4)) for s in result.cascade],
        round(result.random_logit_spearman, 4),
        result.verdict,
    )


def shown(bundle):
    """What the Explain page's badge would show: the cached verdict, never computed there."""
    return sanity.cached_verdict(bundle, "block2_conv", "gradcam", n_images=N_IMAGES)


def entry(tmp_path):
    files = list((tmp_path / "cache").glob("*.json"))
    assert len(files) == 1
    return files[0]


def sign(tmp_path, key, data, secret=None):
    """`data` with an HMAC made with `secret` (default: this installation's own)."""
    secret = secret or (tmp_path / "cache" / ".secret").read_bytes()
    body = json.dumps({"key": key, "data": data}, sort_keys=True, separators=(",", ":"))
    return {**data, "hmac": hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()}


def test_a_signed_entry_is_read_back_and_its_key_is_private(bundle, tmp_path):
    first, said = checks(bundle)
    assert "maps of the trained model" in said and first.verdict == "fail"
    assert first.random_logit_spearman == pytest.approx(1.0)
    secret = tmp_path / "cache" / ".secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600 and len(secret.read_bytes()) == 32
    data = json.loads(entry(tmp_path).read_text())
    assert len(data["hmac"]) == 64 and data["verdict"] == "fail"
    again, said = checks(bundle)
    assert said == ["read from the cache"] and figures(again) == figures(first)
    np.testing.assert_array_equal(again.maps, np.round(first.maps, 6))
    assert figures(shown(bundle)) == figures(first)


def forged(data):
    """The figures of a method that passes, written in by hand."""
    return {
        **data,
        "cascade": [{**s, "spearman": 0.0} for s in data["cascade"]],
        "random_logit_spearman": 0.0,
        "verdict": "pass",
    }


DAMAGES = {
    # Wrong types and shapes, even under a valid signature (an older or buggy writer).
    "maps is a number": lambda d, sign: sign({**d, "maps": 5}),
    "maps is empty": lambda d, sign: sign({**d, "maps": []}),
    "maps of another shape": lambda d, sign: sign({**d, "maps": np.zeros((2, 1, 3, 3)).tolist()}),
    "cascade is text": lambda d, sign: sign({**d, "cascade": "head"}),
    "a Spearman above 1": lambda d, sign: sign({**d, "random_logit_spearman": 7}),
    "verdict against its figures": lambda d, sign: sign({**d, "verdict": "pass"}),
    # Hand edits and forgeries: no valid signature.
    "forged Spearman 0, old signature": lambda d, sign: {**forged(d), "hmac": d["hmac"]},
    "forged Spearman 0, no signature": lambda d, sign: {
        k: v for k, v in forged(d).items() if k != "hmac"
    },
    "forged Spearman 0, another key": lambda d, sign: sign(forged(d), b"k" * 32),
}


@pytest.mark.parametrize("damage", [*list(DAMAGES), "truncated JSON"])
def test_a_damaged_or_forged_entry_is_ignored_and_recomputed(bundle, tmp_path, damage):
    first, _ = checks(bundle)
    path = entry(tmp_path)
    key = path.stem
    if damage == "truncated JSON":
        path.write_text(path.read_text()[: len(path.read_text()) // 2])
    else:
        data = json.loads(path.read_text())
        unsigned = {k: v for k, v in data.items() if k != "hmac"}

        def resign(d, secret=None):
            return sign(tmp_path, key, {k: v for k, v in d.items() if k != "hmac"}, secret)

        damaged = DAMAGES[damage]({**unsigned, "hmac": data["hmac"]}, resign)
        path.write_text(json.dumps(damaged))

    assert sanity.load_cached(key) is None and shown(bundle) is None  # the page shows no verdict
    again, said = checks(bundle)  # never raises: computes afresh
    assert "maps of the trained model" in said and "read from the cache" not in said
    assert figures(again) == figures(first) and again.verdict == "fail"
    np.testing.assert_allclose(again.maps, first.maps, atol=1e-6)
    assert figures(shown(bundle)) == figures(first)  # the entry is rewritten, signed
    assert json.loads(path.read_text())["verdict"] == "fail"
