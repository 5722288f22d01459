"One set of property tests per batch transform, plus the mixers, policies and DiffAugment."
import pytest
import torch
import torchvision.transforms.v2.functional as TF
from genai_data.core import ConfigError, DataError, make_generator
from genai_data import augment as A

G = make_generator
DEVICES = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])

# (factory taking p and a generator, value range) for every label-preserving transform, at a real magnitude
TRANSFORMS = {
    'affine': lambda p, g, vr='[0,1]': A.RandomAffine(30, (0.2, 0.2), (0.8, 1.2), 15, p=p, value_range=vr, generator=g),
    'resized_crop': lambda p, g, vr='[0,1]': A.RandomResizedCrop(scale=(0.2, 0.9), p=p, value_range=vr, generator=g),
    'hflip': lambda p, g, vr='[0,1]': A.RandomHorizontalFlip(p=p, value_range=vr, generator=g),
    'vflip': lambda p, g, vr='[0,1]': A.RandomVerticalFlip(p=p, value_range=vr, generator=g),
    'color_jitter': lambda p, g, vr='[0,1]': A.ColorJitter(0.5, 0.5, 0.5, 0.2, p=p, value_range=vr, generator=g),
    'noise': lambda p, g, vr='[0,1]': A.GaussianNoise((0.05, 0.2), p=p, value_range=vr, generator=g),
    'blur': lambda p, g, vr='[0,1]': A.GaussianBlur(5, (0.5, 2.0), p=p, value_range=vr, generator=g),
    'erasing': lambda p, g, vr='[0,1]': A.RandomErasing(p=p, value_range=vr, generator=g),
    'erasing_random': lambda p, g, vr='[0,1]': A.RandomErasing(value='random', p=p, value_range=vr, generator=g),
    'cutout': lambda p, g, vr='[0,1]': A.Cutout(0.4, p=p, value_range=vr, generator=g),
    'policy_trivial': lambda p, g, vr='[0,1]': A.TrivialAugmentWide(p=p, value_range=vr, generator=g),
    'policy_rand': lambda p, g, vr='[0,1]': A.RandAugment(2, 12, p=p, value_range=vr, generator=g),
    'policy_auto': lambda p, g, vr='[0,1]': A.AutoAugment('imagenet', p=p, value_range=vr, generator=g),
}


def batch(n=16, c=3, h=20, w=24, seed=0, device='cpu'):
    "Smooth random images with structure (so flips, shifts and blurs all change them)."
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, c, h // 4, w // 4, generator=g)
    return torch.nn.functional.interpolate(x, size=(h, w), mode='bilinear').to(device)


