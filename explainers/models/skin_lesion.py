"""The skin-lesion classifier (``sklesion`` 0.2.2, HAM10000): its classes, its patient-metadata
input, loading it, and the bundled sample images with their recorded diagnosis."""

from __future__ import annotations

import csv
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from explainers.errors import ExplainerError, one_line
from explainers.models.bundle import ModelBundle, identity

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
SAMPLES_DIR = DATA_DIR / "samples"

SKIN_LESION = "skin-lesion"
SKIN_LESION_PIP = "pip install --no-deps sklesion==0.2.2"

SKIN_CLASSES = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
SKIN_CLASS_NAMES = {
    "akiec": "actinic keratosis / intraepithelial carcinoma",
    "bcc": "basal cell carcinoma",
    "bkl": "benign keratosis-like lesion",
    "df": "dermatofibroma",
    "mel": "melanoma",
    "nv": "melanocytic nevus",
    "vasc": "vascular lesion",
}
SKIN_MALIGNANT = frozenset({"akiec", "bcc", "mel"})

#: The metadata encoding of sklesion 0.2.2 (its ``model_props.pkl``).
SEXES = ("female", "male", "unknown")
SITES = ("arm", "head-or-neck", "leg-or-genital", "trunk", "unknown")
AGE_MEAN = 51.90180032733224  # training mean, used when the age is unknown
AGE_MAX = 90.0  # the package divides the age by this
AGE_RANGE = (0.0, 120.0)
#: HAM10000's 15 ``localization`` values grouped into the model's 5 body sites (the package
#: does not publish its grouping; this is the natural one, see docs).
LOCALIZATION_SITES = {
    "upper extremity": "arm",
    "hand": "arm",
    "face": "head-or-neck",
    "scalp": "head-or-neck",
    "neck": "head-or-neck",
    "ear": "head-or-neck",
    "lower extremity": "leg-or-genital",
    "foot": "leg-or-genital",
    "genital": "leg-or-genital",
    "acral": "leg-or-genital",
    "back": "trunk",
    "trunk": "trunk",
    "abdomen": "trunk",
    "chest": "trunk",
    "unknown": "unknown",
}


def site_for_localization(localization: str | None) -> str:
    """The model's body site (``arm``, ``head-or-neck``, ...) for a site or HAM10000 localisation."""
    if localization is None:
        return "unknown"
    key = str(localization).strip().lower().replace("_", " ")
    if key in ("", "nan", "none"):
        return "unknown"
    if key.replace(" ", "-") in SITES:
        return key.replace(" ", "-")
    if key in LOCALIZATION_SITES:
        return LOCALIZATION_SITES[key]
    raise ExplainerError(
        f"unknown body site '{localization}'; choose from {', '.join(SITES)} or a HAM10000 "
        f"localisation ({', '.join(sorted(LOCALIZATION_SITES))})"
    )


def skin_lesion_metadata(
    age: float | None = None, sex: str | None = None, site: str | None = None
) -> np.ndarray:
    """The skin-lesion model's second input, float32 ``(1, 10)``:
    one-hot sex (female, male, unknown), one-hot site (arm, head-or-neck, leg-or-genital, trunk,
    unknown), ``age / 90``, and an age-missing flag. An unknown age is filled with the training
    mean (51.9 years) and flagged, exactly as the ``sklesion`` package does.
    """
    sex_key = "unknown" if sex is None else str(sex).strip().lower()
    sex_key = {"": "unknown", "f": "female", "m": "male", "nan": "unknown"}.get(sex_key, sex_key)
    if sex_key not in SEXES:
        raise ExplainerError(f"unknown sex '{sex}'; choose from {', '.join(SEXES)}")
    site_key = site_for_localization(site)
    if age is None or (isinstance(age, str) and not age.strip()):
        age_value, missing = AGE_MEAN, 1.0
    else:
        try:
            age_value = float(age)
        except (TypeError, ValueError):
            raise ExplainerError(f"age must be a number of years, got '{age}'") from None
        if np.isnan(age_value):
            age_value, missing = AGE_MEAN, 1.0
        elif not AGE_RANGE[0] <= age_value <= AGE_RANGE[1]:
            raise ExplainerError(
                f"age must be between {AGE_RANGE[0]:.0f} and {AGE_RANGE[1]:.0f} years, got {age_value:g}"
            )
        else:
            missing = 0.0
    vec = np.zeros((1, 10), dtype=np.float32)
    vec[0, SEXES.index(sex_key)] = 1.0
    vec[0, 3 + SITES.index(site_key)] = 1.0
    vec[0, 8] = age_value / AGE_MAX
    vec[0, 9] = missing
    return vec


