"GAN family: the math checks, losses and penalties, the GAN step, build, shapes, save/load, sampling, bad inputs, mode coverage."
import copy
import math
import pytest
import torch
import torch.nn as nn
from genai_data.core import ConfigError, DataError, atomic_write, make_generator, seed_everything
from genai_data.data import grid_of_gaussians, tensor_dataloader
from genai_data.gan import (ACGANStep, DCGANDiscriminator, DCGANGenerator, GANStep, MLPDiscriminator, MLPGenerator, TOY_METHODS,
                            TOY_SCHEDULES, gan_d_loss, gan_g_loss, gradient_penalty, image_gan, mode_coverage, r1_penalty, toy_gan)
from genai_data.learner import Learner


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


def test_losses_match_their_formulas():
    lr, lf = torch.tensor([[2.], [-1.]]), torch.tensor([[0.5], [-3.]])
    s = torch.sigmoid
    torch.testing.assert_close(gan_d_loss(lr, lf, 'ns'), -(s(lr).log().mean() + (1 - s(lf)).log().mean()))
    torch.testing.assert_close(gan_d_loss(lr, lf, 'saturating'), gan_d_loss(lr, lf, 'ns'))
    torch.testing.assert_close(gan_d_loss(lr, lf, 'hinge'), torch.tensor(1.75))
    torch.testing.assert_close(gan_d_loss(lr, lf, 'wgan-gp'), torch.tensor(-1.75))
    torch.testing.assert_close(gan_g_loss(lf, 'ns'), -s(lf).log().mean())
    torch.testing.assert_close(gan_g_loss(lf, 'saturating'), (1 - s(lf)).log().mean())
    torch.testing.assert_close(gan_g_loss(lf, 'hinge'), torch.tensor(1.25))
    for f in (lambda: gan_d_loss(lr, lf, 'wasserstein'), lambda: gan_g_loss(lf, 'wasserstein')):
        with pytest.raises(ConfigError, match='unknown GAN loss'): f()


def test_saturating_vs_nonsaturating_gradients():
    l1 = torch.tensor([[-6.0]], requires_grad=True); gan_g_loss(l1, 'saturating').backward()
    l2 = torch.tensor([[-6.0]], requires_grad=True); gan_g_loss(l2, 'ns').backward()
    assert abs(l1.grad.item()) < 0.01 and abs(l2.grad.item() + 1) < 0.01      # -sigmoid(l) vs -(1 - sigmoid(l))


def test_gradient_penalty_matches_definition():
    D = nn.Linear(4, 1, bias=False)
    real, fake = torch.randn(16, 4), torch.randn(16, 4)
    torch.testing.assert_close(gradient_penalty(D, real, fake), (D.weight.norm() - 1) ** 2)   # linear critic: gradient = w


def test_r1_penalty_matches_closed_forms():
    D = nn.Linear(4, 1)
    torch.testing.assert_close(r1_penalty(D, torch.randn(16, 4)), D.weight.pow(2).sum())   # gradient = w everywhere
    x = torch.randn(10, 3)      # D(x) = -||x||^2 / 2 has gradient -x, so R1 = mean ||x||^2
    torch.testing.assert_close(r1_penalty(lambda v: -0.5 * v.pow(2).sum(1, keepdim=True), x), x.pow(2).sum(1).mean())
    r1_penalty(D, torch.randn(16, 4)).backward()                    # differentiable in D's weights: d||w||^2/dw = 2w
    torch.testing.assert_close(D.weight.grad, 2 * D.weight.detach())


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


def _tiny_gan():
    G = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 64), nn.Tanh(), nn.Unflatten(1, (1, 8, 8)))
    D = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1))
    return G, D


