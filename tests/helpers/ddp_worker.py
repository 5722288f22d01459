"A 2-process gloo DDP run of the Learner; each rank writes its final parameters (used by test_learner.py)."
import sys
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from genai_data.core import seed_everything
from genai_data.data import load_digits, stratified_split
from genai_data.learner import Learner, rank
from genai_data.metrics import SmallCNN


def run(r, world, tmp):
    dist.init_process_group('gloo', init_method=f'file://{tmp}/rendezvous', rank=r, world_size=world)
    try:
        seed_everything(0)                  # same initial weights on every rank
        train = stratified_split(load_digits(), seed=0)['train']
        learn = Learner(SmallCNN(width=8, feature_dim=32), train.dataloader(64, seed=0), device='cpu',
                        ckpt_dir=f'{tmp}/ckpt', log_path=f'{tmp}/log.jsonl', progress=False)
        assert isinstance(learn.models['model'], torch.nn.parallel.DistributedDataParallel)
        n_batches = len(learn.train_dl)
        learn.fit(2)
        torch.save({'params': [p.detach() for p in learn.raw_models['model'].parameters()], 'rank': rank(),
                    'batches_per_epoch': n_batches}, f'{tmp}/rank{r}.pt')
    finally:
        dist.destroy_process_group()


if __name__ == '__main__':
    mp.spawn(run, args=(2, sys.argv[1]), nprocs=2, join=True)
