"The learner: generic loop, exact resume across processes, safe checkpoints, NaN guard, settings refused, DDP, AMP/compile."
import inspect
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from genai_data import learner as L
from genai_data.core import ConfigError, DataError, DatasetNotFoundError, seed_everything
from genai_data.data import load_digits, stratified_split
from genai_data.gan import GANStep
from genai_data.learner import (CheckpointError, Callback, ClassifierStep, EMA, Learner, NonFiniteLossError, SampleGrid,
                                Step, linear_decay, read_checkpoint)
from genai_data.metrics import SmallCNN

HELPERS = Path(__file__).parent / 'helpers'


@pytest.fixture(scope='module')
def splits():
    return stratified_split(load_digits(), seed=0)


def gan_models():
    G = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 64), nn.Tanh(), nn.Unflatten(1, (1, 8, 8)))
    D = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1))
    return G, D


# ---- the learner knows no model ---------------------------------------------------------------------------------------

def test_learner_module_defines_no_model_and_no_model_family():
    modules = [n for n, o in vars(L).items() if inspect.isclass(o) and issubclass(o, nn.Module) and o.__module__ == L.__name__]
    assert modules == ['EMA'], modules                   # the EMA wrapper is the only nn.Module the learner defines
    for name in ('GAN', 'VAE', 'SmallCNN', 'gan_', 'penalty', 'frozen'):
        assert not [n for n in L.__all__ if name in n], f'learner exports {name}-related names'
    assert {'fit', 'validate', 'save_checkpoint', 'load_checkpoint'}.isdisjoint(L.__all__)     # methods, not free functions
    assert all(callable(getattr(Learner, m)) for m in ('fit', 'validate', 'save_checkpoint', 'load_checkpoint', 'optimize'))


def test_classifier_step_lowers_loss_and_refuses_unknown_labels(splits):
    seed_everything(0)
    x, y = splits['train'].images[:64], splits['train'].labels[:64]
    learn = Learner(SmallCNN(dropout=0.0), [(x, y)], opt_func=lambda p: torch.optim.SGD(p, lr=0.05), progress=False)
    m = learn.raw_models['model'].eval()
    before = F.cross_entropy(m(x), y).item()
    logs = learn.step.train_batch(learn, (x, y))
    assert F.cross_entropy(m(x), y).item() < before and set(logs) == {'loss', 'acc'}
    with pytest.raises(DataError, match='label in this batch is 12 but the model has 10 outputs'):
        learn.step.train_batch(learn, (x, torch.full_like(y, 12)))


def test_a_new_step_needs_no_change_to_the_learner(splits):
    "A step the learner has never seen: two models under one optimizer, trained and validated."
    class Reconstruct(Step):
        models, optimizers = ('enc', 'dec'), {'ae': ('enc', 'dec')}
        def _loss(self, learn, x): return F.mse_loss(learn.models['dec'](learn.models['enc'](x)), x)
        def train_batch(self, learn, batch):
            loss = self._loss(learn, batch[0]); learn.optimize(loss, 'ae'); return {'loss': loss.detach()}
        def valid_batch(self, learn, batch): return {'loss': self._loss(learn, batch[0])}
    seed_everything(0)
    enc, dec = nn.Sequential(nn.Flatten(), nn.Linear(64, 8)), nn.Sequential(nn.Linear(8, 64), nn.Unflatten(1, (1, 8, 8)))
    learn = Learner({'enc': enc, 'dec': dec}, splits['train'].dataloader(128, seed=0), step=Reconstruct(),
                    valid_dl=splits['valid'].dataloader(256, shuffle=False), opt_func=lambda p: torch.optim.Adam(p, 1e-2), progress=False)
    assert list(learn.opts) == ['ae'] and len(learn.opts['ae'].param_groups[0]['params']) == 4
    h = learn.fit(3)
    assert h[-1]['valid_loss'] < h[0]['valid_loss'] < h[0]['train_loss']


def test_separate_optimizers_for_separate_players():
    G, D = gan_models()
    learn = Learner({'G': G, 'D': D}, [(torch.zeros(2, 1, 8, 8), torch.zeros(2).long())], step=GANStep(8), progress=False)
    g_ids = {id(p) for grp in learn.opts['G'].param_groups for p in grp['params']}
    d_ids = {id(p) for grp in learn.opts['D'].param_groups for p in grp['params']}
    assert g_ids == {id(p) for p in G.parameters()} and d_ids == {id(p) for p in D.parameters()} and not g_ids & d_ids


# ---- resume: split runs in two processes equal an uninterrupted run --------------------------------------------------

