"""07 - Dataset and DataLoader (phase 03, week 4)

Goal: write map-style and iterable datasets, a padding collate function and a bucketing
      batch sampler, shard a stream across workers, and time what workers and pinned
      memory buy, checking that every epoch visits each sample exactly once.
Run:  python phase03-pytorch/07-dataset-dataloader.py            (about 13 s on a 2-core CPU, imports included)
      python phase03-pytorch/07-dataset-dataloader.py --quick    (seconds, offline, used by the tests)
Expect: "[check] sharded stream, 2 workers: each item once" OK, while an unsharded stream with 2
        workers yields every item twice; "[demo] shuffled loader, 2 workers: each sample once per
        epoch"; 2 workers load the slow dataset faster (2.3 s -> 1.3 s for 1024 items on 2 CPU
        cores); bucketing cuts padding from ~46 % to ~10 % (seed 0, full).
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import time

import torch
from torch.utils.data import (BatchSampler, DataLoader, Dataset, IterableDataset, RandomSampler,
                              WeightedRandomSampler, get_worker_info)

from dlcourse import check, data
from dlcourse import device as devices
from dlcourse import seed as seeding

BATCH = 32               # examples per batch
WORKERS = 2              # loader processes in the worker demos (one per core here)
LOAD_MS = 2.0            # simulated per-item loading cost (file read / decode), milliseconds
TIMED_ITEMS_QUICK = 64   # items loaded in the workers timing, --quick
TIMED_ITEMS_FULL = 1024  # and in a full run
PAD = 0                  # token id used for padding
MAX_LEN = 50             # longest generated token sequence
VOCAB = 100              # token ids 1..VOCAB-1 (0 is PAD)
PIN_MIB = 64             # size of the host -> GPU copy timed with and without pinned memory
SIGMAS = 5               # statistical checks allow 5 standard errors (fails ~1 in 1.7 million)

# Everything a worker process needs lives at module level: with the 'spawn' start method
# (macOS, Windows) each worker imports this file and unpickles the dataset by class name,
# so classes or lambdas defined inside functions would fail there.


class SignalDataset(Dataset):
    """Map-style: knows its length and returns item i on request (any order, any worker)."""

    def __init__(self, x, y, load_ms=0.0):
        self.x = torch.as_tensor(x, dtype=torch.float32)      # (N, 40)
        self.y = torch.as_tensor(y, dtype=torch.long)         # (N,)
        self.load_ms = load_ms

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        if self.load_ms:
            time.sleep(self.load_ms / 1000)                   # stands in for reading/decoding a file
        return self.x[i], self.y[i], i                        # i too, so we can audit the epoch


class SequenceDataset(Dataset):
    """Token sequences of different lengths: a batch of them needs padding."""

    def __init__(self, n, seed):
        g = torch.Generator().manual_seed(seed)
        lengths = torch.randint(3, MAX_LEN + 1, (n,), generator=g)
        self.seqs = [torch.randint(1, VOCAB, (int(k),), generator=g) for k in lengths]

    def __len__(self):
        return len(self.seqs)

    def __getitem__(self, i):
        return self.seqs[i]


def pad_collate(batch):
    """list of (L_i,) tensors -> tokens (B, L_max) padded with PAD, lengths (B,), mask (B, L_max)."""
    # EXERCISE pad_collate: fill a (B, L_max) tensor with PAD, copy each sequence into the start of its row; mask = position < length
    lengths = torch.tensor([len(s) for s in batch])
    tokens = torch.full((len(batch), int(lengths.max())), PAD, dtype=torch.long)
    for row, s in enumerate(batch):
        tokens[row, :len(s)] = s
    mask = torch.arange(tokens.shape[1])[None, :] < lengths[:, None]   # (B, L_max), True = real token
    return tokens, lengths, mask
    # END EXERCISE


class BucketBatchSampler:
    """Batches of similar length: shuffle, cut into chunks of `bucket` batches, sort each chunk
    by length, then cut it into batches. Less padding, still random from epoch to epoch."""

    def __init__(self, lengths, batch_size, bucket=8, generator=None):
        self.lengths, self.batch_size = torch.as_tensor(lengths), batch_size
        self.bucket, self.generator = bucket, generator

    def __iter__(self):
        # EXERCISE bucket_batches: shuffle all indices, cut into chunks of batch_size * bucket, sort each chunk by length, cut it into batches, yield the batches in a shuffled order
        order = torch.randperm(len(self.lengths), generator=self.generator)
        chunk = self.batch_size * self.bucket
        batches = []
        for start in range(0, len(order), chunk):
            part = order[start:start + chunk]
            part = part[self.lengths[part].argsort()]          # similar lengths side by side
            batches += [part[i:i + self.batch_size].tolist() for i in range(0, len(part), self.batch_size)]
        for k in torch.randperm(len(batches), generator=self.generator).tolist():
            yield batches[k]                                   # shuffle batch order too
        # END EXERCISE

    def __len__(self):
        return -(-len(self.lengths) // self.batch_size)


class NumberStream(IterableDataset):
    """Iterable-style: yields items one after another (a log file, a socket, a huge corpus).

    Every worker gets its own copy of this object. Without sharding, each copy would yield
    the whole stream; get_worker_info() tells a copy which slice is its own."""

    def __init__(self, n, shard=True):
        self.n, self.shard = n, shard

    def __iter__(self):
        # EXERCISE stream_shard: with sharding and a worker, yield every num_workers-th number starting at the worker's id; otherwise all of 0..n-1
        info = get_worker_info()                               # None in the main process
        start, step = (info.id, info.num_workers) if (self.shard and info) else (0, 1)
        yield from range(start, self.n, step)
        # END EXERCISE


def seen_indices(loader):
    return torch.cat([batch[2] for batch in loader])           # the index part of each batch


def map_style(run, x, y):
    print("\n-- map-style Dataset + DataLoader")
    ds = SignalDataset(x, y)
    xb, yb, _ = next(iter(DataLoader(ds, batch_size=BATCH)))   # default collate stacks items
    print(f"  one batch: x {tuple(xb.shape)} {xb.dtype}, y {tuple(yb.shape)} {yb.dtype}")
    make = lambda workers: DataLoader(ds, batch_size=BATCH, shuffle=True, num_workers=workers,  # noqa: E731
                                      generator=seeding.generator(run.seed),
                                      worker_init_fn=seeding.worker_init)
    # The audit below passes through our dataset (it returns each item's index), but what it
    # shows is torch's sampler and loader at work: demonstrations, not counted as our checks.
    loader = make(0)
    epochs = [seen_indices(loader) for _ in range(2)]
    everyone = torch.arange(len(ds))
    check.equal("shuffled loader: each sample once per epoch (epoch 1)", epochs[0].sort().values, everyone,
                demo=True)
    check.equal("shuffled loader: each sample once per epoch (epoch 2)", epochs[1].sort().values, everyone,
                demo=True)
    check.true("epochs come in different orders", not torch.equal(epochs[0], epochs[1]),
               f"first indices {epochs[0][:5].tolist()} vs {epochs[1][:5].tolist()}", demo=True)
    check.equal("same seed -> same order in a new loader", seen_indices(make(0)), epochs[0], demo=True)
    check.equal(f"shuffled loader, {WORKERS} workers: each sample once per epoch",
                seen_indices(make(WORKERS)).sort().values, everyone, demo=True)
    # Our dataset's own contract: item i is row i of the data, whichever order it is asked in.
    xs, ys, idx = next(iter(make(0)))
    check.true("SignalDataset: item i holds row i (a shuffled batch)",
               torch.equal(xs, x[idx]) and torch.equal(ys, y[idx]), f"{len(idx)} items compared")


def padding_and_buckets(run, n):
    print("\n-- variable-length sequences: collate with padding, bucketing")
    ds = SequenceDataset(n, run.seed)
    tokens, lengths, mask = next(iter(DataLoader(ds, batch_size=4, collate_fn=pad_collate)))
    print(f"  lengths {lengths.tolist()} -> tokens {tuple(tokens.shape)}, first row ends "
          f"{tokens[0, -5:].tolist()}")
    ref = torch.nn.utils.rnn.pad_sequence([ds[i] for i in range(4)], batch_first=True, padding_value=PAD)
    check.equal("pad_collate vs torch pad_sequence", tokens, ref)
    check.equal("mask is True exactly on the real tokens", mask, ref != PAD)   # tokens are >= 1
    check.equal("lengths are the sequences' lengths", lengths, torch.tensor([len(ds[i]) for i in range(4)]))
    lengths_all = torch.tensor([len(s) for s in ds.seqs])

    def padding_share(loader):
        pads = sum((~m).sum().item() for _, _, m in loader)
        return pads / sum(m.numel() for _, _, m in loader)

    random_loader = DataLoader(ds, batch_size=BATCH, shuffle=True, collate_fn=pad_collate,
                               generator=seeding.generator(run.seed))
    sampler = BucketBatchSampler(lengths_all, BATCH, generator=seeding.generator(run.seed))
    bucket_loader = DataLoader(ds, batch_sampler=sampler, collate_fn=pad_collate)
    epoch_batches = list(sampler)
    check.equal("bucket sampler: each sample once per epoch",
                torch.tensor(sorted(i for b in epoch_batches for i in b)), torch.arange(n))
    check.equal("bucket sampler: len() = number of batches it yields", len(sampler), len(epoch_batches))
    check.true("bucket sampler: the batch order changes between epochs",
               [b[0] for b in epoch_batches] != [b[0] for b in sampler], "first indices differ")
    share_random, share_bucket = padding_share(random_loader), padding_share(bucket_loader)
    # Lengths are uniform on 3..MAX_LEN. A random batch of 32 pads nearly to the longest length
    # (~46 % padding); sorted buckets of 8 batches span ~1/8 of the range each (~10 %). Half the
    # random share leaves a wide margin for any seed, and an unsorted bucket cannot meet it.
    check.less("bucketing at least halves the padding share", share_bucket, share_random / 2)
    print(f"  padding: {share_random:.0%} of the tensor with random batches, {share_bucket:.0%} bucketed")
    # The building blocks: a sampler yields indices; BatchSampler groups them.
    batches = list(BatchSampler(RandomSampler(range(10), generator=seeding.generator(run.seed)), 4, False))
    print(f"  BatchSampler(RandomSampler(range(10)), 4): {batches}")
    return share_random, share_bucket


def imbalance(run, n):
    print("\n-- WeightedRandomSampler: oversample a rare class")
    labels = (torch.arange(n) % 10 == 0).long()               # class 1 is 10% of the data
    weights = 1.0 / torch.bincount(labels).float()[labels]     # each class gets equal total weight
    sampler = WeightedRandomSampler(weights, num_samples=n, replacement=True,
                                    generator=seeding.generator(run.seed))
    drawn = torch.tensor(list(sampler))
    share = labels[drawn].float().mean().item()
    print(f"  rare class: {labels.float().mean():.0%} of the data, {share:.0%} of the draws")
    # Equal class weights: each draw is rare with probability exactly 1/2, so the share of n
    # draws is within SIGMAS standard errors sqrt(1/4 / n) of 0.5.
    check.close(f"rare class drawn half the time (within {SIGMAS} standard errors)", share, 0.5,
                atol=SIGMAS * (0.25 / n) ** 0.5)
    check.less("(drawn with replacement: not once per epoch) distinct samples < n",
               len(drawn.unique()), n, demo=True)


def streams():
    print("\n-- IterableDataset and workers: shard the stream or see it twice")
    n = 40
    naive = torch.cat(list(DataLoader(NumberStream(n, shard=False), batch_size=8, num_workers=WORKERS)))
    sharded = torch.cat(list(DataLoader(NumberStream(n, shard=True), batch_size=8, num_workers=WORKERS)))
    check.equal(f"unsharded stream, {WORKERS} workers: every item {WORKERS} times",
                torch.bincount(naive, minlength=n), torch.full((n,), WORKERS), demo=True)
    check.equal(f"sharded stream, {WORKERS} workers: each item once", sharded.sort().values, torch.arange(n))
    return torch.bincount(naive, minlength=n).float().mean().item()


def timing(run, x, y, items):
    print(f"\n-- loading {items} items that each take {LOAD_MS:.0f} ms: workers and pinned memory")
    ds = SignalDataset(x[:items], y[:items], load_ms=LOAD_MS)
    results = {}
    for workers in (0, WORKERS):
        loader = DataLoader(ds, batch_size=16, num_workers=workers)
        start = time.perf_counter()
        count = sum(len(b[1]) for b in loader)                # includes starting the workers
        results[workers] = time.perf_counter() - start
        print(f"  num_workers={workers}: {results[workers]:.2f} s for {count} items "
              f"({count / results[workers]:.0f} items/s)")
    if run.device.type == "cuda":
        # Copies to the GPU from ordinary (pageable) memory go through a hidden pinned buffer;
        # from pinned (page-locked) memory the GPU reads directly, and non_blocking=True lets the
        # CPU carry on meanwhile. DataLoader(pin_memory=True) hands out batches already pinned.
        big = torch.randn(PIN_MIB * 2 ** 20 // 4)              # float32: 4 bytes each
        for name, src in (("pageable", big), ("pinned", big.pin_memory())):
            best = float("inf")
            for _ in range(3):                                 # the first copy also warms up
                devices.synchronize(run.device)
                start = time.perf_counter()
                src.to(run.device, non_blocking=src.is_pinned())
                devices.synchronize(run.device)
                best = min(best, time.perf_counter() - start)
            print(f"  {PIN_MIB} MiB host -> {run.device}, {name:8s}: {best * 1e3:6.1f} ms "
                  f"({PIN_MIB / 1024 / best:.1f} GiB/s)")
        xb = next(iter(DataLoader(ds, batch_size=16, pin_memory=True)))[0]
        check.true("DataLoader(pin_memory=True) yields pinned batches", xb.is_pinned(), "xb.is_pinned()")
    else:
        print("  pin_memory only matters when batches are copied to a CUDA GPU; skipped on "
              f"{run.device.type}")
    return results


def main(args) -> dict:
    run = cli.start(args, __file__)
    d = data.mnist1d(num_samples=500 if run.quick else 4000, seed=run.seed)
    data.announce("MNIST-1D (made by the mnist1d package)", kind="generated",
                  detail="plus token sequences generated here")
    x = torch.tensor(d["x_train"], dtype=torch.float32)
    y = torch.tensor(d["y_train"], dtype=torch.long)
    map_style(run, x, y)
    # Sizes that are not multiples of BATCH: the last, shorter batch must be counted too.
    share_random, share_bucket = padding_and_buckets(run, 500 if run.quick else 5000)
    imbalance(run, 1000 if run.quick else 10000)
    copies = streams()
    t = timing(run, x, y, TIMED_ITEMS_QUICK if run.quick else TIMED_ITEMS_FULL)
    if not run.quick:  # too few items in --quick for the start-up cost of workers to pay off
        check.less(f"{WORKERS} workers load the slow dataset faster than 0", t[WORKERS], t[0])
    return cli.finish(run, {"seconds_workers_0": t[0], f"seconds_workers_{WORKERS}": t[WORKERS]}, answers={
        "random_padding": (min(("10", "45", "80"), key=lambda o: abs(float(o) - 100 * share_random)),
                           f"padding share: {share_random:.0%} with random batches, {share_bucket:.0%} "
                           "bucketed (the '-- variable-length sequences' section)"),
        "unsharded_copies": ({1.0: "1", 2.0: "2", 4.0: "4"}.get(copies, "other"),
                             f"each item of the unsharded stream seen {copies:g} times on average "
                             f"with {WORKERS} workers (the '-- IterableDataset' section)"),
    })


# Predict, then run: answer in your copy (`python -m dlcourse exercise 03.07`) before running it;
# `python -m dlcourse check 03.07` compares your answers with what the run measures.
# PREDICT random_padding (10 / 45 / 80): lengths uniform on 3..50, random batches of 32: what percentage of the padded tensor is padding?
# ANSWER random_padding:
# PREDICT unsharded_copies (1 / 2 / 4): an IterableDataset that ignores get_worker_info(), loaded with 2 workers: how many times is each item seen?
# ANSWER unsharded_copies:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
