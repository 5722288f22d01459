"`genai-data evaluate`: synthetic images made by any tool judged by run's gate; real extra images pass, broken sets do not."
import json
import pytest
import torch
from genai_data.cli import main
from genai_data.core import make_generator
from genai_data.data import ImageDataset, imbalance_counts, load_digits, make_imbalanced, stratified_split
from genai_data.export import save_npz, verify_dataset
from genai_data.synth import synthesis_targets


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    "Long-tailed real digits (8 px), real held-out images, and three candidate 'synthetic' sets as .npz files."
    d = tmp_path_factory.mktemp('ev')
    sp = stratified_split(load_digits(8), (0.6, 0.2, 0.2), seed=0)
    tail = make_imbalanced(sp['train'], imbalance_counts(10, int(sp['train'].class_counts().min()), 20), seed=0)
    need, spare, g = synthesis_targets(tail.labels.numpy()), sp['test'], make_generator(0)
    extra = spare.subset(torch.cat([torch.nonzero(spare.labels == c).flatten()[:n] for c, n in need.items() if n]))
    sets = {'real': tail, 'held': sp['valid'], 'extra': extra,
            'shuffled': ImageDataset(extra.images, extra.labels[torch.randperm(len(extra), generator=g)], extra.classes,
                                     extra.value_range),
            'noise': ImageDataset(torch.rand(extra.images.shape, generator=g), extra.labels, extra.classes)}
    for name, ds in sets.items(): save_npz(d / f'{name}.npz', ds)
    return d


def _evaluate(files, out, synthetic, *extra):
    return main(['evaluate', '--real', str(files / 'real.npz'), '--synthetic', str(files / f'{synthetic}.npz'),
                 '--out', str(out), '--quiet', *extra])


def test_real_extra_images_are_accepted_and_exported(files, tmp_path):
    out = tmp_path / 'extra'
    assert _evaluate(files, out, 'extra', '--held-out', str(files / 'held.npz'), '--gate-seeds', '2',
                     '--classifier-updates', '400') == 0
    rep = json.loads((out / 'report.json').read_text())
    assert rep['gate']['evidence']['sufficient'], rep['gate']['evidence']
    assert rep['decision']['accepted'], rep['decision']
    assert rep['generator']['family'] == 'external' and rep['dataset']['held_out_from'].startswith('npz file')
    assert (out / 'combined.npz').is_file() and verify_dataset(out)['ok']
    assert 'optimistic' not in rep['decision']['advice']


@pytest.mark.parametrize('name, reason', [('shuffled', 'mostly of another class'), ('noise', 'mostly of another class')])
def test_shuffled_labels_and_noise_are_refused(files, tmp_path, name, reason):
    out = tmp_path / name
    assert _evaluate(files, out, name, '--held-out', str(files / 'held.npz'), '--gate-seeds', '2',
                     '--classifier-updates', '60') == 0
    rep = json.loads((out / 'report.json').read_text())
    assert not rep['decision']['accepted'] and any(reason in r for r in rep['decision']['reasons'])
    assert (out / 'rejected').is_dir() and not (out / 'combined.npz').exists()


def test_without_held_out_the_verdict_is_called_optimistic(files, tmp_path):
    out = tmp_path / 'o'
    assert _evaluate(files, out, 'extra', '--gate-seeds', '1', '--classifier-updates', '10') == 0
    rep = json.loads((out / 'report.json').read_text())
    assert 'optimistic' in rep['decision']['advice'] and rep['dataset']['held_out_from'] == 'a split of --real'
    assert 0 <= rep['held_out_copies'] <= 1


def test_bad_input_is_one_line_and_writes_nothing(files, tmp_path, capsys):
    cat = ImageDataset(torch.rand(4, 1, 8, 8), torch.tensor([0, 0, 1, 1]), ['0', 'cat'])
    save_npz(tmp_path / 'cat.npz', cat)
    save_npz(tmp_path / 'rgb.npz', ImageDataset(torch.rand(4, 3, 8, 8), torch.tensor([0, 0, 1, 1]), ['0', '1']))
    for synthetic, words in ((tmp_path / 'cat.npz', "--synthetic"), (tmp_path / 'rgb.npz', 'channel'),
                             (tmp_path / 'none.npz', '--synthetic')):
        status = main(['evaluate', '--real', str(files / 'real.npz'), '--synthetic', str(synthetic),
                       '--out', str(tmp_path / 'o'), '--quiet'])
        err = capsys.readouterr().err.strip()
        assert status == 2 and words in err and err.count('\n') == 0, err
        assert not (tmp_path / 'o').exists()
    assert "class(es) ['cat']" in (main(['evaluate', '--real', str(files / 'real.npz'), '--synthetic',
                                         str(tmp_path / 'cat.npz'), '--out', str(tmp_path / 'o'), '--quiet']) == 2
                                   and capsys.readouterr().err)
    (tmp_path / 'mine').mkdir(); (tmp_path / 'mine' / 'notes.txt').write_text('keep me')
    assert _evaluate(files, tmp_path / 'mine', 'extra', '--force') == 2
    assert (tmp_path / 'mine' / 'notes.txt').read_text() == 'keep me'
    assert main(['evaluate', '--real', str(files / 'real.npz'), '--synthetic', str(files / 'extra.npz'), '--out',
                 str(tmp_path / 'o'), '--synthetic-weight', '0', '--quiet']) == 2
