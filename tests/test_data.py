import numpy as np
import pytest
import torch
from genai_data.core import ConfigError, DataError, DatasetNotFoundError, OutputExistsError
from genai_data.data import (ImageDataset, clean, grid_of_gaussians, imbalance_counts, load_digits, load_image_folder,
                             load_npz, load_splits, load_torchvision, make_imbalanced, ring_of_gaussians, save_splits,
                             stratified_split, write_idx_mnist, channel_stats, standardize, resize_images)


# ---- the container -------------------------------------------------------------------------------------------

def test_container_fields(digits):
    assert digits.images.dtype == torch.float32 and digits.labels.dtype == torch.int64
    assert digits.shape == (1, 8, 8) and len(digits) == 1797 and digits.classes == [str(i) for i in range(10)]
    assert digits.images.min() >= 0 and digits.images.max() <= 1 and digits.value_range == '[0,1]'
    x, y = digits[5]
    assert x.shape == (1, 8, 8) and int(y) == int(digits.labels[5])
    sub = digits[digits.labels == 3]
    assert isinstance(sub, ImageDataset) and set(sub.labels.tolist()) == {3} and sub.classes == digits.classes


def test_container_bad_inputs():
    x = torch.rand(4, 1, 5, 5)
    with pytest.raises(DataError, match='4 images but 3 labels'): ImageDataset(x, [0, 1, 2])
    with pytest.raises(DataError, match='out of range'): ImageDataset(x, [0, 1, 2, 3], classes=['a', 'b'])
    with pytest.raises(DataError, match='>= 0'): ImageDataset(x, [0, 1, 2, -1])
    with pytest.raises(DataError, match='NaN'): ImageDataset(torch.where(x > .5, float('nan'), x), [0] * 4)
    with pytest.raises(ConfigError, match='unknown value range'): ImageDataset(x, [0] * 4, value_range='[0,255]')
    with pytest.raises(ConfigError, match='float images'): ImageDataset(x, [0] * 4, value_range='uint8')
    with pytest.raises(DataError, match='floating point'): ImageDataset((x * 255).byte(), [0] * 4)
    with pytest.raises(DataError, match='C in'): ImageDataset(torch.rand(4, 2, 5, 5), [0] * 4)
    with pytest.raises(DataError, match='whole numbers'): ImageDataset(x, [0, 1.5, 2, 3])
    with pytest.raises(DataError, match='same after normalisation'): ImageDataset(x, [0] * 4, classes=['a', 'a'])
    with pytest.raises(DataError, match="value_range='\\[-1,1\\]'"): ImageDataset(x * 2 - 1, [0] * 4)


def test_to_range_and_dataloader(digits):
    sym = digits.to_range('[-1,1]')
    assert sym.images.min() >= -1 and sym.value_range == '[-1,1]'
    torch.testing.assert_close(sym.to_range('[0,1]').images, digits.images)
    batches = list(digits.dataloader(batch_size=100, seed=0))
    assert len(batches) == 18 and batches[0][0].shape == (100, 1, 8, 8)
    assert sorted(torch.cat([b[1] for b in batches]).tolist()) == sorted(digits.labels.tolist())
    again = list(digits.dataloader(batch_size=100, seed=0))
    assert all(torch.equal(a[1], b[1]) for a, b in zip(batches, again))


# ---- loaders -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('size', [8, 16, 32])
def test_load_digits_sizes(size):
    d = load_digits(size)
    assert d.shape == (1, size, size) and d.images.min() >= 0 and d.images.max() <= 1


def test_load_digits_matches_sklearn():
    from sklearn.datasets import load_digits as sk
    ref = sk()
    d = load_digits()
    np.testing.assert_allclose(d.images[:, 0].numpy() * 16, ref.images, atol=1e-5)
    assert d.labels.tolist() == ref.target.tolist()


def test_image_folder_roundtrip(image_folder):
    root, small = image_folder
    back = load_image_folder(root)
    assert back.classes == small.classes and back.shape == (1, 8, 8)    # all 10 classes, via classes.json
    assert (back.images - small.images).abs().max() <= 0.5 / 255 + 1e-6


def test_image_folder_rgb_and_sizes(tmp_path):
    from PIL import Image
    for c, color in (('red', (255, 0, 0)), ('blue', (0, 0, 255))):
        (tmp_path / c).mkdir()
        for i, s in enumerate((10, 12)): Image.new('RGB', (s, s), color).save(tmp_path / c / f'{i}.png')
    with pytest.raises(DataError, match='pass size=N'): load_image_folder(tmp_path)
    ds = load_image_folder(tmp_path, size=8)
    assert ds.shape == (3, 8, 8) and ds.classes == ['blue', 'red']
    assert ds.images[ds.labels == 1][:, 0].min() > 0.99          # red channel of red images
    grey = load_image_folder(tmp_path, size=8, channels=1)
    assert grey.shape == (1, 8, 8)


