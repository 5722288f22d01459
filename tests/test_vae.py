"VAE family: the math checks, build, shapes, the VAE step, save/load, sampling, bad inputs."
import math
import pytest
import torch
import torch.nn as nn
from genai_data.core import ConfigError, DataError, atomic_write, make_generator, seed_everything
from genai_data.learner import Learner
from genai_data.vae import VAE, VAEStep, gaussian_kl, gaussian_log_prob, iwae_bound, reparameterize, bernoulli_nll, gaussian_nll


def test_kl_closed_form_vs_monte_carlo_and_torch():
    g = make_generator(3)
    mu, lv, mp, lp = (torch.randn(2, 5, generator=g) for _ in range(4))
    z = mu + (0.5 * lv).exp() * torch.randn(100_000, 2, 5, generator=g)
    for args, pm, pl in (((mu, lv), torch.zeros_like(mu), torch.zeros_like(lv)), ((mu, lv, mp, lp), mp, lp)):
        t = gaussian_log_prob(z, mu, lv) - gaussian_log_prob(z, pm, pl)
        assert ((gaussian_kl(*args) - t.mean(0)).abs() < 4 * t.std(0) / math.sqrt(len(z))).all()
        ref = torch.distributions.kl_divergence(torch.distributions.Normal(mu, (0.5 * lv).exp()),
                                                torch.distributions.Normal(pm, (0.5 * pl).exp())).sum(-1)
        torch.testing.assert_close(gaussian_kl(*args), ref, atol=1e-5, rtol=1e-5)


def test_reparameterised_gradient_matches_analytic():
    m, s = torch.tensor(-0.4, requires_grad=True), torch.tensor(0.8, requires_grad=True)
    z = reparameterize(m.expand(300_000), (2 * s.log()).expand(300_000), generator=make_generator(0))
    z.pow(2).mean().backward()                                   # E[z^2] = m^2 + s^2
    assert abs(m.grad.item() - 2 * -0.4) < 0.01 and abs(s.grad.item() - 2 * 0.8) < 0.02


def test_likelihoods_match_torch_distributions():
    x, p = torch.rand(3, 1, 4, 4), torch.randn(3, 1, 4, 4)
    torch.testing.assert_close(bernoulli_nll(p, x), -torch.distributions.Bernoulli(logits=p, validate_args=False).log_prob(x).flatten(1).sum(1))
    ls = torch.tensor(0.3)
    torch.testing.assert_close(gaussian_nll(p, x, ls), -torch.distributions.Normal(p, ls.exp()).log_prob(x).flatten(1).sum(1))


class LinearGaussian(VAE):
    "p(z)=N(0,1), p(x|z)=N(2z+0.5, 0.5^2), so p(x)=N(0.5, 4.25); a fixed, imperfect encoder."
    def __init__(self):
        nn.Module.__init__(self)
        self.image_shape, self.latent_dim, self.likelihood, self.n_classes = (1, 1, 1), 1, 'gaussian', None
        self.log_scale = torch.tensor(math.log(0.5))
    def encode(self, x, y=None): return 0.3 * x.flatten(1), torch.full((len(x), 1), math.log(0.5))
    def decode(self, z, y=None): return (2 * z + 0.5).reshape(len(z), 1, 1, 1)


def test_iwae_rises_towards_log_px_and_bounds_it():
    torch.manual_seed(0)
    m, x = LinearGaussian(), torch.tensor([-0.5, 1.0, 3.0]).reshape(3, 1, 1, 1)
    exact = torch.distributions.Normal(0.5, math.sqrt(4.25)).log_prob(x.flatten())
    b = {k: iwae_bound(m, x.repeat(2000, 1, 1, 1), k=k, chunk=100).reshape(2000, 3).mean(0) for k in (1, 5, 50, 500)}
    ks = sorted(b)
    assert all((b[i] < b[j]).all() for i, j in zip(ks, ks[1:]))
    assert (b[500] <= exact + 1e-3).all() and (exact - b[500]).abs().max() < 0.05


@pytest.mark.parametrize('arch', ['mlp', 'conv'])
@pytest.mark.parametrize('size', [8, 16, 32])
@pytest.mark.parametrize('likelihood', ['bernoulli', 'gaussian'])
def test_build_and_forward_shapes(arch, size, likelihood):
    m = VAE((1, size, size), latent_dim=6, arch=arch, likelihood=likelihood, width=8, hidden=(32,))
    out = m(torch.rand(5, 1, size, size))
    assert set(out) == {'loss', 'recon', 'kl', 'elbo'} and out['loss'].ndim == 0 and torch.isfinite(out['loss'])
    mu, lv = m.encode(torch.rand(5, 1, size, size))
    assert mu.shape == lv.shape == (5, 6)
    assert m.sample(4).shape == (4, 1, size, size) and m.reconstruct(torch.rand(2, 1, size, size)).shape == (2, 1, size, size)
    s = m.sample(7)
    assert s.min() >= 0 and s.max() <= 1


def test_rgb_and_conditional_and_beta():
    m = VAE((3, 16, 16), latent_dim=4, n_classes=5, width=8, beta=3.0)
    x, y = torch.rand(6, 3, 16, 16), torch.arange(6) % 5
    torch.manual_seed(0); out = m(x, y)
    torch.testing.assert_close(out['loss'], out['recon'] + 3.0 * out['kl'])
    assert m.sample(10).shape == (10, 3, 16, 16) and m.sample(3, y=4).shape == (3, 3, 16, 16)
    assert m.interpolate(x[0], x[1], steps=5, y=2).shape == (5, 3, 16, 16)


