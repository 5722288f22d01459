"Samplers: class counts equal imbalanced-learn's for every sampling_strategy form, SMOTE geometry, bad inputs."
import numpy as np
import pytest
import torch
from imblearn.over_sampling import RandomOverSampler as ImbROS, SMOTE as ImbSMOTE
from imblearn.under_sampling import RandomUnderSampler as ImbRUS
from genai_data.core import ConfigError, DataError, make_generator
from genai_data.resample import (SMOTE, RandomOverSampler, RandomUnderSampler, label_counts, class_weights, knn_indices,
                                 segment_residuals, weighted_sampler)


def data(counts=(60, 25, 10, 25), d=6, seed=0):
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.full(n, c) for c, n in enumerate(counts)])
    X = rng.normal(size=(len(y), d)).astype(np.float32) + y[:, None] * 2
    perm = rng.permutation(len(y))
    return X[perm], y[perm]


MULTI = ['auto', 'minority', 'not minority', 'not majority', 'all', {2: 40, 1: 30}, {0: 60}]
BINARY = [0.5, 0.8, 1.0, 'auto', 'minority', 'all']
UNDER_MULTI = ['auto', 'majority', 'not minority', 'not majority', 'all', {0: 20, 3: 10}]
UNDER_BINARY = [0.5, 0.8, 1.0, 'auto', 'majority']


@pytest.mark.parametrize('strategy', MULTI)
@pytest.mark.parametrize('ours,theirs', [(RandomOverSampler, ImbROS), (SMOTE, ImbSMOTE)])
def test_over_counts_equal_imblearn_multiclass(ours, theirs, strategy):
    X, y = data()
    a = label_counts(ours(sampling_strategy=strategy, random_state=0).fit_resample(X, y)[1])
    b = label_counts(theirs(sampling_strategy=strategy, random_state=0).fit_resample(X, y)[1])
    assert a == b


@pytest.mark.parametrize('strategy', BINARY)
@pytest.mark.parametrize('ours,theirs', [(RandomOverSampler, ImbROS), (SMOTE, ImbSMOTE)])
def test_over_counts_equal_imblearn_binary(ours, theirs, strategy):
    X, y = data((70, 12))
    a = label_counts(ours(sampling_strategy=strategy, random_state=0).fit_resample(X, y)[1])
    b = label_counts(theirs(sampling_strategy=strategy, random_state=0).fit_resample(X, y)[1])
    assert a == b


@pytest.mark.parametrize('strategy', UNDER_MULTI)
def test_under_counts_equal_imblearn_multiclass(strategy):
    X, y = data()
    a = RandomUnderSampler(sampling_strategy=strategy, random_state=0).fit_resample(X, y)[1]
    b = ImbRUS(sampling_strategy=strategy, random_state=0).fit_resample(X, y)[1]
    assert label_counts(a) == label_counts(b)
    assert list(a) == sorted(a)          # grouped by class, in class order, like imbalanced-learn


@pytest.mark.parametrize('strategy', UNDER_BINARY)
def test_under_counts_equal_imblearn_binary(strategy):
    X, y = data((70, 12))
    a = RandomUnderSampler(sampling_strategy=strategy, random_state=0).fit_resample(X, y)[1]
    b = ImbRUS(sampling_strategy=strategy, random_state=0).fit_resample(X, y)[1]
    assert label_counts(a) == label_counts(b)


def test_callable_strategy():
    X, y = data()
    f = lambda y: {2: 30}
    assert label_counts(SMOTE(f, random_state=0).fit_resample(X, y)[1])[2] == 30


def test_originals_kept_unchanged_and_kinds_preserved():
    X, y = data()
    X0 = X.copy()
    for s in (RandomOverSampler(random_state=1), SMOTE(random_state=1)):
        Xr, yr = s.fit_resample(X, y)
        assert isinstance(Xr, np.ndarray) and Xr.dtype == X.dtype and isinstance(yr, np.ndarray)
        np.testing.assert_array_equal(Xr[:len(X)], X); np.testing.assert_array_equal(yr[:len(y)], y)
    np.testing.assert_array_equal(X, X0)
    Xt, yt = torch.tensor(X), torch.tensor(y)
    Xr, yr = SMOTE(random_state=1).fit_resample(Xt, yt)
    assert isinstance(Xr, torch.Tensor) and isinstance(yr, torch.Tensor) and torch.equal(Xr[:len(X)], Xt)
    Xu, _ = RandomUnderSampler(random_state=0).fit_resample(X, y)
    rows = {r.tobytes() for r in X}
    assert all(r.tobytes() in rows for r in Xu)      # under-sampling only keeps original rows


def test_smote_segment_property_and_same_class_neighbours():
    X, y = data(d=10)
    s = SMOTE(k_neighbors=4, random_state=3)
    Xr, yr = s.fit_resample(X, y)
    new = Xr[len(X):]
    off, u = segment_residuals(new, X[s.base_indices_.numpy()], X[s.neighbor_indices_.numpy()])
    assert off.max() < 1e-4 and u.min() >= -1e-6 and u.max() <= 1 + 1e-6
    assert (y[s.base_indices_.numpy()] == y[s.neighbor_indices_.numpy()]).all()
    assert (yr[len(X):] == y[s.base_indices_.numpy()]).all()
    # the neighbour really is among the base point's k nearest same-class points
    for b, nb in list(zip(s.base_indices_.tolist(), s.neighbor_indices_.tolist()))[:50]:
        same = np.flatnonzero(y == y[b]); same = same[same != b]
        d = np.linalg.norm(X[same] - X[b], axis=1)
        assert nb in same[np.argsort(d)[:4]]


