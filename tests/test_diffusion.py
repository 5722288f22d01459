"Diffusion family: the math checks, shapes at 8/16/28/32 px, the step, save/load, reproducible sampling, guidance, bad inputs."
import math
import pytest
import torch
from genai_data.core import ConfigError, DataError, make_generator, seed_everything
from genai_data.data import grid_of_gaussians, tensor_dataloader
from genai_data.diffusion import (DiffusionModel, DiffusionStep, MLPDenoiser, NoiseSchedule, TimeEmbedding, UNet, ddim_sample, flow_sample,
                                  q_posterior, q_sample, toy_diffusion)
from genai_data.gan import mode_coverage
from genai_data.learner import Learner

LIN = NoiseSchedule.linear()
MU, S = 1.5, 0.5


def exact_eps(x, t):
    ab = LIN.ab((t * LIN.T).round().long(), x)
    return (1 - ab).sqrt() * (x - ab.sqrt() * MU) / (ab * S ** 2 + 1 - ab)


def exact_v(x, t):
    t = t.reshape(-1, 1).to(x.dtype)
    return MU + (t * S ** 2 - (1 - t)) / ((1 - t) ** 2 + t ** 2 * S ** 2) * (x - t * MU)


def test_schedules():
    for s in (NoiseSchedule.linear(), NoiseSchedule.cosine(), NoiseSchedule.linear(50, beta_T=0.3)):
        assert (s.alpha_bar.diff() < 0).all() and s.alpha_bar[-1] < 0.01 and len(s.betas) == s.T
    with pytest.raises(ConfigError, match='betas must be'): NoiseSchedule([0.1])


def test_forward_process_closed_form_matches_the_chain():
    g = make_generator(1)
    x = torch.full((100_000, 1), -0.8, dtype=torch.float64)
    for s in range(500): x = LIN.alphas[s].sqrt() * x + LIN.betas[s].sqrt() * torch.randn(x.shape, generator=g, dtype=torch.float64)
    ab = LIN.alpha_bar[499]
    assert abs(x.mean() - (-0.8) * ab.sqrt()) < 4 * (1 - ab).sqrt() / 100_000 ** 0.5 and abs(x.var() - (1 - ab)) < 0.01
    jump = q_sample(torch.full((4, 1), -0.8), torch.full((4,), 500), torch.zeros(4, 1), LIN)
    assert torch.allclose(jump, torch.full((4, 1), -0.8 * ab.sqrt().item()))


def test_posterior_and_kl_reduce_to_noise_error():
    g = make_generator(2)
    t = torch.full((6,), 300)
    x0, eps, eps_hat = (torch.randn(6, 2, generator=g, dtype=torch.float64) for _ in range(3))
    xt = q_sample(x0, t, eps, LIN)
    m_q, v_q = q_posterior(LIN, x0, xt, t)
    ab, a, b = LIN.alpha_bar[299], LIN.alphas[299], LIN.betas[299]
    # the posterior mean written with the true noise is (x_t - b / sqrt(1 - ab) eps) / sqrt(a)
    assert torch.allclose(m_q, (xt - b / (1 - ab).sqrt() * eps) / a.sqrt())
    m_p = (xt - b / (1 - ab).sqrt() * eps_hat) / a.sqrt()
    kl = torch.distributions.kl_divergence(torch.distributions.Normal(m_q, v_q.sqrt()), torch.distributions.Normal(m_p, v_q.sqrt())).sum(1)
    assert torch.allclose(kl, b ** 2 / (2 * v_q[0, 0] * a * (1 - ab)) * (eps - eps_hat).pow(2).sum(1))


@pytest.mark.parametrize('t', [10, 500, 990])
def test_noise_prediction_is_the_scaled_score(t):
    ab = LIN.alpha_bar[t - 1]
    x = torch.linspace(-3, 3, 9, dtype=torch.float64).requires_grad_()
    logq = torch.distributions.Normal(ab.sqrt() * MU, (ab * S ** 2 + 1 - ab).sqrt()).log_prob(x).sum()
    score, = torch.autograd.grad(logq, x)
    assert torch.allclose(exact_eps(x.detach()[:, None], torch.full((9,), t / LIN.T, dtype=torch.float64)).flatten(), -(1 - ab).sqrt() * score)


