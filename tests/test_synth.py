"The synthesis module: over-samplers with imbalanced-learn's face, filters, per-class quality, the gate, export and verify."
import json
import numpy as np
import pytest
import torch
from genai_data.core import ConfigError, CorruptFileError, DataError, make_generator
from genai_data.data import ImageDataset, load_digits, stratified_split, make_imbalanced, imbalance_counts, load_image_folder, load_npz
from genai_data.synth import (GENERATIVE, GenerativeOverSampler, SynthesisGenerator, filter_synthetic, gate_decision, paired_bootstrap,
                              fit_judge, quality_gate, quantize, synthesis_targets, synthesize_dataset, synthetic_quality, train_classifier,
                              verify_dataset, REPORT_SECTIONS)


@pytest.fixture(scope='module')
def longtail():
    "Digits 16x16: a 20:1 long-tailed training part, a balanced held-out part, and a balanced spare part."
    sp = stratified_split(load_digits(16), (0.6, 0.2, 0.2), seed=0)
    tr = make_imbalanced(sp['train'], imbalance_counts(10, int(sp['train'].class_counts().min()), 20), seed=0)
    return tr, sp['valid'], sp['test']


@pytest.fixture(scope='module')
def judge(longtail):
    return fit_judge(longtail[0], 0, 10)


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


# ---------- each generative family: train, sample, save/load
@pytest.mark.parametrize('method', GENERATIVE)
def test_generator_family(longtail, method, tmp_path):
    tr = longtail[0]
    gen = SynthesisGenerator(method, epochs=1).fit(tr)
    y = torch.tensor([9, 9, 0, 5])
    x = gen.sample(4, y, generator=make_generator(1))
    assert x.shape == (4, 1, 16, 16) and 0 <= x.min() and x.max() <= 1 and torch.isfinite(x).all()
    assert torch.equal(x, gen.sample(4, y, generator=make_generator(1)))
    gen.save(tmp_path / 'g.pt')
    assert torch.equal(SynthesisGenerator.load(tmp_path / 'g.pt').sample(4, y, generator=make_generator(1)), x)
    with pytest.raises(DataError, match='labels in 0..9'): gen.sample(2, torch.tensor([3, 10]))


def test_generator_checkpoint_tampering(longtail, tmp_path):
    gen = SynthesisGenerator('cvae', epochs=1).fit(longtail[0][:200])
    gen.save(tmp_path / 'g.pt')
    raw = bytearray((tmp_path / 'g.pt').read_bytes()); raw[-200] ^= 0xFF
    (tmp_path / 'g.pt').write_bytes(bytes(raw))
    with pytest.raises(CorruptFileError): SynthesisGenerator.load(tmp_path / 'g.pt')


def test_latent_smote_codes_lie_on_same_class_segments(longtail):
    gen = SynthesisGenerator('latent-smote', epochs=2).fit(longtail[0])
    z = gen._latent_smote(torch.full((100,), 8), make_generator(0))
    c = gen.codes_[gen.code_labels_ == 8]
    a, b = c[:, None], c[None]
    t = ((z[:, None, None] - a) * (b - a)).sum(-1) / ((b - a) ** 2).sum(-1).clamp_min(1e-12)
    resid = (a + t.clamp(0, 1)[..., None] * (b - a) - z[:, None, None]).norm(dim=-1).flatten(1).min(1).values
    assert resid.max() < 1e-4


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


# ---------- the gate and its decision
def test_paired_bootstrap_null_and_shift(longtail):
    y = longtail[1].labels
    same = torch.stack([y, y])
    worse = same.clone(); worse[:, y == 2] = 3
    b = paired_bootstrap({'a': same, 'b': same, 'c': worse}, y, 10, [9], n_boot=300)
    assert (b['a']['balanced_acc'] == b['b']['balanced_acc']).all()
    assert torch.allclose(b['c']['balanced_acc'] - b['a']['balanced_acc'], torch.tensor(-0.1, dtype=torch.float64))