def test_smote_on_images_keeps_shape():
    x = torch.rand(30, 1, 8, 8); y = torch.tensor([0] * 20 + [1] * 10)
    Xr, yr = SMOTE(k_neighbors=3, random_state=0).fit_resample(x, y)
    assert Xr.shape == (40, 1, 8, 8) and Xr.min() >= 0 and Xr.max() <= 1


def test_smote_reproducible():
    X, y = data()
    a = SMOTE(random_state=7).fit_resample(X, y)[0]
    b = SMOTE(random_state=7).fit_resample(X, y)[0]
    c = SMOTE(random_state=8).fit_resample(X, y)[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_knn_matches_sklearn_with_chunks():
    from sklearn.neighbors import NearestNeighbors
    X = torch.randn(700, 12)
    ref = NearestNeighbors(n_neighbors=8).fit(X.numpy()).kneighbors(X.numpy(), return_distance=False)[:, 1:]
    ours = knn_indices(X, 7, chunk=100)
    assert (ours.sort(1).values == torch.tensor(ref).sort(1).values).float().mean() > 0.999


def test_bad_inputs():
    X, y = data()
    with pytest.raises(DataError, match='k_neighbors=5 needs at least 6'):
        SMOTE(random_state=0).fit_resample(X[:40], np.array([0] * 35 + [1] * 5))
    with pytest.raises(ConfigError, match='not in y'): SMOTE({9: 100}).fit_resample(X, y)
    with pytest.raises(ConfigError, match='cannot reduce'): RandomOverSampler({0: 10}).fit_resample(X, y)
    with pytest.raises(ConfigError, match='cannot raise'): RandomUnderSampler({2: 50}).fit_resample(X, y)
    with pytest.raises(ConfigError, match='would remove samples'):
        SMOTE(0.1).fit_resample(*data((70, 12)))
    with pytest.raises(ConfigError, match='two classes'): SMOTE(0.5).fit_resample(X, y)
    with pytest.raises(DataError, match='empty'): SMOTE().fit_resample(np.zeros((0, 3)), np.zeros(0))
    Xn = X.copy(); Xn[3, 1] = np.nan
    with pytest.raises(DataError, match='NaN'): SMOTE().fit_resample(Xn, y)
    with pytest.raises(DataError, match='samples but y has'): SMOTE().fit_resample(X, y[:-1])
    with pytest.raises(ConfigError, match="'minority' cannot be used to under-sample"): RandomUnderSampler('minority').fit_resample(X, y)
    with pytest.raises(ConfigError, match="'majority' cannot be used to over-sample"): SMOTE('majority').fit_resample(X, y)
    with pytest.raises(ConfigError, match='unknown sampling_strategy'): SMOTE('balanced').fit_resample(X, y)
    with pytest.raises(ConfigError, match='k_neighbors must be'): SMOTE(k_neighbors=0).fit_resample(X, y)
    with pytest.raises(DataError, match='floating point'): SMOTE().fit_resample(X.astype(np.int64), y)


def test_class_weights_and_sampler():
    from sklearn.utils.class_weight import compute_class_weight
    _, y = data()
    np.testing.assert_allclose(class_weights(y).numpy(), compute_class_weight('balanced', classes=np.arange(4), y=y), rtol=1e-6)
    assert torch.allclose(class_weights(y, smoothing=1.0), torch.ones(4))
    with pytest.raises(DataError, match='have no samples'): class_weights(np.array([0, 0, 2]))
    with pytest.raises(DataError, match='out of range'): class_weights(np.array([0, 5]), n_classes=3)
    draws = torch.tensor(list(weighted_sampler(y, num_samples=40000, generator=make_generator(0))))
    share = torch.bincount(torch.tensor(y)[draws], minlength=4).float() / 40000
    assert (share - 0.25).abs().max() < 0.015


# ---------- scikit-learn citizens: imbalanced-learn's own sampler checks, on 2-D data
from imblearn.utils.estimator_checks import parametrize_with_checks


@parametrize_with_checks([RandomOverSampler(random_state=0), SMOTE(random_state=0),
                          RandomUnderSampler(random_state=0)])
def test_imbalanced_learn_sampler_checks(estimator, check):
    "All of them apply; the pandas one skips itself where pandas is not installed (it is not a dependency)."
    check(estimator)


def test_grid_search_over_an_imblearn_pipeline_with_our_smote():
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from imblearn.pipeline import Pipeline
    X, y = make_classification(300, n_features=5, n_informative=3, n_classes=3, weights=[0.8, 0.15, 0.05],
                               random_state=1)
    pipe = Pipeline([('smote', SMOTE(random_state=0)), ('clf', LogisticRegression(max_iter=500))])
    search = GridSearchCV(pipe, {'smote__k_neighbors': [1, 2, 3]}, cv=3, error_score='raise').fit(X, y)
    assert search.best_params_['smote__k_neighbors'] in (1, 2, 3)
    assert np.isfinite(search.cv_results_['mean_test_score']).all()


def test_every_sampler_clones():
    from sklearn.base import clone
    from genai_data.synth import GenerativeOverSampler
    for s in (RandomOverSampler(random_state=3), SMOTE(k_neighbors=2), RandomUnderSampler(replacement=True),
              GenerativeOverSampler('latent-smote', random_state=1, updates=7, k_neighbors=2)):
        c = clone(s)
        assert type(c) is type(s) and c.get_params() == s.get_params() and c is not s
