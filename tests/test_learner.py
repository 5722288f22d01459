"The learner: each step kind learns, exact resume across processes, safe checkpoints, NaN guard, DDP, AMP/compile."
import copy
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
from genai_data.core import DataError, seed_everything
from genai_data.data import load_digits, stratified_split
from genai_data.learner import (CheckpointError, Callback, EMA, GANStep, Learner, NonFiniteLossError, SampleGrid,
                                SmallCNN, VAEStep, gan_d_loss, gan_g_loss, gradient_penalty, linear_decay, r1_penalty, read_checkpoint)

HELPERS = Path(__file__).parent / 'helpers'


@pytest.fixture(scope='module')
def splits():
    return stratified_split(load_digits(), seed=0)


class TinyVAE(nn.Module):
    def __init__(self, d=64, z=4):
        super().__init__(); self.enc, self.dec, self.z = nn.Linear(d, 2 * z), nn.Linear(z, d), z
    def forward(self, x, y=None):
        mu, logvar = self.enc(x.flatten(1)).chunk(2, 1)
        zz = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
        rec = F.binary_cross_entropy_with_logits(self.dec(zz), x.flatten(1), reduction='sum') / len(x)
        kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum() / len(x)
        return {'loss': rec + kl, 'kl': kl}
    def sample(self, n, y=None, generator=None):
        return torch.sigmoid(self.dec(torch.randn(n, self.z, generator=generator))).reshape(n, 1, 8, 8)


def gan_models():
    G = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 64), nn.Tanh(), nn.Unflatten(1, (1, 8, 8)))
    D = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1))
    return G, D


# ---- each step kind lowers its loss on a fixed batch ------------------------------------------------------------

def test_classifier_step_lowers_loss(splits):
    seed_everything(0)
    x, y = splits['train'].images[:64], splits['train'].labels[:64]
    learn = Learner(SmallCNN(dropout=0.0), [(x, y)], opt_func=lambda p: torch.optim.SGD(p, lr=0.05), progress=False)
    m = learn.raw_models['model'].eval()
    before = F.cross_entropy(m(x), y).item()
    learn.step.train_batch(learn, (x, y))
    assert F.cross_entropy(m(x), y).item() < before


def test_vae_step_lowers_loss(splits):
    seed_everything(0)
    x, y = splits['train'].images[:64], splits['train'].labels[:64]
    learn = Learner(TinyVAE(), [(x, y)], step=VAEStep(), opt_func=lambda p: torch.optim.SGD(p, lr=1e-3), progress=False)
    torch.manual_seed(1); before = learn.raw_models['model'](x)['loss'].item()
    learn.step.train_batch(learn, (x, y))
    torch.manual_seed(1); assert learn.raw_models['model'](x)['loss'].item() < before


@pytest.mark.parametrize('loss', ['ns', 'saturating', 'hinge', 'wgan-gp'])
def test_gan_step_each_player_lowers_its_loss(splits, loss):
    seed_everything(0)
    x = splits['train'].to_range('[-1,1]').images[:64]; y = splits['train'].labels[:64]
    G, D = gan_models()
    learn = Learner({'G': G, 'D': D}, [(x, y)], step=GANStep(8, loss=loss), opt_func=lambda p: torch.optim.SGD(p, lr=0.01), progress=False)
    z = torch.randn(64, 8)
    d_before = gan_d_loss(D(x), D(G(z)), loss).item()
    g_params = [p.clone() for p in G.parameters()]
    learn.step.step_count = 0
    # D step alone: run the step with G's update disabled by a huge n_critic
    learn.step.n_critic = 10 ** 9; learn.step_count = 1
    learn.step.train_batch(learn, (x, y))
    assert gan_d_loss(D(x), D(G(z)), loss).item() < d_before
    assert all(torch.equal(a, b) for a, b in zip(g_params, G.parameters())), 'the D step must not change G'
    g_before = gan_g_loss(D(G(z)), loss).item()
    d_params = [p.clone() for p in D.parameters()]
    learn.optimize(gan_g_loss(D(G(z)), loss), 'G')
    assert gan_g_loss(D(G(z)), loss).item() < g_before
    assert all(torch.equal(a, b) for a, b in zip(d_params, D.parameters())), 'the G step must not change D'


def test_separate_optimizers_and_frozen_d():
    G, D = gan_models()
    learn = Learner({'G': G, 'D': D}, [(torch.zeros(2, 1, 8, 8), torch.zeros(2).long())], step=GANStep(8), progress=False)
    g_ids = {id(p) for grp in learn.opts['G'].param_groups for p in grp['params']}
    d_ids = {id(p) for grp in learn.opts['D'].param_groups for p in grp['params']}
    assert g_ids == {id(p) for p in G.parameters()} and d_ids == {id(p) for p in D.parameters()} and not g_ids & d_ids


def test_gradient_penalty_matches_definition():
    D = nn.Linear(4, 1, bias=False)
    real, fake = torch.randn(16, 4), torch.randn(16, 4)
    gp = gradient_penalty(D, real, fake)
    # a linear critic's input gradient is its weight everywhere
    torch.testing.assert_close(gp, (D.weight.norm() - 1) ** 2)