def _run(*args):
    r = subprocess.run([sys.executable, str(HELPERS / 'resume_worker.py'), *map(str, args)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


@pytest.mark.parametrize('kind,stop', [('gan', 15), ('gan', 30), ('classifier', 20)])
def test_split_run_resumes_bit_identically(tmp_path, kind, stop):
    _run(kind, 'full', tmp_path / 'a', tmp_path / 'full.pt')
    _run(kind, 'part', tmp_path / 'b', tmp_path / 'part.pt', stop)
    ck = read_checkpoint(tmp_path / 'b' / 'last.pt')
    assert ck['step'] == stop
    _run(kind, 'resume', tmp_path / 'b', tmp_path / 'resumed.pt')
    full, resumed, part = (torch.load(tmp_path / f, weights_only=True) for f in ('full.pt', 'resumed.pt', 'part.pt'))
    assert full.keys() == resumed.keys()
    for k in full: assert torch.equal(full[k], resumed[k]), f'{k} differs after resume'
    assert any(not torch.equal(full[k], part[k]) for k in full), 'the interrupted run should differ from the full one'


def test_resumed_mid_epoch_history_equals_uninterrupted(tmp_path, splits):
    "The epoch interrupted in the middle reports the mean over all of its batches, not only those after the resume."
    class StopAt(Callback):
        def after_batch(self):
            if self.learn.step_count == 5: raise KeyboardInterrupt
    def build(d, cbs=(), seed=0):
        seed_everything(seed)
        return Learner(SmallCNN(width=8, feature_dim=16), splits['train'].dataloader(128, seed=0), ckpt_dir=d, cbs=cbs, progress=False)
    full = build(tmp_path / 'a').fit(2)
    with pytest.raises(KeyboardInterrupt): build(tmp_path / 'b', [StopAt()]).fit(2)
    assert read_checkpoint(tmp_path / 'b' / 'last.pt')['batch'] == 5
    resumed = build(tmp_path / 'b', seed=7).fit(2, resume='last')
    assert resumed == full


def test_a_budget_in_updates_resumes_to_the_same_end(tmp_path, splits):
    "fit(updates=N) stops after N updates, mid-pass; interrupted and resumed, it ends where the whole run ends."
    class StopAt(Callback):
        def after_batch(self):
            if self.learn.step_count == 4: raise KeyboardInterrupt
    def build(d, cbs=(), seed=0):
        seed_everything(seed)
        return Learner(SmallCNN(width=8, feature_dim=16), splits['train'].dataloader(256, seed=0), ckpt_dir=d,
                       cbs=cbs, progress=False)
    n = len(splits['train'].dataloader(256)) + 2                  # one pass and two batches of the next
    whole = build(tmp_path / 'a'); hist = whole.fit(updates=n)
    assert whole.step_count == n and [r['step'] for r in hist] == [n - 2, n]
    with pytest.raises(KeyboardInterrupt): build(tmp_path / 'b', [StopAt()]).fit(updates=n)
    again = build(tmp_path / 'b', seed=7)
    assert again.fit(updates=n, resume='last') == hist and again.step_count == n
    for a, b in zip(whole.raw_models['model'].parameters(), again.raw_models['model'].parameters()):
        assert torch.equal(a, b)
    with pytest.raises(ConfigError, match='either epochs or updates'): build(None).fit(2, updates=3)
    with pytest.raises(ConfigError, match='updates must be a whole number'): build(None).fit(updates=0)


def test_sigint_writes_checkpoint_at_batch_end(tmp_path, splits):
    class CtrlC(Callback):
        def after_batch(self):
            if self.learn.step_count == 3: os.kill(os.getpid(), signal.SIGINT)
    learn = Learner(SmallCNN(width=8), splits['train'].dataloader(128, seed=0), ckpt_dir=tmp_path, cbs=[CtrlC()], progress=False)
    # a process started in the background by a non-interactive shell inherits SIGINT ignored: start from Python's own
    # handler whatever this one inherited, and give back what it had
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt): learn.fit(2)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler    # handler restored
    finally: signal.signal(signal.SIGINT, inherited)
    ck = read_checkpoint(tmp_path / 'last.pt')
    assert (ck['epoch'], ck['batch'], ck['step']) == (0, 3, 3)


# ---- checkpoints are safe ---------------------------------------------------------------------------------------------

def test_checkpoint_before_fit_then_resume(tmp_path, splits):
    learn = Learner(SmallCNN(width=8), splits['train'].dataloader(256, seed=0), ckpt_dir=tmp_path, progress=False)
    learn.save_checkpoint()
    assert read_checkpoint(tmp_path / 'last.pt')['step'] == 0
    assert len(learn.fit(1, resume='last')) == 1


def test_bad_checkpoints_are_refused_without_partial_load(tmp_path, splits):
    dl = splits['train'].dataloader(256, seed=0)
    learn = Learner(SmallCNN(width=8), dl, ckpt_dir=tmp_path, progress=False)
    learn.fit(1)
    good = tmp_path / 'last.pt'
    raw = good.read_bytes()
    (tmp_path / 'trunc.pt').write_bytes(raw[:len(raw) // 3])
    (tmp_path / 'junk.pt').write_bytes(b'not a checkpoint at all')
    torch.save({'weights': torch.zeros(3)}, tmp_path / 'foreign.pt')
    import pickle
    class Evil:
        def __reduce__(self): return (os.system, ('echo pwned',))
    with open(tmp_path / 'evil.pt', 'wb') as f: pickle.dump({'format': L.CKPT_FORMAT, 'x': Evil()}, f)
    for name, msg in (('trunc.pt', 'corrupt, truncated'), ('junk.pt', 'corrupt, truncated'), ('foreign.pt', 'not a genai_data checkpoint'),
                      ('evil.pt', 'corrupt, truncated')):
        with pytest.raises(CheckpointError, match=msg): learn.load_checkpoint(tmp_path / name)
    with pytest.raises(DatasetNotFoundError, match='does not exist'): learn.load_checkpoint(tmp_path / 'missing.pt')
    other = Learner(SmallCNN(width=16), dl, progress=False)
    before = {k: v.clone() for k, v in other.raw_models['model'].state_dict().items()}
    with pytest.raises(CheckpointError, match='does not match') as e: other.load_checkpoint(good)
    assert 'checkpoint' in str(e.value) and 'vs model' in str(e.value)
    assert all(torch.equal(before[k], v) for k, v in other.raw_models['model'].state_dict().items())
    G, D = gan_models()
    gan = Learner({'G': G, 'D': D}, dl, step=GANStep(8), progress=False)
    with pytest.raises(CheckpointError, match='models'): gan.load_checkpoint(good)


@pytest.mark.parametrize('where', [0.05, 0.25, 0.5, 0.75, 0.95])
def test_a_flipped_byte_is_refused_with_the_file_named(tmp_path, splits, where):
    learn = Learner(SmallCNN(width=8), splits['train'].dataloader(256, seed=0), ckpt_dir=tmp_path, progress=False)
    learn.fit(1)
    raw = bytearray((tmp_path / 'last.pt').read_bytes())
    raw[int(where * len(raw))] ^= 0x01
    (tmp_path / 'flip.pt').write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match='flip.pt'): learn.load_checkpoint(tmp_path / 'flip.pt')


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, splits):
    dl = splits['train'].dataloader(128, seed=0)
    class Poison(Callback):
        def before_batch(self):
            if self.learn.step_count == len(dl) + 2:
                with torch.no_grad(): next(self.learn.raw_models['model'].parameters()).fill_(float('nan'))
    learn = Learner(SmallCNN(width=8), dl, ckpt_dir=tmp_path, cbs=[Poison()], progress=False)
    with pytest.raises(NonFiniteLossError, match='epoch 1, batch 2') as e: learn.fit(3)
    assert 'last.pt' in str(e.value)
    ck = read_checkpoint(tmp_path / 'last.pt')
    assert (ck['epoch'], ck['batch']) == (1, 0)
    assert all(torch.isfinite(v).all() for v in ck['models']['model'].values() if v.is_floating_point())


# ---- logs, samples, EMA, AMP, compile -------------------------------------------------------------------------------

def test_jsonl_log_and_sample_grid(tmp_path, splits):
    G, D = gan_models()
    learn = Learner({'G': G, 'D': D}, splits['train'].to_range('[-1,1]').dataloader(256, seed=0), step=GANStep(8), ema=0.9,
                    log_path=tmp_path / 'log.jsonl', cbs=[SampleGrid(tmp_path / 'samples', every=1, n=16)], progress=False)
    learn.fit(2)
    lines = [json.loads(l) for l in (tmp_path / 'log.jsonl').read_text().splitlines()]
    assert [l['epoch'] for l in lines] == [1, 2] and all('train_loss_D' in l and 'train_loss_G' in l for l in lines)
    assert sorted(p.name for p in (tmp_path / 'samples').iterdir()) == ['epoch-0001.png', 'epoch-0002.png']
    assert set(learn.ema) == {'G', 'D'}


def test_progress_prints_one_line_per_epoch(splits, capsys):
    Learner(SmallCNN(width=8), splits['train'][:256].dataloader(128, seed=0), progress=True).fit(2)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 2 and out[0].startswith('epoch 1 step 2 train_acc')


def test_ema_closed_form():
    m = nn.Linear(1, 1, bias=False); nn.init.zeros_(m.weight)
    e = EMA(m, 0.8)
    with torch.no_grad(): m.weight.fill_(1.)
    for _ in range(5): e.update(m)
    torch.testing.assert_close(e.module.weight.item(), 1 - 0.8 ** 5)


@pytest.mark.parametrize('kw', [{'amp': 'bf16'}, {'channels_last': True}, {'compile': 'aot_eager'}, {'grad_clip': 0.5}])
def test_options_train_on_cpu(splits, kw):
    seed_everything(0)
    learn = Learner(SmallCNN(width=8), splits['train'].dataloader(128, seed=0), device='cpu', progress=False,
                    opt_func=lambda p: torch.optim.Adam(p, 3e-3), **kw)
    h = learn.fit(2)
    assert math.isfinite(h[-1]['train_loss']) and h[-1]['train_loss'] < h[0]['train_loss']


def test_bad_settings_are_refused_by_name(splits):
    dl = splits['train'].dataloader(128)
    cases = [(dict(device='cpu', amp='fp16'), 'fp16 autocast is for GPUs'), (dict(step=GANStep(8)), 'needs models'),
             (dict(grad_clip=-1.), 'grad_clip must be > 0'), (dict(ckpt_every=0), 'ckpt_every must be'),
             (dict(ckpt_every_steps=0), 'ckpt_every_steps must be'), (dict(ema={'nope': 0.9}), "ema names models \\['nope'\\]"),
             (dict(ema=1.5), 'EMA decay must be in'), (dict(opt_func={'other': None}), 'no entry for optimizer')]
    for kw, msg in cases:
        with pytest.raises(ConfigError, match=msg): Learner(SmallCNN(), dl, progress=False, **kw)
    learn = Learner(SmallCNN(width=8), dl, progress=False)
    for bad in (-1, 0, 1.5, True):
        with pytest.raises(ConfigError, match='epochs must be a whole number >= 1'): learn.fit(bad)
    with pytest.raises(ConfigError, match="resume='last' needs a ckpt_dir"): learn.fit(1, resume='last')
    with pytest.raises(ConfigError, match='no checkpoint path'): learn.save_checkpoint()


def test_an_empty_loader_is_refused(splits):
    with pytest.raises(DataError, match='yields no batches'):
        Learner(SmallCNN(width=8), splits['train'][:10].dataloader(64, drop_last=True), progress=False).fit(1)


# ---- distributed -----------------------------------------------------------------------------------------------------

def test_ddp_two_processes_end_identical(tmp_path):
    r = subprocess.run([sys.executable, str(HELPERS / 'ddp_worker.py'), str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    a, b = (torch.load(tmp_path / f'rank{i}.pt', weights_only=True) for i in (0, 1))
    assert (a['rank'], b['rank']) == (0, 1)
    for p, q in zip(a['params'], b['params']): assert torch.equal(p, q)
    assert a['batches_per_epoch'] == math.ceil(1437 / 2 / 64)       # each rank saw half of each epoch
    lines = (tmp_path / 'log.jsonl').read_text().splitlines()
    assert len(lines) == 2                                            # only rank 0 logged
    assert (tmp_path / 'ckpt' / 'last.pt').exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_amp_compile(splits):
    learn = Learner(SmallCNN(), splits['train'].dataloader(128, seed=0), device='cuda', amp='auto', channels_last=True,
                    compile=True, progress=False)
    h = learn.fit(2)
    assert h[-1]['train_acc'] > 0.5


@pytest.mark.parametrize('total,every', [(10, 1), (10, 5), (8, 5), (3, 1)])
def test_linear_decay_ends_at_zero_on_the_last_update(total, every):
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.2)
    sched = linear_decay(every)(opt, total)
    updates = max(1, total // every)
    lrs = []
    for _ in range(updates): opt.step(); sched.step(); lrs.append(opt.param_groups[0]['lr'])
    assert lrs == pytest.approx([0.2 * (1 - k / updates) for k in range(1, updates + 1)])
    assert lrs[-1] == 0 and all(a > b for a, b in zip(lrs, lrs[1:]))
    with pytest.raises(ConfigError, match='every must be a whole number >= 1'): linear_decay(0)
