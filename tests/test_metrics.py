"Metrics: parity with the reference libraries, streaming, warnings and errors."
import math
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from genai_data.core import ConfigError, DataError, DatasetNotFoundError, make_generator
from genai_data.learner import Callback
from genai_data.data import ImageDataset, load_digits, make_imbalanced, stratified_split
from genai_data.metrics import (FID, DomainFeatures, GaussianStats, InceptionFeatures, SmallCNN, fid_from_features, frechet_distance, inception_score, kid,
                                memorisation, mmd2_poly, ms_ssim, prdc, sqrtm_psd, ssim, utility)

G = make_generator(0)


def spd(d, seed):
    a = torch.randn(d, d, generator=make_generator(seed), dtype=torch.float64)
    return a @ a.T / d + 1e-3 * torch.eye(d, dtype=torch.float64)


def test_fid_identities():
    m, s = torch.randn(32, dtype=torch.float64), spd(32, 1)
    assert abs(frechet_distance(m, s, m, s)) < 1e-8
    m2 = m + 0.5
    assert abs(frechet_distance(m, s, m2, s) - 0.25 * 32) < 1e-8            # equal covariances: squared mean shift
    x = torch.randn(500, 8, generator=G)
    assert abs(fid_from_features(x, x)) < 1e-8


def test_fid_matches_scipy_and_torchmetrics():
    import scipy.linalg
    from torchmetrics.image.fid import _compute_fid
    m1, m2, s1, s2 = torch.randn(50, dtype=torch.float64), torch.randn(50, dtype=torch.float64), spd(50, 2), spd(50, 3)
    ours = frechet_distance(m1, s1, m2, s2)
    ref = ((m1 - m2).pow(2).sum() + s1.trace() + s2.trace() - 2 * np.trace(scipy.linalg.sqrtm(s1.numpy() @ s2.numpy()).real)).item()
    assert abs(ours - ref) < 1e-4 * abs(ref) and abs(ours - _compute_fid(m1, s1, m2, s2).item()) < 1e-4 * abs(ref)


def test_fid_singular_covariance_is_real_and_finite():
    x = torch.randn(20, 64, generator=G)                       # rank 19 < 64
    with pytest.warns(UserWarning, match='biased upwards'):
        v = FID().update(x, True).update(x + 0.1, False).compute()['fid']
    assert math.isfinite(v) and v >= 0
    s = sqrtm_psd(torch.cov(x.T.double()))
    assert torch.allclose(s @ s, torch.cov(x.T.double()), atol=1e-8)


def test_fid_streaming_batch_independent_and_matches_torchmetrics():
    from torchmetrics.image.fid import FrechetInceptionDistance
    r, f = torch.randn(2000, 16, generator=G), torch.randn(2000, 16, generator=G) * 0.9 + 0.1
    whole = fid_from_features(r, f)
    m = FID()
    for a in r.split(33): m.update(a, True)
    for b in f.split(101): m.update(b, False)
    assert abs(m.compute()['fid'] - whole) < 1e-9
    class Id(nn.Module):
        num_features = 16
        def forward(self, x): return x
    tm = FrechetInceptionDistance(feature=Id(), normalize=False)
    tm.update(r.double(), real=True); tm.update(f.double(), real=False)
    assert abs(whole - tm.compute().item()) < 1e-4 * whole


def test_reference_stats_roundtrip(tmp_path):
    r, f = torch.randn(300, 4, generator=G), torch.randn(300, 4, generator=G)
    GaussianStats().update(r).save(tmp_path / 'ref.pt')
    a = FID().set_reference(tmp_path / 'ref.pt').update(f, False).compute()['fid']
    assert abs(a - fid_from_features(r, f)) < 1e-10
    with pytest.raises(DatasetNotFoundError): GaussianStats.load(tmp_path / 'none.pt')


def test_fid_with_domain_features_labels_output():
    digits = load_digits(16)
    m = FID(DomainFeatures(SmallCNN(), 'SmallCNN'))
    out = m.update(digits.images[:200], True).update(digits.images[200:400], False).compute()
    assert out['features'].startswith('domain') and out['n_real'] == 200
    with pytest.raises(DataError, match='values'): m.update(digits.images[:4] * 255, True)
    with pytest.raises(ConfigError, match='features\\(x\\)'): DomainFeatures(nn.Linear(2, 2))