def test_one_step_lowers_loss():
    seed_everything(0)
    m = VAE((1, 8, 8), latent_dim=4, arch='mlp', hidden=(64,))
    x = torch.rand(32, 1, 8, 8)
    opt = torch.optim.Adam(m.parameters(), 1e-3)
    torch.manual_seed(1); before = m(x)['loss'].item()
    torch.manual_seed(2); m(x)['loss'].backward(); opt.step()
    torch.manual_seed(1); assert m(x)['loss'].item() < before


def test_vae_step_lowers_loss_and_logs_its_parts():
    seed_everything(0)
    m = VAE((1, 8, 8), latent_dim=4, arch='mlp', hidden=(64,))
    x, y = torch.rand(64, 1, 8, 8), torch.arange(64) % 10
    learn = Learner(m, [(x, y)], step=VAEStep(), opt_func=lambda p: torch.optim.SGD(p, lr=1e-3), progress=False)
    torch.manual_seed(1); before = m(x)['loss'].item()
    logs = learn.step.train_batch(learn, (x, y))
    torch.manual_seed(1); assert m(x)['loss'].item() < before
    assert set(logs) == {'loss', 'recon', 'kl', 'elbo'} and all(v.ndim == 0 and not v.requires_grad for v in logs.values())


def test_vae_step_trains_a_conditional_vae_and_samples_through_the_learner():
    seed_everything(0)
    m = VAE((1, 8, 8), latent_dim=4, arch='mlp', hidden=(64,), n_classes=3)
    x, y = torch.rand(48, 1, 8, 8), torch.arange(48) % 3
    learn = Learner(m, [(x, y)], step=VAEStep(conditional=True), opt_func=lambda p: torch.optim.Adam(p, 1e-2), ema=0.9, progress=False)
    h = learn.fit(20)
    assert h[-1]['train_loss'] < h[0]['train_loss']
    s = learn.step.sample(learn, 6, y=torch.tensor([0, 1, 2, 0, 1, 2]), generator=make_generator(0))
    assert s.shape == (6, 1, 8, 8) and torch.equal(s, learn.ema['model'].module.sample(6, y=torch.tensor([0, 1, 2, 0, 1, 2]), generator=make_generator(0)))


def test_vae_step_refuses_a_model_that_cannot_use_its_labels():
    x, y = torch.rand(8, 1, 8, 8), torch.arange(8) % 2
    plain, cond = VAE((1, 8, 8), 3, arch='mlp', hidden=(16,)), VAE((1, 8, 8), 3, arch='mlp', hidden=(16,), n_classes=2)
    with pytest.raises(ConfigError, match='needs a model built with n_classes'):
        Learner(plain, [(x, y)], step=VAEStep(conditional=True), progress=False).fit(1)
    with pytest.raises(ConfigError, match='VAEStep\\(conditional=True\\)'):
        Learner(cond, [(x, y)], step=VAEStep(), progress=False).fit(1)
    with pytest.raises(DataError, match='not conditional'): plain.sample(2, y=1)
    with pytest.raises(DataError, match='not conditional'): plain(x, y)


def test_save_load_roundtrip(tmp_path):
    m = VAE((1, 16, 16), latent_dim=8, n_classes=10, width=8).eval()
    with atomic_write(tmp_path / 'vae.pt') as f: torch.save(m.state_dict(), f)
    m2 = VAE((1, 16, 16), latent_dim=8, n_classes=10, width=8).eval()
    m2.load_state_dict(torch.load(tmp_path / 'vae.pt', weights_only=True))
    assert torch.equal(m.sample(6, generator=make_generator(0)), m2.sample(6, generator=make_generator(0)))


def test_sampling_reproducible():
    m = VAE((1, 8, 8), latent_dim=3, arch='mlp', hidden=(16,))
    assert torch.equal(m.sample(5, generator=make_generator(4)), m.sample(5, generator=make_generator(4)))
    assert not torch.equal(m.sample(5, generator=make_generator(4)), m.sample(5, generator=make_generator(5)))


def test_bad_inputs():
    m = VAE((1, 8, 8), latent_dim=3, arch='mlp', hidden=(16,), n_classes=4)
    with pytest.raises(DataError, match='pass class labels'): m(torch.rand(2, 1, 8, 8))
    with pytest.raises(DataError, match='labels must be in 0..3'): m(torch.rand(2, 1, 8, 8), torch.tensor([0, 4]))
    with pytest.raises(DataError, match='labels must be in 0..3'): m.sample(2, y=-1)
    with pytest.raises(DataError, match='z must have shape \\(N, 3\\)'): m.decode(torch.zeros(2, 4), torch.zeros(2).long())
    with pytest.raises(DataError, match='expected images of shape'): m(torch.rand(2, 1, 16, 16), torch.zeros(2).long())
    with pytest.raises(DataError, match='whole numbers'): m.sample(2, y=2.7)
    with pytest.raises(DataError, match='whole numbers'): m.sample(2, y='3')
    with pytest.raises(ConfigError, match='n must be a whole number'): m.sample(-1)
    with pytest.raises(DataError, match='models images in \\[0,1\\]'): m(torch.rand(2, 1, 8, 8) * 2 - 1, torch.zeros(2).long())
    with pytest.raises(ConfigError, match='divisible by 4'): VAE((1, 10, 10), arch='conv')
    with pytest.raises(ConfigError, match='likelihood'): VAE(likelihood='poisson')
    with pytest.raises(ConfigError, match='beta'): VAE(beta=-1)
