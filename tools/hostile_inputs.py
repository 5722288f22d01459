"""Replay bad inputs and faults against a checkout and classify each outcome.

python tools/hostile_inputs.py [--json OUT]   (run with PYTHONPATH pointing at the checkout to judge)

Each case returns one verdict: 'clear' (the package's own error, naming the fix), 'unclear' (its own error,
without the fix), 'traceback' (any other exception, or a command that crashed), 'silent' (accepted with a wrong
result), 'lost' (user data deleted or written outside its folder), 'correct' (accepted and handled correctly).
"""
import json, os, shutil, subprocess, sys, tempfile, warnings
from pathlib import Path
import numpy as np
import torch

CASES = []
def case(name, group):
    def deco(f): CASES.append((name, group, f)); return f
    return deco

def err_verdict(e, *hints):
    "'clear' if `e` is the package's own error and names one of the hints, else 'unclear' or 'traceback'."
    from genai_data.core import GenaiDataError
    if not isinstance(e, GenaiDataError): return 'traceback'
    return 'clear' if any(h in str(e) for h in hints) else 'unclear'

def call(f, ok, *hints):
    "Run f(); an accepted call is judged by ok(result) -> 'correct' or 'silent'."
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore'); r = f()
    except Exception as e: return err_verdict(e, *hints)
    return ok(r)

def cli(*args, cwd=None):
    env = {**os.environ, 'PYTHONWARNINGS': 'default'}
    r = subprocess.run([sys.executable, '-c', 'import sys; from genai_data.cli import main; sys.exit(main())', *map(str, args)],
                       capture_output=True, text=True, cwd=cwd, env=env, timeout=600)
    return r.returncode, r.stderr

def cli_verdict(status, err, *hints, ok=None):
    if status == 0: return ok() if ok else 'silent'
    if 'Traceback' in err: return 'traceback'
    line = [l for l in err.strip().splitlines() if 'error:' in l]
    return 'clear' if line and any(h in line[-1] for h in hints) and len(err.strip().splitlines()) == 1 else 'unclear'

def folder(tmp, n=60, name='myimages'):
    from genai_data.data import load_digits, save_image_folder
    root = Path(tmp) / name
    try: save_image_folder(load_digits()[:n], root)                    # new API: a new folder
    except Exception: root.mkdir(parents=True, exist_ok=True); save_image_folder(load_digits()[:n], root)
    return root

def count_png(root): return len(list(Path(root).rglob('*.png')))

# ---- data loss --------------------------------------------------------------------------------------------------------
@case('prepare --out the source --force', 'loss')
def _(tmp):
    root = folder(tmp); s, e = cli('prepare', '--dataset', root, '--out', root, '--force', '--quiet')
    return 'lost' if count_png(root) < 60 else cli_verdict(s, e, 'overlaps')
@case('prepare --out inside the source --force', 'loss')
def _(tmp):
    root = folder(tmp); s, e = cli('prepare', '--dataset', root, '--out', root / 'prepared', '--force', '--quiet')
    return 'lost' if count_png(root) < 60 else cli_verdict(s, e, 'overlaps')
@case('prepare --out an unrelated folder --force', 'loss')
def _(tmp):
    p = Path(tmp) / 'project'; p.mkdir(); (p / 'thesis.tex').write_text('x')
    s, e = cli('prepare', '--dataset', 'digits', '--out', p, '--force', '--quiet')
    return 'lost' if not (p / 'thesis.tex').exists() else cli_verdict(s, e, 'did not write')
@case('prepare --out . --force', 'loss')
def _(tmp):
    w = Path(tmp) / 'work'; w.mkdir(); (w / 'keep.txt').write_text('x')
    s, e = cli('prepare', '--dataset', 'digits', '--out', '.', '--force', '--quiet', cwd=w)
    return 'lost' if not (w / 'keep.txt').exists() else cli_verdict(s, e, 'current, home or root')