@pytest.mark.parametrize('loss', ['ns', 'saturating', 'hinge', 'wgan-gp'])
def test_gan_step_each_player_lowers_its_loss(loss):
    seed_everything(0)
    x, y = torch.rand(64, 1, 8, 8) * 2 - 1, torch.zeros(64, dtype=torch.long)
    G, D = _tiny_gan()
    learn = Learner({'G': G, 'D': D}, [(x, y)], step=GANStep(8, loss=loss, n_critic=10 ** 9), opt_func=lambda p: torch.optim.SGD(p, lr=0.01),
                    progress=False)
    z = torch.randn(64, 8)
    d_before = gan_d_loss(D(x), D(G(z)), loss).item()
    g_params = [p.clone() for p in G.parameters()]
    learn.step_count = 1                                   # not a G step
    logs = learn.step.train_batch(learn, (x, y))
    assert gan_d_loss(D(x), D(G(z)), loss).item() < d_before and 'loss_G' not in logs
    assert all(torch.equal(a, b) for a, b in zip(g_params, G.parameters())), 'the D step must not change G'
    g_before = gan_g_loss(D(G(z)), loss).item()
    d_params = [p.clone() for p in D.parameters()]
    learn.optimize(gan_g_loss(D(G(z)), loss), 'G')
    assert gan_g_loss(D(G(z)), loss).item() < g_before
    assert all(torch.equal(a, b) for a, b in zip(d_params, D.parameters())), 'the G step must not change D'
    assert ('gp' in logs) == (loss == 'wgan-gp')


def test_gan_step_r1_weight_adds_the_penalty():
    "One D step with r1_weight=2 equals SGD on the adversarial loss + 2/2 * R1, computed by hand."
    x, y = torch.rand(32, 1, 8, 8) * 2 - 1, torch.zeros(32, dtype=torch.long)
    seed_everything(0); G, D = _tiny_gan(); D0 = copy.deepcopy(D)
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
        with pytest.raises(ConfigError, match='r1_weight must be >= 0'): GANStep(8, r1_weight=bad)


def test_gan_step_updates_g_every_n_critic_batches():
    x, y = torch.rand(16, 1, 8, 8) * 2 - 1, torch.zeros(16, dtype=torch.long)
    G, D = _tiny_gan()
    learn = Learner({'G': G, 'D': D}, [(x, y)] * 10, step=GANStep(8, n_critic=5), progress=False)
    learn.fit(1)
    assert learn.opts['D'].state[next(iter(D.parameters()))]['step'] == 10
    assert learn.opts['G'].state[next(iter(G.parameters()))]['step'] == 2


@pytest.mark.parametrize('size', [16, 32, 64])
@pytest.mark.parametrize('channels', [1, 3])
def test_dcgan_shapes(size, channels):
    G, D = DCGANGenerator(16, (channels, size, size), width=8), DCGANDiscriminator((channels, size, size), width=8, spectral_norm=True)
    x = G(torch.randn(3, 16))
    assert x.shape == (3, channels, size, size) and x.min() >= -1 and x.max() <= 1 and D(x).shape == (3, 1)


@pytest.mark.parametrize('mode', ['projection', 'concat'])
def test_conditional_models(mode):
    G = DCGANGenerator(16, (1, 16, 16), width=8, n_classes=10)
    D = DCGANDiscriminator((1, 16, 16), width=8, n_classes=10, conditioning=mode)
    y = torch.arange(6)
    assert D(G(torch.randn(6, 16), y), y).shape == (6, 1)
    s = G.sample(20)
    assert s.shape == (20, 1, 16, 16)
    assert torch.equal(G.sample(5, y=3, generator=make_generator(1)), G.sample(5, y=3, generator=make_generator(1)))
    other = D(G(torch.randn(6, 16), y), (y + 1) % 10)             # the discriminator's verdict depends on the label
    assert not torch.allclose(D(G(torch.randn(6, 16, generator=make_generator(2)), y), y), other)


def _gan_learner(G, D, step, x, y, lr=0.01):
    return Learner({'G': G, 'D': D}, [(x, y)], step=step, opt_func=lambda p: torch.optim.SGD(p, lr=lr), progress=False)


@pytest.mark.parametrize('loss', ['ns', 'hinge'])
def test_each_player_step_lowers_its_loss_dcgan(loss):
    seed_everything(0)
    G, D = DCGANGenerator(16, (1, 16, 16), width=8, n_classes=10), DCGANDiscriminator((1, 16, 16), width=8, n_classes=10)
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


