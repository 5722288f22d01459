"""Train a small GAN or classifier on digits in a fresh process: uninterrupted, interrupted, or resumed.

python resume_worker.py KIND MODE CKPT_DIR OUT [STOP_AT_BATCH]
  KIND: gan | classifier;  MODE: full | part | resume
  part stops (as Ctrl-C would) after STOP_AT_BATCH batches; resume continues from CKPT_DIR/last.pt.
Writes the final parameters of every model (and EMA) to OUT.
"""
import sys
import torch
import torch.nn as nn
from genai_data.core import seed_everything
from genai_data.data import load_digits, stratified_split
from genai_data.gan import GANStep
from genai_data.learner import Callback, Learner
from genai_data.metrics import SmallCNN

EPOCHS = 3


class StopAt(Callback):
    "Raise KeyboardInterrupt after `n` batches in total, like a user pressing Ctrl-C."
    def __init__(self, n): self.n = n
    def after_batch(self):
        if self.learn.step_count == self.n: raise KeyboardInterrupt


def build(kind, ckpt_dir, cbs, seed):
    seed_everything(seed)
    train = stratified_split(load_digits(), seed=0)['train']
    if kind == 'gan':
        G = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 64), nn.Tanh(), nn.Unflatten(1, (1, 8, 8)))
        D = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.LeakyReLU(0.2), nn.Dropout(0.3), nn.Linear(32, 1))
        return Learner({'G': G, 'D': D}, train.to_range('[-1,1]').dataloader(100, seed=seed), step=GANStep(8, n_critic=2),
                       opt_func=lambda p: torch.optim.Adam(p, 2e-4, betas=(0.5, 0.999)), ema={'G': 0.95}, ckpt_dir=ckpt_dir,
                       sched_func=lambda o, n: torch.optim.lr_scheduler.CosineAnnealingLR(o, n), cbs=cbs, progress=False)
    return Learner(SmallCNN(width=8, feature_dim=32, dropout=0.3), train.dataloader(100), ckpt_dir=ckpt_dir, cbs=cbs,
                   sched_func=lambda o, n: torch.optim.lr_scheduler.OneCycleLR(o, 1e-2, total_steps=n), progress=False)


def main():
    kind, mode, ckpt_dir, out = sys.argv[1:5]
    stop = int(sys.argv[5]) if len(sys.argv) > 5 else None
    learn = build(kind, ckpt_dir, [StopAt(stop)] if mode == 'part' else [], seed=0 if mode != 'resume' else 999)
    try: learn.fit(EPOCHS, resume='last' if mode == 'resume' else None)
    except KeyboardInterrupt:
        if mode != 'part': raise
    state = {f'{k}.{n}': p.detach().clone() for k, m in learn.raw_models.items() for n, p in m.state_dict().items()}
    state.update({f'ema.{k}.{n}': p.clone() for k, e in learn.ema.items() for n, p in e.module.state_dict().items()})
    torch.save(state, out)


if __name__ == '__main__':
    main()