def test_image_folder_corrupt_file(image_folder):
    root, _ = image_folder
    (root / '1' / 'zz_truncated.png').write_bytes(b'\x89PNG\r\n\x1a\n' + b'\x00' * 10)
    with pytest.raises(DataError, match='zz_truncated.png'): load_image_folder(root)
    with pytest.warns(UserWarning, match='zz_truncated.png'):
        assert len(load_image_folder(root, on_corrupt='skip')) == 12


def test_image_folder_missing_and_empty(tmp_path):
    with pytest.raises(DatasetNotFoundError, match='does not exist'): load_image_folder(tmp_path / 'nope')
    with pytest.raises(DataError, match='no class sub-folders'): load_image_folder(tmp_path)
    (tmp_path / 'cat').mkdir()
    with pytest.raises(DataError, match='holds no images'): load_image_folder(tmp_path)


def test_npz_layouts_and_errors(tmp_path, digits):
    p = tmp_path / 'd.npz'
    x8 = (digits.images[:12, 0].numpy() * 255).round().astype(np.uint8)
    y = digits.labels[:12].numpy()
    for x in (x8, x8[:, None], x8[..., None]):
        np.savez(p, x=x, y=y)
        assert load_npz(p).shape == (1, 8, 8)
    np.savez(p, x=x8.astype(np.float32) / 255, y=y, value_range='[0,1]', classes=np.array(list('abcdefghij')))
    d = load_npz(p)
    assert d.classes[0] == 'a'
    with pytest.raises(DataError, match='says its images are in'): load_npz(p, value_range='uint8')
    np.savez(p, x=x8.astype(np.float32), y=y)
    with pytest.raises(DataError, match='say its value range'): load_npz(p)
    with pytest.raises(DataError, match="value_range='uint8'"): load_npz(p, value_range='[0,1]')
    np.savez(p, images=x8, y=y)
    with pytest.raises(DataError, match="lacks \\['x'\\]"): load_npz(p)
    np.savez(p, x=x8, y=y[:5])
    with pytest.raises(DataError, match='12 images but 5 labels'): load_npz(p)
    np.savez(p, x=x8, y=y + 20, classes=np.array(list('abcdefghij')))
    with pytest.raises(DataError, match='out of range'): load_npz(p)
    np.savez(p, x=np.zeros((3, 4, 4, 4)), y=[0, 1, 2])
    with pytest.raises(DataError, match='C in \\(1, 3\\)'): load_npz(p, value_range='[0,1]')
    p.write_bytes(b'PK\x03\x04 corrupt')
    with pytest.raises(DataError, match='cannot read'): load_npz(p)
    with pytest.raises(DatasetNotFoundError): load_npz(tmp_path / 'missing.npz')


def test_torchvision_local_files(tmp_path, digits):
    x = (resize_images(digits.images[:40], 28)[:, 0] * 255).round().byte().numpy()
    write_idx_mnist(tmp_path, x, digits.labels[:40].numpy())
    m = load_torchvision('mnist', tmp_path, train=False)
    assert m.shape == (1, 28, 28) and len(m) == 40 and m.n_classes == 10
    np.testing.assert_array_equal((m.images[:, 0] * 255).round().byte().numpy(), x)
    write_idx_mnist(tmp_path, x, digits.labels[:40].numpy(), name='FashionMNIST')
    assert load_torchvision('fashion-mnist', tmp_path).classes[0] == 'T-shirt or top'     # '/' would be a path


def test_torchvision_missing_files_say_where(tmp_path):
    with pytest.raises(DatasetNotFoundError, match='MNIST/raw') as e: load_torchvision('mnist', tmp_path)
    assert 'download' in str(e.value)
    with pytest.raises(DatasetNotFoundError, match='cifar-10-batches-py'): load_torchvision('cifar10', tmp_path)
    with pytest.raises(ConfigError, match='unknown torchvision dataset'): load_torchvision('imagenet', tmp_path)


def test_toy_distributions():
    r = ring_of_gaussians(4000, seed=1)
    assert r.x.shape == (4000, 2) and r.modes.shape == (8, 2) and r.std == 0.02
    dist = (r.x - r.modes[r.y]).norm(dim=1)
    assert dist.max() < 6 * 0.02 * 2                     # every sample sits near its own mode
    g = grid_of_gaussians(10000, seed=1)
    assert g.modes.shape == (25, 2) and torch.bincount(g.y, minlength=25).min() > 300
    assert sorted(set(g.modes[:, 0].tolist())) == [-4., -2., 0., 2., 4.]
    assert torch.equal(grid_of_gaussians(50, seed=2).x, grid_of_gaussians(50, seed=2).x)
    with pytest.raises(ConfigError, match='n must be >= 1'): ring_of_gaussians(0)


# ---- cleaning ------------------------------------------------------------------------------------------------

