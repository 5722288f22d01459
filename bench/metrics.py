"""Our FID vs torchmetrics' on the same 10,000 x 2048 features (time and value), and Inception-v3 feature
throughput (meaningful on a GPU; random weights, since speed does not depend on them).

    python bench/metrics.py [--n 10000] [--dim 2048] [--device cpu|cuda] [--inception]

Writes results/metrics_<device>.json. Goal: ours >= 1x torchmetrics' speed, values equal to 1e-4 relative.
"""
import argparse
import sys
import tempfile
from pathlib import Path
import torch
import torch.nn as nn
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import best_of, save
from torchmetrics.image.fid import FrechetInceptionDistance
from genai_data.metrics import FID, InceptionFeatures


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--n', type=int, default=10_000)
    ap.add_argument('--dim', type=int, default=2048)
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--inception', action='store_true', help='also measure Inception-v3 feature extraction (images/s)')
    args = ap.parse_args()
    g = torch.Generator().manual_seed(0)
    # features with a realistic spectrum (correlated, unequal variances), as Inception pool features have
    mix = torch.randn(args.dim, args.dim, generator=g) / args.dim ** 0.5
    real = torch.randn(args.n, args.dim, generator=g) @ mix + 0.1
    fake = torch.randn(args.n, args.dim, generator=g) @ (mix * 1.05) + 0.12

    class Identity(nn.Module):
        num_features = args.dim
        def forward(self, x): return x

    result = {}
    def ours():
        result['ours'] = FID().update(real, True).update(fake, False).compute()['fid']
    def theirs():
        tm = FrechetInceptionDistance(feature=Identity(), normalize=False)
        tm.update(real.double(), real=True); tm.update(fake.double(), real=False)
        result['torchmetrics'] = tm.compute().item()
    t_ours, t_tm = best_of(ours, args.repeats), best_of(theirs, args.repeats)
    rel = abs(result['ours'] - result['torchmetrics']) / abs(result['torchmetrics'])
    print(f"FID on {args.n} x {args.dim} features: ours {t_ours:.2f} s, torchmetrics {t_tm:.2f} s, ratio {t_tm / t_ours:.2f}x (goal >= 1); "
          f"values {result['ours']:.6f} vs {result['torchmetrics']:.6f} (relative difference {rel:.1e})")
    out = {'n': args.n, 'dim': args.dim, 'ours_s': t_ours, 'torchmetrics_s': t_tm, 'ratio': t_tm / t_ours,
           'fid_ours': result['ours'], 'fid_torchmetrics': result['torchmetrics'], 'relative_difference': rel}
    if args.inception:
        import torchvision
        dev = torch.device(args.device)
        with tempfile.TemporaryDirectory() as d:
            torch.save(torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=True).state_dict(), f'{d}/w.pth')
            inc = InceptionFeatures(f'{d}/w.pth').to(dev)
        batch = 256 if dev.type == 'cuda' else 16
        x = torch.rand(batch, 3, 64, 64, device=dev)
        sync = dev.type == 'cuda'
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=sync):
            t = best_of(lambda: inc(x), args.repeats, sync)
        out['inception_images_per_s'] = batch / t
        print(f"Inception-v3 features on {dev}: {batch / t:,.0f} images/s (batch {batch}{', bf16 autocast' if sync else ''})")
    print('wrote', save(f'metrics_{args.device.split(":")[0]}', out))


if __name__ == '__main__':
    main()
