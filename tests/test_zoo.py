"""The model catalogue: skin-lesion metadata, Keras Applications offline, user files in safe mode."""

import csv
import importlib.util
import io
import tempfile
import zipfile

import keras
import numpy as np
import pytest
from PIL import Image

from explainers import zoo
from explainers.errors import ExplainerError
from explainers.images import load_image
from tests.helpers import small_cnn

# --- skin-lesion metadata and samples -------------------------------------------------------


def test_metadata_unknown_everything_matches_the_package_encoding():
    vec = zoo.skin_lesion_metadata()
    assert vec.shape == (1, 10) and vec.dtype == np.float32
    expected = [0, 0, 1, 0, 0, 0, 0, 1, 51.90180032733224 / 90.0, 1]
    np.testing.assert_allclose(vec[0], expected, rtol=1e-6)


def test_metadata_known_patient():
    vec = zoo.skin_lesion_metadata(40, "male", "neck")[0]
    np.testing.assert_allclose(vec, [0, 1, 0, 0, 1, 0, 0, 0, 40 / 90, 0], rtol=1e-6)
    vec = zoo.skin_lesion_metadata(0, "Female", "leg-or-genital")[0]
    np.testing.assert_allclose(vec, [1, 0, 0, 0, 0, 1, 0, 0, 0, 0])


@pytest.mark.parametrize(
    ("localization", "site"),
    [
        ("upper extremity", "arm"),
        ("hand", "arm"),
        ("face", "head-or-neck"),
        ("scalp", "head-or-neck"),
        ("neck", "head-or-neck"),
        ("ear", "head-or-neck"),
        ("lower extremity", "leg-or-genital"),
        ("foot", "leg-or-genital"),
        ("genital", "leg-or-genital"),
        ("acral", "leg-or-genital"),
        ("back", "trunk"),
        ("trunk", "trunk"),
        ("abdomen", "trunk"),
        ("chest", "trunk"),
        ("unknown", "unknown"),
    ],
)
def test_all_15_ham10000_localisations_map_to_a_site(localization, site):
    assert zoo.site_for_localization(localization) == site
    vec = zoo.skin_lesion_metadata(site=localization)[0]
    assert vec[3 + zoo.SITES.index(site)] == 1 and vec[3:8].sum() == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"age": 130}, "between 0 and 120"),
        ({"age": -1}, "between 0 and 120"),
        ({"age": "old"}, "age must be a number"),
        ({"sex": "x"}, "unknown sex"),
        ({"site": "moon"}, "unknown body site"),
    ],
)
def test_metadata_rejects_bad_values(kwargs, message):
    with pytest.raises(ExplainerError, match=message):
        zoo.skin_lesion_metadata(**kwargs)


def test_samples_cover_the_available_diagnoses_and_carry_the_licence():
    samples = zoo.list_samples()
    assert len(samples) == 8
    assert {s.dx for s in samples} == {
        "akiec",
        "bcc",
        "bkl",
        "mel",
        "nv",
        "vasc",
    }  # no df in the data
    for s in samples:
        assert s.path.is_file() and s.path.parent == zoo.SAMPLES_DIR
        assert s.dx_name == zoo.SKIN_CLASS_NAMES[s.dx]
        assert load_image(s.path).mode == "RGB"
    first = {s.image_id: s for s in samples}["ISIC_0024367"]
    assert (first.dx, first.age, first.sex, first.localization) == ("mel", 35.0, "female", "back")
    assert first.malignant and first.metadata()[0, 0] == 1  # female
    with open(zoo.SAMPLES_DIR / "samples.csv", newline="") as f:
        assert next(csv.reader(f)) == ["image_id", "dx", "age", "sex", "localization"]
    licence = (zoo.SAMPLES_DIR / "LICENSE.md").read_text()
    assert "CC BY-NC-SA 4.0" in licence and "Philipp Tschandl" in licence
    assert "Tschandl, P., Rosendahl, C. & Kittler, H. The HAM10000 dataset" in licence
    assert "https://doi.org/10.1038/sdata.2018.161" in licence


def test_imagenet_names_come_from_the_shipped_copy():
    names = zoo.imagenet_class_names()
    assert len(names) == 1000 and names[0] == "tench" and names[999] == "toilet_tissue"


