"One test file per family face: build, train, sample, save/load, tampering, bad input (genai_data.generators)."
import pytest
import torch
from genai_data.core import ConfigError, CorruptFileError, DataError, make_generator, seed_everything
from genai_data.data import ImageDataset
from genai_data.generators import (GENERATIVE, SynthesisGenerator, check_generator, check_generator_shape,
                                   generator_recipe)


# ---------- each generative family: train, sample, save/load
@pytest.mark.parametrize('method', GENERATIVE)
def test_generator_family(longtail, method, tmp_path):
    tr = longtail[0]
    gen = SynthesisGenerator(method, updates=5).fit(tr)
    y = torch.tensor([9, 9, 0, 5])
    x = gen.sample(4, y, rng=make_generator(1))
    assert x.shape == (4, 1, 16, 16) and 0 <= x.min() and x.max() <= 1 and torch.isfinite(x).all()
    assert torch.equal(x, gen.sample(4, y, rng=make_generator(1)))
    gen.save(tmp_path / 'g.pt')
    assert torch.equal(SynthesisGenerator.load(tmp_path / 'g.pt').sample(4, y, rng=make_generator(1)), x)
    with pytest.raises(DataError, match='labels must be in 0..9'): gen.sample(2, torch.tensor([3, 10]))


def test_generator_checkpoint_tampering(longtail, tmp_path):
    gen = SynthesisGenerator('cvae', updates=5).fit(longtail[0][:200])
    gen.save(tmp_path / 'g.pt')
    raw = bytearray((tmp_path / 'g.pt').read_bytes()); raw[-200] ^= 0xFF
    (tmp_path / 'g.pt').write_bytes(bytes(raw))
    with pytest.raises(CorruptFileError): SynthesisGenerator.load(tmp_path / 'g.pt')


def test_latent_smote_codes_lie_on_same_class_segments(longtail):
    gen = SynthesisGenerator('latent-smote', updates=10).fit(longtail[0])
    z = gen.latent_codes(torch.full((100,), 8), make_generator(0))
    c = gen.codes_[gen.code_labels_ == 8]
    a, b = c[:, None], c[None]
    t = ((z[:, None, None] - a) * (b - a)).sum(-1) / ((b - a) ** 2).sum(-1).clamp_min(1e-12)
    resid = (a + t.clamp(0, 1)[..., None] * (b - a) - z[:, None, None]).norm(dim=-1).flatten(1).min(1).values
    assert resid.max() < 1e-4



def test_generator_bad_input(longtail):
    with pytest.raises(ConfigError, match='use one of'): check_generator('pixelcnn')
    with pytest.raises(DataError, match='size=16'): check_generator_shape('cgan', (1, 8, 8))
    with pytest.raises(ConfigError, match='updates must be a whole number'): SynthesisGenerator('cvae', updates=0)
    with pytest.raises(ConfigError, match='not trained yet'): SynthesisGenerator('cvae').sample(2)
    gen = SynthesisGenerator('cvae', updates=5).fit(longtail[0][:100])
    with pytest.raises(DataError, match='whole numbers'): gen.sample(2, [1.7, 2])      # no silent truncation
    assert torch.equal(gen.sample(3, 9, rng=make_generator(0)), gen.sample(3, [9, 9, 9], rng=make_generator(0)))


# ---------- every family at every size and channel count: one update changes the weights, sampling works
def _weights(models) -> dict:
    "Every floating-point tensor of a model or a {name: model} dict, keyed by name."
    models = models if isinstance(models, dict) else {'model': models}
    return {f'{n}.{k}': v.detach().clone() for n, m in models.items() for k, v in m.state_dict().items()
            if v.is_floating_point()}


@pytest.mark.parametrize('size', [16, 32, 64, 128])
@pytest.mark.parametrize('channels', [1, 3])
@pytest.mark.parametrize('method', GENERATIVE)
def test_every_family_takes_16_to_128_px_grey_or_colour(method, channels, size):
    torch.manual_seed(0)
    ds = ImageDataset(torch.rand(16, channels, size, size), torch.arange(16) % 4, classes=list('abcd'))
    seed_everything(0)                                         # fit seeds the same way before building
    before = _weights(generator_recipe(method, ds.shape, ds.n_classes)['models'])
    gen = SynthesisGenerator(method, updates=1, batch_size=8).fit(ds)
    after = _weights(gen.learn.models)
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before), f'{method}: one update changed nothing'
    y = torch.tensor([0, 1, 2, 3])
    x = gen.sample(4, y, rng=make_generator(1))
    assert x.shape == (4, channels, size, size) and 0 <= x.min() and x.max() <= 1 and torch.isfinite(x).all()
    assert torch.equal(x, gen.sample(4, y, rng=make_generator(1)))
