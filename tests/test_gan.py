"GAN family: the math checks, build, shapes, one step per player, save/load, sampling, bad inputs, mode coverage."
import math
import pytest
import torch
import torch.nn as nn
from genai_data.core import DataError, atomic_write, make_generator, seed_everything
from genai_data.data import grid_of_gaussians, tensor_dataloader
from genai_data.gan import (ACGANStep, DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator, mode_coverage, toy_gan,
                            TOY_METHODS, TOY_SCHEDULES)
from genai_data.learner import GANStep, Learner, gan_d_loss, gan_g_loss, gradient_penalty


def pdf(x, m, s): return torch.exp(-0.5 * ((x - m) / s) ** 2) / (s * math.sqrt(2 * math.pi))


def test_optimal_discriminator_matches_closed_form():
    seed_everything(0)
    D = nn.Sequential(nn.Linear(1, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 1))
    opt = torch.optim.Adam(D.parameters(), 3e-3)
    for _ in range(800):
        real, fake = torch.randn(1024, 1), 1.5 + 0.7 * torch.randn(1024, 1)
        loss = gan_d_loss(D(real), D(fake), 'ns')
        opt.zero_grad(); loss.backward(); opt.step()
    x = torch.linspace(-2, 3, 101)[:, None]
    star = pdf(x, 0, 1) / (pdf(x, 0, 1) + pdf(x, 1.5, 0.7))
    with torch.no_grad(): assert (torch.sigmoid(D(x)) - star).abs().max() < 0.08


def test_value_at_optimum_is_minus_log4_plus_2jsd():
    g = torch.Generator().manual_seed(1)
    n = 1_000_000
    xd, xg = torch.randn(n, generator=g, dtype=torch.float64), 1.0 + 2.0 * torch.randn(n, generator=g, dtype=torch.float64)
    ds = lambda x: pdf(x, 0, 1) / (pdf(x, 0, 1) + pdf(x, 1, 2))
    a, b = torch.log(ds(xd)), torch.log(1 - ds(xg))
    v, se = (a.mean() + b.mean()).item(), math.sqrt(a.var().item() / n + b.var().item() / n)
    grid = torch.linspace(-20, 20, 400_001, dtype=torch.float64)
    p, q = pdf(grid, 0, 1), pdf(grid, 1, 2); m = (p + q) / 2
    kl = lambda u, w: torch.trapezoid(torch.where(u > 0, u * torch.log(u / w), torch.zeros_like(u)), grid)
    jsd = (0.5 * kl(p, m) + 0.5 * kl(q, m)).item()
    assert 0 < jsd < math.log(2) and abs(v - (-math.log(4) + 2 * jsd)) < 4 * se


def test_saturating_vs_nonsaturating_gradients():
    l1 = torch.tensor([[-6.0]], requires_grad=True); gan_g_loss(l1, 'saturating').backward()
    l2 = torch.tensor([[-6.0]], requires_grad=True); gan_g_loss(l2, 'ns').backward()
    assert abs(l1.grad.item()) < 0.01 and abs(l2.grad.item() + 1) < 0.01      # -sigmoid(l) vs -(1 - sigmoid(l))


def test_gradient_penalty_critic_norm_approaches_one():
    seed_everything(0)
    critic = MLPDiscriminator(2, hidden=(64, 64))
    opt = torch.optim.Adam(critic.parameters(), 1e-3, betas=(0.5, 0.9))
    for _ in range(500):
        real, fake = torch.randn(256, 2), torch.randn(256, 2) * 0.5 + 3
        loss = gan_d_loss(critic(real), critic(fake), 'wgan-gp') + 100 * gradient_penalty(critic, real, fake)
        opt.zero_grad(); loss.backward(); opt.step()
    eps = torch.rand(2048, 1)
    xh = (eps * torch.randn(2048, 2) + (1 - eps) * (torch.randn(2048, 2) * 0.5 + 3)).requires_grad_()
    g, = torch.autograd.grad(critic(xh).sum(), xh)
    assert abs(g.norm(dim=1).mean().item() - (1 + 3 * math.sqrt(2) / 200)) < 0.05