def test_inception_missing_weights_and_local_loading(tmp_path):
    with pytest.raises(DatasetNotFoundError, match='never downloads'): InceptionFeatures(tmp_path / 'nope.pth')
    import torchvision
    torch.save(torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=True).state_dict(), tmp_path / 'w.pth')
    inc = InceptionFeatures(tmp_path / 'w.pth')
    assert inc(torch.rand(2, 3, 32, 32)).shape == (2, 2048)
    with pytest.warns(UserWarning, match='grey images'): inc(torch.rand(1, 1, 16, 16))
    torch.save({'not': torch.zeros(1)}, tmp_path / 'bad.pth')
    with pytest.raises(DataError, match='does not hold Inception'): InceptionFeatures(tmp_path / 'bad.pth')


def test_kid_matches_torchmetrics_and_is_unbiased():
    from torchmetrics.image.kid import poly_mmd
    x, y = torch.randn(400, 10, generator=G).double(), torch.randn(400, 10, generator=G).double() + 0.2
    assert abs(mmd2_poly(x, y) - poly_mmd(x, y).item()) < 1e-4 * abs(poly_mmd(x, y).item())
    same = [kid(torch.randn(300, 6, generator=make_generator(s)), torch.randn(300, 6, generator=make_generator(s + 100)),
                subsets=10, subset_size=300)['kid'] for s in range(20)]
    assert abs(np.mean(same)) < 3 * np.std(same) / math.sqrt(20)                  # zero in expectation
    with pytest.warns(UserWarning, match='larger than the data'): kid(x[:50], y[:50], subsets=2, subset_size=100)


def test_inception_score_reference_value():
    mean, std = inception_score(torch.tensor([[1., 2., 3.], [-1., 5., 3.1]]))
    assert abs(mean - 1.24357) < 1e-5 and std == 0
    assert abs(inception_score(torch.zeros(10, 4))[0] - 1.0) < 1e-12          # uniform predictions: IS = 1


def test_ssim_matches_skimage_on_photos_and_digits():
    from skimage.metrics import structural_similarity
    from sklearn.datasets import load_sample_images
    photos = torch.tensor(np.stack(load_sample_images().images)).permute(0, 3, 1, 2).double()[:, :, :200, :300] / 255
    other = (photos * 0.8 + 0.1 + 0.03 * torch.randn(photos.shape, generator=G, dtype=torch.float64)).clamp(0, 1)
    ref = [structural_similarity(photos[i].permute(1, 2, 0).numpy(), other[i].permute(1, 2, 0).numpy(), gaussian_weights=True,
                                 sigma=1.5, use_sample_covariance=False, data_range=1.0, channel_axis=2) for i in range(2)]
    assert torch.allclose(ssim(photos, other), torch.tensor(ref, dtype=torch.float64), atol=1e-4)
    d = load_digits(32).images[:6].double() * 255
    e = (d + 20 * torch.randn(d.shape, generator=G, dtype=torch.float64)).clamp(0, 255)
    ref = [structural_similarity(d[i, 0].numpy(), e[i, 0].numpy(), gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 data_range=255) for i in range(6)]
    assert torch.allclose(ssim(d, e, data_range=255), torch.tensor(ref, dtype=torch.float64), atol=1e-4)
    with pytest.raises(DataError, match='at least 11x11'): ssim(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))


def test_ms_ssim():
    x = torch.rand(2, 1, 180, 180, generator=G).double()
    assert torch.allclose(ms_ssim(x, x), torch.ones(2, dtype=torch.float64))
    noisy = [ms_ssim(x, (x + s * torch.randn(x.shape, generator=G, dtype=torch.float64)).clamp(0, 1)).mean().item() for s in (0.05, 0.2, 0.5)]
    assert noisy == sorted(noisy, reverse=True)
    with pytest.raises(DataError, match='at least 176'): ms_ssim(torch.rand(1, 1, 64, 64), torch.rand(1, 1, 64, 64))


def test_prdc_matches_package_and_expectations():
    from prdc import compute_prdc
    rng = np.random.default_rng(5)
    xr, xf = rng.normal(size=(300, 12)), rng.normal(size=(250, 12)) * 1.2
    ref = compute_prdc(real_features=xr, fake_features=xf, nearest_k=5)
    ours = prdc(xr, xf, 5)
    assert all(abs(ours[k] - float(ref[k])) < 1e-9 for k in ours)
    same = prdc(np.random.default_rng(1).normal(size=(3000, 4)), np.random.default_rng(2).normal(size=(3000, 4)), 5)
    assert abs(same['coverage'] - (1 - 2 ** -5)) < 0.02 and abs(same['density'] - 1) < 0.08
    with pytest.raises(DataError, match='more than k=5'): prdc(xr[:5], xf)