@case('stale temporary folder of a killed run', 'loss')
def _(tmp):
    out = Path(tmp) / 'p'; stale = Path(tmp) / '.p.tmp-999999-0123abcd'; stale.mkdir()
    (stale / '.genai_data_tmp').write_text('1'); (stale / 'dataset.npz').write_bytes(b'x' * 1000)
    old_style = Path(tmp) / '.p.tmp-k3j2h1g0'; old_style.mkdir(); (old_style / 'dataset.npz').write_bytes(b'x')
    s, e = cli('prepare', '--dataset', 'digits', '--out', out, '--quiet')
    return 'correct' if s == 0 and not stale.exists() and 'removed' in e else 'silent'

# ---- unsafe names -----------------------------------------------------------------------------------------------------
def evil_npz(tmp):
    p = Path(tmp) / 'evil.npz'
    np.savez(p, x=(np.random.default_rng(0).random((30, 8, 8)) * 255).astype(np.uint8), y=np.arange(30) % 3,
             classes=np.array(['../../escaped', 'a/b', '']))
    return p
@case('.npz with classes ../../escaped, a/b, "" through prepare', 'names')
def _(tmp):
    s, e = cli('prepare', '--dataset', evil_npz(tmp), '--out', Path(tmp) / 'out', '--quiet')
    return cli_verdict(s, e, 'unsafe class name')
@case('save_image_folder of those classes', 'names')
def _(tmp):
    from genai_data.data import load_npz, save_image_folder
    base = Path(tmp) / 'a' / 'b'; base.mkdir(parents=True)
    def f(): save_image_folder(load_npz(evil_npz(tmp)), base / 'root')
    v = call(f, lambda r: 'silent', 'unsafe class name')
    return 'lost' if (Path(tmp) / 'a' / 'escaped').exists() or (Path(tmp) / 'escaped').exists() else v

# ---- silent wrong results -----------------------------------------------------------------------------------------------
@case('--size 0', 'silent')
def _(tmp): s, e = cli('prepare', '--dataset', 'digits', '--size', 0, '--out', Path(tmp) / 'o', '--quiet'); return cli_verdict(s, e, '--size')
@case('--size -3', 'silent')
def _(tmp): s, e = cli('prepare', '--dataset', 'digits', '--size', -3, '--out', Path(tmp) / 'o', '--quiet'); return cli_verdict(s, e, '--size')
@case('--size 1000000', 'silent')
def _(tmp): s, e = cli('prepare', '--dataset', 'digits', '--size', 10 ** 6, '--out', Path(tmp) / 'o', '--quiet'); return cli_verdict(s, e, '--size')
def sym_batch(): return torch.rand(8, 1, 8, 8) * 2 - 1
@case('GaussianNoise on [-1,1] images', 'silent')
def _(tmp):
    from genai_data.augment import GaussianNoise
    return call(lambda: GaussianNoise(0.1)(sym_batch()), lambda r: 'silent' if r.min() >= 0 else 'correct', "value_range='[-1,1]'")
@case('ColorJitter on [-1,1] images', 'silent')
def _(tmp):
    from genai_data.augment import ColorJitter
    return call(lambda: ColorJitter(0.3, 0.3)(sym_batch()), lambda r: 'silent' if r.min() >= 0 else 'correct', "value_range='[-1,1]'")
@case('DiffAugment(cutout_ratio=5)', 'silent')
def _(tmp):
    from genai_data.augment import DiffAugment
    return call(lambda: DiffAugment('cutout', cutout_ratio=5)(torch.rand(4, 1, 8, 8)), lambda r: 'silent' if r.abs().max() == 0 else 'correct', 'cutout_ratio')
