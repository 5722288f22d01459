"The export, its manifest and verify, the report template, and the pipeline that writes them."
import json
import shutil
import numpy as np
import pytest
import torch
from genai_data.core import ConfigError, CorruptFileError
from genai_data.data import load_image_folder, load_npz
from genai_data.export import REPORT_SECTIONS, render_report, verify_dataset
from genai_data import pipeline
from genai_data.pipeline import RunConfig, synthesize_dataset


def _config(out, **kw):
    return RunConfig('digits', str(out), **{'updates': 30, 'gate_seeds': 1, 'classifier_updates': 10, 'quiet': True, **kw})


@pytest.fixture(scope='module')
def exported(longtail, tmp_path_factory):
    tr, held, _ = longtail
    out = tmp_path_factory.mktemp('exp') / 'syn'
    rep = synthesize_dataset(tr, held, _config(out, accept_anyway=True), source={'description': 'test digits'})
    return out, rep


def test_export_layout_and_provenance(exported, longtail):
    out, rep = exported
    tr = longtail[0]
    names = {p.name for p in out.iterdir()}
    assert {'synthetic', 'synthetic.npz', 'combined.npz', 'generator.pt', 'manifest.json', 'report.html',
            'report.json'} <= names
    m = json.loads((out / 'manifest.json').read_text())
    assert m['source']['train_sha256'] == rep['dataset']['train_sha256'] and m['versions']['torch'] == torch.__version__
    assert m['config']['gate_seeds'] == 1 and m['config_sha256'] == rep['provenance']['config_sha256']
    n_new = sum(rep['counts']['added'].values())
    assert len(m['samples']) == n_new and {s['origin'] for s in m['samples']} == {'cvae'}
    assert all(s['file'] in m['files'] for s in m['samples'])
    folder, arrays = load_image_folder(out / 'synthetic', progress=False), load_npz(out / 'synthetic.npz')
    assert torch.equal(folder.images, arrays.images) and len(folder) == n_new
    with np.load(out / 'combined.npz') as z:
        assert list(z['origin']).count('real') == len(tr) and list(z['origin']).count('cvae') == n_new
    torchvision = pytest.importorskip('torchvision')
    assert len(torchvision.datasets.ImageFolder(out / 'synthetic')) == n_new


def test_report_is_the_template_of_report_json_in_plain_words(exported, longtail):
    out, rep = exported
    html = (out / 'report.html').read_text()
    assert all(f'id="{s}"' in html for s in REPORT_SECTIONS)
    assert html == render_report(json.loads((out / 'report.json').read_text()), longtail[0], load_npz(out / 'synthetic.npz'))
    for raw in ('vs_real', 'baseline_vs_real', 'balanced_acc', "'random+aug'", 'near_copies'):
        assert raw not in html, raw
    assert 'real + synthetic against real alone' in html and 'balanced accuracy' in html
    assert '<script' not in html and 'http' not in html.replace('http-equiv', '')


def test_verify_detects_tampering(exported, tmp_path):
    out = tmp_path / 'copy'
    shutil.copytree(exported[0], out)
    assert verify_dataset(out)['ok']
    pngs = sorted((out / 'synthetic').rglob('*.png'))
    pngs[0].write_bytes(b'x'); pngs[1].unlink(); (out / 'synthetic' / 'extra.png').write_bytes(b'y')
    r = verify_dataset(out)
    assert not r['ok'] and len(r['changed']) == 1 and len(r['missing']) == 1 and r['unexpected'] == ['synthetic/extra.png']
    (out / 'manifest.json').write_text('{')
    with pytest.raises(CorruptFileError, match='not valid JSON'): verify_dataset(out)


def test_rejected_data_is_not_exported_as_accepted(longtail, tmp_path, monkeypatch):
    tr, held, _ = longtail
    class Collapsed:                                    # a generator that draws one image per class
        def __init__(self, ds): self.ds, self.updates, self.seconds, self.classes = ds, 1, {'train': 0.}, ds.classes
        def sample(self, n, y, rng=None): return torch.stack([self.ds.images[self.ds.labels == c][0] for c in y.tolist()])
        def save(self, path): (tmp_path / 'saved').write_text('no')
    monkeypatch.setattr(pipeline, 'train_or_load', lambda generator, train, *a, **k: Collapsed(train))
    rep = synthesize_dataset(tr, held, _config(tmp_path / 'out', classifier_updates=30))
    assert not rep['decision']['accepted'] and any('collapsed' in r for r in rep['decision']['reasons'])
    names = {p.name for p in (tmp_path / 'out').iterdir()}
    assert 'rejected' in names and 'synthetic' not in names and 'combined.npz' not in names
    assert 'REJECTED' in (tmp_path / 'out' / 'report.html').read_text()


@pytest.mark.parametrize('bad, words', [
    (dict(gate_seeds=0), 'gate_seeds must be a whole number >= 1'),
    (dict(classifier_updates=0), 'classifier_updates must be a whole number >= 1'),
    (dict(long_tail=float('inf')), 'long_tail must be a ratio > 1'),
    (dict(enlarge=float('inf')), 'enlarge must be a number > 1'),
    (dict(updates=0), 'updates must be a whole number >= 1'),
    (dict(generator='gan'), "unknown generator 'gan'"),
])
def test_run_config_refuses_before_any_work(bad, words, tmp_path, longtail):
    tr, held, _ = longtail
    with pytest.raises(ConfigError, match=words): synthesize_dataset(tr, held, _config(tmp_path / 'o', **bad))
    assert not (tmp_path / 'o').exists() and not (tmp_path / '.o.work').exists()


def test_run_config_identity_is_the_resume_identity():
    a, b = RunConfig('digits', 'x'), RunConfig('other', 'y', quiet=True, force=True, device='cpu')
    assert a.identity() == b.identity()                           # where and how loudly: not the result
    assert RunConfig('digits', 'x', seed=1).identity() != a.identity()
    assert 'quiet' not in a.settings() and a.settings()['gate_seeds'] == 3