def test_memorisation_flags_copies():
    tr, ho = torch.randn(500, 8, generator=G), torch.randn(300, 8, generator=G)
    honest = memorisation(tr, torch.randn(300, 8, generator=G), ho)
    copies = memorisation(tr, tr[:300] + 1e-3, ho)
    assert honest['flagged_share'] < 0.05 and copies['flagged_share'] == 1.0 and copies['ratio'] < 0.01


def test_utility_compares_like_with_like():
    sp = stratified_split(load_digits(), seed=0)
    small = make_imbalanced(sp['train'], [15] * 10, seed=0)
    u = utility(small, small, sp['test'], seeds=(0,), updates=30)
    assert set(u) == {'real', 'synthetic', 'real+synthetic', 'augmentation_gain'}
    assert u['real'] == u['synthetic']                          # the same data and seed train the same classifier
    assert u['augmentation_gain'] == u['real+synthetic']['balanced_acc'] - u['real']['balanced_acc']
    assert abs(np.mean(u['real']['per_class']) - u['real']['balanced_acc']) < 1e-6 and len(u['real']['per_class']) == 10
    assert u['real']['acc'] > 0.5                               # well above chance (0.1) from 150 real digits
    noise = ImageDataset(torch.rand(small.images.shape, generator=make_generator(0)), small.labels, small.classes)
    assert utility(small, noise, sp['test'], seeds=(0,), updates=30)['synthetic']['acc'] < 0.3    # noise teaches nothing
    other = ImageDataset(small.images, small.labels, [f'c{i}' for i in range(10)])
    with pytest.raises(DataError, match='same classes'): utility(small, other, sp['test'])


def test_per_class_quality_flags_collapse_and_ignored_labels():
    from genai_data.metrics import per_class_quality, quality_table, train_classifier
    sp = stratified_split(load_digits(16), seed=0)
    judge = train_classifier(sp["train"], updates=150)
    feat = DomainFeatures(judge)
    gen = torch.Generator().manual_seed(0)
    good = sp['test']
    proto = torch.stack([good.images[good.labels == c][0] for c in range(10)])
    collapsed = ImageDataset((proto[good.labels] + 0.01 * torch.randn(good.images.shape, generator=gen)).clamp(0, 1), good.labels, good.classes)
    shuffled = ImageDataset(good.images, good.labels[torch.randperm(len(good), generator=gen)], good.classes)
    q_good, q_col, q_shuf = (per_class_quality(sp['valid'], s, feat, judge, train=sp['train']) for s in (good, collapsed, shuffled))
    assert q_good['collapsed'] == [] and len(q_col['collapsed']) == 10
    assert q_col['mean']['spread'] < 0.2 < 0.7 < q_good['mean']['spread'] and q_col['mean']['recall'] < 0.1 < 0.8 < q_good['mean']['recall']
    assert q_shuf['mean']['intended'] < 0.3 < 0.9 < q_good['mean']['intended'] and q_shuf['mean']['precision'] < 0.3
    copies = ImageDataset(sp['train'].images[:180], sp['train'].labels[:180], good.classes)
    assert per_class_quality(sp['valid'], copies, feat, train=sp['train'])['mean']['near_copies'] > 0.9 > 0.1 > q_good['mean']['near_copies']
    table = quality_table(q_col)
    assert table.count('collapsed') == 10 and 'mean' in table and 'intended' not in quality_table(per_class_quality(sp['valid'], good, feat))
    with pytest.raises(DataError, match='same classes'): per_class_quality(sp['valid'], ImageDataset(good.images, good.labels, [f'c{i}' for i in range(10)]), feat)
    with pytest.raises(DataError, match="class '0' has"): per_class_quality(sp['valid'], good[good.labels != 0], feat)


def test_one_classifier_recipe_keyword_only_and_reproducible():
    from genai_data.metrics import fit_judge, predict, train_classifier
    from genai_data.data import make_imbalanced
    ds = load_digits(8)[:400]
    w = lambda m: m.head.weight.detach()
    a, b = train_classifier(ds, updates=7, seed=3), train_classifier(ds, updates=7, seed=3)
    assert torch.equal(w(a), w(b)) and not a.training
    assert not torch.equal(w(a), w(train_classifier(ds, updates=7, seed=4)))
    with pytest.raises(TypeError): train_classifier(ds, 3, 1)          # seed and budget are keywords: no mix-ups
    p = predict(a, load_digits(8)[400:700])
    assert p.shape == (300,) and p.dtype == torch.int64
    flat = lambda shape, k: torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(math.prod(shape), k))
    assert isinstance(train_classifier(ds, updates=3, classifier=flat), torch.nn.Sequential)
    tail = make_imbalanced(ds, [40, 30, 20, 10, 8, 6, 5, 4, 3, 2], seed=0)
    j = fit_judge(tail, updates=3)
    assert j.head.out_features == 10


