"""Run by tests/test_ddp.py under torchrun (2 CPU processes, gloo): train.fit with DDP and a
DistributedSampler must leave every rank with identical weights and averaged metrics."""
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
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
