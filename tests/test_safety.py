"Nothing lost, nothing silently wrong: data-loss guards end to end, unsafe names, and one clear error per bad input (issue 16)."
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
import numpy as np
import pytest
import torch
from genai_data import augment as A
from genai_data.core import (ConfigError, CorruptFileError, DataError, GenaiDataError, OutputExistsError, OutputWriteError, atomic_dir,
                             atomic_write, is_tool_output, make_generator)
from genai_data.data import (ImageDataset, SkippedFilesWarning, clean, load_digits, load_image_folder, read_npz, resize_images,
                             save_image_folder, stratified_split)
from genai_data.gan import DCGANGenerator, MLPGenerator
from genai_data.learner import Learner
from genai_data.metrics import GaussianStats, SmallCNN, inception_score, kid, memorisation, prdc, ssim, utility
from genai_data.resample import SMOTE, RandomOverSampler
from genai_data.vae import VAE

GENAI_DATA = shutil.which('genai-data', path=str(Path(sys.executable).parent)) or shutil.which('genai-data')


def cli(*args, cwd=None, env=None):
    "Run the installed command; (exit status, stderr)."
    r = subprocess.run([GENAI_DATA, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)
    return r.returncode, r.stderr.strip()


@pytest.fixture
def myimages(tmp_path):
    return save_image_folder(load_digits()[:60], tmp_path / 'myimages')


def pngs(folder): return sorted(p.relative_to(folder) for p in Path(folder).rglob('*.png'))


# ---- data loss must be impossible (end to end, through the command) --------------------------------------------------

@pytest.mark.parametrize('out', ['same', 'inside'])
def test_output_on_the_source_is_refused_and_the_images_survive(myimages, out):
    before = pngs(myimages)
    target = myimages if out == 'same' else myimages / 'prepared'
    status, err = cli('prepare', '--dataset', myimages, '--out', target, '--force')
    assert status == 2 and 'overlaps the input' in err and '--out' in err, err
    assert pngs(myimages) == before and len(before) == 60


def test_output_containing_the_source_is_refused(myimages):
    status, err = cli('prepare', '--dataset', myimages, '--out', myimages.parent, '--force')
    assert status == 2 and 'overlaps the input' in err
    assert len(pngs(myimages)) == 60


def test_force_never_replaces_a_folder_genai_data_did_not_write(tmp_path):
    project = tmp_path / 'project'; project.mkdir(); (project / 'thesis.tex').write_text('two years of work')
    (project / 'data').mkdir(); (project / 'data' / 'raw.csv').write_text('1,2,3')
    status, err = cli('prepare', '--dataset', 'digits', '--out', project, '--force')
    assert status == 2 and 'did not write' in err and 'even with --force' in err, err
    assert (project / 'thesis.tex').read_text() == 'two years of work' and (project / 'data' / 'raw.csv').exists()


def test_force_replaces_what_genai_data_wrote(tmp_path):
    assert cli('prepare', '--dataset', 'digits', '--out', tmp_path / 'p', '--quiet')[0] == 0
    assert cli('prepare', '--dataset', 'digits', '--out', tmp_path / 'p', '--quiet', '--force', '--seed', '3')[0] == 0
    assert json.loads((tmp_path / 'p' / 'summary.json').read_text())['seed'] == 3 and is_tool_output(tmp_path / 'p')


@pytest.mark.parametrize('where', ['.', '~', '/', '..'])
def test_dangerous_targets_are_refused(tmp_path, where):
    work = tmp_path / 'home' / 'work'; work.mkdir(parents=True); (work / 'keep.txt').write_text('keep')
    status, err = cli('prepare', '--dataset', 'digits', '--out', where, '--force', cwd=work, env={**os.environ, 'HOME': str(tmp_path / 'home')})
    assert status == 2 and 'current, home or root' in err, err
    assert (work / 'keep.txt').read_text() == 'keep'


def test_kill_9_during_a_write_leaves_only_what_the_next_run_removes(tmp_path):
    "A real `kill -9` while the output is being written; the next run removes the stale temporary, says so, and nothing else."
    out = tmp_path / 'big'
    p = subprocess.Popen([GENAI_DATA, 'prepare', '--dataset', 'digits', '--size', '160', '--out', str(out), '--quiet'],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, tmp = time.time() + 240, []
    while time.time() < deadline and not tmp and p.poll() is None:
        tmp = [d for d in tmp_path.iterdir() if d.name.startswith('.big.tmp-')]
        time.sleep(0.02)
    if not tmp: p.kill(); pytest.fail('the write finished before the temporary folder was seen; raise --size')
    os.kill(p.pid, signal.SIGKILL); p.wait()
    assert not out.exists() and tmp[0].exists()                      # nothing half-written under the real name
    lookalike = tmp_path / '.big.tmp-1-abcdef01'; lookalike.mkdir(); (lookalike / 'user.txt').write_text('not ours')
    status, err = cli('prepare', '--dataset', 'digits', '--out', out)
    assert status == 0 and 'warning: removed 1 temporary' in err and tmp[0].name in err, err
    assert not tmp[0].exists() and lookalike.exists() and is_tool_output(out)


def test_a_full_or_read_only_disk_is_one_line_and_the_old_output_survives(tmp_path, monkeypatch):
    with atomic_dir(tmp_path / 'out') as t: (t / 'a.txt').write_text('v1')
    for code, words in ((errno.ENOSPC, 'no space is left'), (errno.EROFS, 'read-only'), (errno.EACCES, 'not permitted')):
        with pytest.raises(OutputWriteError, match=words):
            with atomic_dir(tmp_path / 'out', overwrite=True) as t: raise OSError(code, os.strerror(code))
        assert (tmp_path / 'out' / 'a.txt').read_text() == 'v1'
        with pytest.raises(OutputWriteError, match='anything written before is intact'):
            with atomic_write(tmp_path / 'out' / 'a.txt', 'w') as f: raise OSError(code, os.strerror(code))
        assert (tmp_path / 'out' / 'a.txt').read_text() == 'v1'


# ---- unsafe names --------------------------------------------------------------------------------------------------

def test_path_traversal_class_names_are_refused_end_to_end(tmp_path):
    x = (np.random.default_rng(0).random((30, 8, 8)) * 255).astype(np.uint8)
    np.savez(tmp_path / 'evil.npz', x=x, y=np.arange(30) % 3, classes=np.array(['../../escaped', 'a/b', '']))
    status, err = cli('prepare', '--dataset', tmp_path / 'evil.npz', '--out', tmp_path / 'out')
    assert status == 2 and 'unsafe class name' in err, err
    assert not list(tmp_path.parent.rglob('escaped')) and not (tmp_path / 'out').exists()


@pytest.mark.parametrize('classes,words', [(['../../escaped', 'b'], 'path separator'), (['a/b', 'c'], 'path separator'),
                                           (['', 'c'], 'empty'), (['..', 'c'], 'path component'), (['a\x00', 'b'], 'control character'),
                                           (['Cat', 'cat'], 'same after normalisation'), (['\u00e9', 'e\u0301'], 'same after normalisation')])
def test_unsafe_class_names_are_refused_where_a_dataset_is_built(classes, words):
    with pytest.raises(DataError, match=words): ImageDataset(torch.rand(2, 1, 4, 4), [0, 1], classes=classes)


def test_odd_but_valid_names_get_safe_folders_and_come_back(tmp_path):
    names = ['Ünï cat', '.hidden', 'a:b*c?', 'CON', 'x' * 300]
    ds = ImageDataset(torch.rand(10, 1, 4, 4), torch.arange(10) % 5, classes=names)
    root = save_image_folder(ds, tmp_path / 'out')
    folders = [e['folder'] for e in json.loads((root / 'classes.json').read_text())]
    assert all(f.isascii() and not f.startswith('.') and len(f) <= 100 for f in folders) and len(set(folders)) == 5
    back = load_image_folder(root)
    assert back.classes == names and back.labels.tolist() == sorted(ds.labels.tolist())


# ---- silent wrong results: each one raises now --------------------------------------------------------------------

@pytest.mark.parametrize('size', [0, -3, 3, 10 ** 6, 16.5])
def test_one_size_check_everywhere(tmp_path, size, myimages):
    for f in (lambda: load_digits(size), lambda: resize_images(torch.rand(1, 1, 8, 8), size),
              lambda: load_image_folder(myimages, size=size)):
        with pytest.raises(ConfigError, match='from 4 to 2048'): f()
    if isinstance(size, int):
        status, err = cli('prepare', '--dataset', 'digits', '--size', size, '--out', tmp_path / 'o')
        assert status == 2 and '--size must be a whole number of pixels' in err, err


TRANSFORMS = [A.RandomAffine(10), A.RandomResizedCrop(), A.RandomHorizontalFlip(), A.ColorJitter(0.3, 0.3), A.GaussianNoise(0.1),
              A.GaussianBlur(), A.RandomErasing(p=1), A.Cutout(0.5), A.TrivialAugmentWide()]

@pytest.mark.parametrize('t', TRANSFORMS, ids=lambda t: type(t).__name__)
def test_transforms_refuse_a_batch_outside_their_range(t):
    sym = torch.rand(4, 1, 16, 16) * 2 - 1
    with pytest.raises(DataError, match="build it with value_range='\\[-1,1\\]'"): t(sym)
    t.value_range = '[-1,1]'
    out = t(sym)
    assert out.min() >= -1 and out.max() <= 1 and out.min() < -0.1          # the lower half is kept, not clamped away


@pytest.mark.parametrize('kw,words', [(dict(cutout_ratio=5), 'cutout_ratio must be in'), (dict(cutout_ratio=0), 'cutout_ratio must be in'),
                                      (dict(translation_ratio=1.5), 'translation_ratio must be in')])
def test_diffaugment_ratios_outside_their_range_are_refused(kw, words):
    with pytest.raises(ConfigError, match=words): A.DiffAugment(**kw)


@pytest.mark.parametrize('model', ['vae', 'cvae', 'gan', 'cgan'])
def test_every_generator_refuses_labels_it_cannot_use(model):
    m = {'vae': lambda: VAE((1, 8, 8), 3, arch='mlp', hidden=(8,)), 'cvae': lambda: VAE((1, 8, 8), 3, arch='mlp', hidden=(8,), n_classes=4),
         'gan': lambda: MLPGenerator(4, (1, 8, 8)), 'cgan': lambda: MLPGenerator(4, (1, 8, 8), n_classes=4)}[model]()
    conditional = model.startswith('c')
    if not conditional:
        with pytest.raises(DataError, match='not conditional'): m.sample(2, y=3)
    for y in (2.7, '3', [0, 9]):
        if conditional:
            with pytest.raises(DataError, match='whole numbers|unknown class label|need 2 labels'): m.sample(2, y=y)
    with pytest.raises(ConfigError, match='n must be a whole number'): m.sample(-1)


def test_a_bernoulli_vae_refuses_data_in_minus_one_one():
    with pytest.raises(DataError, match="models images in \\[0,1\\].*to_range"): VAE((1, 8, 8), 3, arch='mlp')(torch.rand(2, 1, 8, 8) * 2 - 1)


FEATS = torch.randn(50, 4, generator=make_generator(0))

@pytest.mark.parametrize('call,error,words', [
    (lambda: kid(FEATS, FEATS, subsets=0), ConfigError, 'subsets must be'),
    (lambda: kid(FEATS, FEATS, subset_size=-5), ConfigError, 'subset_size must be'),
    (lambda: kid(FEATS, FEATS[:, :3]), DataError, 'same feature extractor'),
    (lambda: kid(FEATS * float('nan'), FEATS), DataError, 'NaN'),
    (lambda: prdc(FEATS, FEATS * float('nan')), DataError, 'NaN'),
    (lambda: prdc(FEATS, FEATS, k=0), ConfigError, 'k must be'),
    (lambda: memorisation(FEATS, FEATS[:0], FEATS), DataError, 'synthetic features are empty'),
    (lambda: inception_score(FEATS, splits=0), ConfigError, 'splits must be'),
    (lambda: ssim(torch.rand(1, 1, 16, 16) * float('nan'), torch.rand(1, 1, 16, 16)), DataError, 'NaN'),
    (lambda: ssim(torch.rand(1, 1, 16, 16) * 2 - 1, torch.rand(1, 1, 16, 16) * 2 - 1), DataError, 'pass data_range='),
    (lambda: ssim((torch.rand(1, 1, 16, 16) * 255).byte(), (torch.rand(1, 1, 16, 16) * 255).byte()), DataError, '255 for uint8'),
])
def test_metrics_refuse_what_they_cannot_measure(call, error, words):
    with pytest.raises(error, match=words): call()


def test_utility_refuses_mismatched_or_empty_inputs():
    sp = stratified_split(load_digits(16), seed=0)
    small = sp['train'][:100]
    with pytest.raises(DataError, match='Resize them'): utility(small, small, stratified_split(load_digits(8), seed=0)['test'])
    with pytest.raises(DataError, match="to_range\\('\\[0,1\\]'\\)"): utility(small, small.to_range('[-1,1]'), sp['test'])
    with pytest.raises(DataError, match='synthetic dataset is empty'): utility(small, small[:0], sp['test'])
    with pytest.raises(ConfigError, match='seeds is empty'): utility(small, small, sp['test'], seeds=())


def test_gaussian_stats_refuse_a_foreign_file(tmp_path):
    torch.save({'n': 3, 'sum': torch.zeros(2)}, tmp_path / 'foreign.pt')
    with pytest.raises(CorruptFileError, match='not a genai_data statistics file'): GaussianStats.load(tmp_path / 'foreign.pt')


# ---- bare tracebacks: each is one clear line now --------------------------------------------------------------------

def test_decompression_bombs_are_data_errors_and_skip_corrupt_covers_them(tmp_path, monkeypatch):
    import PIL.Image
    root = save_image_folder(load_digits()[:20], tmp_path / 'imgs')
    PIL.Image.new('L', (64, 64)).save(root / '0' / 'bomb.png')
    monkeypatch.setattr(PIL.Image, 'MAX_IMAGE_PIXELS', 1000)         # 64x64 = 4096 pixels is now "too large"
    with pytest.raises(DataError, match="too large to decode safely.*on_corrupt='skip'"): load_image_folder(root)
    with pytest.warns(SkippedFilesWarning, match='bomb.png'): assert len(load_image_folder(root, on_corrupt='skip')) == 20


def test_string_labels_and_labels_not_from_zero_are_mapped(tmp_path):
    x = (np.random.default_rng(0).random((12, 8, 8)) * 255).astype(np.uint8)
    np.savez(tmp_path / 'names.npz', x=x, y=np.array(['dog', 'cat', 'emu'] * 4))
    np.savez(tmp_path / 'one_based.npz', x=x, y=np.arange(12) % 3 + 1)
    _, y, classes, _ = read_npz(tmp_path / 'names.npz')
    assert classes == ['cat', 'dog', 'emu'] and y.tolist()[:3] == [1, 0, 2]
    _, y, classes, _ = read_npz(tmp_path / 'one_based.npz')
    assert classes == ['1', '2', '3'] and y.tolist()[:3] == [0, 1, 2]
    X, ys = np.random.default_rng(1).normal(size=(9, 2)), np.array(['a'] * 6 + ['b'] * 3)
    Xr, yr = RandomOverSampler(random_state=0).fit_resample(X, ys)
    assert yr.dtype.kind == 'U' and (yr == 'b').sum() == 6


def test_a_class_folder_that_links_to_its_parent_is_refused(tmp_path):
    root = tmp_path / 'imgs'
    save_image_folder(load_digits()[:20], root)
    (root / 'classes.json').unlink()
    os.symlink(root, root / 'loop')
    with pytest.raises(DataError, match='symbolic links'): load_image_folder(root)


@pytest.mark.parametrize('call,error,words', [
    (lambda: A.Mixup()(torch.rand(2, 1, 4, 4), ['cat', 'dog']), DataError, 'map class names to 0..K-1'),
    (lambda: stratified_split(load_digits()[:0]), DataError, 'empty'),
    (lambda: stratified_split(load_digits(), (float('nan'), 0.5, 0.5)), ConfigError, 'positive numbers'),
    (lambda: stratified_split(load_digits(), (-0.2, 0.6, 0.6)), ConfigError, 'positive numbers'),
    (lambda: stratified_split(load_digits(), seed=2 ** 40), ConfigError, 'seed must be an integer'),
    (lambda: Learner(SmallCNN(), [], progress=False).fit(1), DataError, 'yields no batches'),
    (lambda: Learner(SmallCNN(), [(torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 10]))], progress=False).fit(1), DataError, 'model has 10 outputs'),
    (lambda: Learner(SmallCNN(), [], ckpt_every=0, progress=False), ConfigError, 'ckpt_every must be'),
    (lambda: Learner(SmallCNN(), [(torch.rand(4, 1, 8, 8), torch.zeros(4).long())], progress=False).fit(-1), ConfigError, 'epochs must be'),
    (lambda: DCGANGenerator(8, (1, 16, 16), n_classes=3).sample(2, y='3'), DataError, 'whole numbers'),
])
def test_bad_input_is_one_clear_error(call, error, words):
    with pytest.raises(error, match=words): call()