@pytest.mark.parametrize('name', TRANSFORMS)
@pytest.mark.parametrize('channels', [1, 3])
def test_shape_dtype_range_kept(name, channels):
    x = batch(c=channels)
    y = TRANSFORMS[name](1.0, G(0))(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert y.min() >= 0 and y.max() <= 1
    assert not torch.equal(y, x)


@pytest.mark.parametrize('name', TRANSFORMS)
def test_symmetric_range_kept(name):
    x = batch() * 2 - 1
    y = TRANSFORMS[name](1.0, G(0), '[-1,1]')(x)
    assert y.min() >= -1 and y.max() <= 1 and y.shape == x.shape


@pytest.mark.parametrize('name', TRANSFORMS)
def test_p0_is_identity(name):
    x = batch()
    assert torch.equal(TRANSFORMS[name](0.0, G(0))(x), x)


@pytest.mark.parametrize('name', TRANSFORMS)
def test_same_seed_same_output_and_global_rng_untouched(name):
    x = batch()
    torch.manual_seed(123); before = torch.rand(1)
    torch.manual_seed(123)
    a = TRANSFORMS[name](0.7, G(5))(x)
    after = torch.rand(1)
    b = TRANSFORMS[name](0.7, G(5))(x)
    assert torch.equal(a, b)
    assert torch.equal(before, after), 'a transform with its own generator must not consume the global RNG'


@pytest.mark.parametrize('name', TRANSFORMS)
def test_parameters_differ_across_samples(name):
    x = batch(n=1).expand(12, -1, -1, -1).contiguous()       # twelve copies of one image
    y = TRANSFORMS[name](0.5 if 'flip' in name else 1.0, G(2))(x)    # a flip's only parameter is whether it happens
    distinct = len({tuple(v.flatten().round(decimals=4).tolist()) for v in y})
    assert distinct > 1 + (0 if 'flip' in name else 4), f'{name}: only {distinct} distinct outputs for 12 copies'


@pytest.mark.parametrize('name', ['affine', 'resized_crop', 'color_jitter', 'noise', 'blur', 'erasing', 'cutout'])
def test_p_half_transforms_about_half(name):
    x = batch(n=400, c=3, h=12, w=12)
    y = TRANSFORMS[name](0.5, G(9))(x)
    changed = (y != x).flatten(1).any(1).float().mean().item()
    assert 0.4 < changed < 0.6


def test_zero_magnitude_identities():
    x = batch()
    torch.testing.assert_close(A.RandomAffine(generator=G(0))(x), x, atol=1e-5, rtol=0)
    torch.testing.assert_close(A.ColorJitter(generator=G(0))(x), x)
    torch.testing.assert_close(A.GaussianNoise(0.)(x), x)
    torch.testing.assert_close(A.RandomResizedCrop(scale=(1, 1), ratio=(24 / 20, 24 / 20), generator=G(0))(x), x, atol=1e-5, rtol=0)


def test_affine_matches_torchvision_per_image():
    x = batch(n=5)
    ang, tr = torch.tensor([10., -30., 45., 0., 170.]), torch.tensor([[1., 2.], [0., -3.], [2., 2.], [0., 0.], [-1., 0.]])
    sc, sh = torch.tensor([1., 1.2, 0.7, 1.1, 1.]), torch.tensor([[0., 0.], [12., -4.], [0., 8.], [-6., 0.], [3., 3.]])
    ours = A.warp(x, A.affine_matrices(ang, tr, sc, sh, x.shape[-2:]))
    ref = torch.cat([TF.affine(x[i:i + 1], angle=-ang[i].item(), translate=tr[i].tolist(), scale=sc[i].item(),
                               shear=sh[i].tolist(), interpolation=TF.InterpolationMode.BILINEAR) for i in range(5)])
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=0)


def test_colour_and_blur_match_torchvision():
    x = batch(n=3)
    f = [0.5, 1.0, 1.7]
    for ours, theirs in ((A.adjust_brightness, TF.adjust_brightness), (A.adjust_contrast, TF.adjust_contrast),
                         (A.adjust_saturation, TF.adjust_saturation)):
        torch.testing.assert_close(ours(x, f), torch.cat([theirs(x[i:i + 1], v) for i, v in enumerate(f)]), atol=1e-4, rtol=0)
    h = [-0.4, 0.1, 0.5]
    torch.testing.assert_close(A.adjust_hue(x, h), torch.cat([TF.adjust_hue(x[i:i + 1], v) for i, v in enumerate(h)]), atol=1e-4, rtol=0)
    s = torch.tensor([0.3, 1.0, 2.5])
    torch.testing.assert_close(A.gaussian_filter(x, s, 5), torch.cat([TF.gaussian_blur(x[i:i + 1], [5, 5], [v.item()] * 2) for i, v in enumerate(s)]),
                               atol=1e-5, rtol=0)


def test_grey_colour_jitter_only_brightness_contrast():
    x = batch(c=1)
    y = A.ColorJitter(saturation=0.9, hue=0.4, generator=G(0))(x)
    assert torch.equal(y, x)


def test_bad_inputs():
    with pytest.raises(DataError, match='\\(N, C, H, W\\)'): A.RandomAffine(10)(torch.rand(3, 8, 8))
    with pytest.raises(DataError, match='float'): A.RandomHorizontalFlip()(torch.zeros(2, 1, 4, 4, dtype=torch.uint8))
    with pytest.raises(ConfigError, match='p must be'): A.Cutout(p=1.5)
    with pytest.raises(ConfigError, match='convert'): A.ColorJitter(value_range='uint8')
    with pytest.raises(ConfigError, match='hue'): A.ColorJitter(hue=0.7)
    with pytest.raises(ConfigError, match='odd'): A.GaussianBlur(4)
    with pytest.raises(ConfigError, match='unknown method'): A.PolicyAugment('augmix')
    with pytest.raises(ConfigError, match='unknown AutoAugment policy'): A.AutoAugment('mnist')
    with pytest.raises(ConfigError, match='unknown DiffAugment'): A.DiffAugment('color,rotate')