@case('unconditional VAE + VAEStep(conditional=True) + sample(y=3)', 'silent')
def _(tmp):
    from genai_data.vae import VAE
    import genai_data.vae as V, genai_data.learner as L
    VAEStep = getattr(V, 'VAEStep', None) or getattr(L, 'VAEStep')
    def f():
        m = VAE((1, 8, 8), 3, arch='mlp', hidden=(8,))
        L.Learner(m, [(torch.rand(8, 1, 8, 8), torch.arange(8) % 2)], step=VAEStep(conditional=True), progress=False).fit(1)
        return m.sample(2, y=3)
    return call(f, lambda r: 'silent', 'n_classes', 'not conditional')
@case('conditional VAE sample(y=2.7)', 'silent')
def _(tmp):
    from genai_data.vae import VAE
    return call(lambda: VAE((1, 8, 8), 3, arch='mlp', hidden=(8,), n_classes=4).sample(2, y=2.7), lambda r: 'silent', 'whole numbers')
@case('Bernoulli VAE on [-1,1] data', 'silent')
def _(tmp):
    from genai_data.vae import VAE
    return call(lambda: VAE((1, 8, 8), 3, arch='mlp', hidden=(8,))(sym_batch()), lambda r: 'silent', 'to_range', "[0,1]")
F = lambda n=60, d=4, s=0: torch.randn(n, d, generator=torch.Generator().manual_seed(s))
@case('kid(subsets=0)', 'silent')
def _(tmp):
    from genai_data.metrics import kid
    return call(lambda: kid(F(), F(s=1), subsets=0), lambda r: 'silent', 'subsets')
@case('kid(subset_size=-5)', 'silent')
def _(tmp):
    from genai_data.metrics import kid
    return call(lambda: kid(F(), F(s=1), subset_size=-5), lambda r: 'silent', 'subset_size')
@case('ssim with NaN', 'silent')
def _(tmp):
    from genai_data.metrics import ssim
    x = torch.rand(1, 1, 16, 16); y = x.clone(); y[0, 0, 0, 0] = float('nan')
    return call(lambda: ssim(x, y), lambda r: 'silent', 'NaN')
@case('ssim of [-1,1] images at the default data_range', 'silent')
def _(tmp):
    from genai_data.metrics import ssim
    return call(lambda: ssim(sym_batch()[:, :, :, :] .repeat(1, 1, 2, 2), sym_batch().repeat(1, 1, 2, 2)), lambda r: 'silent', 'data_range')
@case('ssim of uint8 images at the default data_range', 'silent')
def _(tmp):
    from genai_data.metrics import ssim
    u = lambda: (torch.rand(1, 1, 16, 16) * 255).round()
    return call(lambda: ssim(u(), u()), lambda r: 'silent', 'data_range')
@case('prdc with NaN', 'silent')
def _(tmp):
    from genai_data.metrics import prdc
    return call(lambda: prdc(F(), F(s=1) * float('nan')), lambda r: 'silent', 'NaN')
@case('memorisation of an empty synthetic set', 'silent')
def _(tmp):
    from genai_data.metrics import memorisation
    return call(lambda: memorisation(F(), F()[:0], F(s=2)), lambda r: 'silent', 'empty')
def digits_parts(size):
    from genai_data.data import load_digits, stratified_split
    return stratified_split(load_digits(size), seed=0)
@case('utility: 8x8 test set, 16x16 training set', 'silent')
def _(tmp):
    from genai_data.metrics import utility
    a, b = digits_parts(16), digits_parts(8)
    return call(lambda: utility(a['train'][:100], a['train'][:100], b['test'], seeds=(0,), updates=5), lambda r: 'silent', 'Resize')
@case('utility: synthetic set in [-1,1]', 'silent')
def _(tmp):
    from genai_data.metrics import utility
    a = digits_parts(8)
    return call(lambda: utility(a['train'][:100], a['train'][:100].to_range('[-1,1]'), a['test'], seeds=(0,), updates=5),
                lambda r: 'silent', "to_range('[0,1]')")
