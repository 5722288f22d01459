import json
import shutil
import subprocess
import sys
from pathlib import Path
import numpy as np
import pytest
import torch
from genai_data.cli import prepare
from genai_data.data import load_digits, load_splits, stratified_split, clean

EXE = shutil.which('genai-data', path=str(Path(sys.executable).parent)) or shutil.which('genai-data')


def run_cli(*args):
    assert EXE, 'the genai-data command is not installed'
    return subprocess.run([EXE, *map(str, args)], capture_output=True, text=True, timeout=120)


def test_prepare_digits_end_to_end(tmp_path):
    out = tmp_path / 'prepared'
    r = run_cli('prepare', '--dataset', 'digits', '--out', out)
    assert r.returncode == 0, r.stderr
    assert '[4/4] writing' in r.stdout and 'done in' in r.stdout
    assert sorted(p.name for p in out.iterdir()) == ['.genai_data_output.json', 'dataset.npz', 'samples.png', 'summary.json']
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['n_images'] == 1797 and summary['image_shape'] == [1, 8, 8]
    n = {k: v['n'] for k, v in summary['splits'].items()}
    assert sum(n.values()) == 1797 and abs(n['train'] - 0.8 * 1797) < 10 and abs(n['test'] - 0.1 * 1797) < 10
    # the output reloads to exactly the tensors the library makes from the same seed
    ref = stratified_split(clean(load_digits().images, load_digits().labels, classes=load_digits().classes)[0], seed=0)
    back = load_splits(out)
    for k in ref:
        assert torch.equal(back[k].images, ref[k].images) and torch.equal(back[k].labels, ref[k].labels)
    assert (out / 'samples.png').read_bytes()[:4] == b'\x89PNG'


def test_prepare_refuses_existing_output_and_keeps_it(tmp_path):
    out = tmp_path / 'p'
    assert run_cli('prepare', '--dataset', 'digits', '--out', out, '--quiet').returncode == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    r = run_cli('prepare', '--dataset', 'digits', '--out', out, '--seed', '3')
    assert r.returncode == 2 and 'already exists' in r.stderr and '--force' in r.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    r = run_cli('prepare', '--dataset', 'digits', '--out', out, '--seed', '3', '--force', '--quiet')
    assert r.returncode == 0 and json.loads((out / 'summary.json').read_text())['seed'] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ['p']     # no temporary folders left behind


def test_prepare_failure_leaves_nothing(tmp_path, monkeypatch):
    import genai_data.core as core       # write_prepared imports save_figure from core when it runs
    def boom(*a, **k): raise KeyboardInterrupt
    monkeypatch.setattr(core, 'save_figure', boom)
    with pytest.raises(KeyboardInterrupt): prepare('digits', tmp_path / 'out', quiet=True)
    assert list(tmp_path.iterdir()) == []


def test_prepare_image_folder_with_size_and_corrupt_file(tmp_path, image_folder):
    root, small = image_folder
    (root / '2' / 'bad.jpg').write_bytes(b'\xff\xd8\xff not a jpeg')
    r = run_cli('prepare', '--dataset', root, '--out', tmp_path / 'o')
    assert r.returncode == 2 and 'bad.jpg' in r.stderr and not (tmp_path / 'o').exists()
    r = run_cli('prepare', '--dataset', root, '--out', tmp_path / 'o', '--skip-corrupt', '--size', '16',
                '--fractions', '0.5', '0.25', '0.25')
    assert r.returncode == 0, r.stderr
    s = load_splits(tmp_path / 'o')
    assert s['train'].shape == (1, 16, 16) and sum(len(v) for v in s.values()) == 12


