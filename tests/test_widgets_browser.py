"""The four widgets in a real browser: a notebook served by Voilà on localhost, opened in Debian's headless Chromium.
Checks that every widget renders (no 'Error displaying widget', no console errors), that moving a slider changes the
image, and takes a screenshot of each (GENAI_DATA_SCREENSHOTS=nbs/images/widgets refreshes the lesson's pictures)."""
import json, os, shutil, socket, subprocess, sys, time, urllib.request
from pathlib import Path
import pytest

BIN = Path(sys.executable).parent
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser') or shutil.which('google-chrome')
DRIVER = shutil.which('chromedriver')
VOILA = shutil.which('voila', path=str(BIN)) or shutil.which('voila')
if os.environ.get('GENAI_DATA_REQUIRE_BROWSER'):
    assert CHROMIUM and DRIVER and VOILA, 'GENAI_DATA_REQUIRE_BROWSER is set but chromium, chromedriver or voila is missing'
webdriver = pytest.importorskip('selenium.webdriver', reason='selenium is not installed (pip install -e ".[dev]")')
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER and VOILA),
                                reason='needs chromium + chromium-driver (apt-get) and voila (pip install -e ".[dev]")')
WIDGETS = ('augment', 'resample', 'latent', 'gallery')

CELLS = [
    "import torch; torch.set_num_threads(1)\n"
    "from genai_data.data import load_digits, stratified_split, make_imbalanced, imbalance_counts\n"
    "from genai_data.widgets import AugmentPreview, ResamplingViewer, LatentExplorer, ConditionalGallery\n"
    "from genai_data.generators import SynthesisGenerator\nfrom genai_data.metrics import fit_judge\n"
    "splits = stratified_split(load_digits(16), (0.6, 0.2, 0.2), seed=0)\n"
    "train = make_imbalanced(splits['train'], imbalance_counts(10, int(splits['train'].class_counts().min()), 20), seed=0)\n"
    "gen = SynthesisGenerator('cvae', 300).fit(train); judge = fit_judge(train, epochs=5)",
    "AugmentPreview(train).widget",
    "ResamplingViewer(train, updates=50).widget",
    "LatentExplorer(gen.net_, splits['valid']).widget",
    "ConditionalGallery(gen, splits['valid'], judge).widget",
]


def _jupyter_data_dirs():
    from jupyter_core.paths import jupyter_path
    return jupyter_path()


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


@pytest.fixture(scope='module')
def served(tmp_path_factory):
    d = tmp_path_factory.mktemp('voila')
    nb = {'cells': [{'cell_type': 'code', 'execution_count': None, 'id': f'c{i}', 'metadata': {}, 'outputs': [], 'source': s}
                    for i, s in enumerate(CELLS)],
          'metadata': {'kernelspec': {'display_name': 'python3', 'language': 'python', 'name': 'python3'}}, 'nbformat': 4, 'nbformat_minor': 5}
    (d / 'widgets.ipynb').write_text(json.dumps(nb))
    # Voilà's lab template links FontAwesome from a CDN; serve a copy of it without those links (nothing may download)
    lab = next(Path(p) / 'voila' / 'templates' / 'lab' for p in _jupyter_data_dirs() if (Path(p) / 'voila' / 'templates' / 'lab').is_dir())
    offline = d / 'share' / 'voila' / 'templates' / 'offline'
    shutil.copytree(lab, offline)
    idx = offline / 'index.html.j2'
    idx.write_text(''.join(l for l in idx.read_text().splitlines(keepends=True) if 'cdn.jsdelivr' not in l))
    (offline / 'conf.json').write_text('{"base_template": "lab"}')
    port = _free_port()
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'MPLBACKEND': 'Agg', 'PATH': f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           'JUPYTER_PATH': str(d / 'share')}
    log = open(d / 'voila.log', 'w')
    p = subprocess.Popen([VOILA, 'widgets.ipynb', '--template=offline', '--no-browser', f'--port={port}', '--Voila.ip=127.0.0.1',
                          '--ServerApp.token=', '--ServerApp.password=', f'--Voila.tornado_settings={{"websocket_max_message_size": 104857600}}'],
                         cwd=d, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f'http://127.0.0.1:{port}/'
    for _ in range(300):
        try: urllib.request.urlopen(url + 'api/status', timeout=1); break
        except Exception:
            if p.poll() is not None: break
            time.sleep(0.2)
    yield url, d
    p.terminate()
    try: p.wait(10)
    except subprocess.TimeoutExpired: p.kill()


@pytest.fixture(scope='module')
def page(served):
    from selenium.webdriver.support.ui import WebDriverWait
    from conftest import headless_chromium
    drv = headless_chromium('1300,1800')
    url, d = served
    t0 = time.time()
    drv.get(url)
    try:
        WebDriverWait(drv, 240).until(lambda b: all(b.find_elements('css selector', f'.gd-widget-{w}') for w in WIDGETS))
    except Exception:
        raise AssertionError(f"the widgets did not all render in 240 s; Voilà's log:\n{(d / 'voila.log').read_text()[-3000:]}")
    drv.render_seconds = time.time() - t0
    yield drv
    drv.quit()


def test_every_widget_renders_without_errors(page, tmp_path):
    print(f'widgets rendered {page.render_seconds:.0f} s after the page was opened')
    assert 'Error displaying widget' not in page.page_source
    out = Path(os.environ.get('GENAI_DATA_SCREENSHOTS') or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    for w in WIDGETS:
        el = page.find_element('css selector', f'.gd-widget-{w}')
        assert el.is_displayed() and el.size['height'] > 100, w
        imgs = el.find_elements('tag name', 'img')
        assert imgs and all(page.execute_script('return arguments[0].complete && arguments[0].naturalWidth > 0', i) for i in imgs), w
        page.execute_script('arguments[0].scrollIntoView({block: "start"})', el); time.sleep(0.3)
        el.screenshot(str(out / f'{w}.png'))
        assert (out / f'{w}.png').stat().st_size > 5_000
    errors = [e for e in page.get_log('browser') if e['level'] == 'SEVERE' and 'favicon' not in e['message']]
    assert not errors, errors


def test_moving_a_slider_changes_the_image(page):
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait
    after = page.find_element('css selector', '.gd-aug-after')
    before_src = after.get_attribute('src')
    handle = page.find_element('css selector', '.gd-aug-rotation .noUi-handle')
    handle.click()
    for _ in range(20): handle.send_keys(Keys.ARROW_RIGHT)
    WebDriverWait(page, 60).until(lambda b: b.find_element('css selector', '.gd-aug-after').get_attribute('src') != before_src)
    assert page.find_element('css selector', '.gd-aug-rotation .widget-readout').text != '15.00'