class _Budget(Callback):
    "Records the optimizer updates and the passes over the data of one fit."
    def after_fit(self): self.updates, self.passes = self.learn.step_count, len(self.learn.history)


@pytest.mark.parametrize('n,passes', [(40, 5), (400, 1)])
def test_a_budget_in_updates_is_the_same_whatever_the_training_set_size(n, passes):
    from genai_data.metrics import train_classifier
    seen = _Budget()
    train_classifier(load_digits(8)[:n], updates=9, batch_size=32, cbs=[seen])
    assert (seen.updates, seen.passes) == (9, passes)


def test_logit_adjustment_and_weights_change_what_the_tail_gets():
    from genai_data.metrics import logit_adjusted_loss, predict, train_classifier
    from genai_data.data import make_imbalanced
    sp = stratified_split(load_digits(8), seed=0)
    tail = make_imbalanced(sp['train'], [100, 80, 60, 40, 20, 10, 8, 6, 5, 4], seed=0)
    recall = lambda m: (predict(m, sp['test']) == sp['test'].labels).float()[sp['test'].labels >= 5].mean()
    plain, adjusted = (recall(train_classifier(tail, updates=150, logit_adjust=la)) for la in (False, True))
    assert adjusted > plain                                    # the rare half is recalled more often
    # the loss equals cross-entropy of shifted logits, weights included
    out, y, prior = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 0, 1]), torch.tensor([.4, .3, .2, .1])
    wt = torch.tensor([1., 2, 0, 1, 1, 3])
    want = (F.cross_entropy(out + prior.log(), y, reduction='none') * wt).sum() / wt.sum()
    assert torch.allclose(logit_adjusted_loss(prior.log())(out, y, wt), want)
    with pytest.raises(DataError, match='sample_weight must hold 4'):
        train_classifier(tail[:4], updates=1, sample_weight=torch.tensor([1., -1, 1, 1]))


@pytest.mark.parametrize('spec', ['smallcnn', 'resnet18', 'genai_data.metrics:small_cnn'])
def test_every_classifier_spec_trains_on_grey_and_colour(spec):
    from genai_data.metrics import make_classifier, train_classifier
    for shape in ((1, 16, 16), (3, 16, 16)):
        net = make_classifier(spec, shape, 4)
        assert net.eval()(torch.rand(2, *shape)).shape == (2, 4)
    ds = ImageDataset(torch.rand(20, 3, 16, 16), torch.arange(20) % 4, list('abcd'))
    assert not train_classifier(ds, updates=2, classifier=spec).training


def test_bad_classifier_specs_are_one_line():
    from genai_data.metrics import make_classifier
    for spec, words in (('resnet9000', 'unknown classifier'), ('no_such_pkg.mod:f', 'cannot load classifier'),
                        ('genai_data.metrics:nothing_here', 'cannot load classifier'), (42, 'must be a name'),
                        (lambda s, k: 'not a module', 'not a torch nn.Module'),
                        (lambda s, k: torch.nn.Linear(3, k), 'cannot classify 1x8x8 images'),
                        (lambda s, k: torch.nn.Flatten(), 'must give (2, 10) logits')):
        with pytest.raises(ConfigError) as e: make_classifier(spec, (1, 8, 8), 10)
        assert words in str(e.value) and '\n' not in str(e.value), str(e.value)


def test_spread_ratio_and_the_one_collapse_rule():
    from genai_data.metrics import COLLAPSE_SPREAD, LOW_RECALL, quality_flags, spread_ratio
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 6, generator=g)
    assert 0.8 < spread_ratio(x[:150], x[150:], g) < 1.25
    assert spread_ratio(x, x[:3].repeat(100, 1) + 1e-4 * torch.randn(300, 6, generator=g), g) < 0.05
    flags = quality_flags({'a': {'spread': COLLAPSE_SPREAD - 0.01, 'recall': 0.0},
                           'b': {'spread': COLLAPSE_SPREAD + 0.01, 'recall': LOW_RECALL - 0.01},
                           'c': {'spread': 1.0, 'recall': 1.0}})
    assert flags == {'collapsed': ['a'], 'low_recall': ['b']}
