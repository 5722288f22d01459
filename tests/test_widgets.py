"The widgets from Python: build each, set its controls, check the images are the library functions' output and follow the seed."
import pytest
import torch
from genai_data.core import ConfigError, make_generator
from genai_data.data import load_digits, stratified_split, make_imbalanced, imbalance_counts
from genai_data.generators import SynthesisGenerator
from genai_data.metrics import fit_judge
from genai_data.widgets import (AugmentPreview, ConditionalGallery, LatentExplorer, ResamplingViewer, augment_preview, latent_images,
                                resample_points, imbalanced_blobs, shown_quality)
from genai_data.core import grid_png as to_png


@pytest.fixture(scope='module')
def data():
    sp = stratified_split(load_digits(16), (0.6, 0.2, 0.2), seed=0)
    tr = make_imbalanced(sp['train'], imbalance_counts(10, int(sp['train'].class_counts().min()), 20), seed=0)
    return tr, sp['valid']


@pytest.fixture(scope='module')
def cvae(data):
    return SynthesisGenerator('cvae', 3).fit(data[0])


def test_augment_preview_widget_shows_the_function_output(data):
    tr, _ = data
    w = AugmentPreview(tr, n=6, seed=3)
    for key, value in (('rotation', 45.), ('cutout', 0.5), ('crop', 0.3), ('mixer', 'mixup')):
        old = w.after.value
        w.controls[key].value = value
        assert w.after.value != old, key
    expect = augment_preview(tr.images[:6], tr.labels[:6], w.settings(), 3, n_classes=10)['after'].clamp(0, 1)
    assert w.after.value == to_png(expect)
    w.controls['seed'].value = 4; four = w.after.value
    w.controls['seed'].value = 3; w.controls['seed'].value = 4
    assert w.after.value == four
    w.controls['start'].value = 10
    assert w.before.value == to_png(tr.images[10:16])
    with pytest.raises(ConfigError, match="mixer must be"): augment_preview(tr.images[:2], tr.labels[:2], {'mixer': 'blend'})


def test_resampling_viewer_caches_and_counts(data):
    tr, _ = data
    x, y = imbalanced_blobs()
    assert resample_points(x, y, 'smote', 3, 0)['after'] == [300, 300, 300]
    v = ResamplingViewer(tr, updates=10)
    v.k.value = 2; v.k.value = 5
    n = len(v.cache)
    v.k.value = 2
    assert len(v.cache) == n                          # computed once per setting, never again
    v.dataset.value = 'digits (PCA)'
    assert set(v.sampler.options) == {'random', 'smote', 'latent-smote', 'cvae'}
    v.sampler.value = 'cvae'
    assert '104' in v.counts.value and v.image.value[:4] == b'\x89PNG'


def test_latent_explorer(data, cvae):
    tr, valid = data
    w = LatentExplorer(cvae.net_, valid, dims=3)
    assert len(w.z) == 3
    old = w.samples.value
    w.z[1].value = -2.0
    assert w.samples.value != old
    assert torch.equal(w.images, latent_images(cvae.net_, [0., -2.0, 0.], y=0, n=8, temperature=1.0, seed=0))
    w.temperature.value = 0.0
    assert (w.images - w.images[0]).abs().max() < 1e-6
    w.a.value = 7
    assert w.line.shape == (8, 1, 16, 16)


def test_gallery_quality_follows_what_is_shown(data, cvae):
    tr, valid = data
    judge = fit_judge(tr, epochs=3)
    g = ConditionalGallery(cvae, valid, judge)
    first = g.image.value
    g.cls.value = 9
    assert g.image.value != first and g.quality['n'] == 16
    g.count.value = 32
    assert g.quality['n'] == 32 and len(g.images) == 32
    g.knob.value = 0.0
    assert g.quality['spread'] < 1e-6                  # temperature 0: the same image 32 times, and the numbers say so
    q = shown_quality(cvae.sample(20, 9, rng=make_generator(0)), 9, valid, judge)
    assert 0 <= q['intended'] <= 1 and q['spread'] > 0.05
