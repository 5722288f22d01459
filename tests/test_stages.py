"`genai-data train` and `genai-data sample`: end to end, run's images drawn again, bad input in one line, nothing half-written."
import json, os, shutil, signal, subprocess, sys, time
from pathlib import Path
import pytest
import torch
from genai_data.cli import main
from genai_data.core import make_generator, sha256_file
from genai_data.data import load_npz
from genai_data.generators import GENERATIVE, SynthesisGenerator
from genai_data.pipeline import load_for_run
from genai_data.core import convert_range
from genai_data.stages import draw_batches


def _cli(*argv, capsys):
    status = main([str(a) for a in argv])
    return status, capsys.readouterr().err.strip()


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    "A cVAE trained for 20 updates by `genai-data train` on the 20:1 digits."
    out = tmp_path_factory.mktemp('train') / 'g'
    assert main(['train', '--dataset', 'digits', '--long-tail', '20', '--updates', '20', '--out', str(out),
                 '--quiet']) == 0
    return out


def test_train_writes_a_checked_generator_and_its_record(trained):
    record = json.loads((trained / 'training.json').read_text())
    assert record['generator']['sha256'] == sha256_file(trained / 'generator.pt')
    assert (record['generator']['family'], record['generator']['updates']) == ('cvae', 20)
    train = load_for_run('digits', seed=0, long_tail=20)[0]['train']
    assert record['dataset']['counts'] == dict(zip(train.classes, train.class_counts().tolist()))
    assert record['provenance']['config']['long_tail'] == 20
    assert SynthesisGenerator.load(trained / 'generator.pt').classes == train.classes


def test_train_says_how_far_it_is(tmp_path, capsys):
    assert main(['train', '--dataset', 'digits', '--updates', '30', '--out', str(tmp_path / 'g')]) == 0
    out = capsys.readouterr().out
    assert '[2/2] training cvae for 30 updates' in out and 'cvae: 30/30 updates' in out and 'left)' in out


def test_sample_per_class_and_counts_then_verify(trained, tmp_path, capsys):
    assert main(['sample', '--generator', str(trained), '--per-class', '4', '--out', str(tmp_path / 's'),
                 '--quiet']) == 0
    assert load_npz(tmp_path / 's' / 'synthetic.npz').class_counts().tolist() == [4] * 10
    assert main(['verify', str(tmp_path / 's'), '--quiet']) == 0
    png = next((tmp_path / 's').rglob('*.png'))
    png.write_bytes(png.read_bytes() + b'!')
    assert main(['verify', str(tmp_path / 's'), '--quiet']) == 1
    assert main(['sample', '--generator', str(trained / 'generator.pt'), '--counts', '9=5,0=2', '--seed', '4',
                 '--out', str(tmp_path / 'c'), '--quiet']) == 0
    m = json.loads((tmp_path / 'c' / 'manifest.json').read_text())
    assert [s['class'] for s in m['samples']] == ['0'] * 2 + ['9'] * 5
    assert m['config']['seed'] == 4 and m['generator']['sha256'] == sha256_file(trained / 'generator.pt')


def test_sample_draws_runs_images_again(tmp_path):
    run = tmp_path / 'run'
    assert main(['run', '--dataset', 'digits', '--long-tail', '20', '--updates', '20', '--seed', '2',
                 '--gate-seeds', '1', '--classifier-updates', '10', '--out', str(run), '--quiet']) == 0
    report = json.loads((run / 'report.json').read_text())
    counts = ','.join(f'{c}={n}' for c, n in report['counts']['added'].items() if n)
    assert main(['sample', '--generator', str(run), '--counts', counts, '--seed', '2',
                 '--out', str(tmp_path / 'again'), '--quiet']) == 0
    exported = report['decision']['exported_as']
    assert torch.equal(load_npz(tmp_path / 'again' / 'synthetic.npz').images,
                       load_npz(run / f'{exported}.npz').images)


@pytest.mark.parametrize('family', GENERATIVE)
def test_chunks_do_not_change_the_images(family):
    "Every family draws the same images in chunks of 1,000 as in one call (the noise comes 500 at a time)."
    train = load_for_run('digits', seed=0)[0]['train']
    model = SynthesisGenerator(family, 2).fit(train)
    y = torch.arange(10).repeat(120)
    assert torch.equal(torch.cat(list(draw_batches(model, y, 5, lambda *a: None, 1000))),
                       convert_range(model.sample(len(y), y, rng=make_generator(5)), '[0,1]', 'uint8'))


