"""Our SMOTE (batched torch neighbour search) vs imbalanced-learn's SMOTE, identical class counts.

Two datasets: 10,000 x 64 Gaussian features in 4 imbalanced classes, and scikit-learn's digits made
imbalanced (ratio 10). Prints the time of each and the ratio; writes results/smote.json. Goal: >= 2x.

    python bench/smote.py [--repeats 5]
"""
import argparse
import sys
from pathlib import Path
import numpy as np
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import best_of, save
from imblearn.over_sampling import SMOTE as ImbSMOTE
from genai_data.data import imbalance_counts, load_digits, make_imbalanced
from genai_data.resample import SMOTE, label_counts


def gaussian_features():
    rng = np.random.default_rng(0)
    counts = (5000, 2500, 1500, 1000)
    y = np.concatenate([np.full(n, c) for c, n in enumerate(counts)])
    X = (rng.normal(size=(len(y), 64)) + y[:, None] * 0.5).astype(np.float32)
    return X, y


def digits():
    d = make_imbalanced(load_digits(), imbalance_counts(10, 170, 10), seed=0)
    return d.images.flatten(1).numpy(), d.labels.numpy()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--repeats', type=int, default=5)
    args = ap.parse_args()
    rows = []
    for name, (X, y) in (('gaussian 10000x64', gaussian_features()), ('digits imbalanced 10:1', digits())):
        ours, theirs = SMOTE(random_state=0), ImbSMOTE(random_state=0)
        same = label_counts(ours.fit_resample(X, y)[1]) == label_counts(theirs.fit_resample(X, y)[1])
        t_ours = best_of(lambda: ours.fit_resample(X, y), args.repeats)
        t_imb = best_of(lambda: theirs.fit_resample(X, y), args.repeats)
        rows.append(dict(data=name, n=len(y), d=X.shape[1], ours_s=t_ours, imblearn_s=t_imb, ratio=t_imb / t_ours,
                         identical_class_counts=same, generated=int(sum(ours.sampling_strategy_.values()))))
        print(f"{name}: ours {t_ours * 1000:.1f} ms, imbalanced-learn {t_imb * 1000:.1f} ms, ratio {t_imb / t_ours:.1f}x, "
              f"identical class counts: {same}")
        assert same
    print(f"goal >= 2x: {'met' if all(r['ratio'] >= 2 for r in rows) else 'NOT met'}")
    print('wrote', save('smote', {'rows': rows, 'goal_ratio': 2}))


if __name__ == '__main__':
    main()