# --- Keras Applications ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def mobilenet_random():
    return zoo.load_model("MobileNetV2", weights=None)


def test_random_weights_are_labelled_as_meaningless(mobilenet_random):
    b = mobilenet_random
    assert b.weights == "random" and b.meaningful is False
    assert "random weights — predictions are meaningless" in b.label
    assert b.input_size == (224, 224) and b.n_classes == 1000 and b.class_names[1] == "goldfish"
    assert not b.metadata_input


def test_application_preprocess_is_its_own_and_does_not_touch_the_input(mobilenet_random):
    x = np.array([[[[0.0, 127.5, 255.0]]]], dtype=np.float32)
    out = mobilenet_random.preprocess(x)
    np.testing.assert_allclose(out[0, 0, 0], [-1.0, 0.0, 1.0], atol=1e-6)
    assert x[0, 0, 0].tolist() == [0.0, 127.5, 255.0]  # Keras scales NumPy arrays in place
    img = Image.new("RGB", (300, 100), (255, 0, 0))
    batch = zoo.prepare(mobilenet_random, img)
    assert batch.shape == (1, 224, 224, 3) and batch.dtype == np.float32
    np.testing.assert_allclose(batch[0, 100, 100], [1.0, -1.0, -1.0], atol=1e-6)


def test_every_catalogue_entry_names_a_real_application_and_preprocess():
    assert zoo.model_names()[0] == "skin-lesion"
    for key, spec in zoo.APPLICATIONS.items():
        assert callable(getattr(keras.applications, key))
        assert callable(getattr(keras.applications, spec.module).preprocess_input)
        assert spec.weights_url.endswith("/" + spec.weights_file)
    caffe = zoo._app_preprocess(zoo.APPLICATIONS["ResNet50"])
    np.testing.assert_allclose(
        caffe(np.zeros((1, 1, 1, 3)))[0, 0, 0], [-103.939, -116.779, -123.68], atol=1e-3
    )


def test_offline_imagenet_names_the_file_and_the_folder(tmp_path, monkeypatch):
    from keras.src.utils import file_utils

    def no_internet(*args, **kwargs):
        raise Exception(
            "URL fetch failure on https://example/x.h5: None -- [Errno -2] Name or service not known"
        )

    monkeypatch.setattr(zoo, "keras_cache_dir", lambda: tmp_path / "models")
    monkeypatch.setattr(file_utils, "get_file", no_internet)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # no /tmp/.keras fallback hit
    (tmp_path / "tmp").mkdir()
    with pytest.raises(ExplainerError) as info:
        zoo.load_model("MobileNetV2")
    message = str(info.value)
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5" in message
    assert str(tmp_path / "models") in message and "weights=None" in message
    assert "Name or service not known" in message and "\n" not in message


def test_imagenet_weights_already_in_the_cache_just_work(tmp_path, monkeypatch, mobilenet_random):
    cache = tmp_path / "models"
    cache.mkdir()
    mobilenet_random.model.save(cache / zoo.APPLICATIONS["MobileNetV2"].weights_file)  # legacy HDF5
    monkeypatch.setattr(zoo, "keras_cache_dir", lambda: cache)
    b = zoo.load_model("mobilenetv2")  # names are case-insensitive
    assert b.weights == "imagenet" and b.meaningful and b.key == "MobileNetV2"
    want = mobilenet_random.model.get_layer("Conv1").get_weights()[0]
    np.testing.assert_array_equal(b.model.get_layer("Conv1").get_weights()[0], want)
    # the same file as an explicit weights file
    f = zoo.load_model(
        "MobileNetV2", weights=str(cache / zoo.APPLICATIONS["MobileNetV2"].weights_file)
    )
    assert f.weights == "file" and f.meaningful
    np.testing.assert_array_equal(f.model.get_layer("Conv1").get_weights()[0], want)


def test_unknown_names_and_missing_files():
    with pytest.raises(
        ExplainerError, match="unknown model 'NoSuchNet'; choose from skin-lesion, MobileNetV2"
    ):
        zoo.load_model("NoSuchNet")
    with pytest.raises(ExplainerError, match="model file not found"):
        zoo.load_model("missing/model.keras")
    with pytest.raises(ExplainerError, match="weights file not found"):
        zoo.load_model("MobileNetV2", weights="/no/such/weights.h5")
    with pytest.raises(ExplainerError, match="own trained weights"):
        zoo.load_model("skin-lesion", weights=None)
    with pytest.raises(ExplainerError, match="your own model files only"):
        zoo.load_model("VGG16", preprocess="0..1")