def test_sample_refuses_bad_input_in_one_line_and_writes_nothing(trained, tmp_path, capsys):
    out = tmp_path / 'o'
    broken = tmp_path / 'broken'; broken.mkdir()
    raw = bytearray((trained / 'generator.pt').read_bytes()); raw[len(raw) // 2] ^= 0xFF
    (broken / 'generator.pt').write_bytes(bytes(raw))
    mine = tmp_path / 'mine'; mine.mkdir(); (mine / 'notes.txt').write_text('keep me')
    cases = [(['--generator', broken, '--per-class', '1', '--out', out], 'is corrupt'),
             (['--generator', tmp_path / 'nothing', '--per-class', '1', '--out', out], 'does not exist'),
             (['--generator', tmp_path, '--per-class', '1', '--out', out], 'holds no generator.pt'),
             (['--generator', trained, '--counts', 'ten=4', '--out', out], "unknown class 'ten' in --counts"),
             (['--generator', trained, '--counts', '9=0', '--out', out], '--counts asks for no images'),
             (['--generator', trained, '--per-class', '-3', '--out', out], '--per-class must be a whole number'),
             (['--generator', trained, '--per-class', '1', '--out', trained], 'overlaps the input'),
             (['--generator', trained, '--per-class', '1', '--out', mine, '--force'], 'did not write'),
             (['--generator', trained, '--per-class', 10**9, '--out', out], 'GiB are free under')]
    for argv, words in cases:
        status, msg = _cli('sample', *argv, capsys=capsys)
        assert status == 2 and words in msg and '\n' not in msg, (argv, msg)
    assert not out.exists() and (mine / 'notes.txt').read_text() == 'keep me'
    assert sorted(p.name for p in trained.iterdir()) == ['.genai_data_output.json', 'generator.pt',
                                                         'training.json']


def test_train_refuses_bad_input_and_replaces_only_with_force(tmp_path, capsys):
    out = tmp_path / 'g'
    assert main(['train', '--dataset', 'digits', '--updates', '3', '--out', str(out), '--quiet']) == 0
    status, msg = _cli('train', '--dataset', 'digits', '--updates', '0', '--out', tmp_path / 'x', capsys=capsys)
    assert status == 2 and '--updates must be a whole number >= 1' in msg
    status, msg = _cli('train', '--dataset', 'digits', '--updates', '5', '--out', out, capsys=capsys)
    assert status == 2 and 'pass --force to replace it' in msg
    status, msg = _cli('train', '--dataset', 'digits', '--generator', 'cgan', '--size', '8', '--out',
                       tmp_path / 'y', capsys=capsys)
    assert status == 2 and '--size 16' in msg and not (tmp_path / 'y').exists()
    assert json.loads((out / 'training.json').read_text())['generator']['updates'] == 3
    assert main(['train', '--dataset', 'digits', '--updates', '5', '--out', str(out), '--force', '--quiet']) == 0
    assert json.loads((out / 'training.json').read_text())['generator']['updates'] == 5


CLI = shutil.which('genai-data', path=str(Path(sys.executable).parent)) or shutil.which('genai-data')


def _train_cmd(out, *extra):
    return [CLI, 'train', '--dataset', 'digits', '--long-tail', '20', '--updates', '1500', '--out', str(out), '--quiet',
            *extra]


@pytest.mark.skipif(CLI is None, reason='the genai-data command is not installed (pip install -e .)')
def test_kill_9_during_train_then_resume_ends_identical(tmp_path, capsys):
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'MPLBACKEND': 'Agg'}
    subprocess.run(_train_cmd(tmp_path / 'a'), check=True, env=env, timeout=600)
    p = subprocess.Popen(_train_cmd(tmp_path / 'b'), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = tmp_path / '.b.work' / 'ckpt' / 'last.pt'
    t0 = time.time()
    while not ckpt.exists() and p.poll() is None and time.time() - t0 < 300: time.sleep(0.05)
    time.sleep(0.5)
    assert p.poll() is None, 'train ended before it could be killed; give it more updates'
    p.send_signal(signal.SIGKILL); p.wait()
    assert not (tmp_path / 'b').exists()                                  # nothing half-written where the output goes
    status, msg = _cli('train', '--dataset', 'digits', '--long-tail', '20', '--updates', '1400', '--out',
                       tmp_path / 'b', '--resume', capsys=capsys)
    assert status == 2 and 'used other settings (--updates)' in msg, msg
    r = subprocess.run(_train_cmd(tmp_path / 'b', '--resume'), env=env, timeout=600, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    a, b = (SynthesisGenerator.load(tmp_path / x / 'generator.pt').net_.state_dict() for x in 'ab')
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not (tmp_path / '.b.work').exists()
