"The HTML report in a real browser (Debian's headless Chromium through Selenium): it loads offline, without console errors, and shows every section."
import os, shutil
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / 'examples' / 'digits-20to1' / 'report.html'
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser') or shutil.which('google-chrome')
DRIVER = shutil.which('chromedriver')
REQUIRED = bool(os.environ.get('GENAI_DATA_REQUIRE_BROWSER'))   # .ci/run sets it: there a missing browser is a failure, not a skip
if REQUIRED: assert CHROMIUM and DRIVER, 'GENAI_DATA_REQUIRE_BROWSER is set but chromium/chromedriver are missing'
webdriver = pytest.importorskip('selenium.webdriver', reason='selenium is not installed (pip install -e ".[dev]")')
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason='no Chromium/ChromeDriver: apt-get install -y chromium chromium-driver')


@pytest.fixture(scope='module')
def browser():
    from conftest import headless_chromium
    drv = headless_chromium('1200,900')
    yield drv
    drv.quit()


@pytest.fixture(scope='module')
def fresh_report(tmp_path_factory):
    "A report written by the code as it is now (small settings)."
    from genai_data.cli import main
    out = tmp_path_factory.mktemp('rep') / 'o'
    assert main(['run', '--dataset', 'digits', '--long-tail', '20', '--out', str(out), '--updates', '30', '--gate-seeds', '1',
                 '--classifier-updates', '10', '--quiet']) == 0
    return out / 'report.html'


def _check(browser, path, tmp_path):
    from genai_data.export import REPORT_SECTIONS
    browser.get(path.resolve().as_uri())
    browser.get_log('browser')                                          # only what this page logs from here on
    browser.refresh()
    assert browser.execute_script('return document.readyState') == 'complete'
    for sid in REPORT_SECTIONS:
        el = browser.find_element('id', sid)
        assert el.is_displayed() and el.size['height'] > 20, f'section {sid} is not shown'
    images = browser.execute_script('return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])')
    assert len(images) >= 10 and all(ok and w > 0 for _, ok, w in images), images
    assert 'ACCEPTED' in browser.page_source or 'REJECTED' in browser.page_source
    errors = [e for e in browser.get_log('browser') if e['level'] in ('SEVERE', 'ERROR')]
    assert not errors, errors
    browser.save_screenshot(str(tmp_path / 'report.png'))
    assert (tmp_path / 'report.png').stat().st_size > 10_000


def test_fresh_report_renders(browser, fresh_report, tmp_path):
    _check(browser, fresh_report, tmp_path)


def test_committed_example_report_renders(browser, tmp_path):
    assert EXAMPLE.is_file(), 'the example report is missing: regenerate it with the README main job (see examples/README.md)'
    _check(browser, EXAMPLE, tmp_path)