def test_prepare_npz_with_nan_and_duplicates(tmp_path, digits):
    x = digits.images[:60].numpy().copy(); y = digits.labels[:60].numpy()
    x[0, 0, 0, 0] = np.nan
    x = np.concatenate([x, x[5:7]]); y = np.concatenate([y, y[5:7]])
    np.savez(tmp_path / 'd.npz', x=x, y=y)
    r = run_cli('prepare', '--dataset', tmp_path / 'd.npz', '--out', tmp_path / 'o')
    assert r.returncode == 2 and 'say its value range' in r.stderr
    r = run_cli('prepare', '--dataset', tmp_path / 'd.npz', '--input-range', '[0,1]', '--out', tmp_path / 'o',
                '--value-range', '[-1,1]', '--size', '16')
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp_path / 'o' / 'summary.json').read_text())
    assert summary['clean']['nonfinite']['indices'] == [0] and summary['clean']['duplicates']['count'] == 2
    assert summary['n_images'] == 59 and summary['value_range'] == '[-1,1]' and summary['image_shape'] == [1, 16, 16]


def test_prepare_bad_sources(tmp_path):
    r = run_cli('prepare', '--dataset', tmp_path / 'missing', '--out', tmp_path / 'o')
    assert r.returncode == 2 and 'neither a known dataset' in r.stderr
    r = run_cli('prepare', '--dataset', 'mnist', '--root', tmp_path, '--out', tmp_path / 'o')
    assert r.returncode == 2 and 'MNIST/raw' in r.stderr and '--download' in r.stderr
    few = load_digits()[:25]
    np.savez(tmp_path / 'few.npz', x=(few.images.numpy() * 255).astype(np.uint8), y=few.labels.numpy())
    r = run_cli('prepare', '--dataset', tmp_path / 'few.npz', '--out', tmp_path / 'o')
    assert r.returncode == 2 and 'too few' in r.stderr
    assert not (tmp_path / 'o').exists()


def test_cli_help_and_version():
    r = run_cli('--version')
    assert r.returncode == 0 and 'genai_data' in r.stdout
    r = run_cli('prepare', '--help')
    assert r.returncode == 0 and '--force' in r.stdout
    assert run_cli().returncode == 2


def test_run_flags_default_to_the_library_defaults():
    "The command line cannot import the library at start-up, so its defaults are written twice: they must agree."
    from dataclasses import fields
    from genai_data.cli import build_parser
    from genai_data.pipeline import RunConfig
    args = build_parser().parse_args(['run', '--dataset', 'digits', '--out', 'x'])
    want = {f.name: f.default for f in fields(RunConfig) if f.name not in ('dataset', 'out')}
    assert {k: getattr(args, k) for k in want} == want


def test_prepare_stretches_or_centre_crops_non_square_images(tmp_path):
    from PIL import Image
    rng = np.random.default_rng(0)
    for k in range(12):                                             # 2 classes of 30x50 colour images
        folder = tmp_path / 'in' / f'c{k % 2}'
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)).save(folder / f'{k}.png')
    for flags, words in (([], 'non-square images stretched, --crop keeps their centre'),
                         (['--crop'], 'non-square images centre-cropped to a square, resized to 16x16')):
        out = tmp_path / f'o{len(flags)}'
        r = run_cli('prepare', '--dataset', tmp_path / 'in', '--out', out, '--size', '16', '--quiet',
                    '--fractions', '0.5', '0.25', '0.25', *flags)
        assert r.returncode == 0, r.stderr
        assert words in json.loads((out / 'summary.json').read_text())['source']
        assert load_splits(out)['train'].shape == (3, 16, 16)
    first = lambda o: load_splits(o)['train'].images                # the same split, different pixels
    assert not torch.equal(first(tmp_path / 'o0'), first(tmp_path / 'o1'))


def test_every_loading_command_takes_crop():
    from dataclasses import fields
    from genai_data.cli import build_parser
    from genai_data.evaluate import EvaluateConfig
    from genai_data.pipeline import RunConfig
    from genai_data.stages import TrainConfig
    p = build_parser()
    for argv, config in ((['run', '--dataset', 'd', '--out', 'x'], RunConfig),
                         (['train', '--dataset', 'd', '--out', 'x'], TrainConfig),
                         (['evaluate', '--real', 'd', '--synthetic', 's', '--out', 'x'], EvaluateConfig)):
        assert p.parse_args(argv).crop is False and p.parse_args([*argv, '--crop']).crop is True
        assert 'crop' in {f.name for f in fields(config)}
    assert p.parse_args(['prepare', '--dataset', 'd', '--out', 'x', '--crop']).crop is True
