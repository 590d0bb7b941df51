"""How much does dlcourse.train.fit cost over a bare training loop?

Run:  python benchmarks/fit_overhead.py [--device cuda] [--repeats 5]
Trains the same small MLP on the same random data with (a) a hand-written loop and
(b) train.fit (progress bar off, as when output is not a terminal), alternating the two to
spread machine noise, and prints the median epoch time of each and the overhead in percent.
The course's target: under 5%.
"""
import argparse
import statistics
import time

import torch

from dlcourse import device as devices
from dlcourse import seed, train


def make(dev, n, width):
    seed.seed_everything(0)
    x = torch.randn(n, 256)
    y = torch.randint(0, 10, (n,))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=256,
                                         shuffle=True, generator=seed.generator(0))
    model = torch.nn.Sequential(torch.nn.Linear(256, width), torch.nn.ReLU(),
                                torch.nn.Linear(width, width), torch.nn.ReLU(),
                                torch.nn.Linear(width, 10)).to(dev)
    return model, loader, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)


def bare_epoch(model, loader, opt, dev):
    model.train()
    for x, y in loader:
        x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default=None)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--samples", type=int, default=20000)
    p.add_argument("--width", type=int, default=512)
    args = p.parse_args()
    dev = devices.pick(args.device)
    print(f"device {devices.describe(dev)}, {args.samples} samples, width {args.width}")
    times = {"bare": [], "fit": []}
    model, loader, opt = make(dev, args.samples, args.width)
    bare_epoch(model, loader, opt, dev)  # warm-up (allocator, kernels)
    for _ in range(args.repeats):
        for name in ("bare", "fit"):
            model, loader, opt = make(dev, args.samples, args.width)
            devices.synchronize(dev)
            t0 = time.perf_counter()
            if name == "bare":
                bare_epoch(model, loader, opt, dev)
            else:
                train.fit(model, loader, torch.nn.functional.cross_entropy, opt, device=dev,
                          epochs=1, progress=False, log=lambda *_: None)
            devices.synchronize(dev)
            times[name].append(time.perf_counter() - t0)
    bare, fit = statistics.median(times["bare"]), statistics.median(times["fit"])
    print(f"bare loop : median {bare * 1000:.1f} ms/epoch  {[round(t * 1000) for t in times['bare']]}")
    print(f"train.fit : median {fit * 1000:.1f} ms/epoch  {[round(t * 1000) for t in times['fit']]}")
    print(f"overhead  : {100 * (fit - bare) / bare:+.1f}%  (target < 5%)")


if __name__ == "__main__":
    main()