def small_cnn():
    try: from genai_data.metrics import SmallCNN
    except ImportError: from genai_data.learner import SmallCNN
    return SmallCNN(width=8)
@case('fit(-1)', 'silent')
def _(tmp):
    from genai_data.learner import Learner
    return call(lambda: Learner(small_cnn(), [(torch.rand(4, 1, 8, 8), torch.zeros(4).long())], progress=False).fit(-1), lambda r: 'silent', 'epochs')
@case("a resumed epoch's logged train loss", 'silent')
def _(tmp):
    from genai_data.learner import Learner, Callback
    from genai_data.core import seed_everything
    tr = digits_parts(8)['train']
    class Stop(Callback):
        def after_batch(self):
            if self.learn.step_count == 5: raise KeyboardInterrupt
    def build(d, cbs=()):
        seed_everything(0); return Learner(small_cnn(), tr.dataloader(128, seed=0), ckpt_dir=d, cbs=cbs, progress=False)
    full = build(Path(tmp) / 'a').fit(2)
    try: build(Path(tmp) / 'b', [Stop()]).fit(2)
    except KeyboardInterrupt: pass
    resumed = build(Path(tmp) / 'b').fit(2, resume='last')
    return 'correct' if resumed == full else 'silent'
@case('a checkpoint with one flipped byte', 'silent')
def _(tmp):
    from genai_data.learner import Learner
    l = Learner(small_cnn(), [(torch.rand(4, 1, 8, 8), torch.zeros(4).long())], ckpt_dir=tmp, progress=False); l.fit(1)
    raw = bytearray((Path(tmp) / 'last.pt').read_bytes()); raw[len(raw) // 2] ^= 1; (Path(tmp) / 'f.pt').write_bytes(bytes(raw))
    return call(lambda: l.load_checkpoint(Path(tmp) / 'f.pt'), lambda r: 'silent', 'corrupt')

# ---- bare tracebacks and unclear errors -------------------------------------------------------------------------------
@case('decompression-bomb image', 'traceback')
def _(tmp):
    import PIL.Image
    root = folder(tmp, 20); PIL.Image.new('L', (11000, 11000)).save(root / '0' / 'bomb.png')
    s, e = cli('prepare', '--dataset', root, '--out', Path(tmp) / 'o', '--quiet'); return cli_verdict(s, e, '--skip-corrupt')
@case('decompression-bomb image with --skip-corrupt', 'traceback')
def _(tmp):
    import PIL.Image
    root = folder(tmp, 30); PIL.Image.new('L', (11000, 11000)).save(root / '0' / 'bomb.png')
    s, e = cli('prepare', '--dataset', root, '--out', Path(tmp) / 'o', '--quiet', '--skip-corrupt', '--fractions', '0.34', '0.33', '0.33')
    return 'correct' if s == 0 else cli_verdict(s, e, 'never')
@case('--fractions nan 0.5 0.5', 'traceback')
def _(tmp): s, e = cli('prepare', '--dataset', 'digits', '--fractions', 'nan', '0.5', '0.5', '--out', Path(tmp) / 'o', '--quiet'); return cli_verdict(s, e, '--fractions')
@case('--fractions -0.2 0.6 0.6', 'traceback')
def _(tmp): s, e = cli('prepare', '--dataset', 'digits', '--fractions', '-0.2', '0.6', '0.6', '--out', Path(tmp) / 'o', '--quiet'); return cli_verdict(s, e, '--fractions')
@case('--seed 2**40', 'traceback')
def _(tmp): s, e = cli('prepare', '--dataset', 'digits', '--seed', 2 ** 40, '--out', Path(tmp) / 'o', '--quiet'); return cli_verdict(s, e, '--seed')
@case('string labels in an .npz', 'traceback')
def _(tmp):
    p = Path(tmp) / 's.npz'; np.savez(p, x=(np.random.default_rng(0).random((30, 8, 8)) * 255).astype(np.uint8), y=np.array(['cat', 'dog', 'emu'] * 10))
    s, e = cli('prepare', '--dataset', p, '--out', Path(tmp) / 'o', '--quiet')
    return ('correct' if json.loads((Path(tmp) / 'o' / 'summary.json').read_text())['classes'] == ['cat', 'dog', 'emu'] else 'silent') if s == 0 else cli_verdict(s, e, 'never')
@case('string labels in fit_resample', 'traceback')
def _(tmp):
    from genai_data.resample import RandomOverSampler
    X, y = np.random.default_rng(0).normal(size=(9, 2)), np.array(['a'] * 6 + ['b'] * 3)
    return call(lambda: RandomOverSampler(random_state=0).fit_resample(X, y), lambda r: 'correct' if (r[1] == 'b').sum() == 6 else 'silent', 'never')
@case('labels 1..10 in an .npz', 'traceback')
def _(tmp):
    p = Path(tmp) / 'l.npz'; np.savez(p, x=(np.random.default_rng(0).random((40, 8, 8)) * 255).astype(np.uint8), y=np.arange(40) % 4 + 1)
    s, e = cli('prepare', '--dataset', p, '--out', Path(tmp) / 'o', '--quiet')
    return ('correct' if json.loads((Path(tmp) / 'o' / 'summary.json').read_text())['classes'] == ['1', '2', '3', '4'] else 'silent') if s == 0 else cli_verdict(s, e, 'never')
@case('a class folder that is a symlink to its parent', 'traceback')
def _(tmp):
    root = folder(tmp, 30)
    if (root / 'classes.json').exists(): (root / 'classes.json').unlink()
    os.symlink(root, root / 'loop')
    s, e = cli('prepare', '--dataset', root, '--out', Path(tmp) / 'o', '--quiet'); return cli_verdict(s, e, 'symbolic link')
@case('Mixup with string labels', 'traceback')
def _(tmp):
    from genai_data.augment import Mixup
    return call(lambda: Mixup()(torch.rand(2, 1, 4, 4), ['cat', 'dog']), lambda r: 'silent', 'class names')
@case("sample(y='3')", 'traceback')
def _(tmp):
    from genai_data.vae import VAE
    return call(lambda: VAE((1, 8, 8), 3, arch='mlp', hidden=(8,), n_classes=4).sample(2, y='3'), lambda r: 'silent', 'whole numbers')
@case('sample(-1)', 'traceback')
def _(tmp):
    from genai_data.vae import VAE
    return call(lambda: VAE((1, 8, 8), 3, arch='mlp', hidden=(8,)).sample(-1), lambda r: 'silent', 'whole number')
@case('Learner with an empty loader', 'traceback')
def _(tmp):
    from genai_data.learner import Learner
    return call(lambda: Learner(small_cnn(), [], progress=False).fit(1), lambda r: 'silent', 'no batches')
@case('Learner with a label beyond the classes', 'traceback')
def _(tmp):
    from genai_data.learner import Learner
    return call(lambda: Learner(small_cnn(), [(torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 10]))], progress=False).fit(1), lambda r: 'silent', 'outputs')
