"""Wall time of the README's main job, `genai-data run --dataset digits --long-tail 20`, stage by stage
(or of the same job on another dataset: `--dataset photos` gives 32-px colour patches, default budgets).

Peer: the same job without the tool's gate, i.e. the cheapest thing a user could do instead - train the same
classifier once on random over-sampling + augmentation (what the gate's baseline arm does per seed). The ratio
says what the evidence costs. Goal: <= 120 s on 2 CPU cores, <= 15 s on one GPU.
Usage: python bench/run.py [--device cuda] [--generator cvae] [--dataset photos] [--size 32]"""
import argparse, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--device', default=None)
    ap.add_argument('--generator', default='cvae')
    ap.add_argument('--dataset', default='digits')
    ap.add_argument('--size', type=int, default=None)
    a = ap.parse_args()
    from genai_data.pipeline import RunConfig, load_for_run, run_synthesis
    from genai_data.metrics import CLASSIFIER_UPDATES, train_classifier
    from genai_data.synth import oversample
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        rep = run_synthesis(RunConfig(a.dataset, str(Path(d) / 'out'), generator=a.generator, long_tail=20,
                                      size=a.size, device=a.device, quiet=True))
        wall = time.perf_counter() - t0
    splits, _ = load_for_run(a.dataset, a.size, long_tail=20, progress=False)
    tr = splits['train']
    t0 = time.perf_counter()
    top = int(tr.class_counts().max())
    balanced = oversample(tr, {c: top for c in range(tr.n_classes)}, 0)
    train_classifier(balanced, updates=CLASSIFIER_UPDATES, seed=0, augment=True, device=a.device)
    peer = time.perf_counter() - t0
    size = f' --size {a.size}' if a.size else ''
    result = {'command': f'genai-data run --dataset {a.dataset}{size} --long-tail 20 --generator {a.generator}',
              'image_shape': list(tr.shape),
              'device': a.device or 'default', 'wall_seconds': wall, 'stage_seconds': rep['seconds'],
              'peer': 'one ros+aug classifier (no generator, no gate)', 'peer_seconds': peer,
              'ratio_wall_over_peer': wall / peer, 'goal_seconds': 15 if a.device == 'cuda' else 120,
              'verdict': rep['decision'], 'n_held_out': rep['gate']['n_held_out'],
              'interval_half_width': {k: (c['balanced_acc']['hi'] - c['balanced_acc']['lo']) / 2
                                      for k, c in rep['gate']['comparisons'].items()},
              'classifier_updates': rep['gate']['updates']}
    name = 'run' if a.dataset == 'digits' and not a.size else f"run_{a.dataset}{a.size or ''}"
    path = save(f"{name}_{a.device or 'cpu'}", result)
    stages = ', '.join(f'{k} {v:.1f}' for k, v in rep['seconds'].items())
    width = result['interval_half_width']['vs_real']
    print(f"main job: {wall:.1f}s (goal <= {result['goal_seconds']}s); stages {stages}; peer (one ros+aug classifier) "
          f"{peer:.1f}s -> the gate's evidence costs {wall / peer:.1f}x; interval half-width against real alone "
          f"{width:.3f} on {result['n_held_out']} held-out images. Written to {path}")


if __name__ == '__main__':
    main()