def test_r1_penalty_matches_closed_forms():
    D = nn.Linear(4, 1)
    torch.testing.assert_close(r1_penalty(D, torch.randn(16, 4)), D.weight.pow(2).sum())   # gradient = w everywhere
    x = torch.randn(10, 3)      # D(x) = -||x||^2 / 2 has gradient -x, so R1 = mean ||x||^2
    torch.testing.assert_close(r1_penalty(lambda v: -0.5 * v.pow(2).sum(1, keepdim=True), x), x.pow(2).sum(1).mean())
    r1_penalty(D, torch.randn(16, 4)).backward()                    # differentiable in D's weights: d||w||^2/dw = 2w
    torch.testing.assert_close(D.weight.grad, 2 * D.weight.detach())


def test_gan_step_r1_weight_adds_the_penalty(splits):
    "One D step with r1_weight=2 equals SGD on the adversarial loss + 2/2 * R1, computed by hand."
    x = splits['train'].to_range('[-1,1]').images[:32]; y = splits['train'].labels[:32]
    seed_everything(0); G, D = gan_models(); D0 = copy.deepcopy(D)
    learn = Learner({'G': G, 'D': D}, [(x, y)], step=GANStep(8, r1_weight=2., n_critic=10 ** 9),
                    opt_func=lambda p: torch.optim.SGD(p, lr=0.1), progress=False)
    learn.step_count = 1                                           # not a G step
    torch.manual_seed(5); logs = learn.step.train_batch(learn, (x, y))
    torch.manual_seed(5); fake = G(torch.randn(32, 8)).detach()
    r1 = r1_penalty(D0, x)
    torch.autograd.backward(gan_d_loss(D0(x), D0(fake), 'ns') + 2. / 2 * r1)
    for p, p0 in zip(D.parameters(), D0.parameters()): torch.testing.assert_close(p, p0 - 0.1 * p0.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(logs['r1'], r1.detach())
    assert 'r1' not in GANStep(8).train_batch(learn, (x, y))
    for bad in (-1., float('nan')):
        with pytest.raises(DataError, match='r1_weight must be >= 0'): GANStep(8, r1_weight=bad)


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


def test_sigint_writes_checkpoint_at_batch_end(tmp_path, splits):
    class CtrlC(Callback):
        def after_batch(self):
            if self.learn.step_count == 3: os.kill(os.getpid(), signal.SIGINT)
    learn = Learner(SmallCNN(width=8), splits['train'].dataloader(128, seed=0), ckpt_dir=tmp_path, cbs=[CtrlC()], progress=False)
    with pytest.raises(KeyboardInterrupt): learn.fit(2)
    ck = read_checkpoint(tmp_path / 'last.pt')
    assert (ck['epoch'], ck['batch'], ck['step']) == (0, 3, 3)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler    # handler restored


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
    with open(tmp_path / 'evil.pt', 'wb') as f: pickle.dump({'format': 'genai_data.learner/1', 'x': Evil()}, f)
    for name, msg in (('trunc.pt', 'corrupt, truncated'), ('junk.pt', 'corrupt, truncated'), ('foreign.pt', 'not a genai_data'),
                      ('evil.pt', 'corrupt, truncated'), ('missing.pt', 'does not exist')):
        with pytest.raises(CheckpointError, match=msg): learn.load_checkpoint(tmp_path / name)
    other = Learner(SmallCNN(width=16), dl, progress=False)
    before = {k: v.clone() for k, v in other.raw_models['model'].state_dict().items()}
    with pytest.raises(CheckpointError, match='does not match') as e: other.load_checkpoint(good)
    assert 'checkpoint' in str(e.value) and 'vs model' in str(e.value)
    assert all(torch.equal(before[k], v) for k, v in other.raw_models['model'].state_dict().items())
    G, D = gan_models()
    gan = Learner({'G': G, 'D': D}, dl, step=GANStep(8), progress=False)
    with pytest.raises(CheckpointError, match='models'): gan.load_checkpoint(good)


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


def test_ema_closed_form():
    m = nn.Linear(1, 1, bias=False); nn.init.zeros_(m.weight)
    e = EMA(m, 0.8)
    with torch.no_grad(): m.weight.fill_(1.)
    for _ in range(5): e.update(m)
    torch.testing.assert_close(e.module.weight.item(), 1 - 0.8 ** 5)


@pytest.mark.parametrize('kw', [{'amp': 'bf16'}, {'channels_last': True}, {'compile': 'aot_eager'}, {'grad_clip': 0.1}])
def test_options_train_on_cpu(splits, kw):
    seed_everything(0)
    learn = Learner(SmallCNN(width=8), splits['train'].dataloader(128, seed=0), device='cpu', progress=False, **kw)
    h = learn.fit(2)
    assert math.isfinite(h[-1]['train_loss']) and h[-1]['train_loss'] < h[0]['train_loss'] + 0.5


def test_bad_settings(splits):
    dl = splits['train'].dataloader(128)
    with pytest.raises(Exception, match='fp16'): Learner(SmallCNN(), dl, device='cpu', amp='fp16')
    with pytest.raises(Exception, match="needs models"): Learner(SmallCNN(), dl, step=GANStep(8))
    with pytest.raises(Exception, match='unknown GAN loss'): GANStep(8, loss='wasserstein')


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
    with pytest.raises(DataError, match='every must be >= 1'): linear_decay(0)
