"Every lesson notebook runs top to bottom with nbdev's test machinery (cells flagged slow/cuda skipped)."
import os
import shutil
import subprocess
import sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.name for p in (ROOT / 'nbs').glob('*.ipynb'))
NBDEV_TEST = shutil.which('nbdev-test', path=str(Path(sys.executable).parent)) or shutil.which('nbdev-test')


def test_there_are_notebooks():
    assert {'index.ipynb', '00_core.ipynb', '01_data.ipynb'} <= set(NOTEBOOKS)


@pytest.mark.parametrize('notebook', NOTEBOOKS)
def test_notebook_runs(notebook):
    assert NBDEV_TEST, 'nbdev-test is not installed; install the dev extra'
    env = {**os.environ, 'MPLBACKEND': 'Agg'}
    r = subprocess.run([NBDEV_TEST, notebook], cwd=ROOT / 'nbs', capture_output=True, text=True, timeout=900, env=env)
    assert r.returncode == 0, f'{notebook} failed:\n{r.stdout[-3000:]}\n{r.stderr[-6000:]}'
