"The gate: paired bootstrap, arms, the decision (a positive control and broken generators), the comparison."
import pytest
import torch
from genai_data.core import ConfigError, DataError, make_generator
from genai_data.data import ImageDataset
from genai_data.synth import GenerativeOverSampler, synthesis_targets, synthetic_quality
from genai_data.gate import gate_decision, interval, paired_bootstrap, quality_gate, verdict_of


def _need(train):
    add = synthesis_targets(train.labels.numpy())
    return torch.cat([torch.full((n,), c) for c, n in add.items()])


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
    gate = quality_gate(tr, extra, held, seeds=(0, 1), updates=400)
    assert gate['evidence']['sufficient'], gate['evidence']
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
    gate = quality_gate(tr, broken[name], held, seeds=(0, 1), updates=60, n_boot=500)
    q = synthetic_quality(broken[name], held, judge, tr)
    ok, reasons, advice = gate_decision(gate, q)
    assert not ok and q[flag] and any(r.startswith(f'class(es) {q[flag]}') for r in reasons), (name, reasons)
    assert advice.startswith('do not train on this synthetic data' if gate['evidence']['sufficient']
                             else 'not enough evidence')
    if name == 'shuffled labels': assert gate['verdict'] != 'helps'



def test_interval_and_verdict():
    assert interval(torch.arange(1001.)) == (25.0, 975.0)
    assert [verdict_of(*i) for i in ((0.1, 0.2), (-0.2, -0.1), (-0.1, 0.1))] == ['helps', 'hurts', 'no evidence']


def test_gate_words_are_plain(longtail):
    from genai_data.gate import ARM_WORDS, comparison_words, gate_statistics
    tr, held, _ = longtail
    good = torch.stack([held.labels, held.labels])
    bad = good.clone(); bad[:, held.labels == 2] = 3
    g = gate_statistics({'real': bad, 'random+aug': good, 'real+synthetic': bad}, held, tr.class_counts(), 100)
    ok, reasons, advice = gate_decision(g)
    assert not ok and "'random+aug'" not in advice + ''.join(reasons) and ARM_WORDS['random+aug'] in advice
    assert any('significantly worse than a free method' in r for r in reasons)
    assert comparison_words('baseline_vs_real', 'class-weight').startswith('the strongest cheap baseline (class-weighted')

# ---------- comparing methods (the capstone's engine)
def test_protocol_counts():
    from genai_data.gate import protocol_counts, DEEPSMOTE_COUNTS
    assert protocol_counts([5000] * 10) == list(DEEPSMOTE_COUNTS)
    c = protocol_counts([107] * 10)
    assert c[0] == 107 and c == sorted(c, reverse=True) and min(c) == 2
    with pytest.raises(DataError, match='fewer than 2'): protocol_counts([107] * 9 + [1])


def test_compare_methods_small(longtail):
    from genai_data.gate import compare_methods, comparison_table, method_training_sets, BASELINES
    tr, held, spare = longtail
    sets = method_training_sets(tr, ('none', 'class-weight', 'logit-adjust', 'random', 'random+aug', 'cvae', 'cvae+filter'),
                                generator_updates={'cvae': 20}, judge_updates=5)
    assert sets['class-weight'][1] == {'augment': True, 'class_weight': True} and sets['none'][3] is None
    assert sets['logit-adjust'][1]['logit_adjust'] and sets['random'][1] == {} and sets['cvae'][1] == {'augment': True}
    assert len(sets['cvae'][0]) == len(sets['random+aug'][0]) == 10 * int(tr.class_counts().max())
    assert len(sets['cvae+filter'][0]) <= len(sets['cvae'][0])
    res = compare_methods({0: tr}, held, spare, ('none', 'random+aug', 'cvae'), updates=5, n_boot=100, generator_updates={'cvae': 20})
    assert res['best_baseline'] in BASELINES and 'gain' in res['rows']['cvae']['balanced_acc'] and 'gate' in res['rows']['cvae']
    assert res['updates'] == 5 and 'gain' in res['rows']['none']['balanced_acc']     # baselines against the other baselines
    assert 'cvae' in comparison_table(res)
    with pytest.raises(ConfigError, match='unknown method'): method_training_sets(tr, ('gan',))