@pytest.mark.parametrize('argv,words,absent', [
    (['--fractions', 'nan', '0.5', '0.5'], '--fractions must be positive', 'fractions='),
    (['--fractions', '-0.2', '0.6', '0.6'], '--fractions must be positive', 'fractions='),
    (['--seed', str(2 ** 40)], '--seed must be an integer', 'seed='),
    (['--size', '0'], '--size must be a whole number', 'size='),
    (['--dataset', 'no/such/dir'], '--dataset', 'dataset='),
])
def test_cli_messages_use_the_flags_the_user_typed(tmp_path, argv, words, absent):
    args = ['prepare', '--dataset', 'digits', '--out', tmp_path / 'o', *argv]
    status, err = cli(*args)
    assert status == 2 and words in err and absent not in err and err.count('\n') == 0, err


def test_cli_corrupt_file_and_npz_range_hints_name_flags(tmp_path):
    root = save_image_folder(load_digits()[:30], tmp_path / 'imgs')
    (root / '2' / 'broken.png').write_bytes(b'nope')
    status, err = cli('prepare', '--dataset', root, '--out', tmp_path / 'a')
    assert status == 2 and 'pass --skip-corrupt' in err and 'on_corrupt' not in err, err
    status, err = cli('prepare', '--dataset', root, '--out', tmp_path / 'a', '--skip-corrupt', '--quiet', '--fractions', '0.34', '0.33', '0.33')
    assert status == 0 and err.startswith('genai-data prepare: warning: skipped 1 unreadable file') and 'UserWarning' not in err, err
    np.savez(tmp_path / 'f.npz', x=np.random.default_rng(0).random((30, 8, 8)) * 255, y=np.arange(30) % 3)
    status, err = cli('prepare', '--dataset', tmp_path / 'f.npz', '--out', tmp_path / 'b', '--input-range', '[0,1]')
    assert status == 2 and '--input-range uint8' not in err and 'value_range=' not in err, err
    status, err = cli('prepare', '--dataset', tmp_path / 'f.npz', '--out', tmp_path / 'b')
    assert status == 2 and '--input-range' in err and 'value_range=' not in err, err