def test_missing_sklesion_says_how_to_install_it(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "sklesion" else real(name, *a)
    )
    with pytest.raises(ExplainerError, match=r"pip install --no-deps sklesion==0\.2\.2"):
        zoo.load_model("skin-lesion")


# --- the user's own model file --------------------------------------------------------------


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    files = {}
    small_cnn().save(folder / "cnn.keras")
    small_cnn().save(folder / "cnn.h5")
    small_cnn((None, None, 3)).save(folder / "free.keras")
    small_cnn((16, 16, 1)).save(folder / "gray.keras")
    small_cnn(lam=True).save(folder / "lambda.keras")
    small_cnn(lam=True).save(folder / "lambda.h5")
    inp = keras.Input((10,))
    keras.Model(inp, keras.layers.Dense(3)(inp)).save(folder / "tabular.keras")
    inp = keras.Input((8, 8, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inp)
    keras.Model(inp, keras.layers.Dense(3)(pooled)).save(folder / "nospatial.keras")
    for p in folder.iterdir():
        files[p.name] = p
    return files


def test_user_model_from_a_path(model_files):
    b = zoo.load_model_file(model_files["cnn.keras"])
    assert b.weights == "file" and b.meaningful and b.input_size == (32, 32)
    assert b.class_names == ["class 0", "class 1", "class 2"] and b.key == "file:cnn.keras"
    x = zoo.prepare(b, Image.new("RGB", (50, 40), (10, 20, 30)))
    assert x.shape == (1, 32, 32, 3)
    np.testing.assert_allclose(x[0, 5, 5], [10, 20, 30])  # "none": raw 0..255
    # load_model falls through to the file for an existing path
    assert zoo.load_model(str(model_files["cnn.h5"])).input_size == (32, 32)


def test_lambda_models_are_refused_without_running_their_code(model_files):
    for name in ("lambda.keras", "lambda.h5"):
        with pytest.raises(ExplainerError) as info:
            zoo.load_model_file(model_files[name])
        message = str(info.value)
        assert name in message and "would run" in message and "not loaded" in message


def test_a_lambda_that_would_write_a_file_never_runs(tmp_path):
    marker = tmp_path / "ran.txt"
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(2, 3)(inp)
    # the path is a constant in the code (no defaults/closure), so an unsafe load would run it
    code = eval(f"lambda t: (open({str(marker)!r}, 'w').close(), t)[1]")
    x = keras.layers.Lambda(code)(x)
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))
    assert marker.exists()  # building the model ran it once: the code is real
    model.save(tmp_path / "evil.keras")
    marker.unlink()
    with pytest.raises(ExplainerError, match="not loaded"):
        zoo.load_model_file(tmp_path / "evil.keras")
    assert not marker.exists()  # loading it did not run it again