@pytest.mark.parametrize('size', [16, 32, 64])
@pytest.mark.parametrize('channels', [1, 3])
def test_dcgan_shapes(size, channels):
    G, D = DCGANGenerator(16, size, channels, width=8), DCGANDiscriminator(size, channels, width=8, spectral_norm=True)
    x = G(torch.randn(3, 16))
    assert x.shape == (3, channels, size, size) and x.min() >= -1 and x.max() <= 1 and D(x).shape == (3, 1)


@pytest.mark.parametrize('mode', ['projection', 'concat'])
def test_conditional_models(mode):
    G = DCGANGenerator(16, 16, width=8, n_classes=10)
    D = DCGANDiscriminator(16, width=8, n_classes=10, conditioning=mode)
    y = torch.arange(6)
    assert D(G(torch.randn(6, 16), y), y).shape == (6, 1)
    s = G.sample(20)
    assert s.shape == (20, 1, 16, 16)
    assert torch.equal(G.sample(5, y=3, generator=make_generator(1)), G.sample(5, y=3, generator=make_generator(1)))


def _gan_learner(G, D, step, x, y):
    return Learner({'G': G, 'D': D}, [(x, y)], step=step, opt_func=lambda p: torch.optim.SGD(p, lr=0.01), progress=False)


@pytest.mark.parametrize('loss', ['ns', 'hinge'])
def test_each_player_step_lowers_its_loss_dcgan(loss):
    seed_everything(0)
    G, D = DCGANGenerator(16, 16, width=8, n_classes=10), DCGANDiscriminator(16, width=8, n_classes=10)
    G.eval(); D.eval()                                     # fixed batch-norm statistics for the comparison
    x, y = torch.rand(16, 1, 16, 16) * 2 - 1, torch.arange(16) % 10
    learn = _gan_learner(G, D, GANStep(16, loss=loss, conditional=True), x, y)
    z = torch.randn(16, 16)
    d0 = gan_d_loss(D(x, y), D(G(z, y), y), loss).item()
    learn.optimize(gan_d_loss(D(x, y), D(G(z, y).detach(), y), loss), 'D')
    assert gan_d_loss(D(x, y), D(G(z, y), y), loss).item() < d0
    g0 = gan_g_loss(D(G(z, y), y), loss).item()
    learn.optimize(gan_g_loss(D(G(z, y), y), loss), 'G')
    assert gan_g_loss(D(G(z, y), y), loss).item() < g0


def test_acgan_step_trains():
    seed_everything(0)
    G, D = DCGANGenerator(16, 16, width=8, n_classes=4), DCGANDiscriminator(16, width=8, n_classes=4, aux_classifier=True)
    x, y = torch.rand(16, 1, 16, 16) * 2 - 1, torch.arange(16) % 4
    learn = _gan_learner(G, D, ACGANStep(16, 4), x, y)
    logs = [learn.step.train_batch(learn, (x, y)) for _ in range(3)]
    assert set(logs[0]) == {'loss_D', 'loss_G', 'acc_real'} and all(torch.isfinite(v) for l in logs for v in l.values())
    adv, cls = D(x, return_aux=True)
    assert adv.shape == (16, 1) and cls.shape == (16, 4)


def test_acgan_step_applies_ganstep_penalties():
    "With r1_weight, ACGAN's D update differs from the one without; 'wgan-gp' gets its gradient penalty."
    x, y = torch.rand(16, 1, 16, 16) * 2 - 1, torch.arange(16) % 4
    after = {}
    for w in (0., 10.):
        seed_everything(0)
        G, D = DCGANGenerator(16, 16, width=8, n_classes=4), DCGANDiscriminator(16, width=8, n_classes=4, aux_classifier=True)
        learn = _gan_learner(G, D, ACGANStep(16, 4, r1_weight=w), x, y)
        seed_everything(1); learn.step.train_batch(learn, (x, y))
        after[w] = torch.cat([p.detach().flatten() for p in D.parameters()])
    assert not torch.allclose(after[0.], after[10.])
    G, D = DCGANGenerator(16, 16, width=8, n_classes=4), DCGANDiscriminator(16, width=8, n_classes=4, aux_classifier=True)
    learn = _gan_learner(G, D, ACGANStep(16, 4, loss='wgan-gp', r1_weight=1.), x, y)
    logs = learn.step.train_batch(learn, (x, y))
    assert {'gp', 'r1'} <= set(logs) and logs['gp'] > 0 and logs['r1'] > 0
    with pytest.raises(DataError, match='r1_weight must be >= 0'): ACGANStep(16, 4, r1_weight=-1.)


