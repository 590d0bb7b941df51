"""Run by tests/test_ddp.py under torchrun (2 CPU processes, gloo): train.fit with DDP and a
DistributedSampler must leave every rank with identical weights and averaged metrics."""
import gc
import json
import os
import sys

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from dlcourse import seed, train


def main(out_dir):
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    seed.seed_everything(0)  # same data and same initial weights on every rank
    x = torch.randn(256, 5)
    y = (x[:, 0] > 0).long()
    ds = torch.utils.data.TensorDataset(x, y)
    sampler = torch.utils.data.distributed.DistributedSampler(ds, shuffle=True, seed=0)
    loader = torch.utils.data.DataLoader(ds, batch_size=16, sampler=sampler)
    model = DDP(torch.nn.Linear(5, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    ckpt = os.path.join(out_dir, "ddp.pt")
    hist = train.fit(model, loader, torch.nn.functional.cross_entropy, opt,
                     device=torch.device("cpu"), epochs=3, val_loader=loader,
                     metrics={"acc": train.accuracy}, checkpoint=ckpt, progress=False,
                     log=lambda *_: None)
    weights = model.module.weight.detach().flatten().tolist()
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump({"world": world, "weights": weights, "history": hist}, f)
    # Tear down in step. In about one run in seven under a loaded 2-core machine, rank 1 used
    # to abort at exit ("terminate called without an active exception", SIGABRT): gloo's C++
    # threads still held work objects (DDP's reducer keeps some, with tensors inside) when the
    # interpreter shut down, or the peer had already closed its side of the pair. So: wait for
    # every rank, free DDP's objects while Python is fully alive, then destroy the group.
    dist.barrier()
    del model, opt, hist
    gc.collect()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
