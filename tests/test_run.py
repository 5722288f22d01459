"`genai-data run` and `genai-data verify` from the shell: bad input in one line, kill -9 then --resume, verify's exit status."
import json, os, shutil, signal, subprocess, sys, time
from pathlib import Path
import numpy as np
import pytest
import torch
from genai_data.cli import main
from genai_data.data import load_digits, save_image_folder, load_npz

CLI = shutil.which('genai-data', path=str(Path(sys.executable).parent)) or shutil.which('genai-data')
SMALL = ['--gate-seeds', '1', '--classifier-updates', '10', '--quiet']


def _run(*argv, capsys):
    status = main(list(argv))
    return status, capsys.readouterr().err.strip()


@pytest.mark.parametrize('extra, words', [
    (['--sampling-strategy', '0=2'], "class 0 has 104 samples; over-sampling cannot reduce it to 2"),
    (['--sampling-strategy', 'ten=50'], "unknown class 'ten' in --sampling-strategy"),
    (['--generator', 'cgan', '--size', '8'], 'resize them, e.g. --size 16'),
    (['--long-tail', '0.5'], '--long-tail must be a ratio > 1'),
    (['--enlarge', '1'], '--enlarge must be a number > 1'),
    (['--gate-seeds', '0'], '--gate-seeds must be a whole number >= 1'),
    (['--classifier-updates', '0'], '--classifier-updates must be a whole number >= 1'),
    (['--classifier', 'resnet9000'], "unknown --classifier 'resnet9000'"),
    (['--classifier', 'no_such_package.mod:make'], "cannot load --classifier 'no_such_package.mod:make'"),
    (['--synthetic-share', '1.5'], '--synthetic-share must be a number from 0 to 1'),
    (['--synthetic-weight', '-1'], '--synthetic-weight must be a finite number > 0'),
    (['--out', '.'], 'current, home or root'),
])
def test_run_refuses_bad_input_in_one_line(tmp_path, capsys, extra, words):
    argv = ['run', '--dataset', 'digits', '--out', str(tmp_path / 'o'), '--long-tail', '20', '--updates', '10', *SMALL]
    for flag, value in zip(extra[::2], extra[1::2]):
        if flag in argv: argv[argv.index(flag) + 1] = value
        else: argv += [flag, value]
    status, msg = _run(*argv, capsys=capsys)
    assert status == 2 and words in msg and msg.count('\n') == 0, msg
    assert not (tmp_path / 'o').exists()


def test_run_refuses_a_class_with_one_image_and_an_existing_out(tmp_path, capsys):
    ds = load_digits(16)
    keep = torch.cat([torch.nonzero(ds.labels == c).flatten()[:(1 if c == 2 else 30)] for c in range(3)])
    folder = save_image_folder(ds.subset(keep)._new(ds.images[keep], ds.labels[keep]), tmp_path / 'imgs')
    status, msg = _run('run', '--dataset', str(folder), '--out', str(tmp_path / 'o'), '--updates', '10', *SMALL, capsys=capsys)
    assert status == 2 and msg.count('\n') == 0 and ('1 image' in msg or 'only [' in msg or 'too few' in msg), msg
    (tmp_path / 'mine').mkdir(); (tmp_path / 'mine' / 'notes.txt').write_text('keep me')
    status, msg = _run('run', '--dataset', 'digits', '--long-tail', '20', '--out', str(tmp_path / 'mine'), '--force', *SMALL, capsys=capsys)
    assert status == 2 and 'did not write' in msg and (tmp_path / 'mine' / 'notes.txt').read_text() == 'keep me'


def _cmd(out, *extra):
    return [CLI, 'run', '--dataset', 'digits', '--long-tail', '20', '--out', str(out), '--updates', '1500', '--gate-seeds', '1',
            '--classifier-updates', '10', '--quiet', *extra]


def _result(out):
    "What must be identical between two runs: the synthetic images and labels, the gate's numbers, the generator's weights."
    rep = json.loads((out / 'report.json').read_text())
    sub = rep['decision']['exported_as']
    syn = load_npz(out / f'{sub}.npz')
    with torch.serialization.safe_globals([]):
        from genai_data.generators import SynthesisGenerator
        g = SynthesisGenerator.load(out / 'generator.pt')
    return syn.images, syn.labels, rep['gate']['arms'], {k: v for k, v in g.net_.state_dict().items()}


