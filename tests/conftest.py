import pytest
import torch
from genai_data.data import load_digits


@pytest.fixture(scope='session')
def digits():
    return load_digits()


@pytest.fixture
def image_folder(tmp_path, digits):
    "A small ImageFolder tree of 3 classes x 4 grey PNGs."
    from genai_data.data import save_image_folder
    from genai_data.data import ImageDataset
    picked = digits.subset(torch.cat([torch.nonzero(digits.labels == c).flatten()[:4] for c in range(3)]))
    small = ImageDataset(picked.images, picked.labels, classes=digits.classes[:3])
    return save_image_folder(small, tmp_path / 'images'), small
