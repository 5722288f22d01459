import os
import numpy as np
import pytest
import torch
from genai_data.core import (ConfigError, DataError, GenaiDataError, OutputExistsError, DatasetNotFoundError, atomic_dir, atomic_write,
                             check_in_range, convert_range, get_device, image_grid, make_generator, range_bounds,
                             seed_everything, show_images, guess_value_range)


def test_device_default_and_env(monkeypatch):
    monkeypatch.delenv('GENAI_DATA_DEVICE', raising=False)
    expected = 'cuda' if torch.cuda.is_available() else 'mps' if torch.backends.mps.is_available() else 'cpu'
    assert get_device().type == expected
    monkeypatch.setenv('GENAI_DATA_DEVICE', 'cpu')
    assert get_device() == torch.device('cpu')


@pytest.mark.skipif(torch.cuda.is_available(), reason='needs a machine without CUDA')
def test_device_missing_cuda_is_an_error(monkeypatch):
    monkeypatch.setenv('GENAI_DATA_DEVICE', 'cuda')
    with pytest.raises(GenaiDataError, match='CUDA is not available'): get_device()


def test_device_unknown():
    with pytest.raises(ConfigError, match='unknown device'): get_device('gpu0')


def test_seed_everything_repeats_all_rngs():
    import random
    seed_everything(3); a = (random.random(), np.random.rand(), torch.randn(2))
    seed_everything(3); b = (random.random(), np.random.rand(), torch.randn(2))
    assert a[:2] == b[:2] and torch.equal(a[2], b[2])
    with pytest.raises(ConfigError, match='seed must be an integer'): seed_everything(2**40)
    assert torch.equal(torch.rand(4, generator=make_generator(1)), torch.rand(4, generator=make_generator(1)))


@pytest.mark.parametrize('src,dst', [('[0,1]', '[-1,1]'), ('[-1,1]', '[0,1]'), ('[0,1]', 'uint8'), ('uint8', '[-1,1]')])
def test_convert_range_bounds_map_to_bounds(src, dst):
    lo, hi = range_bounds(src)
    x = torch.tensor([lo, hi]).to(torch.uint8 if src == 'uint8' else torch.float32)
    y = convert_range(x, src, dst).float()
    assert y.tolist() == list(range_bounds(dst))


def test_convert_range_roundtrip_error_bound():
    x = torch.rand(1000)
    back = convert_range(convert_range(x, '[0,1]', 'uint8'), 'uint8', '[0,1]')
    assert (back - x).abs().max() <= 0.5 / 255 + 1e-7


def test_unknown_value_range():
    with pytest.raises(ConfigError, match='unknown value range'): convert_range(torch.zeros(1), '0..1', '[0,1]')


def test_check_in_range_messages():
    with pytest.raises(DataError, match="value_range='uint8'"): check_in_range(torch.tensor([0., 255.]), '[0,1]')
    with pytest.raises(DataError, match="value_range='\\[-1,1\\]'"): check_in_range(torch.tensor([-1., 1.]), '[0,1]')
    with pytest.raises(DataError, match='NaN'): check_in_range(torch.tensor([float('inf')]), '[-1,1]')
    assert guess_value_range(torch.tensor([1000.])) is None


def test_image_grid_and_show_images():
    g = image_grid(torch.rand(10, 3, 5, 5), nrow=4, padding=2)
    assert g.shape == (3 * 7 + 2, 4 * 7 + 2, 3) and g.dtype == torch.uint8
    fig = show_images(np.random.rand(3, 6, 6), labels=[0, 1, 2], class_names=['a', 'b', 'c'])
    assert [ax.get_title() for ax in fig.axes[:3]] == ['a', 'b', 'c']
    with pytest.raises(DataError, match='3 images but 2 labels'): show_images(torch.rand(3, 1, 4, 4), labels=[0, 1])
    with pytest.raises(DataError, match='shape'): image_grid(torch.rand(2, 2, 4, 4))


def test_atomic_write_keeps_old_file_on_error(tmp_path):
    p = tmp_path / 'w.bin'
    with atomic_write(p) as f: f.write(b'good')
    with pytest.raises(RuntimeError):
        with atomic_write(p) as f: f.write(b'partial'); raise RuntimeError
    assert p.read_bytes() == b'good' and os.listdir(tmp_path) == ['w.bin']
    with pytest.raises(OutputExistsError): atomic_write(p, overwrite=False).__enter__()
    with pytest.raises(DatasetNotFoundError, match='does not exist'): atomic_write(tmp_path / 'no' / 'x').__enter__()


def test_atomic_write_torch_save_roundtrip(tmp_path):
    p, sd = tmp_path / 'ck.pt', {'w': torch.randn(3)}
    with atomic_write(p) as f: torch.save(sd, f)
    assert torch.equal(torch.load(p, weights_only=True)['w'], sd['w'])


def test_atomic_dir(tmp_path):
    out = tmp_path / 'out'
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(out) as t: (t / 'a').write_text('x'); raise KeyboardInterrupt
    assert not out.exists() and os.listdir(tmp_path) == []
    with atomic_dir(out) as t: (t / 'a').write_text('1')
    with pytest.raises(OutputExistsError, match='overwrite=True'):
        with atomic_dir(out): pass
    with atomic_dir(out, overwrite=True) as t: (t / 'b').write_text('2')
    assert sorted(os.listdir(out)) == ['.genai_data_output.json', 'b'] and os.listdir(tmp_path) == ['out']
