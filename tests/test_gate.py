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
    sets = method_training_sets(tr, ('none', 'class-weight', 'random+aug', 'cvae', 'cvae+filter'), generator_epochs={'cvae': 2}, judge_epochs=2)
    assert sets['class-weight'][2] and sets['random+aug'][1] and sets['none'][4] is None
    assert len(sets['cvae'][0]) == len(sets['random+aug'][0]) == 10 * int(tr.class_counts().max())
    assert len(sets['cvae+filter'][0]) <= len(sets['cvae'][0])
    res = compare_methods({0: tr}, held, spare, ('none', 'random+aug', 'cvae'), epochs=2, n_boot=100, generator_epochs={'cvae': 2})
    assert res['best_baseline'] in BASELINES and 'gain' in res['rows']['cvae']['balanced_acc'] and 'gate' in res['rows']['cvae']
    assert 'cvae' in comparison_table(res)
    with pytest.raises(ConfigError, match='unknown method'): method_training_sets(tr, ('gan',))