# ---------- issue 22: like-for-like arms, a selection-aware baseline, evidence that can carry a verdict
def test_synthetic_share_and_weight_keep_the_counts(longtail):
    from genai_data.gate import synthetic_arm, arm_datasets
    tr, held, _ = longtail
    syn = ImageDataset(torch.rand(40, 1, 16, 16), torch.arange(40) % 10, tr.classes)
    for share in (0, 0.25, 0.5, 1):
        ds, w = synthetic_arm(tr, syn, 0, share, 0.3)
        assert ds.class_counts().tolist() == (tr.class_counts() + syn.class_counts()).tolist()
        assert int((w == 0.3).sum()) == 10 * round(4 * share) and int((w == 1).sum()) == len(ds) - 10 * round(4 * share)
    assert synthetic_arm(tr, syn, 0, 1, 1)[1] is None                         # no weights: plain cross-entropy
    arms = arm_datasets(tr, syn, 0, 0.5, 0.3)
    assert arms['random'][0].class_counts().tolist() == arms['real+synthetic'][0].class_counts().tolist()
    assert [a for a, (_, o) in arms.items() if not o.get('augment')] == ['random']
    assert arms['real+synthetic'][1]['sample_weight'].shape == (len(arms['real+synthetic'][0]),)


@pytest.mark.parametrize('kw, words', [(dict(synthetic_share=1.5), 'synthetic_share must be a number from 0 to 1'),
                                       (dict(synthetic_weight=0), 'synthetic_weight must be a finite number > 0'),
                                       (dict(synthetic_weight=float('inf')), 'synthetic_weight must be')])
def test_bad_share_or_weight_is_refused_before_training(longtail, kw, words):
    tr, held, _ = longtail
    with pytest.raises(ConfigError, match=words): quality_gate(tr, tr[:10], held, **kw)


def test_the_strongest_baseline_is_chosen_inside_each_replicate(longtail):
    "Two baselines each right on a different half of the images: picking the better afterwards is not free."
    from genai_data.gate import gate_statistics
    tr, held, _ = longtail
    y = held.labels
    half = torch.arange(len(y)) % 2 == 0
    a, b = y.clone(), y.clone()
    a[half] = (y[half] + 1) % 10; b[~half] = (y[~half] + 1) % 10                # each wrong on half the images
    syn = torch.where(torch.rand(len(y), generator=make_generator(0)) < 0.5, a, b)
    g = gate_statistics({'real': torch.stack([a, a]), 'random': torch.stack([a, a]), 'random+aug': torch.stack([b, b]),
                         'real+synthetic': torch.stack([syn, syn])}, held, tr.class_counts(), 500)
    naive = g['arms']['real+synthetic']['balanced_acc']['mean'] - g['arms'][g['baseline']]['balanced_acc']['mean']
    aware = g['comparisons']['vs_baseline']['balanced_acc']
    assert abs(aware['gain'] - naive) < 1e-9 and aware['lo'] < aware['hi']
    # in every replicate the best of a and b is at least a, so the interval lies at or below the one against a fixed a
    fixed = g['against_real']['real+synthetic']                               # real is arm a
    assert aware['lo'] <= fixed['lo'] + 1e-12 and aware['hi'] <= fixed['hi'] + 1e-12 and aware['lo'] < fixed['lo']
    assert set(g['against_real']) == {'random', 'random+aug', 'real+synthetic'}


def test_one_seed_or_an_unconverged_budget_is_never_accepted(longtail):
    from genai_data.gate import gate_evidence, gate_statistics
    tr, held, _ = longtail
    right = held.labels.expand(2, -1)
    wrong = (right + 1) % 10
    perfect = {**gate_statistics({'real': wrong, 'random': wrong, 'real+synthetic': right}, held, tr.class_counts(), 200)}
    assert gate_decision({**perfect, 'evidence': gate_evidence([wrong] * 2, [wrong] * 2, held, 600)})[0]   # enough
    # one snapshot's dip is not a rise: per seed the better of two snapshots counts
    assert gate_evidence([wrong, right], [right, right], held, 600)['sufficient']
    for e in (gate_evidence([wrong[:1]] * 2, [wrong[:1]] * 2, held, 600), gate_evidence([wrong] * 2, [right] * 2, held, 600)):
        ok, reasons, advice = gate_decision({**perfect, 'evidence': e})
        assert not ok and advice.startswith('not enough evidence') and reasons[0].startswith('not enough evidence')
    assert 'classifier_updates=1200' in gate_evidence([wrong] * 2, [right] * 2, held, 600)['reasons'][0]


def test_a_class_with_few_held_out_images_gets_no_verdict(longtail):
    from genai_data.gate import TOO_FEW_TO_TELL, gate_statistics
    tr, held, _ = longtail
    keep = torch.cat([torch.nonzero(held.labels == c).flatten()[:TOO_FEW_TO_TELL - 1 if c == 9 else 30] for c in range(10)])
    small = held.subset(keep)
    p = small.labels.expand(2, -1)
    pc = gate_statistics({'real': p, 'random': p, 'real+synthetic': p}, small, tr.class_counts(), 100)['per_class']
    assert pc['9'] == {**pc['9'], 'verdict': 'too few images to tell', 'n': TOO_FEW_TO_TELL - 1}
    assert pc['0']['verdict'] == 'no evidence' and pc['0']['n'] == 30
