"The last hostile inputs: every failure one clear line (or the right result), and verify that trusts nothing."
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
import pytest
import torch
from genai_data.core import ConfigError, DataError, GenaiDataError, OutputWriteError, load_checked, save_checked
from genai_data.data import load_digits, tensor_dataloader
from genai_data.learner import Learner
from genai_data.metrics import SmallCNN

GENAI_DATA = shutil.which('genai-data', path=str(Path(sys.executable).parent)) or shutil.which('genai-data')


def cli(*args, timeout=600):
    r = subprocess.run([sys.executable, '-c', 'import sys; from genai_data.cli import main; sys.exit(main())',
                        *map(str, args)], capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, 'OMP_NUM_THREADS': '1'})
    return r.returncode, r.stderr.strip()


def one_line(status, err, words):
    assert status == 2 and err.count('\n') == 0 and 'Traceback' not in err and words in err, err


# ---------- bare tracebacks, now one line each
def test_enlarge_inf_is_one_line(tmp_path):
    one_line(*cli('run', '--dataset', 'digits', '--out', tmp_path / 'o', '--enlarge', 'inf', '--quiet'),
             '--enlarge must be a number > 1')
    from genai_data.synth import synthesis_targets
    with pytest.raises(ConfigError, match='enlarge must be a number > 1'): synthesis_targets([0, 0, 1], enlarge=float('inf'))
    assert not (tmp_path / 'o').exists()


def test_a_full_disk_during_a_checkpoint_is_one_line_and_the_last_one_survives(tmp_path, monkeypatch):
    p = tmp_path / 'ck.pt'
    save_checked({'step': 1}, p, 'demo/1')
    real = torch.save
    def full(obj, f, *a, **k):
        if isinstance(f, io.BytesIO): return real(obj, f, *a, **k)
        raise RuntimeError('[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0')
    monkeypatch.setattr(torch, 'save', full)
    with pytest.raises(OutputWriteError, match='anything written before is intact'): save_checked({'step': 2}, p, 'demo/1')
    monkeypatch.setattr(torch, 'save', real)
    assert load_checked(p, 'demo/1')['step'] == 1 and [x.name for x in tmp_path.iterdir()] == ['ck.pt']


def test_a_full_disk_while_the_learner_checkpoints(tmp_path, monkeypatch):
    x, y = torch.rand(16, 1, 8, 8), torch.arange(16) % 10
    learn = Learner(SmallCNN(), tensor_dataloader(x, y, batch_size=8, seed=0), progress=False, ckpt_dir=tmp_path)
    learn.fit(1)
    real = torch.save
    monkeypatch.setattr(torch, 'save', lambda obj, f, *a, **k: real(obj, f, *a, **k) if isinstance(f, io.BytesIO)
                        else (_ for _ in ()).throw(RuntimeError('[enforce fail at inline_container.cc:672] unexpected pos')))
    with pytest.raises(OutputWriteError, match='cannot write .*last.pt.*intact'): learn.fit(2)
    monkeypatch.setattr(torch, 'save', real)
    assert load_checked(tmp_path / 'last.pt', 'genai_data.learner/2', 'checkpoint')['epoch'] == 1


def test_an_empty_loader_says_so_before_torch_does():
    with pytest.raises(DataError, match='there are no samples to load'):
        tensor_dataloader(torch.zeros(0, 1, 8, 8), torch.zeros(0, dtype=torch.long), batch_size=4, shuffle=True)
    empty = load_digits()[:0]
    with pytest.raises(DataError, match='there are no samples to load'): Learner(SmallCNN(), empty.dataloader(8))


def test_a_sample_too_large_for_memory_is_refused_at_once():
    from genai_data.generators import SynthesisGenerator
    from genai_data.vae import VAE
    gen = SynthesisGenerator('cvae', updates=5).fit(load_digits(16)[:60])
    t0 = time.time()
    with pytest.raises(ConfigError, match='GiB for the result'): gen.sample(10**10)
    with pytest.raises(ConfigError, match='GiB for the result'): VAE((1, 8, 8), 4, arch='mlp').sample(10**10)
    assert time.time() - t0 < 5


# ---------- unclear errors: every flag checked before any work and any folder
@pytest.mark.parametrize('argv, words', [
    (['--classifier-updates', '0'], '--classifier-updates must be a whole number >= 1'),
    (['--updates', '0'], '--updates must be a whole number >= 1'),
    (['--long-tail', 'inf'], '--long-tail must be a ratio > 1'),
    (['--gate-seeds', '-2'], '--gate-seeds must be a whole number >= 1'),
    (['--sampling-strategy', '9=lots'], '--sampling-strategy'),
    (['--filter', '--filter-centroid', 'nan'], '--filter-centroid must be a finite number > 0'),
    (['--filter-centroid', '2'], '--filter-centroid is a filter of the drawn images; add --filter'),
    (['--epochs', '60'], '--epochs was replaced by --updates'),
])
def test_every_flag_is_checked_before_any_work(tmp_path, argv, words):
    t0 = time.time()
    one_line(*cli('run', '--dataset', 'digits', '--out', tmp_path / 'o', '--quiet', *argv), words)
    assert not (tmp_path / 'o').exists() and not (tmp_path / '.o.work').exists()
    assert time.time() - t0 < 30                                  # refused before loading, training or gating