@pytest.mark.skipif(CLI is None, reason='the genai-data command is not installed (pip install -e .)')
def test_kill_9_during_training_then_resume_ends_identical(tmp_path):
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'MPLBACKEND': 'Agg'}
    subprocess.run(_cmd(tmp_path / 'a'), check=True, env=env, timeout=600)
    p = subprocess.Popen(_cmd(tmp_path / 'b'), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = tmp_path / '.b.work' / 'ckpt-cvae' / 'last.pt'
    t0 = time.time()
    while not ckpt.exists() and p.poll() is None and time.time() - t0 < 300: time.sleep(0.05)
    time.sleep(0.5)
    assert p.poll() is None, 'the run ended before it could be killed; give it more updates'
    p.send_signal(signal.SIGKILL); p.wait()
    assert not (tmp_path / 'b').exists()                                  # nothing half-written where the output goes
    r = subprocess.run(_cmd(tmp_path / 'b', '--resume'), env=env, timeout=600, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    a, b = _result(tmp_path / 'a'), _result(tmp_path / 'b')
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and a[2] == b[2]
    assert all(torch.equal(a[3][k], b[3][k]) for k in a[3])
    assert not (tmp_path / '.b.work').exists()                             # the work folder is gone once the run is complete
    status = subprocess.run([CLI, 'verify', str(tmp_path / 'b')], capture_output=True, text=True)
    assert status.returncode == 0 and status.stdout.startswith('ok: all')


def test_verify_exit_status(tmp_path, capsys):
    assert main(['run', '--dataset', 'digits', '--long-tail', '20', '--out', str(tmp_path / 'o'), '--updates', '20', *SMALL]) == 0
    assert main(['verify', str(tmp_path / 'o')]) == 0
    png = next((tmp_path / 'o').rglob('*.png'))
    png.write_bytes(png.read_bytes() + b'!')
    capsys.readouterr()
    assert main(['verify', str(tmp_path / 'o')]) == 1
    err = capsys.readouterr().err
    assert 'changed: ' in err and 'does NOT match its manifest' in err
    status, msg = _run('verify', str(tmp_path), capsys=capsys)
    assert status == 2 and 'has no manifest.json' in msg


@pytest.mark.skipif(CLI is None, reason='the genai-data command is not installed (pip install -e .)')
def test_run_under_torchrun_two_processes(tmp_path):
    "DDP training (gloo), sampling sharded by rank, rank 0 writes: the export verifies and records its world size."
    import socket
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'MPLBACKEND': 'Agg'}
    r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--nproc-per-node', '2', '--master-port', str(port), CLI,
                        'run', '--dataset', 'digits', '--long-tail', '20', '--out', str(tmp_path / 'o'), '--updates', '30',
                        '--gate-seeds', '1', '--classifier-updates', '10', '--device', 'cpu'],
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    assert r.stdout.count('[3/3] done') == 1                                  # one rank speaks
    rep = json.loads((tmp_path / 'o' / 'report.json').read_text())
    assert rep['provenance']['world_size'] == 2 and sum(rep['counts']['added'].values()) == 687
    assert main(['verify', str(tmp_path / 'o'), '--quiet']) == 0
    assert not (tmp_path / '.o.work').exists()


FACTORY = """import torch.nn as nn
def tiny(image_shape, n_classes):
    c, h, w = image_shape
    return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, 32), nn.ReLU(), nn.Linear(32, n_classes))
"""


@pytest.mark.parametrize('spec', ['resnet18', 'my_classifiers:tiny'])
def test_the_users_classifier_judges_end_to_end(tmp_path, capsys, monkeypatch, spec):
    (tmp_path / 'my_classifiers.py').write_text(FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / 'o'
    status, msg = _run('run', '--dataset', 'digits', '--long-tail', '20', '--out', str(out), '--updates', '10',
                       '--classifier', spec, '--synthetic-share', '0.5', '--synthetic-weight', '0.3', *SMALL,
                       capsys=capsys)
    assert status == 0, msg
    rep = json.loads((out / 'report.json').read_text())
    g = rep['gate']
    assert (g['classifier'], g['updates'], g['synthetic_share'], g['synthetic_weight']) == (spec, 10, 0.5, 0.3)
    assert rep['provenance']['config']['classifier'] == spec
    assert spec in (out / 'report.html').read_text() and main(['verify', str(out), '--quiet']) == 0


def test_run_on_64px_colour_photos_exports_a_verified_dataset(tmp_path, monkeypatch):
    # every family's networks at 64 px colour are checked in test_generators; this is the whole job end to end,
    # judged by a tiny classifier so that it takes seconds, not minutes
    (tmp_path / 'my_classifiers.py').write_text(FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / 'o'
    assert main(['run', '--dataset', 'photos', '--size', '64', '--long-tail', '10', '--updates', '4',
                 '--classifier', 'my_classifiers:tiny', '--out', str(out), *SMALL]) == 0
    source = json.loads((out / 'report.json').read_text())['dataset']
    assert source['image_shape'] == [3, 64, 64] and 'colour photographs (64x64)' in source['description']
    # a 4-update generator is rejected by the gate: its images are exported apart, as rejected.npz
    syn = load_npz(next(p for p in (out / 'synthetic.npz', out / 'rejected.npz') if p.exists()))
    assert syn.shape == (3, 64, 64) and syn.classes[:2] == ['astronaut', 'cat'] and len(syn) > 0
    assert main(['verify', str(out)]) == 0
