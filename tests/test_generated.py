"Generated files (genai_data/, README.md) match the notebooks; notebooks are clean, small and documented."
import filecmp
import importlib
import inspect
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _tool(name):
    exe = shutil.which(name, path=str(BIN)) or shutil.which(name)
    assert exe, f'{name} is not installed; install the dev extra'
    return exe


@pytest.fixture(scope='module')
def project_copy(tmp_path_factory):
    "A copy of the project's sources to run nbdev's generators in, leaving the checkout untouched."
    dst = tmp_path_factory.mktemp('proj')
    for name in ('pyproject.toml', 'README.md'): shutil.copy(ROOT / name, dst / name)
    for name in ('nbs', 'genai_data', 'tools'):
        shutil.copytree(ROOT / name, dst / name, ignore=shutil.ignore_patterns('__pycache__', '.ipynb_checkpoints'))
    return dst


def _differences(a: Path, b: Path):
    cmp = filecmp.dircmp(a, b, ignore=['__pycache__'])
    out = [f'only in one: {n}' for n in cmp.left_only + cmp.right_only]
    out += [n for n in cmp.common_files if (a / n).read_bytes() != (b / n).read_bytes()]
    return out


def test_package_matches_notebooks(project_copy):
    r = subprocess.run([_tool('nbdev-export')], cwd=project_copy, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    diff = _differences(ROOT / 'genai_data', project_copy / 'genai_data')
    assert not diff, f'genai_data/ is out of sync with nbs/ ({diff}); run nbdev-export and commit'


def test_notebooks_are_clean(project_copy):
    r = subprocess.run([_tool('nbdev-clean')], cwd=project_copy, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    diff = _differences(ROOT / 'nbs', project_copy / 'nbs')
    assert not diff, f'notebooks are not clean ({diff}); run nbdev-clean and commit'


def test_readme_is_fresh():
    r = subprocess.run([sys.executable, str(ROOT / 'tools' / 'make_readme.py'), '--check'], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize('nb', sorted((ROOT / 'nbs').glob('*.ipynb')), ids=lambda p: p.name)
def test_notebook_is_small_and_titled(nb):
    assert nb.stat().st_size < 1_000_000, f'{nb.name} is {nb.stat().st_size:,} bytes; shrink its outputs'
    cells = json.loads(nb.read_text())['cells']
    first = ''.join(cells[0]['source'])
    assert cells[0]['cell_type'] == 'markdown' and first.startswith('# ') and '\n> ' in first, \
        f'{nb.name} must open with an H1 title and a > summary line'


def test_sidebar_lists_every_notebook():
    side = (ROOT / 'nbs' / 'sidebar.yml').read_text()
    missing = [p.name for p in (ROOT / 'nbs').glob('*.ipynb') if p.name not in side]
    assert not missing, f'nbs/sidebar.yml does not list {missing}'


MODULES = [p.stem for p in (ROOT / 'genai_data').glob('*.py') if not p.stem.startswith('_')]


@pytest.mark.parametrize('module', MODULES)
def test_every_public_name_is_documented(module):
    mod = importlib.import_module(f'genai_data.{module}')
    undocumented = [n for n in getattr(mod, '__all__', []) if (inspect.isfunction(getattr(mod, n)) or
                    inspect.isclass(getattr(mod, n))) and not inspect.getdoc(getattr(mod, n))]
    assert not undocumented, f'genai_data.{module} exports names without a docstring: {undocumented}'


def test_docs_processing_runs(project_copy):
    "The docs stage that needs no Quarto: nbdev's notebook processing for the site."
    code = "import nbdev.serve as s; print(s.proc_nbs(n_workers=0))"
    r = subprocess.run([sys.executable, '-c', code], cwd=project_copy, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]
    cache = project_copy / '_proc'
    produced = {p.name for p in cache.glob('*.ipynb')}
    assert {p.name for p in (ROOT / 'nbs').glob('*.ipynb')} <= produced, produced


LESSONS = sorted((ROOT / 'nbs').glob('[0-9][0-9]_*.ipynb'))


def _cells(nb): return json.loads(nb.read_text())['cells']


@pytest.mark.parametrize('nb', LESSONS, ids=lambda p: p.name)
def test_lesson_demonstrates_every_public_function_and_class(nb):
    "Each exported function or class is used in at least one non-exported code cell of its lesson (a demo or a check)."
    cells = _cells(nb)
    mod = next((m.group(1) for c in cells for m in [re.search(r'#\|\s*default_exp\s+(\S+)', ''.join(c['source']))] if m), None)
    if mod is None: pytest.skip(f'{nb.name} exports no module')
    module = importlib.import_module(f'genai_data.{mod}')
    demos = '\n'.join(''.join(c['source']) for c in cells if c['cell_type'] == 'code' and not re.search(r'#\|\s*export', ''.join(c['source'])))
    names = [n for n in module.__all__ if inspect.isfunction(getattr(module, n)) or inspect.isclass(getattr(module, n))]
    missing = [n for n in names if not re.search(rf'\b{re.escape(n)}\b', demos)]
    assert not missing, f'{nb.name} defines {missing} but never demonstrates them'


@pytest.mark.parametrize('nb', LESSONS, ids=lambda p: p.name)
def test_lesson_ends_with_summary_and_exercises(nb):
    heads = [l.strip() for c in _cells(nb) if c['cell_type'] == 'markdown' for l in ''.join(c['source']).splitlines() if l.startswith('## ')]
    assert heads[-2:] == ['## Summary', '## Exercises'], f'{nb.name} must end with ## Summary and ## Exercises (its last headings: {heads[-2:]})'


NOT_SEEN = [r'\bthe issue\b', r'\bseed notebooks?\b', r'\bthe seeds of this course\b', r'goal this lesson set',
            r'earlier version of this lesson', r'\ban earlier (measurement|run|session)\b', r'\ban open item\b',
            r'_READING\b', r'\{\{\s*TODO']


def test_the_course_speaks_only_of_what_its_reader_can_see():
    "No lesson cites things a reader never saw (an issue, an earlier run, notebooks that are not in the course)."
    found = []
    for nb in sorted((ROOT / 'nbs').glob('*.ipynb')):
        for i, c in enumerate(_cells(nb)):
            if c['cell_type'] != 'markdown': continue
            text = ''.join(c['source'])
            found += [f'{nb.name} cell {i}: {m.group(0)!r}' for pat in NOT_SEEN for m in re.finditer(pat, text, re.I)]
    assert not found, '\n'.join(found)


def test_the_phrase_check_catches_what_it_should():
    bad = ['as the issue says', 'the goal this lesson set', 'an earlier measurement found', "the course's seed notebooks"]
    assert all(any(re.search(p, t, re.I) for p in NOT_SEEN) for t in bad)
    assert not any(re.search(p, 'the seeds 0, 1 and 2 give an issue-free run', re.I) for p in NOT_SEEN)


def _package_lines(p):
    "The lines of a generated module that come from the notebooks' code."
    # nbdev's module docstring (the lesson's summary) and its `__all__` block (wrapped at 120) are left out
    text = p.read_text()
    if text.startswith('"""'): text = '\n' * text[:text.index('"""', 3) + 3].count('\n') + text[text.index('"""', 3) + 3:]
    lines, skip = text.splitlines(), False
    for n, line in enumerate(lines, 1):
        if line.startswith('__all__ = '): skip = True
        if not skip: yield n, line
        if skip and line.rstrip().endswith(']'): skip = False


def _code_lines():
    for p in sorted((ROOT / 'genai_data').glob('*.py')):
        if p.name != '_modidx.py': yield from ((f'{p.name}:{n}', l) for n, l in _package_lines(p))
    for nb in sorted((ROOT / 'nbs').glob('*.ipynb')):
        for i, c in enumerate(_cells(nb)):
            if c['cell_type'] == 'code':
                yield from ((f'{nb.name} cell {i}', l) for l in ''.join(c['source']).splitlines())


def test_code_lines_are_at_most_110_characters():
    long = [f'{where} ({len(line)})' for where, line in _code_lines() if len(line) > 110]
    assert not long, f'{len(long)} code lines over 110 characters: ' + ', '.join(long[:20])


def _exported_cells():
    for nb in sorted((ROOT / 'nbs').glob('*.ipynb')):
        for i, c in enumerate(_cells(nb)):
            src = ''.join(c['source'])
            if c['cell_type'] == 'code' and re.match(r'#\|\s*export', src):
                yield f'{nb.name} cell {i}', len([l for l in src.splitlines() if l.strip() and not l.startswith('#|')])


def test_exported_cells_are_short():
    import statistics
    sizes = dict(_exported_cells())
    big = {k: v for k, v in sizes.items() if v > 50}
    assert not big, f'exported cells over 50 lines: {big}'
    assert statistics.median(sizes.values()) <= 12, f'median exported cell: {statistics.median(sizes.values())} lines'