@case('Learner(ckpt_every=0)', 'traceback')
def _(tmp):
    from genai_data.learner import Learner
    return call(lambda: Learner(small_cnn(), [(torch.rand(4, 1, 8, 8), torch.zeros(4).long())], ckpt_dir=tmp, ckpt_every=0, progress=False).fit(1),
                lambda r: 'silent', 'ckpt_every')
@case('GaussianStats.load of a foreign pickle', 'traceback')
def _(tmp):
    from genai_data.metrics import GaussianStats
    torch.save({'n': 3}, Path(tmp) / 'f.pt')
    return call(lambda: GaussianStats.load(Path(tmp) / 'f.pt'), lambda r: 'silent', 'not a genai_data')
@case('prdc(k=0)', 'traceback')
def _(tmp):
    from genai_data.metrics import prdc
    return call(lambda: prdc(F(), F(s=1), k=0), lambda r: 'silent', 'k must be')
@case('inception_score(splits=0)', 'traceback')
def _(tmp):
    from genai_data.metrics import inception_score
    return call(lambda: inception_score(F()), lambda r: 'correct', 'never') if False else call(lambda: inception_score(F(), splits=0), lambda r: 'silent', 'splits')
@case('kid with mismatched dimensions', 'traceback')
def _(tmp):
    from genai_data.metrics import kid
    return call(lambda: kid(F(), F(d=3)), lambda r: 'silent', 'feature extractor')