def test_acgan_step_learns_the_classes_and_honours_n_critic():
    "On a fixed batch the auxiliary head learns the real classes; G is updated only every n_critic batches."
    seed_everything(0)
    G, D = DCGANGenerator(16, (1, 16, 16), width=8, n_classes=4), DCGANDiscriminator((1, 16, 16), width=8, n_classes=4, aux_classifier=True)
    x, y = torch.rand(16, 1, 16, 16) * 2 - 1, torch.arange(16) % 4
    learn = _gan_learner(G, D, ACGANStep(16, 4, n_critic=3), x, y, lr=0.05)
    ce = lambda: nn.functional.cross_entropy(D(x, return_aux=True)[1], y).item()
    before, logs = ce(), []
    for i in range(30): learn.step_count = i; logs.append(learn.step.train_batch(learn, (x, y)))
    assert ce() < 0.8 * before and logs[0]['acc_real'] < 0.5 and logs[-1]['acc_real'] > 0.75     # 4 classes: chance is 0.25
    assert [('loss_G' in l) for l in logs[:6]] == [True, False, False, True, False, False]
    adv, cls = D(x, return_aux=True)
    assert adv.shape == (16, 1) and cls.shape == (16, 4)


def test_acgan_step_applies_ganstep_penalties():
    "With r1_weight, ACGAN's D update differs from the one without; 'wgan-gp' gets its gradient penalty, weighted by gp_weight."
    x, y = torch.rand(16, 1, 16, 16) * 2 - 1, torch.arange(16) % 4
    after = {}
    for w in (0., 10.):
        seed_everything(0)
        G, D = DCGANGenerator(16, (1, 16, 16), width=8, n_classes=4), DCGANDiscriminator((1, 16, 16), width=8, n_classes=4, aux_classifier=True)
        learn = _gan_learner(G, D, ACGANStep(16, 4, r1_weight=w), x, y)
        seed_everything(1); learn.step.train_batch(learn, (x, y))
        after[w] = torch.cat([p.detach().flatten() for p in D.parameters()])
    assert not torch.allclose(after[0.], after[10.])
    G, D = DCGANGenerator(16, (1, 16, 16), width=8, n_classes=4), DCGANDiscriminator((1, 16, 16), width=8, n_classes=4, aux_classifier=True)
    step = ACGANStep(16, 4, loss='wgan-gp', r1_weight=1., gp_weight=3.)
    logs = _gan_learner(G, D, step, x, y).step.train_batch(_gan_learner(G, D, step, x, y), (x, y))
    assert {'gp', 'r1'} <= set(logs) and logs['gp'] > 0 and logs['r1'] > 0 and step.gp_weight == 3.
    with pytest.raises(ConfigError, match='r1_weight must be >= 0'): ACGANStep(16, 4, r1_weight=-1.)
    with pytest.raises(ConfigError, match='n_critic must be'): ACGANStep(16, 4, n_critic=0)


def test_pacgan_judges_each_pack_jointly():
    "A packed discriminator gives one verdict per pack of 4, and changing one member changes only that pack's verdict."
    seed_everything(0)
    D = MLPDiscriminator(2, hidden=(16,), pack=4)
    x = torch.randn(12, 2)
    out = D(x)
    x2 = x.clone(); x2[5] += 1.0                      # a member of the second pack
    out2 = D(x2)
    assert out.shape == (3, 1) and torch.equal(out[[0, 2]], out2[[0, 2]]) and not torch.equal(out[1], out2[1])
    assert D.body[0].in_features == 8                 # 4 points of 2 dimensions, judged together
    with pytest.raises(DataError, match='multiple of pack=4'): D(torch.randn(6, 2))
    with pytest.raises(ConfigError, match='packing is for unconditional'): MLPDiscriminator(2, pack=2, n_classes=3)


def test_toy_setups_update_g_as_configured_and_anneal_to_zero():
    data = grid_of_gaussians(2048, seed=0)
    for method in TOY_METHODS:
        for schedule in TOY_SCHEDULES:
            setup = toy_gan(method, schedule, hidden=32)
            assert setup['step'].r1_weight == (0.1 if method == 'r1' else 0.)
            learn = Learner(train_dl=tensor_dataloader(data.x, data.y, batch_size=256, seed=0, drop_last=True), progress=False, **setup)
            learn.fit(1)
            n_critic = 5 if method == 'wgan-gp' else 1
            g_param = next(iter(setup['models']['G'].parameters()))
            assert learn.opts['G'].state[g_param]['step'] == math.ceil(8 / n_critic)      # 8 batches
            if schedule == 'anneal':      # both optimizers end at learning rate 0, however often each stepped
                assert set(learn.scheds) == {'G', 'D'}
                for opt in learn.opts.values(): assert opt.param_groups[0]['lr'] == pytest.approx(0, abs=1e-12)
            else: assert not learn.scheds
    cosine = lambda opt, total: torch.optim.lr_scheduler.CosineAnnealingLR(opt, total)
    assert toy_gan('vanilla', cosine, lr=1e-3)['sched_func'] is cosine