def test_uploaded_bytes_use_a_private_temp_file_that_is_deleted(model_files, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    data = model_files["cnn.keras"].read_bytes()
    b = zoo.load_model_file(data, filename="upload.keras", class_names=["a", "b", "c"])
    assert b.label.startswith("upload.keras") and b.class_names == ["a", "b", "c"]
    b = zoo.load_model_file(io.BytesIO(model_files["cnn.h5"].read_bytes()), filename="up.h5")
    assert b.input_size == (32, 32)
    with pytest.raises(ExplainerError, match="would run"):
        zoo.load_model_file(model_files["lambda.keras"].read_bytes(), filename="evil.keras")
    assert list(tmp_path.iterdir()) == []  # nothing left on disk


def test_the_format_comes_from_the_bytes_not_the_extension(model_files, tmp_path):
    renamed = tmp_path / "really_hdf5.keras"
    renamed.write_bytes(model_files["cnn.h5"].read_bytes())
    assert zoo.load_model_file(renamed).input_size == (32, 32)


def test_files_that_are_not_models(tmp_path):
    text = tmp_path / "notes.keras"
    text.write_text("hello")
    with pytest.raises(ExplainerError, match="notes.keras is not a Keras model file"):
        zoo.load_model_file(text)
    archive = tmp_path / "other.keras"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("readme.txt", "not a model")
    with pytest.raises(ExplainerError, match="not a Keras model file"):
        zoo.load_model_file(archive)
    with pytest.raises(ExplainerError, match="empty"):
        zoo.load_model_file(b"", filename="x.keras")
    with pytest.raises(ExplainerError, match="is a folder"):
        zoo.load_model_file(tmp_path)


def test_models_that_cannot_be_explained(model_files):
    with pytest.raises(ExplainerError, match="input is not an image"):
        zoo.load_model_file(model_files["tabular.keras"])
    with pytest.raises(ExplainerError, match="no layer with a spatial output"):
        zoo.load_model_file(model_files["nospatial.keras"])


def test_open_input_size_defaults_to_224_and_preprocess_choices(model_files):
    b = zoo.load_model_file(model_files["free.keras"], preprocess="0..1")
    assert b.input_size == (224, 224) and b.preprocess_name == "0..1"
    np.testing.assert_allclose(
        b.preprocess(np.array([[[[0.0, 51.0, 255.0]]]])), [[[[0.0, 0.2, 1.0]]]]
    )
    with pytest.raises(ExplainerError, match="unknown preprocessing"):
        zoo.load_model_file(model_files["free.keras"], preprocess="magic")


def test_grayscale_models_get_luminance(model_files):
    b = zoo.load_model_file(model_files["gray.keras"])
    x = zoo.prepare(b, Image.new("RGB", (16, 16), (255, 0, 0)))
    assert x.shape == (1, 16, 16, 1)
    np.testing.assert_allclose(x[0, 0, 0, 0], 255 * 0.299, rtol=1e-5)


def test_class_names(model_files):
    assert zoo.parse_class_names("cat\n\n  dog \r\nbird\n", 3) == ["cat", "dog", "bird"]
    with pytest.raises(ExplainerError, match="has 2 names but the model has 3 outputs"):
        zoo.parse_class_names("cat\ndog\n", 3)
    b = zoo.load_model_file(model_files["cnn.keras"], class_names="x\ny\nz\n")
    assert b.class_names == ["x", "y", "z"]
    with pytest.raises(ExplainerError, match="3 outputs"):
        zoo.load_model_file(model_files["cnn.keras"], class_names=["only one"])


# --- the real skin-lesion model (loaded once) ------------------------------------------------


@pytest.fixture(scope="module")
def skin_bundle():
    return zoo.load_model("skin-lesion")


def test_skin_lesion_bundle(skin_bundle):
    b = skin_bundle
    assert b.key == "skin-lesion" and b.weights == "bundled" and b.meaningful and b.metadata_input
    assert b.input_size == (254, 254) and b.class_names == list(zoo.SKIN_CLASSES)
    assert b.class_label(4) == "mel — melanoma"
    assert [n for n, m in zip(b.class_names, b.malignant, strict=False) if m] == [
        "akiec",
        "bcc",
        "mel",
    ]
    assert len(b.model.inputs) == 2 and tuple(b.model.outputs[0].shape) == (None, 7)
    x = np.full((1, 4, 4, 3), 200.0, dtype=np.float32)
    np.testing.assert_array_equal(b.preprocess(x), x)  # the model scales inside


def test_skin_lesion_model_classifies_the_samples_with_their_metadata(skin_bundle):
    from explainers import predict

    samples = zoo.list_samples()
    images = np.concatenate([zoo.prepare(skin_bundle, load_image(s.path)) for s in samples])
    meta = np.concatenate([s.metadata() for s in samples])
    assert images.shape == (8, 254, 254, 3) and images.min() >= 0 and images.max() <= 255
    pred = predict(skin_bundle.model, images, extra_inputs=[meta])
    top = [skin_bundle.class_names[i] for i in pred.probabilities.argmax(axis=1)]
    correct = sum(t == s.dx for t, s in zip(top, samples, strict=False))
    assert correct >= 7, list(zip(top, [s.dx for s in samples], strict=False))
    assert top[0] == "mel" and pred.probabilities[0, 4] > 0.8  # ISIC_0024367