# --- the bundle -----------------------------------------------------------------------------


def default_extra_inputs(bundle: ModelBundle) -> list[np.ndarray] | None:
    """The extra inputs for "nothing known" (skin-lesion: all metadata unknown), else None."""
    return [skin_lesion_metadata()] if bundle.metadata_input else None


def skin_lesion_model_path() -> Path:
    """The ``model.keras`` file inside the installed ``sklesion`` package."""
    spec = importlib.util.find_spec("sklesion")
    if spec is None or not spec.submodule_search_locations:
        raise ExplainerError(f"the skin-lesion model is not installed; run: {SKIN_LESION_PIP}")
    path = Path(next(iter(spec.submodule_search_locations))) / "model.keras"
    if not path.is_file():
        raise ExplainerError(
            f"the skin-lesion model file is missing from the sklesion package; run: {SKIN_LESION_PIP}"
        )
    return path


def load_skin_lesion() -> ModelBundle:
    """The skin-lesion model with its own trained weights (``safe_mode`` load of its file)."""
    path = skin_lesion_model_path()
    try:
        model = keras.saving.load_model(path, safe_mode=True)
    except Exception as exc:
        raise ExplainerError(
            f"could not load the skin-lesion model ({one_line(exc)}); reinstall it: {SKIN_LESION_PIP}"
        ) from None
    return ModelBundle(
        key=SKIN_LESION,
        label="Skin lesions (HAM10000, sklesion 0.2.2)",
        model=model,
        input_size=(254, 254),
        class_names=list(SKIN_CLASSES),
        preprocess=identity,  # a Normalization layer inside the model does the scaling
        weights="bundled",
        meaningful=True,
        metadata_input=True,
        class_descriptions=[SKIN_CLASS_NAMES[c] for c in SKIN_CLASSES],
        malignant=[c in SKIN_MALIGNANT for c in SKIN_CLASSES],
        preprocess_name="none (inside the model)",
        resize_method="tf-bilinear",
        source=str(path),
    )


# --- sample gallery -------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """A bundled HAM10000 image with its diagnosis and patient data (CC BY-NC-SA 4.0)."""

    image_id: str
    path: Path
    dx: str
    dx_name: str
    age: float | None
    sex: str
    localization: str

    @property
    def malignant(self) -> bool:
        return self.dx in SKIN_MALIGNANT

    def metadata(self) -> np.ndarray:
        """The skin-lesion model's metadata input for this patient."""
        return skin_lesion_metadata(self.age, self.sex, self.localization)


def list_samples() -> list[Sample]:
    """The bundled dermoscopy images (``explainers/data/samples``, see its LICENSE.md)."""
    samples = []
    with open(SAMPLES_DIR / "samples.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            age_text = (row.get("age") or "").strip()
            samples.append(
                Sample(
                    image_id=row["image_id"],
                    path=SAMPLES_DIR / f"{row['image_id']}.jpg",
                    dx=row["dx"],
                    dx_name=SKIN_CLASS_NAMES.get(row["dx"], row["dx"]),
                    age=float(age_text) if age_text else None,
                    sex=row.get("sex") or "unknown",
                    localization=row.get("localization") or "unknown",
                )
            )
    return samples