def test_gate_accepts_real_extra_images(longtail, judge):
    "Real images of the tail classes (from a spare split) are the best possible 'synthetic' data: the gate must accept them."
    tr, held, spare = longtail
    need = synthesis_targets(tr.labels.numpy())
    idx = torch.cat([torch.nonzero(spare.labels == c).flatten()[:n] for c, n in need.items() if n])   # up to ~36 per class
    extra = spare.subset(idx)
    gate = quality_gate(tr, extra, held, seeds=(0, 1, 2), epochs=15)
    assert gate['verdict'] == 'helps', gate['comparisons']['vs_real']
    ok, reasons, _ = gate_decision(gate, synthetic_quality(extra, held, judge, tr))
    assert ok, reasons


@pytest.fixture(scope='module')
def broken(longtail):
    tr, held, spare = longtail
    y = _need(tr)
    good = GenerativeOverSampler('augment', random_state=0).fit_resample(tr.images, tr.labels)[0][len(tr):]
    g = make_generator(0)
    return {'shuffled labels': ImageDataset(good, y[torch.randperm(len(y), generator=g)], tr.classes),
            'collapsed': ImageDataset(torch.stack([tr.images[tr.labels == c][0] for c in y.tolist()]), y, tr.classes),
            'pure noise': ImageDataset(torch.rand(len(y), 1, 16, 16, generator=g), y, tr.classes)}


@pytest.mark.parametrize('name, flag', [('shuffled labels', 'off_class'), ('collapsed', 'collapsed'), ('pure noise', 'off_class')])
def test_gate_refuses_broken_generators(longtail, judge, broken, name, flag):
    tr, held, _ = longtail
    gate = quality_gate(tr, broken[name], held, seeds=(0, 1), epochs=8, n_boot=500)
    q = synthetic_quality(broken[name], held, judge, tr)
    ok, reasons, advice = gate_decision(gate, q)
    assert not ok and q[flag], (name, reasons, q[flag])
    assert advice.startswith('do not train on this synthetic data')
    if name == 'shuffled labels': assert gate['verdict'] != 'helps'


def test_collapse_is_flagged_per_class(longtail, judge, broken):
    tr, held, _ = longtail
    q = synthetic_quality(broken['collapsed'], held, judge, tr)
    assert sorted(q['collapsed']) == sorted(tr.classes[1:])            # every synthesised class; class 0 got none
    assert all(v['spread'] < 0.05 for v in q['classes'].values())


# ---------- export, manifest, verify
@pytest.fixture(scope='module')
def exported(longtail, tmp_path_factory):
    tr, held, _ = longtail
    out = tmp_path_factory.mktemp('exp') / 'syn'
    rep = synthesize_dataset(tr, held, out, 'cvae', epochs=3, gate_seeds=(0,), judge_epochs=2, accept_anyway=True, quiet=True,
                             source={'description': 'test digits'})
    return out, rep


def test_export_layout_and_provenance(exported, longtail):
    out, rep = exported
    tr = longtail[0]
    names = {p.name for p in out.iterdir()}
    assert {'synthetic', 'synthetic.npz', 'combined.npz', 'generator.pt', 'manifest.json', 'report.html', 'report.json'} <= names
    m = json.loads((out / 'manifest.json').read_text())
    assert m['source']['train_sha256'] == rep['dataset']['train_sha256'] and m['versions']['torch'] == torch.__version__
    n_new = sum(rep['counts']['added'].values())
    assert len(m['samples']) == n_new and {s['origin'] for s in m['samples']} == {'cvae'}
    assert all(s['file'] in m['files'] for s in m['samples'])
    folder, arrays = load_image_folder(out / 'synthetic', progress=False), load_npz(out / 'synthetic.npz')
    assert torch.equal(folder.images, arrays.images) and len(folder) == n_new
    with np.load(out / 'combined.npz') as z:
        assert list(z['origin']).count('real') == len(tr) and list(z['origin']).count('cvae') == n_new
    torchvision = pytest.importorskip('torchvision')
    assert len(torchvision.datasets.ImageFolder(out / 'synthetic')) == n_new
    html = (out / 'report.html').read_text()
    assert all(f"id='{s}'" in html for s in REPORT_SECTIONS)