@case('utility with an empty synthetic set', 'traceback')
def _(tmp):
    from genai_data.metrics import utility
    a = digits_parts(8)
    return call(lambda: utility(a['train'][:100], a['train'][:0], a['test'], seeds=(0,), updates=5), lambda r: 'silent', 'empty')
@case('utility with no seeds', 'traceback')
def _(tmp):
    from genai_data.metrics import utility
    a = digits_parts(8)
    return call(lambda: utility(a['train'][:100], a['train'][:100], a['test'], seeds=(), updates=5), lambda r: 'silent', 'seeds')
@case('stratified_split of an empty dataset', 'traceback')
def _(tmp):
    from genai_data.data import ImageDataset, stratified_split
    return call(lambda: stratified_split(ImageDataset(torch.zeros(0, 1, 4, 4), torch.zeros(0).long())), lambda r: 'silent', 'empty')
@case('CLI: float .npz without a range names --input-range', 'unclear')
def _(tmp):
    p = Path(tmp) / 'f.npz'; np.savez(p, x=np.random.default_rng(0).random((30, 8, 8)).astype(np.float32), y=np.arange(30) % 3)
    s, e = cli('prepare', '--dataset', p, '--out', Path(tmp) / 'o', '--quiet')
    return cli_verdict(s, e, '--input-range') if 'value_range=' not in e else 'unclear'
@case('CLI: corrupt file names --skip-corrupt', 'unclear')
def _(tmp):
    root = folder(tmp, 30); (root / '1' / 'bad.png').write_bytes(b'x')
    s, e = cli('prepare', '--dataset', root, '--out', Path(tmp) / 'o', '--quiet')
    return cli_verdict(s, e, '--skip-corrupt') if 'on_corrupt' not in e else 'unclear'
@case('CLI: images of mixed sizes name --size', 'unclear')
def _(tmp):
    import PIL.Image
    root = folder(tmp, 30); PIL.Image.new('L', (12, 12)).save(root / '0' / 'big.png')
    s, e = cli('prepare', '--dataset', root, '--out', Path(tmp) / 'o', '--quiet')
    return cli_verdict(s, e, '--size') if 'size=' not in e else 'unclear'
@case('CLI: the --skip-corrupt warning is one line', 'unclear')
def _(tmp):
    root = folder(tmp, 30); (root / '1' / 'bad.png').write_bytes(b'x')
    s, e = cli('prepare', '--dataset', root, '--out', Path(tmp) / 'o', '--quiet', '--skip-corrupt', '--fractions', '0.34', '0.33', '0.33')
    return 'correct' if s == 0 and len(e.strip().splitlines()) == 1 and 'UserWarning' not in e else 'unclear'
@case('output folders use the umask, not 0700', 'silent')
def _(tmp):
    s, e = cli('prepare', '--dataset', 'digits', '--out', Path(tmp) / 'o', '--quiet')
    mask = os.umask(0o022); os.umask(mask)
    return 'correct' if (Path(tmp) / 'o').stat().st_mode & 0o777 == 0o777 & ~mask else 'silent'

