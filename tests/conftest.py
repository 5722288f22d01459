import os
import pytest
import torch

if os.environ.get('PYTEST_XDIST_WORKER'):    # one thread per worker: several torch processes on 2 cores oversubscribe them badly
    os.environ.setdefault('OMP_NUM_THREADS', '1')   # and for the notebooks and helpers the tests start
    torch.set_num_threads(1)
from genai_data.data import load_digits


@pytest.fixture(scope='session')
def digits():
    return load_digits()


@pytest.fixture(scope='session')
def longtail():
    "Digits 16x16: a 20:1 long-tailed training part, a balanced held-out part, and a balanced spare part."
    from genai_data.data import stratified_split, make_imbalanced, imbalance_counts
    sp = stratified_split(load_digits(16), (0.6, 0.2, 0.2), seed=0)
    tr = make_imbalanced(sp['train'], imbalance_counts(10, int(sp['train'].class_counts().min()), 20), seed=0)
    return tr, sp['valid'], sp['test']


@pytest.fixture(scope='session')
def judge(longtail):
    from genai_data.metrics import fit_judge
    return fit_judge(longtail[0], updates=300, seed=0)


@pytest.fixture
def image_folder(tmp_path, digits):
    "A small ImageFolder tree of 3 classes x 4 grey PNGs."
    from genai_data.data import save_image_folder
    from genai_data.data import ImageDataset
    picked = digits.subset(torch.cat([torch.nonzero(digits.labels == c).flatten()[:4] for c in range(3)]))
    small = ImageDataset(picked.images, picked.labels, classes=digits.classes[:3])
    return save_image_folder(small, tmp_path / 'images'), small


def headless_chromium(window='1200,900'):
    "Debian's Chromium through Selenium, headless, with the browser console log kept (for tests that open pages)."
    import shutil
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    opts = Options()
    opts.binary_location = shutil.which('chromium') or shutil.which('chromium-browser') or shutil.which('google-chrome')
    for a in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', f'--window-size={window}'):
        opts.add_argument(a)
    opts.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
    return webdriver.Chrome(service=Service(shutil.which('chromedriver')), options=opts)
