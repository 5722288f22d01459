"""Batched augmentation vs per-sample torchvision v2 in a DataLoader (and kornia when installed).

The same four operations (random affine, horizontal flip, colour jitter, a Cutout-sized erase) at batch 256
on 28x28 grey and 32x32 RGB images. Prints images/s and the ratio; writes results/augment.json.
Goal on CPU: ours >= 5x torchvision per sample. On a GPU: >= 20x.

    python bench/augment.py [--batches 20] [--device cpu|cuda]
"""
import argparse
import sys
from pathlib import Path
import torch
import torchvision.transforms.v2 as v2
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import best_of, save
from genai_data import augment as A
from genai_data.core import make_generator
from genai_data.data import load_digits, resize_images

BATCH = 256


def images(kind: str, n: int) -> torch.Tensor:
    "n real images: digits resized to 28x28 (grey), or crops of scikit-learn's photos at 32x32 (RGB)."
    if kind == 'grey28':
        x = resize_images(load_digits().images, 28)
    else:
        from sklearn.datasets import load_sample_images
        photos = [torch.tensor(p).permute(2, 0, 1).float() / 255 for p in load_sample_images().images]
        g = torch.Generator().manual_seed(0)
        crops = []
        for i in range(n):
            p = photos[i % 2]
            t, l = torch.randint(0, p.shape[1] - 96, (1,), generator=g).item(), torch.randint(0, p.shape[2] - 96, (1,), generator=g).item()
            crops.append(p[:, t:t + 96, l:l + 96])
        x = resize_images(torch.stack(crops), 32)
    return x[torch.arange(n) % len(x)].contiguous()


def ours_pipeline(seed=0):
    g = make_generator(seed)
    return A.Compose(A.RandomAffine(15, (0.1, 0.1), (0.9, 1.1), 10, generator=g), A.RandomHorizontalFlip(generator=g),
                     A.ColorJitter(0.4, 0.4, 0.4, 0.1, generator=g), A.Cutout(0.5, generator=g))


def tv_pipeline():
    return v2.Compose([v2.RandomAffine(15, (0.1, 0.1), (0.9, 1.1), 10), v2.RandomHorizontalFlip(),
                       v2.ColorJitter(0.4, 0.4, 0.4, 0.1), v2.RandomErasing(p=1.0, scale=(0.25, 0.25), ratio=(1., 1.))])


class PerSample(torch.utils.data.Dataset):
    "The usual setup: the transform runs on each image inside Dataset.__getitem__."
    def __init__(self, x, tf): self.x, self.tf = x, tf
    def __len__(self): return len(self.x)
    def __getitem__(self, i): return self.tf(self.x[i])


def run_torchvision(x, workers):
    dl = torch.utils.data.DataLoader(PerSample(x, tv_pipeline()), batch_size=BATCH, num_workers=workers,
                                     persistent_workers=workers > 0)
    def epoch():
        for b in dl: pass
    return epoch


def run_ours(x, device):
    pipe = ours_pipeline()
    from genai_data.data import ImageDataset
    ds = ImageDataset(x, torch.zeros(len(x), dtype=torch.long))
    dl = ds.dataloader(BATCH, shuffle=False)
    def epoch():
        for xb, _ in dl: pipe(xb.to(device, non_blocking=True))
    return epoch


def run_kornia(x, device):
    import kornia.augmentation as K
    # kornia's hue jitter needs RGB; on grey images only brightness and contrast apply (as in ours and torchvision)
    jitter = K.ColorJitter(0.4, 0.4, 0.4, 0.1, p=1.0) if x.shape[1] == 3 else K.ColorJitter(0.4, 0.4, p=1.0)
    aug = K.AugmentationSequential(K.RandomAffine(15, (0.1, 0.1), (0.9, 1.1), 10, p=1.0), K.RandomHorizontalFlip(),
                                   jitter, K.RandomErasing(scale=(0.25, 0.25), ratio=(1., 1.), p=1.0))
    def epoch():
        for i in range(0, len(x), BATCH): aug(x[i:i + BATCH].to(device))
    return epoch


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--batches', type=int, default=20)
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--repeats', type=int, default=3)
    args = ap.parse_args()
    dev, sync = torch.device(args.device), args.device.startswith('cuda')
    n = args.batches * BATCH
    rows = []
    print(f'device={dev}, {n} images per epoch, batch {BATCH}, torch threads {torch.get_num_threads()}')
    for kind in ('grey28', 'rgb32'):
        x = images(kind, n)
        res = {'data': kind, 'shape': list(x.shape[1:])}
        res['ours_img_s'] = n / best_of(run_ours(x, dev), args.repeats, sync)
        for w in (0, 2):
            res[f'torchvision_w{w}_img_s'] = n / best_of(run_torchvision(x, w), args.repeats)
        try:
            res['kornia_img_s'] = n / best_of(run_kornia(x, dev), args.repeats, sync)
        except ImportError:
            res['kornia_img_s'] = None
        best_tv = max(res['torchvision_w0_img_s'], res['torchvision_w2_img_s'])
        res['ratio_vs_best_torchvision'] = res['ours_img_s'] / best_tv
        rows.append(res)
        k = f"{res['kornia_img_s']:,.0f}" if res['kornia_img_s'] else 'not installed'
        print(f"{kind}: ours {res['ours_img_s']:,.0f} img/s | torchvision per-sample, 0 workers {res['torchvision_w0_img_s']:,.0f}, "
              f"2 workers {res['torchvision_w2_img_s']:,.0f} img/s | kornia {k} img/s | ours / best torchvision = "
              f"{res['ratio_vs_best_torchvision']:.1f}x")
    goal = 20 if dev.type == 'cuda' else 5
    print(f"goal on {dev.type}: >= {goal}x; {'met' if all(r['ratio_vs_best_torchvision'] >= goal for r in rows) else 'NOT met'}")
    print('wrote', save(f'augment_{dev.type}', {'device': str(dev), 'batch': BATCH, 'images': n, 'goal_ratio': goal, 'rows': rows}))


if __name__ == '__main__':
    main()
