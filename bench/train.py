"""Steps/s of the Learner's GAN step vs a plain hand-written PyTorch loop on the same DCGAN and data.

The plain loop follows pytorch/examples' DCGAN (BCE-with-logits losses, separate Adam optimizers, fakes
detached for D), adapted to 32x32 images. Both loops iterate the same DataLoader of 32x32 images in
[-1, 1], in one process, alternately, best of a few rounds. Writes results/train_<device>.json.
Goal on CPU: Learner >= 0.95x the plain loop. On a GPU (when available): with AMP + channels_last +
compile >= 1.5x the plain fp32 loop at batch 64 and 1024, and the model-FLOPs utilisation at 1024.

    python bench/train.py [--device cpu|cuda] [--steps 20] [--batch 64]
"""
import argparse
import sys
import time
from pathlib import Path
import torch
import torch.nn as nn
import torch.nn.functional as F
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save
from genai_data.data import ImageDataset
from genai_data.gan import GANStep
from genai_data.learner import Learner

NZ = 100


def dcgan(ngf=64, ndf=64, nc=1):
    "DCGAN generator and discriminator for 32x32 images (pytorch/examples layout, one block fewer)."
    G = nn.Sequential(nn.Unflatten(1, (NZ, 1, 1)),
                      nn.ConvTranspose2d(NZ, ngf * 4, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
                      nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
                      nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
                      nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh())
    D = nn.Sequential(nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True),
                      nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, True),
                      nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, True),
                      nn.Conv2d(ndf * 4, 1, 4, 1, 0, bias=False), nn.Flatten())
    return G, D


def adam(p): return torch.optim.Adam(p, lr=2e-4, betas=(0.5, 0.999))


def plain_loop(G, D, dl, device):
    "pytorch/examples-style DCGAN loop: one epoch over dl."
    optD, optG = adam(D.parameters()), adam(G.parameters())
    def epoch():
        for real, _ in dl:
            real = real.to(device, non_blocking=True)
            n = len(real)
            D.zero_grad()
            noise = torch.randn(n, NZ, device=device)
            fake = G(noise)
            errD = F.binary_cross_entropy_with_logits(D(real), torch.ones(n, 1, device=device)) + \
                   F.binary_cross_entropy_with_logits(D(fake.detach()), torch.zeros(n, 1, device=device))
            errD.backward(); optD.step()
            G.zero_grad()
            errG = F.binary_cross_entropy_with_logits(D(fake), torch.ones(n, 1, device=device))
            errG.backward(); optG.step()
    return epoch


def learner_loop(G, D, dl, device, **kw):
    learn = Learner({'G': G, 'D': D}, dl, step=GANStep(NZ), opt_func=adam, device=device, progress=False, **kw)
    return lambda: learn.fit(1)


def steps_per_s(epoch, n_steps, sync):
    if sync: torch.cuda.synchronize()
    t = time.perf_counter(); epoch()
    if sync: torch.cuda.synchronize()
    return n_steps / (time.perf_counter() - t)


def measure(batch, steps, device, rounds, variants):
    x = torch.rand(batch * steps, 1, 32, 32) * 2 - 1
    ds = ImageDataset(x, torch.zeros(len(x), dtype=torch.long), value_range='[-1,1]')
    dl = ds.dataloader(batch, seed=0, drop_last=True, pin_memory=device.type == 'cuda')
    runs = {}
    for name, make in variants.items():
        torch.manual_seed(0)
        G, D = dcgan()
        G, D = G.to(device), D.to(device)
        runs[name] = make(G, D, dl)
        runs[name]()                          # warm-up (and compilation)
    best = {name: 0. for name in runs}
    for _ in range(rounds):                    # alternate, so drifts in machine speed hit all variants alike
        for name, epoch in runs.items(): best[name] = max(best[name], steps_per_s(epoch, steps, device.type == 'cuda'))
    return best


def dcgan_flops_per_step(batch):
    "Forward FLOPs of one GAN step (D on real + D on fake + G, then G again + D for the G step) x 3 for backward."
    from torch.utils.flop_counter import FlopCounterMode
    G, D = dcgan()
    z, x = torch.randn(batch, NZ), torch.randn(batch, 1, 32, 32)
    with FlopCounterMode(display=False) as fc:
        loss = D(x).mean() + D(G(z)).mean() + D(G(z)).mean()
        loss.backward()
    return fc.get_total_flops()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--steps', type=int, default=20)
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--batch', type=int, nargs='+', default=None)
    args = ap.parse_args()
    dev = torch.device(args.device)
    rows = []
    if dev.type == 'cpu':
        for b in args.batch or [64]:
            r = measure(b, args.steps, dev, args.rounds, {'plain fp32': lambda G, D, dl: plain_loop(G, D, dl, dev),
                                                          'learner fp32': lambda G, D, dl: learner_loop(G, D, dl, dev)})
            ratio = r['learner fp32'] / r['plain fp32']
            rows.append({'batch': b, **{f'{k} steps/s': v for k, v in r.items()}, 'ratio': ratio})
            print(f"batch {b}: plain {r['plain fp32']:.2f} steps/s, learner {r['learner fp32']:.2f} steps/s, ratio {ratio:.3f} (goal >= 0.95)")
    else:
        for b in args.batch or [64, 1024]:
            r = measure(b, args.steps, dev, args.rounds, {
                'plain fp32': lambda G, D, dl: plain_loop(G, D, dl, dev),
                'learner fp32': lambda G, D, dl: learner_loop(G, D, dl, dev),
                'learner amp+cl+compile': lambda G, D, dl: learner_loop(G, D, dl, dev, amp='auto', channels_last=True, compile=True)})
            fast = r['learner amp+cl+compile']
            row = {'batch': b, **{f'{k} steps/s': v for k, v in r.items()}, 'ratio_fast_vs_plain': fast / r['plain fp32'],
                   'ratio_learner_vs_plain_fp32': r['learner fp32'] / r['plain fp32']}
            flops = dcgan_flops_per_step(b)
            row['tflops'] = flops * fast / 1e12
            row['mfu_vs_989_tflops'] = row['tflops'] / 989
            rows.append(row)
            print(f"batch {b}: " + ', '.join(f'{k} {v:.2f} steps/s' for k, v in r.items())
                  + f"; fast / plain = {row['ratio_fast_vs_plain']:.2f}x (goal >= 1.5); {row['tflops']:.1f} TFLOP/s, MFU {row['mfu_vs_989_tflops']:.1%}")
    print('wrote', save(f'train_{dev.type}', {'device': str(dev), 'rows': rows}))


if __name__ == '__main__':
    main()