@pytest.mark.parametrize('eta,steps,tol', [(1.0, 1000, 0.02), (0.0, 200, 0.03), (1.0, 100, 0.04)])
def test_samplers_recover_the_data_from_the_exact_predictor(eta, steps, tol):
    g = make_generator(3)
    out = ddim_sample(exact_eps, torch.randn(50_000, 1, generator=g, dtype=torch.float64), LIN, steps, eta=eta, generator=g)
    assert abs(out.mean() - MU) < 0.02 and abs(out.std() - S) < tol


def test_flow_ode_transports_noise_to_the_data():
    z = torch.randn(20_000, 1, generator=make_generator(4), dtype=torch.float64)
    assert torch.allclose(flow_sample(exact_v, z, 32, 'heun'), MU + S * z, atol=2e-3)       # the exact map, sample by sample
    errors = [abs(flow_sample(exact_v, z, k, 'euler').std() - S) for k in (2, 8, 32)]
    assert errors[0] > errors[1] > errors[2]                                                    # Euler converges with the steps
    assert abs(flow_sample(exact_v, z, 1, 'euler').std()) < 1e-9                                # one Euler step: everything at the mean


@pytest.mark.parametrize('objective', ['ddpm', 'flow'])
def test_learned_field_matches_the_closed_form_and_samples(objective):
    seed_everything(0)
    data = MU + S * torch.randn(4096, 1, generator=make_generator(5))
    m = DiffusionModel(MLPDenoiser(1, 64, 2), objective, value_range=None)
    learn = Learner(m, tensor_dataloader(data, torch.zeros(4096, dtype=torch.long), batch_size=256, seed=0), step=DiffusionStep(),
                    opt_func=lambda p: torch.optim.Adam(p, 3e-3), ema=0.99, progress=False)
    learn.fit(60)
    em = learn.eval_model('model')
    t = torch.full((41,), 0.5)
    x = (MU * 0.5 + torch.linspace(-1, 1, 41) * 0.6)[:, None]
    with torch.no_grad(): pred = em.net(x, t)
    exact = exact_v(x, t) if objective == 'flow' else exact_eps(x, t)
    assert (pred - exact).abs().max() < 0.15
    s = em.sample(5000, generator=make_generator(6), **({'sampler': 'ddpm', 'steps': 1000} if objective == 'ddpm' else {}))
    assert abs(s.mean() - MU) < 0.05 and abs(s.std() - S) < 0.05


@pytest.mark.parametrize('size', [8, 16, 28, 32])
@pytest.mark.parametrize('channels', [1, 3])
def test_unet_shapes_and_sampling(size, channels):
    m = DiffusionModel(UNet((channels, size, size), width=8, n_classes=4), 'ddpm')
    x = torch.rand(3, channels, size, size) * 2 - 1
    assert m.net(x, torch.rand(3), torch.tensor([0, 3, 4])).shape == x.shape and m(x, torch.tensor([0, 1, 2])).ndim == 0
    s = m.sample(2, y=1, steps=3)
    assert s.shape == (2, channels, size, size) and s.min() >= -1 and s.max() <= 1


def test_reproducible_sampling_and_save_load(tmp_path):
    m = DiffusionModel(UNet((1, 16, 16), width=8, n_classes=3), 'flow')
    a, b = m.sample(5, generator=make_generator(7), steps=3), m.sample(5, generator=make_generator(7), steps=3)
    assert torch.equal(a, b) and not torch.equal(a, m.sample(5, generator=make_generator(8), steps=3))
    torch.save(m.state_dict(), tmp_path / 'm.pt')
    back = DiffusionModel(UNet((1, 16, 16), width=8, n_classes=3), 'flow')
    back.load_state_dict(torch.load(tmp_path / 'm.pt', weights_only=True))
    assert torch.equal(back.sample(5, generator=make_generator(7), steps=3), a)