def test_verify_detects_tampering(exported, tmp_path):
    import shutil
    out = tmp_path / 'copy'
    shutil.copytree(exported[0], out)
    assert verify_dataset(out)['ok']
    pngs = sorted((out / 'synthetic').rglob('*.png'))
    pngs[0].write_bytes(b'x'); pngs[1].unlink(); (out / 'synthetic' / 'extra.png').write_bytes(b'y')
    r = verify_dataset(out)
    assert not r['ok'] and len(r['changed']) == 1 and len(r['missing']) == 1 and r['unexpected'] == ['synthetic/extra.png']
    (out / 'manifest.json').write_text('{')
    with pytest.raises(CorruptFileError, match='not valid JSON'): verify_dataset(out)


def test_rejected_data_is_not_exported_as_accepted(longtail, broken, tmp_path):
    tr, held, _ = longtail
    from genai_data import synth
    class Collapsed:                                    # a generator that draws one image per class
        def __init__(self, ds): self.ds, self.epochs, self.seconds, self.classes = ds, 1, {'train': 0.}, ds.classes
        def sample(self, n, y, generator=None): return torch.stack([self.ds.images[self.ds.labels == c][0] for c in y.tolist()])
        def save(self, path): (tmp_path / 'saved').write_text('no')
    orig = synth._train_or_load
    synth._train_or_load = lambda method, train, *a, **k: Collapsed(train)
    try: rep = synthesize_dataset(tr, held, tmp_path / 'out', 'cvae', gate_seeds=(0,), judge_epochs=5, quiet=True)
    finally: synth._train_or_load = orig
    assert not rep['decision']['accepted'] and any('collapsed' in r for r in rep['decision']['reasons'])
    names = {p.name for p in (tmp_path / 'out').iterdir()}
    assert 'rejected' in names and 'synthetic' not in names and 'combined.npz' not in names
    assert 'REJECTED' in (tmp_path / 'out' / 'report.html').read_text()


# ---------- comparing methods (the capstone's engine)
def test_protocol_counts():
    from genai_data.synth import protocol_counts, DEEPSMOTE_COUNTS
    assert protocol_counts([5000] * 10) == list(DEEPSMOTE_COUNTS)
    c = protocol_counts([107] * 10)
    assert c[0] == 107 and c == sorted(c, reverse=True) and min(c) == 2
    with pytest.raises(DataError, match='fewer than 2'): protocol_counts([107] * 9 + [1])


def test_compare_methods_small(longtail):
    from genai_data.synth import compare_methods, comparison_table, method_training_sets, BASELINES
    tr, held, spare = longtail
    sets = method_training_sets(tr, ('none', 'class-weight', 'random+aug', 'cvae', 'cvae+filter'), generator_epochs={'cvae': 2}, judge_epochs=2)
    assert sets['class-weight'][2] and sets['random+aug'][1] and sets['none'][4] is None
    assert len(sets['cvae'][0]) == len(sets['random+aug'][0]) == 10 * int(tr.class_counts().max())
    assert len(sets['cvae+filter'][0]) <= len(sets['cvae'][0])
    res = compare_methods({0: tr}, held, spare, ('none', 'random+aug', 'cvae'), epochs=2, n_boot=100, generator_epochs={'cvae': 2})
    assert res['best_baseline'] in BASELINES and 'gain' in res['rows']['cvae']['balanced_acc'] and 'gate' in res['rows']['cvae']
    assert 'cvae' in comparison_table(res)
    with pytest.raises(ConfigError, match='unknown method'): method_training_sets(tr, ('gan',))
