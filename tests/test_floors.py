"Floors: a module of genai_data imports only from modules on floors below its own (no upward or sideways imports)."
import re
from pathlib import Path
import pytest

PKG = Path(__file__).resolve().parents[1] / 'genai_data'

# lowest first; modules on one floor may not import each other
FLOORS = [('core',), ('data', 'augment', 'resample'), ('learner',), ('metrics',), ('vae', 'gan', 'diffusion'),
          ('generators',), ('synth',), ('gate',), ('export',), ('pipeline',), ('evaluate', 'stages'), ('widgets', 'cli')]
FLOOR = {m: i for i, names in enumerate(FLOORS) for m in names}
IMPORT = re.compile(r'^\s*(?:from\s+(?:\.|genai_data\.)(\w+)\s+import|import\s+genai_data\.(\w+))', re.M)


def imports_of(text: str) -> list[tuple[str, str]]:
    "(imported module, the line) for every `from .x import`, `from genai_data.x import` and `import genai_data.x`, anywhere."
    return [(m.group(1) or m.group(2), text[m.start():text.find('\n', m.start())].strip()) for m in IMPORT.finditer(text)]


def violations(module: str, text: str) -> list[str]:
    "The import lines of `module` that reach its own floor or one above."
    return [f"genai_data/{module}.py: `{line}` imports {dep} (floor {FLOOR.get(dep, '?')}) from floor {FLOOR[module]}"
            for dep, line in imports_of(text) if dep != module and (dep not in FLOOR or FLOOR[dep] >= FLOOR[module])]


def test_every_module_has_a_floor():
    modules = {p.stem for p in PKG.glob('*.py') if not p.stem.startswith('_')}
    assert not modules - set(FLOOR), f'modules without a floor in tests/test_floors.py: {sorted(modules - set(FLOOR))}'


@pytest.mark.parametrize('module', sorted(p.stem for p in PKG.glob('*.py') if not p.stem.startswith('_')))
def test_imports_only_go_down(module):
    bad = violations(module, (PKG / f'{module}.py').read_text())
    assert not bad, '\n'.join(bad)


def test_the_check_catches_upward_sideways_and_lazy_imports():
    assert violations('learner', 'from .gan import GANStep\n')                    # up
    assert violations('augment', 'from genai_data.resample import knn\n')         # sideways, same floor
    assert violations('data', 'def f():\n    from genai_data.metrics import SmallCNN\n')   # inside a function
    assert violations('core', 'import genai_data.cli\n')
    assert not violations('metrics', 'from .learner import Learner\nfrom genai_data.core import DataError\n')
    assert violations('metrics', 'from .vae import VAE\n')                        # judging comes before the models
    assert violations('gate', 'from .export import render_report\n')             # the split floors keep their order
    assert violations('synth', 'from genai_data.pipeline import RunConfig\n')


PRIVATE = re.compile(r'^\s*from\s+(?:\.|genai_data\.)(\w+)\s+import\s+\(?([^)\n]*(?:\n[^)\n]*)*?)\)?$', re.M)


def private_imports(text: str) -> list[str]:
    "Names starting with an underscore imported from another module of the package."
    return [n.strip() for m in PRIVATE.finditer(text) for n in m.group(2).replace('\n', ' ').split(',')
            if n.strip().startswith('_')]


@pytest.mark.parametrize('module', sorted(p.stem for p in PKG.glob('*.py') if not p.stem.startswith('_')))
def test_no_private_name_crosses_modules(module):
    bad = private_imports((PKG / f'{module}.py').read_text())
    assert not bad, f'genai_data/{module}.py imports private names of other modules: {bad}'


def test_the_private_check_catches_reach_ins():
    assert private_imports('from .resample import (SMOTE, _check_xy,\n    knn)\n') == ['_check_xy']
    assert private_imports('from genai_data.core import _TMP_MARKER\n') == ['_TMP_MARKER']
    assert not private_imports('from .core import DataError\n')