# ---------- silent results, now refused
def test_nan_settings_and_empty_models_are_refused():
    from genai_data.vae import VAE
    from genai_data.diffusion import DiffusionModel, UNet
    with pytest.raises(ConfigError, match='latent_dim must be a whole number >= 1'): VAE(latent_dim=0)
    with pytest.raises(ConfigError, match='temperature must be a finite number'): VAE((1, 8, 8), 4).sample(2, temperature=float('nan'))
    with pytest.raises(ConfigError, match='guidance must be a finite number'):
        DiffusionModel(UNet((1, 8, 8), 8, n_classes=2), 'flow').sample(2, guidance=float('nan'))


# ---------- verify trusts nothing it cannot check
@pytest.fixture(scope='module')
def export(tmp_path_factory):
    out = tmp_path_factory.mktemp('v') / 'o'
    assert cli('run', '--dataset', 'digits', '--long-tail', '20', '--out', out, '--updates', '20', '--gate-seeds', '1',
               '--classifier-updates', '10', '--quiet')[0] == 0
    return out


def _copy(export, tmp_path):
    out = tmp_path / 'copy'
    shutil.copytree(export, out, symlinks=True)
    return out


def _verify(out):
    from genai_data.export import verify_dataset
    return verify_dataset(out)


def test_a_link_leaving_the_export_is_reported(export, tmp_path):
    out = _copy(export, tmp_path)
    assert _verify(out)['ok']
    png = sorted(out.rglob('*.png'))[0]
    outside = tmp_path / 'same.png'; shutil.copy(png, outside); png.unlink(); png.symlink_to(outside)
    r = _verify(out)
    assert not r['ok'] and r['links'] == [png.relative_to(out).as_posix()]
    status, err = cli('verify', out)
    assert status == 1 and 'links: ' in err and '1 link(s)' in err


@pytest.mark.parametrize('edit', ['accepted', 'verdict', 'class', 'origin'])
def test_an_edited_manifest_is_reported_even_with_its_digest_recomputed(export, tmp_path, edit):
    from genai_data.export import manifest_digest
    out = _copy(export, tmp_path)
    m = json.loads((out / 'manifest.json').read_text())
    if edit == 'accepted': m['accepted'] = not m['accepted']
    elif edit == 'verdict': m['gate']['verdict'] = 'helps' if m['gate']['verdict'] != 'helps' else 'hurts'
    elif edit == 'class': m['samples'][0]['class'] = '0' if m['samples'][0]['class'] != '0' else '1'
    else: m['samples'][0]['origin'] = 'real'
    (out / 'manifest.json').write_text(json.dumps(m))
    r = _verify(out)
    assert not r['ok'] and r['manifest_edited'] and r['claims'], r
    m['manifest_sha256'] = manifest_digest(m)                      # a careful editor recomputes the digest ...
    (out / 'manifest.json').write_text(json.dumps(m))
    r = _verify(out)
    assert not r['ok'] and not r['manifest_edited'] and r['claims'], r      # ... and the claims still disagree
    assert cli('verify', out)[0] == 1


HANDLER_LINE = next(i for i, line in enumerate((Path(__file__).resolve().parents[1] / 'genai_data' / 'cli.py')
                                             .read_text().splitlines(), 1)
                    if 'signal.signal(signal.SIGINT, _interrupted_while_starting)' in line)

def _before_our_handler(err:str) -> bool:
    "Whether every frame of the package's own code in `err` lies before cli.py installs its Ctrl-C handler."
    frames = re.findall(r'genai_data[/\\](\w+)\.py", line (\d+)', err)
    return all(m == '__init__' or (m == 'cli' and int(n) <= HANDLER_LINE) for m, n in frames)


@pytest.mark.skipif(GENAI_DATA is None, reason='the genai-data command is not installed (pip install -e .)')
@pytest.mark.parametrize('delay', [round(0.01 + 0.005 * i, 3) for i in range(19)] + [0.3, 1.0])   # dense early
def test_ctrl_c_in_the_first_second_exits_cleanly(tmp_path, delay):
    p = subprocess.Popen([GENAI_DATA, 'run', '--dataset', 'digits', '--out', str(tmp_path / 'o'), '--quiet'],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(delay)
        p.send_signal(signal.SIGINT)
        try: _, err = p.communicate(timeout=30)
        except subprocess.TimeoutExpired as e:
            # CPython can drop a Ctrl-C that lands during its own start-up and go on, before any handler of ours
            # exists: inside an import-lock callback ("Exception ignored in ..."), while it checks the script's
            # path ("Failed checking if argv[0] is an import path entry"), or elsewhere. Whatever it printed, no
            # code of ours past the handler's line may have seen it; the user presses Ctrl-C again, and that one
            # must be clean
            lost = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or '')
            assert _before_our_handler(lost), lost
            p.send_signal(signal.SIGINT)
            _, err = p.communicate(timeout=120)
            err = err.replace(lost, '', 1)
    finally:
        if p.poll() is None:                       # never leave a whole run going behind a failed check
            p.kill(); p.communicate()
    assert not (tmp_path / 'o').exists()
    # an interrupt before the handler's line (the package's __init__, the first lines of cli.py) lands where no
    # Python code can catch it yet, like Python's start-up or pip's launcher
    if p.returncode != 130 and _before_our_handler(err) and (not err or 'KeyboardInterrupt' in err):
        return
    assert p.returncode == 130 and 'Traceback' not in err and err.strip().count('\n') == 0, err
    assert 'interrupted; nothing was written' in err
