"""Write README.md from nbs/index.ipynb without Quarto (which `nbdev-readme` needs); `--check` only compares.

Markdown cells are copied, code cells become ```python blocks followed by their text outputs, and cells
marked `#| hide` (or `#| echo: false` with no output) are left out, as in nbdev's README.
"""
import json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTE = "<!-- generated from nbs/index.ipynb by tools/make_readme.py; do not edit -->"

def _directives(src):
    return {l[3:].split(':')[0].strip(): l for l in src.splitlines() if l.startswith('#| ')}

def _text_output(o):
    if o['output_type'] == 'stream': return ''.join(o['text'])
    data = o.get('data', {})
    if 'text/markdown' in data: return None, ''.join(data['text/markdown'])
    if 'text/plain' in data: return ''.join(data['text/plain'])
    return ''

def render(nb_path=ROOT / 'nbs' / 'index.ipynb') -> str:
    "The README text for the notebook at `nb_path`."
    nb = json.loads(Path(nb_path).read_text())
    out = [NOTE]
    for cell in nb['cells']:
        src = ''.join(cell['source'])
        if cell['cell_type'] == 'markdown':  # lesson links point into nbs/ from the repository root
            out.append(re.sub(r'\]\((?!https?:)([\w.-]+\.ipynb)\)', r'](nbs/\1)', src.strip())); continue
        d = _directives(src)
        if 'hide' in d or 'include' in d and 'false' in d['include']: continue
        code = '\n'.join(l for l in src.splitlines() if not l.startswith('#| ')).strip()
        if code and not ('echo' in d and 'false' in d['echo']): out.append(f"```python\n{code}\n```")
        for o in cell.get('outputs', []):
            t = _text_output(o)
            if isinstance(t, tuple): out.append(t[1].strip())
            elif t.strip(): out.append(f"```\n{t.rstrip()}\n```")
    return '\n\n'.join(out) + '\n'

if __name__ == '__main__':
    text, readme = render(), ROOT / 'README.md'
    if '--check' in sys.argv:
        ok = readme.exists() and readme.read_text() == text
        print('README.md is up to date' if ok else 'README.md is stale: run python tools/make_readme.py')
        sys.exit(0 if ok else 1)
    readme.write_text(text); print(f'wrote {readme}')
