"""Peak memory of `genai-data sample` drawing 10,000 and 50,000 colour images at 64 px from a saved generator.

Peer: the same images drawn all at once and then written (`SynthesisGenerator.sample` for every label, then
`save_image_folder` and `save_npz`, as `run`'s export writes them). Each measurement runs in a fresh process and
reads its peak resident memory (ru_maxrss); a process that only imports the library and loads the generator gives
the floor. Goal: a 50,000-image export at 64 px under 2 GB of peak memory.
Usage: python bench/sample.py [--sizes 10000 50000] [--device cpu]"""
import argparse, json, subprocess, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save

CHILD = r'''
import json, resource, sys, time
from pathlib import Path
import torch
mode, gen, out, n, device = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
t0 = time.perf_counter()
if mode == 'stream':
    from genai_data.cli import main
    assert main(['sample', '--generator', gen, '--per-class', str(n // 10), '--out', str(out), '--quiet',
                 '--device', device]) == 0
elif mode == 'all-at-once':
    from genai_data.core import atomic_dir, make_generator
    from genai_data.data import ImageDataset, quantize, save_image_folder
    from genai_data.export import save_npz
    from genai_data.generators import SynthesisGenerator
    model = SynthesisGenerator.load(gen, device)
    y = torch.arange(10).repeat_interleave(n // 10)
    ds = quantize(ImageDataset(model.sample(len(y), y, rng=make_generator(0)), y, model.classes))
    with atomic_dir(out, kind='samples') as tmp:
        save_image_folder(ds, tmp / 'synthetic'); save_npz(tmp / 'synthetic.npz', ds)
else:
    from genai_data.generators import SynthesisGenerator
    SynthesisGenerator.load(gen, device)
print(json.dumps({'peak_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  'seconds': time.perf_counter() - t0}))
'''


def measure(mode, gen, out, n, device):
    "Peak memory (MB) and seconds of one mode in a fresh process."
    r = subprocess.run([sys.executable, '-c', CHILD, mode, str(gen), str(out), str(n), device],
                       capture_output=True, text=True)
    if r.returncode: raise SystemExit(f"{mode} {n} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--sizes', type=int, nargs='+', default=[10000, 50000])
    ap.add_argument('--device', default='cpu')
    a = ap.parse_args()
    import torch
    from genai_data.data import ImageDataset
    from genai_data.generators import SynthesisGenerator
    rows = {}
    with tempfile.TemporaryDirectory() as d:
        gen = Path(d) / 'generator.pt'
        real = ImageDataset(torch.rand(40, 3, 64, 64), torch.arange(10).repeat(4), [str(c) for c in range(10)])
        SynthesisGenerator('cvae', 2).fit(real).save(gen)          # the network's size matters, not its skill
        floor = measure('load', gen, Path(d) / 'none', 0, a.device)
        for n in a.sizes:
            for mode in ('stream', 'all-at-once'):
                rows[f'{mode} {n}'] = measure(mode, gen, Path(d) / f'{mode}-{n}', n, a.device)
                print(f"{mode:>12} {n:>6} images: peak {rows[f'{mode} {n}']['peak_mb']:,.0f} MB, "
                      f"{rows[f'{mode} {n}']['seconds']:.0f} s", flush=True)
    ratios = {n: rows[f'all-at-once {n}']['peak_mb'] / rows[f'stream {n}']['peak_mb'] for n in a.sizes}
    print(f"floor (import + load): {floor['peak_mb']:,.0f} MB; peer/stream peak ratio: "
          + ', '.join(f'{n}: {r:.1f}x' for n, r in ratios.items()))
    save(f'sample_{a.device}', {'images': '64x64 RGB, cvae, 10 classes', 'floor': floor, 'rows': rows,
                                'ratio_peer_over_stream': ratios,
                                'peer': 'draw all images, then save_image_folder + save_npz',
                                'goal': '50,000 images at 64 px under 2,048 MB peak'})


if __name__ == '__main__':
    main()