def test_output_folders_follow_the_umask(tmp_path):
    assert cli('prepare', '--dataset', 'digits', '--out', tmp_path / 'p', '--quiet')[0] == 0
    umask = os.umask(0o022); os.umask(umask)
    assert os.stat(tmp_path / 'p').st_mode & 0o777 == 0o777 & ~umask


# ---- fuzz: random files through read_npz -> clean -> stratified_split -> save_image_folder -> reload ---------------------

SAFE = list('abcXYZ019 -_.:é')
HOSTILE = ['/', '..', '\x00', '\t', 'ß', 'İ', '\u0301', '\\']

def _random_case(rng, tmp):
    "A random .npz: random bytes, or random shapes, dtypes, ranges, labels and class names; about half of them valid."
    p, valid = tmp / 'case.npz', rng.random() < 0.5
    if rng.random() < 0.1: p.write_bytes(rng.bytes(int(rng.integers(0, 300)))); return p, None
    n, k = int(rng.integers(0 if not valid else 8, 40)), int(rng.integers(1, 5))
    shape = [(n, 8, 8), (n, 1, 8, 8), (n, 3, 6, 6), (n, 6, 6, 3), (n, 2, 5, 5), (n, 64)][int(rng.integers(0, 4 if valid else 6))]
    dtype = [np.uint8, np.float32, np.float64, np.int16, np.bool_][int(rng.integers(0, 3 if valid else 5))]
    scale, shift = {np.uint8: (255, 0)}.get(dtype, ([1, 2][int(rng.integers(0, 2))], 0)) if valid else ([1, 255, 2, 300][int(rng.integers(0, 4))], rng.random() < 0.3)
    x = rng.random(shape) * scale - shift
    if dtype == np.uint8: x = np.round(x)
    if scale == 2: x, declared = x - 1, '[-1,1]'
    else: declared = 'uint8' if dtype == np.uint8 else '[0,1]'
    if not valid and rng.random() < 0.2 and n: x[0] = np.nan
    with np.errstate(invalid='ignore'): x = x.astype(dtype) if dtype != np.bool_ else x > 0.5
    y = rng.integers(0, k, n) if valid else rng.integers(0, k + (rng.random() < 0.2), n) + (rng.random() < 0.2)
    arrays = {'x': x, 'y': y if rng.random() < 0.8 else np.array([f'c{v}' for v in y])}
    pool = SAFE if valid else SAFE + HOSTILE
    if rng.random() < 0.6: arrays['classes'] = np.array([f'{i}' + ''.join(rng.choice(pool, int(rng.integers(0, 6)))) for i in range(k)]
                                                        if valid else [''.join(rng.choice(pool, int(rng.integers(0, 6)))) for _ in range(k)])
    if rng.random() < 0.3: arrays['value_range'] = np.array(declared if valid else ['[0,1]', '[-1,1]', 'uint8', 'bogus'][int(rng.integers(0, 4))])
    if 'classes' in arrays and arrays['y'].dtype.kind == 'U': arrays['y'] = y
    np.savez(p, **arrays)
    return p, (None if 'value_range' in arrays else declared) if valid else [None, '[0,1]', 'uint8'][int(rng.integers(0, 3))]


def test_fuzz_round_trip_or_own_error(tmp_path):
    rng, outcomes = np.random.default_rng(2026), {'round trip': 0, 'refused': 0}
    for case in range(200):
        d = tmp_path / str(case); d.mkdir()
        p, value_range = _random_case(rng, d)
        try:
            x, y, classes, rng_name = read_npz(p, value_range)
            ds, _ = clean(x, y, classes=classes, value_range=rng_name)
            part = stratified_split(ds, (0.5, 0.5), names=('a', 'b'), seed=case)['a']
            back = load_image_folder(save_image_folder(part, d / 'folder'))
        except GenaiDataError:
            outcomes['refused'] += 1; continue
        # every image and label survives (as 8-bit PNG pixels), class by class in their original order
        assert back.classes == part.classes and back.shape == part.shape, case
        order = torch.argsort(part.labels, stable=True)
        assert torch.equal(back.labels, part.labels[order]), case
        assert (back.images - part.to_range('[0,1]').images[order]).abs().max() <= 0.5 / 255 + 1e-6, case
        outcomes['round trip'] += 1
    print(outcomes)
    assert outcomes['round trip'] >= 20 and outcomes['refused'] >= 20, outcomes
