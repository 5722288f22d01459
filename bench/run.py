"""Wall time of the README's main job, `genai-data run --dataset digits --long-tail 20`, stage by stage.

Peer: the same job without the tool's gate, i.e. the cheapest thing a user could do instead - train the same
classifier once on random over-sampling + augmentation (what the gate's baseline arm does per seed). The ratio
says what the evidence costs. Goal (issue 12): <= 120 s on 2 CPU cores, <= 15 s on one GPU.
Usage: python bench/run.py [--device cuda] [--generator cvae]"""
import argparse, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--device', default=None)
    ap.add_argument('--generator', default='cvae')
    a = ap.parse_args()
    from genai_data.cli import run_synthesis
    from genai_data.synth import train_classifier, GenerativeOverSampler
    from genai_data.cli import load_for_run
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        rep = run_synthesis('digits', Path(d) / 'out', a.generator, long_tail=20, device=a.device, quiet=True)
        wall = time.perf_counter() - t0
    splits, _ = load_for_run('digits', long_tail=20, progress=False)
    tr = splits['train']
    t0 = time.perf_counter()
    X, y = GenerativeOverSampler('random', random_state=0).fit_resample(tr.images, tr.labels)
    from genai_data.data import ImageDataset
    train_classifier(ImageDataset(X, y, tr.classes), 0, 15, augment=True, device=a.device)
    peer = time.perf_counter() - t0
    result = {'command': f'genai-data run --dataset digits --long-tail 20 --generator {a.generator}', 'device': a.device or 'default',
              'wall_seconds': wall, 'stage_seconds': rep['seconds'], 'peer': 'one ros+aug classifier (no generator, no gate)',
              'peer_seconds': peer, 'ratio_wall_over_peer': wall / peer, 'goal_seconds': 15 if a.device == 'cuda' else 120,
              'verdict': rep['decision']}
    path = save(f"run_{a.device or 'cpu'}", result)
    print(f"main job: {wall:.1f}s (goal <= {result['goal_seconds']}s); stages {', '.join(f'{k} {v:.1f}' for k, v in rep['seconds'].items())}; "
          f"peer (one ros+aug classifier) {peer:.1f}s -> the gate's evidence costs {wall / peer:.1f}x. Written to {path}")


if __name__ == '__main__':
    main()