# ---- the last hostile inputs: tracebacks, unclear errors, silent results, a trusting verify ---------------------------
RUN = ['run', '--dataset', 'digits', '--long-tail', '20', '--quiet']
@case('run --enlarge inf', 'traceback')
def _(tmp): s, e = cli(*RUN, '--out', Path(tmp) / 'o', '--enlarge', 'inf'); return cli_verdict(s, e, '--enlarge')
@case('a full disk while torch writes a checkpoint', 'traceback')
def _(tmp):
    import io as _io
    from genai_data.core import load_checked, save_checked
    p = Path(tmp) / 'ck.pt'; save_checked({'step': 1}, p, 'demo/1'); real = torch.save
    def full(obj, f, *a, **k):
        if isinstance(f, _io.BytesIO): return real(obj, f, *a, **k)
        raise RuntimeError('[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0')
    torch.save = full
    try: v = call(lambda: save_checked({'step': 2}, p, 'demo/1'), lambda r: 'silent', 'anything written before is intact')
    finally: torch.save = real
    return 'lost' if load_checked(p, 'demo/1')['step'] != 1 else v
@case('Learner on an empty tensor_dataloader (shuffle on)', 'traceback')
def _(tmp):
    from genai_data.data import tensor_dataloader
    from genai_data.learner import Learner
    from genai_data.metrics import SmallCNN
    f = lambda: Learner(SmallCNN(), tensor_dataloader(torch.zeros(0, 1, 8, 8), torch.zeros(0, dtype=torch.long)))
    return call(f, lambda r: 'silent', 'no samples to load')
@case('SynthesisGenerator.sample(10**10)', 'traceback')
def _(tmp):
    from genai_data.data import load_digits
    from genai_data.generators import SynthesisGenerator
    g = SynthesisGenerator('cvae', updates=5).fit(load_digits(16)[:40])
    return call(lambda: g.sample(10 ** 10), lambda r: 'silent', 'at a time')
for _flag, _value, _words in (('--classifier-updates', 0, '--classifier-updates'), ('--updates', 0, '--updates'),
                              ('--long-tail', 'inf', '--long-tail')):
    def _make(flag=_flag, value=_value, words=_words):
        @case(f'run {flag} {value}: refused before any work or folder', 'unclear')
        def _(tmp):
            out = Path(tmp) / 'o'
            s, e = cli('run', '--dataset', 'digits', '--quiet', '--out', out, flag, value)
            left = out.exists() or (Path(tmp) / '.o.work').exists()
            return 'unclear' if left else cli_verdict(s, e, words)
    _make()
@case('VAE sample(temperature=nan)', 'silent')
def _(tmp):
    from genai_data.vae import VAE
    return call(lambda: VAE((1, 8, 8), 3, arch='mlp', hidden=(8,)).sample(2, temperature=float('nan')),
                lambda r: 'silent', 'temperature')
@case('VAE(latent_dim=0)', 'silent')
def _(tmp):
    from genai_data.vae import VAE
    return call(lambda: VAE((1, 8, 8), 0), lambda r: 'silent', 'latent_dim')
def exported(tmp):
    out = Path(tmp) / 'exp'
    s, e = cli(*RUN, '--out', out, '--updates', 20, '--gate-seeds', 1, '--classifier-updates', 10)
    assert s == 0, e
    return out
def verify_verdict(out):
    s, e = cli('verify', out)
    return 'correct' if s == 1 and 'does NOT match' in e and 'Traceback' not in e else 'silent'
@case('verify: a PNG replaced by a link to an identical file outside', 'silent')
def _(tmp):
    out = exported(tmp); png = sorted(out.rglob('*.png'))[0]; twin = Path(tmp) / 'twin.png'
    shutil.copy(png, twin); png.unlink(); png.symlink_to(twin)
    return verify_verdict(out)