def test_clean_reports_and_drops(digits):
    x, y = digits.images[:20].clone(), digits.labels[:20].clone()
    x[2, 0, 0, 0] = float('nan'); x[7, 0, 1, 1] = float('-inf')
    x = torch.cat([x, x[10:12], x[15:16]]); y = torch.cat([y, y[10:12], (y[15:16] + 1) % 10])
    ds, rep = clean(x, y, classes=digits.classes)
    assert rep.nonfinite == [2, 7] and rep.duplicates == [20, 21] and rep.label_conflicts == [15, 22]
    assert len(ds) == rep.n_kept == 23 - 6 and torch.isfinite(ds.images).all()
    assert 'removed 2 nonfinite' in str(rep)


def test_clean_wrong_shapes_and_uint8(digits):
    imgs = [(digits.images[i, 0].numpy() * 255).round().astype(np.uint8) for i in range(6)] + [np.zeros((3, 3), np.uint8)]
    ds, rep = clean(imgs, digits.labels[:7], value_range='uint8')
    assert rep.wrong_shape == [6] and ds.value_range == '[0,1]' and len(ds) == 6


def test_clean_bad_calls(digits):
    x, y = digits.images[:5], digits.labels[:5]
    with pytest.raises(DataError, match='5 images but 4 labels'): clean(x, y[:4])
    with pytest.raises(DataError, match='out of range'): clean(x, y + 10, classes=digits.classes)
    with pytest.raises(DataError, match='shape'): clean(x.flatten(), y)
    with pytest.raises(DataError, match='no images are left'): clean(torch.full((2, 1, 3, 3), float('nan')), [0, 1])
    with pytest.raises(DataError, match="rescale them"): clean(x * 255, y)              # not whole numbers: not uint8 either
    with pytest.raises(DataError, match="value_range='uint8'"): clean((x * 255).round(), y)


# ---- normalisation, splits, imbalance ----------------------------------------------------------------------------

def test_standardize(digits):
    m, s = channel_stats(digits)
    z = standardize(digits.images, m, s)
    assert abs(z.mean().item()) < 1e-4 and abs(z.std().item() - 1) < 1e-3


def test_stratified_split_properties(digits):
    parts = stratified_split(digits, (0.6, 0.2, 0.2), seed=5)
    assert sum(len(p) for p in parts.values()) == len(digits)
    for p in parts.values(): assert (p.class_counts() > 0).all()
    ratio = parts['train'].class_counts().float() / digits.class_counts().float()
    assert (ratio - 0.6).abs().max() < 0.01
    # disjoint: no image row appears in two parts (digits has no exact duplicates)
    rows = torch.cat([p.images.flatten(1) for p in parts.values()])
    assert len(torch.unique(rows, dim=0)) == len(torch.unique(digits.images.flatten(1), dim=0))
    assert torch.equal(stratified_split(digits, seed=1)['valid'].labels, stratified_split(digits, seed=1)['valid'].labels)
    assert not torch.equal(stratified_split(digits, seed=1)['train'].images, stratified_split(digits, seed=2)['train'].images)


def test_split_tiny_class_is_an_error(digits):
    tiny = make_imbalanced(digits, {'4': 2})
    with pytest.raises(DataError, match="class '4' has 2 sample"): stratified_split(tiny)
    ok = stratified_split(make_imbalanced(digits, {'4': 3}))
    assert all(p.class_counts()[4] == 1 for p in ok.values())
    empty = digits[digits.labels != 9]            # class 9 is named but has no samples
    with pytest.raises(DataError, match="class '9' has 0 sample"): stratified_split(empty)
    with pytest.raises(ConfigError, match='sum to 1'): stratified_split(digits, (0.7, 0.2, 0.2))
    with pytest.raises(ConfigError, match='part names'): stratified_split(digits, (0.5, 0.5))


def test_make_imbalanced(digits):
    counts = imbalance_counts(10, 100, 10)
    assert counts[0] == 100 and counts[-1] == 10 and counts == sorted(counts, reverse=True)
    d = make_imbalanced(digits, counts, seed=1)
    assert d.class_counts().tolist() == counts
    with pytest.raises(DataError, match='unknown class'): make_imbalanced(digits, {'ten': 1})
    with pytest.raises(DataError, match='cannot keep'): make_imbalanced(digits, {0: 1000})
    with pytest.raises(DataError, match='>= 1'): make_imbalanced(digits, {0: 0})
    with pytest.raises(DataError, match='10 classes'): make_imbalanced(digits, [5, 5])


def test_save_load_splits_exact(tmp_path, digits):
    parts = stratified_split(digits.to_range('[-1,1]'))
    p = save_splits(parts, tmp_path / 's.npz')
    back = load_splits(p)
    for k in parts:
        assert torch.equal(back[k].images, parts[k].images) and torch.equal(back[k].labels, parts[k].labels)
        assert back[k].value_range == '[-1,1]' and back[k].classes == parts[k].classes
    with pytest.raises(OutputExistsError): save_splits(parts, p)
    (tmp_path / 'bad.npz').write_bytes(b'junk')
    with pytest.raises(DataError, match='prepare the dataset again'): load_splits(tmp_path / 'bad.npz')
    with pytest.raises(DatasetNotFoundError, match='genai-data prepare'): load_splits(tmp_path / 'none')
