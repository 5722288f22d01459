"Over-sampling with imbalanced-learn's face, the filters and per-class quality (genai_data.synth)."
import numpy as np
import pytest
import torch
from genai_data.core import ConfigError, DataError, make_generator
from genai_data.data import ImageDataset, load_digits
from genai_data.synth import (GenerativeOverSampler, draw_per_class, filter_synthetic, first_per_class, oversample,
                              synthesis_targets, synthetic_quality)


def _need(train):
    add = synthesis_targets(train.labels.numpy())
    return torch.cat([torch.full((n,), c) for c, n in add.items()])


# ---------- the over-sampler's interface
@pytest.mark.parametrize('method', ['random', 'augment', 'smote'])
def test_classical_fit_resample(longtail, method):
    tr = longtail[0]
    s = GenerativeOverSampler(method, random_state=3)
    X, y = s.fit_resample(tr.images, tr.labels)
    assert torch.equal(X[:len(tr)], tr.images) and torch.equal(y[:len(tr)], tr.labels)
    assert np.bincount(y.numpy()).tolist() == [int(tr.class_counts().max())] * 10
    assert list(s.origin_[:len(tr)]) == ['real'] * len(tr) and set(s.origin_[len(tr):]) == {method}
    assert 0 <= X.min() and X.max() <= 1
    X2, _ = GenerativeOverSampler(method, random_state=3).fit_resample(tr.images, tr.labels)
    assert torch.equal(X, X2)
    if method != 'random':
        X3, _ = GenerativeOverSampler(method, random_state=4).fit_resample(tr.images, tr.labels)
        assert not torch.equal(X, X3)


def test_strategies_and_labels(longtail):
    tr = longtail[0]
    names = np.array(['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'])[tr.labels.numpy()]
    X, y = GenerativeOverSampler('random', {'nine': 30, 'eight': 25}).fit_resample(tr.images.numpy(), names)
    assert isinstance(X, np.ndarray) and (y == 'nine').sum() == 30 and (y == 'eight').sum() == 25
    X, y = GenerativeOverSampler('random', enlarge=2).fit_resample(tr.images, tr.labels)
    assert np.bincount(y.numpy()).tolist() == (2 * tr.class_counts()).tolist()
    X, y = GenerativeOverSampler('random', 'minority').fit_resample(tr.images, tr.labels)
    assert len(X) == len(tr) + int(tr.class_counts().max() - tr.class_counts().min())


@pytest.mark.parametrize('args, words', [
    (dict(y=np.repeat(np.arange(3), 4)), 'no minority class to fill'),
    (dict(y=np.array([0, 0, 0, 1])), 'at least 2 of a class'),
    (dict(y=np.array([0, 0, 0, 1, 1]), sampling_strategy={0: 2}), 'cannot reduce it'),
    (dict(y=np.array([0, 0, 0, 1, 1]), enlarge=1), 'enlarge must be a number > 1'),
    (dict(y=np.zeros(5, int)), 'at least two classes'),
])
def test_synthesis_targets_refuses(args, words):
    with pytest.raises((DataError, ConfigError), match=words): synthesis_targets(**args)


def test_over_sampler_refuses_bad_input(longtail):
    tr = longtail[0]
    with pytest.raises(DataError, match=r'\(N, C, H, W\)'): GenerativeOverSampler('random').fit_resample(tr.images.flatten(1), tr.labels)
    with pytest.raises(DataError, match='value_range'): GenerativeOverSampler('random').fit_resample(tr.images * 255, tr.labels)
    bad = tr.images.clone(); bad[0, 0, 0, 0] = float('nan')
    with pytest.raises(DataError, match='NaN'): GenerativeOverSampler('random').fit_resample(bad, tr.labels)
    with pytest.raises(ConfigError, match='use one of'): GenerativeOverSampler('pixelcnn')
    with pytest.raises(DataError, match='size=16'): GenerativeOverSampler('cgan').fit_resample(torch.rand(20, 1, 8, 8), torch.arange(20) % 2)


# ---------- filters
def test_filter_drops_copies_and_wrong_class_and_keeps_the_floor(longtail, judge):
    tr, held, _ = longtail
    copies = tr.subset(torch.nonzero(tr.labels == 9).flatten())
    zeros = ImageDataset(held.images[held.labels == 0][:10], torch.full((10,), 9), tr.classes)
    ds = ImageDataset(torch.cat([copies.images, zeros.images]), torch.cat([copies.labels, zeros.labels]), tr.classes)
    keep, rep = filter_synthetic(ds, tr, judge, min_keep=0.)
    assert not keep[:len(copies)].any() and rep['9']['near_copy'] == len(copies)
    assert rep['9']['wrong_class'] >= 8 and keep.sum() <= 2
    keep, rep = filter_synthetic(ds, tr, judge, min_keep=0.5)
    assert rep['9']['kept'] == 8 and rep['9']['restored_for_diversity'] >= 6
    real_twins = ImageDataset(held.images[held.labels == 3][:20], torch.full((20,), 3), tr.classes)   # unseen real images are not copies
    assert filter_synthetic(real_twins, tr, None)[1]['3']['near_copy'] <= 1



def test_collapse_is_flagged_per_class_with_the_one_rule(longtail, judge):
    from genai_data.metrics import COLLAPSE_SPREAD
    tr, held, _ = longtail
    y = _need(tr)
    collapsed = ImageDataset(torch.stack([tr.images[tr.labels == c][0] for c in y.tolist()]), y, tr.classes)
    q = synthetic_quality(collapsed, held, judge, tr)
    assert sorted(q['collapsed']) == sorted(tr.classes[1:])            # every synthesised class; class 0 got none
    assert all(v['spread'] < 0.05 < COLLAPSE_SPREAD for v in q['classes'].values())
    assert 'low_recall' in q and 'low_coverage' not in q


def test_oversample_and_draw_helpers(longtail):
    tr = longtail[0]
    more = oversample(tr, {9: 20}, 0)
    assert more.class_counts()[9] == 20 and torch.equal(more.images[:len(tr)], tr.images)
    class Fake:
        classes = tr.classes
        def sample(self, n, y, rng=None): return torch.rand(n, 1, 16, 16, generator=rng)
    pool = draw_per_class(Fake(), {9: 3, 8: 2}, factor=2, seed=1)
    assert pool.class_counts()[8:].tolist() == [4, 6] and torch.equal(pool.images, pool.images.mul(255).round() / 255)
    kept = first_per_class(pool, pool.labels == 9, {9: 3, 8: 2})
    assert kept.class_counts()[8:].tolist() == [0, 3]