def test_save_load_roundtrip(tmp_path):
    G = DCGANGenerator(16, (1, 32, 32), width=8, n_classes=10).eval()
    with atomic_write(tmp_path / 'g.pt') as f: torch.save(G.state_dict(), f)
    G2 = DCGANGenerator(16, (1, 32, 32), width=8, n_classes=10)
    G2.load_state_dict(torch.load(tmp_path / 'g.pt', weights_only=True))
    assert torch.equal(G.sample(4, generator=make_generator(0)), G2.sample(4, generator=make_generator(0)))


def test_bad_inputs():
    G = MLPGenerator(8, (1, 8, 8), n_classes=3)
    with pytest.raises(DataError, match='class-conditional'): G(torch.randn(2, 8))
    with pytest.raises(DataError, match='unknown class label'): G(torch.randn(2, 8), torch.tensor([0, 3]))
    with pytest.raises(DataError, match='whole numbers'): G.sample(2, y=1.5)
    with pytest.raises(DataError, match='z must have shape \\(N, 8\\)'): G(torch.randn(2, 9), torch.tensor([0, 1]))
    with pytest.raises(DataError, match='not conditional'): MLPGenerator(8, 2)(torch.randn(2, 8), torch.tensor([0, 1]))
    with pytest.raises(ConfigError, match='S in \\(16, 32, 64, 128\\)'): DCGANDiscriminator((1, 28, 28))
    with pytest.raises(ConfigError, match='no auxiliary classifier'): DCGANDiscriminator((1, 16, 16), width=8)(torch.zeros(1, 1, 16, 16), return_aux=True)
    with pytest.raises(DataError, match='expected images'): DCGANDiscriminator((1, 16, 16), width=8)(torch.zeros(1, 1, 32, 32))
    with pytest.raises(ConfigError, match='method'): toy_gan('began')
    with pytest.raises(ConfigError, match='schedule must be one of'): toy_gan('vanilla', schedule='cosine')
    with pytest.raises(ConfigError, match='n must be a whole number'): G.sample(-1)


def test_mode_coverage():
    d = grid_of_gaussians(5000, seed=2)
    r = mode_coverage(d.x, d.modes, d.std)
    assert r['modes'] == 25 and r['high_quality'] > 0.98
    collapsed = d.modes[torch.randint(3, (2500,))] + 0.01 * torch.randn(2500, 2)
    r = mode_coverage(collapsed, d.modes, d.std)
    assert r['modes'] == 3 and r['high_quality'] == 1.0
    r = mode_coverage(torch.zeros(100, 2) + 1.0, d.modes, d.std)     # halfway between modes: low quality
    assert r['high_quality'] == 0.0 and r['modes'] == 0


def test_image_gan_recipe_trains_and_leaves_diffaugment_off_by_default():
    kw = image_gan((1, 16, 16), n_classes=4, width=8, latent_dim=8)
    assert kw['step'].augment(torch.full((2, 1, 16, 16), 0.3)).eq(0.3).all()          # identity: no DiffAugment unless asked
    assert kw['ema'] == {'G': 0.999} and kw['sched_func'] is None and kw['models']['D'].mode == 'projection'
    x, y = torch.rand(32, 1, 16, 16) * 2 - 1, torch.arange(32) % 4
    learn = Learner(train_dl=[(x, y)] * 4, progress=False, **kw)
    h = learn.fit(2)
    assert {'train_loss_D', 'train_loss_G'} <= set(h[-1]) and learn.eval_model('G').sample(4, y=1).shape == (4, 1, 16, 16)
    da = image_gan(width=8, diffaugment='translation,cutout', anneal=True, ema=None)
    assert type(da['step'].augment).__name__ == 'DiffAugment' and da['ema'] is None and da['sched_func'] is not None