def test_guidance_zero_is_the_unconditional_prediction():
    m = DiffusionModel(MLPDenoiser(2, 32, n_classes=5), 'flow', value_range=None)
    x, t, y = torch.randn(8, 2), torch.rand(8), torch.arange(8) % 5
    with torch.no_grad():
        u, c = m.net(x, t, torch.full((8,), 5)), m.net(x, t, y)
        assert torch.allclose(m.predict(x, t, y, 0.0), u) and torch.allclose(m.predict(x, t, y, 1.0), c)
        assert torch.allclose(m.predict(x, t, y, 2.5), u + 2.5 * (c - u), atol=1e-6)


def test_label_dropout_trains_the_unconditional_prediction():
    m = DiffusionModel(MLPDenoiser(2, 32, n_classes=5), 'flow', value_range=None, p_uncond=0.2)
    from genai_data.diffusion import _drop_labels
    dropped = (_drop_labels(m, torch.zeros(20_000, dtype=torch.long), make_generator(0)) == 5).float().mean()
    assert abs(dropped - 0.2) < 0.02
    assert torch.equal(_drop_labels(DiffusionModel(m.net, p_uncond=0.0, value_range=None), torch.zeros(4, dtype=torch.long)), torch.zeros(4, dtype=torch.long))


def test_bad_inputs_are_clear():
    m = DiffusionModel(UNet((1, 8, 8), width=8, n_classes=3), 'flow')
    for kw, error, words in [(dict(y=3), DataError, 'labels must be in 0..2'), (dict(y='1'), DataError, 'whole numbers'),
                             (dict(steps=0), ConfigError, 'steps must be'), (dict(steps=2.5), ConfigError, 'steps must be'),
                             (dict(sampler='ddim'), ConfigError, 'is not for objective'), (dict(guidance=-1), ConfigError, 'guidance must be')]:
        with pytest.raises(error, match=words): m.sample(2, **kw)
    with pytest.raises(ConfigError, match='steps must be a whole number from 1 to T=1000'):
        DiffusionModel(UNet((1, 8, 8), 8), 'ddpm').sample(2, steps=1001)
    with pytest.raises(DataError, match='not conditional'): DiffusionModel(UNet((1, 8, 8), 8), 'flow').sample(2, y=1)
    with pytest.raises(DataError, match='class-conditional: pass class labels'): m(torch.rand(2, 1, 8, 8) * 2 - 1)
    with pytest.raises(DataError, match="built for data in \\[-1,1\\]"): m(torch.rand(2, 1, 8, 8) * 5, torch.tensor([0, 1]))
    with pytest.raises(ConfigError, match='divisible by 4'): UNet((1, 10, 10))
    with pytest.raises(ConfigError, match='objective must be one of'): DiffusionModel(m.net, 'score')
    with pytest.raises(ConfigError, match='p_uncond must be'): DiffusionModel(m.net, p_uncond=1.0)
    with pytest.raises(ConfigError, match='n must be a whole number'): m.sample(-2)
    with pytest.raises(ConfigError, match='DiffusionStep\\(conditional=True\\) needs a net built with n_classes'):
        Learner(DiffusionModel(UNet((1, 8, 8), 8)), [(torch.rand(2, 1, 8, 8) * 2 - 1, torch.zeros(2).long())], step=DiffusionStep(conditional=True), progress=False).fit(1)


def test_toy_setup_learns_the_grid_a_little():
    "A short run of the 25-Gaussian setup: the loss falls and samples land near the grid (the full run is in the lesson)."
    seed_everything(0)
    data = grid_of_gaussians(20_000, seed=0)
    setup = toy_diffusion('flow', hidden=128, ema=0.9)
    learn = Learner(train_dl=tensor_dataloader(data.x, data.y, batch_size=256, seed=0, drop_last=True), progress=False, **setup)
    untrained = mode_coverage(setup['models'].sample(1000, generator=make_generator(0)), data.modes, data.std, n_std=10)
    h = learn.fit(12)
    assert h[-1]['train_loss'] < h[0]['train_loss']
    r = mode_coverage(learn.eval_model('model').sample(1000, generator=make_generator(0)), data.modes, data.std, n_std=10)
    assert r['modes'] >= 22 and untrained['modes'] < 10, (r, untrained)     # 1,000 batches find (nearly) every mode