for _what in ('accepted', 'verdict', 'class', 'origin'):
    def _make(what=_what):
        @case(f'verify: manifest {what} edited, its digest recomputed', 'silent')
        def _(tmp):
            from genai_data.export import manifest_digest
            out = exported(tmp); m = json.loads((out / 'manifest.json').read_text())
            if what == 'accepted': m['accepted'] = not m['accepted']
            elif what == 'verdict': m['gate']['verdict'] = 'hurts' if m['gate']['verdict'] == 'helps' else 'helps'
            elif what == 'class': m['samples'][0]['class'] = '0' if m['samples'][0]['class'] != '0' else '1'
            else: m['samples'][0]['origin'] = 'real'
            m['manifest_sha256'] = manifest_digest(m); (out / 'manifest.json').write_text(json.dumps(m))
            return verify_verdict(out)
    _make()
def _evaluate_case(tmp, synthetic, *extra):
    "genai-data evaluate on long-tailed digits with `synthetic` (a dataset written to an .npz), as a user would."
    from genai_data.data import load_digits
    from genai_data.export import save_npz
    real = Path(tmp) / 'real.npz'; save_npz(real, load_digits(8)[:300])
    if synthetic is not None: save_npz(Path(tmp) / 'syn.npz', synthetic)
    out = Path(tmp) / 'o'
    s, e = cli('evaluate', '--real', real, '--synthetic', Path(tmp) / 'syn.npz', '--out', out, '--quiet', *extra)
    return s, e, out
for _name, _make_syn, _extra, _words in (
        ('a class the real images lack', lambda: ('cat',), (), "class(es) ['cat']"),
        ('colour images for grey ones', lambda: ('rgb',), (), 'channel'),
        ('a missing --synthetic file', lambda: None, (), '--synthetic'),
        ('--synthetic-weight 0', lambda: ('ok',), ('--synthetic-weight', 0), '--synthetic-weight'),
        ('--classifier resnet9000', lambda: ('ok',), ('--classifier', 'resnet9000'), '--classifier')):
    def _make(name=_name, make_syn=_make_syn, extra=_extra, words=_words):
        @case(f'evaluate: {name}', 'new')
        def _(tmp):
            from genai_data.data import ImageDataset
            kind = make_syn()
            syn = None if kind is None else ImageDataset(
                torch.rand(4, 3 if kind[0] == 'rgb' else 1, 8, 8), torch.tensor([0, 0, 1, 1]),
                ['0', 'cat' if kind[0] == 'cat' else '1'])
            s, e, out = _evaluate_case(tmp, syn, *extra)
            return 'unclear' if out.exists() else cli_verdict(s, e, words)
    _make()
@case('Ctrl-C during the first second (imports)', 'traceback')
def _(tmp):
    import signal, time as _t
    p = subprocess.Popen([sys.executable, '-c', 'import sys; from genai_data.cli import main; sys.exit(main())',
                          'run', '--dataset', 'digits', '--out', str(Path(tmp) / 'o'), '--quiet'],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _t.sleep(0.3); p.send_signal(signal.SIGINT); _, e = p.communicate(timeout=120)
    if 'Traceback' in e: return 'traceback'
    return 'correct' if p.returncode == 130 and e.strip().count('\n') == 0 else 'unclear'


def main():
    import genai_data
    results = []
    for name, group, f in CASES:
        with tempfile.TemporaryDirectory() as tmp:
            try: verdict = f(tmp)
            except Exception as e: verdict = f'traceback (harness: {type(e).__name__}: {str(e)[:80]})'
        results.append({'case': name, 'group': group, 'verdict': verdict})
        print(f"{verdict:10} {group:9} {name}", flush=True)
    counts = {}
    for r in results: counts[r['verdict'].split(' ')[0]] = counts.get(r['verdict'].split(' ')[0], 0) + 1
    print(json.dumps({'genai_data': genai_data.__file__, 'cases': len(results), 'counts': counts}))
    if '--json' in sys.argv: Path(sys.argv[sys.argv.index('--json') + 1]).write_text(json.dumps({'counts': counts, 'results': results}, indent=1))

if __name__ == '__main__': main()