def test_pacgan_packs_and_learner_runs():
    data = grid_of_gaussians(2048, seed=0)
    for method in TOY_METHODS:
        for schedule in TOY_SCHEDULES:
            setup = toy_gan(method, schedule, hidden=32)
            assert setup['step'].r1_weight == (0.1 if method == 'r1' else 0.)
            learn = Learner(train_dl=tensor_dataloader(data.x, data.y, batch_size=256, seed=0, drop_last=True), progress=False, **setup)
            h = learn.fit(1)
            assert math.isfinite(h[-1]['train_loss_D'])
            if schedule == 'anneal':      # both optimizers end at learning rate 0, however often each stepped
                assert set(learn.scheds) == {'G', 'D'}
                for opt in learn.opts.values(): assert opt.param_groups[0]['lr'] == pytest.approx(0, abs=1e-12)
            else: assert not learn.scheds
    with pytest.raises(DataError, match='multiple of pack=4'): MLPDiscriminator(2, pack=4)(torch.randn(6, 2))


def test_save_load_roundtrip(tmp_path):
    G = DCGANGenerator(16, 32, width=8, n_classes=10).eval()
    with atomic_write(tmp_path / 'g.pt') as f: torch.save(G.state_dict(), f)
    G2 = DCGANGenerator(16, 32, width=8, n_classes=10)
    G2.load_state_dict(torch.load(tmp_path / 'g.pt', weights_only=True))
    assert torch.equal(G.sample(4, generator=make_generator(0)), G2.sample(4, generator=make_generator(0)))


def test_bad_inputs():
    G = MLPGenerator(8, (1, 8, 8), n_classes=3)
    with pytest.raises(DataError, match='class-conditional'): G(torch.randn(2, 8))
    with pytest.raises(DataError, match='unknown class label'): G(torch.randn(2, 8), torch.tensor([0, 3]))
    with pytest.raises(DataError, match='z must have shape \\(N, 8\\)'): G(torch.randn(2, 9), torch.tensor([0, 1]))
    with pytest.raises(DataError, match='not conditional'): MLPGenerator(8, 2)(torch.randn(2, 8), torch.tensor([0, 1]))
    with pytest.raises(DataError, match='image_size'): DCGANDiscriminator(28)
    with pytest.raises(DataError, match='no auxiliary classifier'): DCGANDiscriminator(16, width=8)(torch.zeros(1, 1, 16, 16), return_aux=True)
    with pytest.raises(DataError, match='expected images'): DCGANDiscriminator(16, width=8)(torch.zeros(1, 1, 32, 32))
    with pytest.raises(DataError, match='method'): toy_gan('began')
    with pytest.raises(DataError, match='schedule must be one of'): toy_gan('vanilla', schedule='cosine')


def test_mode_coverage():
    d = grid_of_gaussians(5000, seed=2)
    r = mode_coverage(d.x, d.modes, d.std)
    assert r['modes'] == 25 and r['high_quality'] > 0.98
    collapsed = d.modes[torch.randint(3, (2500,))] + 0.01 * torch.randn(2500, 2)
    r = mode_coverage(collapsed, d.modes, d.std)
    assert r['modes'] == 3 and r['high_quality'] == 1.0
    r = mode_coverage(torch.zeros(100, 2) + 1.0, d.modes, d.std)     # halfway between modes: low quality
    assert r['high_quality'] == 0.0 and r['modes'] == 0