def test_mixup_cutmix_labels():
    y = torch.arange(64) % 2
    x = y.float().reshape(-1, 1, 1, 1).expand(-1, 3, 10, 10).contiguous()
    for mixer in (A.Mixup(0.5, 2, generator=G(0)), A.CutMix(1.0, 2, generator=G(0))):
        xm, ym = mixer(x, y)
        torch.testing.assert_close(ym.sum(1), torch.ones(64))
        torch.testing.assert_close(xm.mean((1, 2, 3)), ym[:, 1], atol=1e-6, rtol=0)   # label weight = pixel share
        assert ((ym[:, 1] > 0.01) & (ym[:, 1] < 0.99)).sum() > 5
        xm2, ym2 = type(mixer)(mixer.alpha, 2, generator=G(0))(x, y)
        assert torch.equal(xm, xm2) and torch.equal(ym, ym2)
    soft = torch.full((64, 2), 0.5)
    assert torch.allclose(A.Mixup(1.0, generator=G(0))(x, soft)[1], soft)
    with pytest.raises(DataError, match='sum to 1'): A.Mixup()(x, torch.ones(64, 2))
    with pytest.raises(DataError, match='labels'): A.CutMix()(x, y[:10])
    with pytest.raises(ConfigError, match='alpha'): A.Mixup(0)


def test_cutmix_weight_is_pasted_area_with_clipping():
    n = 256
    x = torch.zeros(n, 1, 8, 8); x[n // 2:] = 1
    y = torch.cat([torch.zeros(n // 2), torch.ones(n // 2)]).long()
    xm, ym = A.CutMix(0.3, 2, generator=G(3))(x, y)
    torch.testing.assert_close(xm.mean((1, 2, 3)), ym[:, 1], atol=1e-6, rtol=0)


def test_diffaugment_gradients_and_determinism():
    x = (batch(n=8) * 2 - 1).requires_grad_()
    y = A.DiffAugment(generator=G(0))(x)
    assert y.shape == x.shape
    (y * torch.randn_like(y)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    z = x.detach()
    assert torch.equal(A.DiffAugment(generator=G(1))(z), A.DiffAugment(generator=G(1))(z))
    t = A.DiffAugment('translation', generator=G(2))(z)
    for i in range(8):   # integer shifts: every output value is an input value or zero padding
        assert torch.isin(t[i], torch.cat([z[i].flatten(), torch.zeros(1)])).all()
    c = A.DiffAugment('cutout', generator=G(2))(torch.ones(8, 1, 16, 16))
    assert ((c == 0).flatten(1).sum(1) > 0).all()


def test_compose_and_random_apply_and_torchvision_v2():
    import torchvision.transforms.v2 as v2
    x = batch()
    pipe = A.Compose([A.RandomAffine(10, generator=G(0)), A.RandomHorizontalFlip(generator=G(1)), lambda t: t * 0.5])
    assert pipe(x).max() <= 0.5
    y = v2.Compose([A.Cutout(0.3, generator=G(0)), v2.RandomInvert(p=1.0)])(x)
    assert y.shape == x.shape
    ra = A.RandomApply([A.RandomVerticalFlip(p=1.0)], p=0.5, generator=G(0))(x)
    assert all(torch.equal(a, b) or torch.equal(a, b.flip(-2)) for a, b in zip(ra, x))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
@pytest.mark.parametrize('name', TRANSFORMS)
def test_cuda_matches_cpu_parameters(name):
    x = batch()
    a = TRANSFORMS[name](0.7, G(4))(x)
    b = TRANSFORMS[name](0.7, G(4))(x.cuda())
    assert b.is_cuda
    if name.startswith('policy'): assert b.shape == a.shape
    else: torch.testing.assert_close(b.cpu(), a, atol=1e-4, rtol=0)
