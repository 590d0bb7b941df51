"""07 - BatchNorm and LayerNorm from scratch (phase 04, week 5)

Goal: write BatchNorm (train and eval modes, running statistics) and LayerNorm, match torch's
      layers to float64 rounding, and see BatchNorm speed up a deep MLP's training.
Run:  python phase04-mlp/07-batch-normalization.py            (about 25 s on a 2-core CPU; 69 s measured while the CPU was shared)
      python phase04-mlp/07-batch-normalization.py --quick    (seconds, offline, used by the tests)
Expect: every "[check] ... vs nn.BatchNorm1d / nn.LayerNorm" passes with max |diff| <= 3e-14,
        running_mean/var included; a 6-layer ReLU MLP reaches train loss 0.52 with BatchNorm vs
        0.95 without after 15 epochs (val 1.18 vs 1.33; validation picks BatchNorm, test loss
        1.24; seed 0, full); see batchnorm.png. Regularisation, honestly: at batch 64 BatchNorm
        mostly trains faster; its gap val - train is larger (0.66 vs 0.39), not smaller. At
        batch 16 (full run only) the two reach the same train loss (1.14 vs 1.15) and BatchNorm
        ends lower on validation (1.33 vs 1.41, gap 0.19 vs 0.27): a regularising effect that
        comes from batch-statistics noise, which the lesson measures and checks in every run
        (batch 16 vs 256: 0.23 vs 0.07, about the 1/sqrt(batch) ratio of 4). These are CPU numbers, the same for any thread
        count (the lesson trains on one thread); a GPU rounds differently and lands nearby.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked

EPOCHS = 15          # full run ...
QUICK_EPOCHS = 4     # ... and --quick


def parse_args(argv=None):
    return cli.parser(__doc__, epochs=(EPOCHS, QUICK_EPOCHS)).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from dlcourse import check, lessons, plot
import matplotlib.pyplot as plt  # after dlcourse.plot, which picks a headless backend

mnist1d = lessons.load("04.05")   # lesson 05: the MNIST-1D loader and the epoch loop

EPS = 1e-5           # added to the variance before the square root (torch's default)
MOMENTUM = 0.1       # running = (1 - m) running + m batch_stat (torch's convention)
PARITY_STEPS = 5     # training-mode batches compared with torch, running stats included
DEPTH = 6            # hidden layers of the MLP trained with and without BatchNorm
WIDTH = 128          # units per hidden layer
LR = 0.05            # SGD step size
BATCH = 64           # examples per step
MNIST1D_SIZE = 4000  # signals made by mnist1d (train + validation + test) ...
QUICK_MNIST1D_SIZE = 1000  # ... and --quick
SMALL_BATCH = 16     # full run only: the same comparison with small, noisy batches
NOISE_BATCHES = (16, 256)  # batch sizes whose batch-statistics noise is measured
NOISE_DRAWS = 30     # random batches drawn around the same probe examples, per size
PROBE = 8            # examples whose BatchNorm output we follow from batch to batch


class BatchNorm(nn.Module):
    """Normalise each channel over the batch (and length, for (N, C, L) inputs):

        x_hat = (x - mean_B) / sqrt(var_B + eps),   y = gamma * x_hat + beta

    Training uses the batch's mean and biased variance, and folds them into running
    estimates (unbiased variance, as torch does); eval uses only the running estimates,
    so a prediction never depends on what else is in the batch."""

    def __init__(self, channels, eps=EPS, momentum=MOMENTUM):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(channels))   # gamma
        self.bias = nn.Parameter(torch.zeros(channels))    # beta
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x):                                  # x: (N, C) or (N, C, L)
        # EXERCISE batchnorm_forward: train: per-channel batch mean and biased var, lerp the running stats (var times n/(n-1)) under no_grad; eval: running stats; then gamma x_hat + beta
        dims = (0,) if x.dim() == 2 else (0, 2)            # every axis except channels
        shape = (1, -1) if x.dim() == 2 else (1, -1, 1)    # broadcast a (C,) vector over x
        if self.training:
            mean = x.mean(dim=dims)                        # (C,)
            var = x.var(dim=dims, unbiased=False)          # (C,) biased: divide by n
            n = x.numel() // x.shape[1]                    # values per channel
            with torch.no_grad():                          # statistics, not part of the graph
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(var * n / (n - 1), self.momentum)  # unbiased
        else:
            mean, var = self.running_mean, self.running_var
        x_hat = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + self.eps)
        return self.weight.view(shape) * x_hat + self.bias.view(shape)
        # END EXERCISE


class LayerNorm(nn.Module):
    """Normalise each example over its last dimension: the same formula as BatchNorm but
    along the other axis, so it has no running statistics and no train/eval difference
    (the normaliser in every Transformer block, phase 7)."""

    def __init__(self, features, eps=EPS):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(features))
        self.bias = nn.Parameter(torch.zeros(features))

    def forward(self, x):                                  # x: (..., features)
        # EXERCISE layernorm_forward: mean and biased var over the last axis of each example, normalise with eps inside the sqrt, then gamma * x_hat + beta
        mean = x.mean(dim=-1, keepdim=True)                # (..., 1)
        var = x.var(dim=-1, unbiased=False, keepdim=True)  # (..., 1)
        return self.weight * (x - mean) / torch.sqrt(var + self.eps) + self.bias
        # END EXERCISE


def randomise_affine(*layers):
    """Give gamma/beta random values (the same in every layer) so the test covers them."""
    g = torch.Generator().manual_seed(1)
    n = layers[0].weight.shape[0]
    gamma, beta = torch.rand(n, generator=g, dtype=torch.float64) + 0.5, \
        torch.randn(n, generator=g, dtype=torch.float64)
    for layer in layers:
        with torch.no_grad():
            layer.weight.copy_(gamma)
            layer.bias.copy_(beta)


def check_parity(shape, ours, ref, label):
    """Several training steps, then eval: outputs, gradients and (for BatchNorm) buffers."""
    ours, ref = ours.double(), ref.double()                # float64 on CPU: exact reference
    randomise_affine(ours, ref)
    g = torch.Generator().manual_seed(2)
    for step in range(PARITY_STEPS):
        ours.train(), ref.train()
        # each batch has its own offset and scale, so the running stats really move
        x = torch.randn(*shape, generator=g, dtype=torch.float64) * (step + 1) + step
        xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        ya, yb = ours(xa), ref(xb)
        w = torch.randn(ya.shape, generator=g, dtype=torch.float64)  # a random upstream grad
        (ya * w).sum().backward()
        (yb * w).sum().backward()
    check.close(f"{label} train output (step {PARITY_STEPS})", ya, yb, atol=1e-12)
    check.close(f"{label} input gradient", xa.grad, xb.grad, atol=1e-12)
    check.close(f"{label} gamma/beta gradients (summed over {PARITY_STEPS} steps)",
                torch.cat([ours.weight.grad, ours.bias.grad]),
                torch.cat([ref.weight.grad, ref.bias.grad]), atol=1e-10)
    if hasattr(ref, "running_mean"):
        check.close(f"{label} running_mean after {PARITY_STEPS} steps", ours.running_mean,
                    ref.running_mean, atol=1e-12)
        check.close(f"{label} running_var after {PARITY_STEPS} steps", ours.running_var,
                    ref.running_var, atol=1e-12)
    ours.eval(), ref.eval()
    x = torch.randn(*shape, generator=g, dtype=torch.float64) * 3 + 1
    check.close(f"{label} eval output", ours(x), ref(x), atol=1e-12)


class MLP(nn.Module):
    """DEPTH x (Linear -> [BatchNorm] -> ReLU) -> Linear."""

    def __init__(self, use_bn, n_in=40, n_out=10):
        super().__init__()
        sizes = [n_in] + [WIDTH] * DEPTH
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))
        self.norms = nn.ModuleList(BatchNorm(WIDTH) if use_bn else nn.Identity()
                                   for _ in range(DEPTH))
        self.head = nn.Linear(WIDTH, n_out)

    def forward(self, x):                                  # x: (B, 40)
        for linear, norm in zip(self.linears, self.norms):
            x = F.relu(norm(linear(x)))                    # (B, WIDTH)
        return self.head(x)                                # (B, 10)


def train(run, use_bn, epochs, x, y, x_val, y_val, batch=BATCH):
    torch.manual_seed(run.seed)                            # same Linear weights either way
    model = MLP(use_bn).to(run.device)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    order_gen = torch.Generator().manual_seed(run.seed)
    hist = {"train_loss": [], "val_loss": []}
    for _ in range(epochs):
        mnist1d.train_epoch(model, opt, x, y, batch, order_gen)  # batch statistics
        model.eval()                                       # running statistics from here on
        with torch.no_grad():
            hist["train_loss"].append(F.cross_entropy(model(x), y).item())
            hist["val_loss"].append(F.cross_entropy(model(x_val), y_val).item())
    return model, hist


def batch_noise(model, x, batch, gen):
    """How much the batch moves an example's BatchNorm output: the same PROBE examples sit in
    NOISE_DRAWS random batches of `batch` signals; return the std over draws of the first
    BatchNorm layer's (train-mode) output, averaged over probes and units. The batch mean and
    variance are estimates from `batch` samples, so their error, and this noise, scales like
    1 / sqrt(batch): this noise is BatchNorm's only route to regularising."""
    linear, norm = model.linears[0], copy.deepcopy(model.norms[0]).train()  # copy: the
    probe, rest = x[:PROBE], x[PROBE:]                     # running stats stay untouched
    outs = []
    with torch.no_grad():
        for _ in range(NOISE_DRAWS):
            idx = torch.randperm(len(rest), generator=gen)[:batch - PROBE].to(x.device)
            outs.append(norm(linear(torch.cat([probe, rest[idx]])))[:PROBE])  # (PROBE, WIDTH)
    return torch.stack(outs).std(dim=0).mean().item()


def main(args) -> dict:
    run = cli.start(args, __file__)
    # Float sums on a CPU are split between threads and the split changes the rounding: with
    # 2 threads instead of 1 this lesson's 15-epoch losses differed in the second digit (SGD
    # amplifies a 1e-7 difference). One thread: the same numbers whatever the core count.
    torch.set_num_threads(1)
    epochs = run.epochs

    # 1) Parity with torch's layers on random data.
    check_parity((32, 6), BatchNorm(6), nn.BatchNorm1d(6), "BatchNorm (N, C) vs nn.BatchNorm1d")
    check_parity((16, 6, 10), BatchNorm(6), nn.BatchNorm1d(6),
                 "BatchNorm (N, C, L) vs nn.BatchNorm1d")
    check_parity((4, 7, 12), LayerNorm(12), nn.LayerNorm(12), "LayerNorm vs nn.LayerNorm")

    # 2) Train a deep ReLU MLP with and without (scratch) BatchNorm.
    (x, y), (x_val, y_val), test_set = mnist1d.load_mnist1d(
        run, QUICK_MNIST1D_SIZE if run.quick else MNIST1D_SIZE)
    results, models = {}, {}
    for use_bn in (False, True):
        models[use_bn], results[use_bn] = train(run, use_bn, epochs, x, y, x_val, y_val)
        hist = results[use_bn]
        print(f"{'with' if use_bn else 'without'} BatchNorm: train loss "
              f"{hist['train_loss'][-1]:.3f}  val loss {hist['val_loss'][-1]:.3f}")
    check.less("train loss after training: with BatchNorm vs without",
               results[True]["train_loss"][-1], results[False]["train_loss"][-1])
    # Choose with or without BatchNorm on validation loss; score the test split once, for it.
    chosen = min(results, key=lambda use_bn: results[use_bn]["val_loss"][-1])
    models[chosen].eval()
    with torch.no_grad():
        test_loss = F.cross_entropy(models[chosen](test_set[0]), test_set[1]).item()
    chosen_name = "with BatchNorm" if chosen else "without BatchNorm"
    print(f"chosen on validation: {chosen_name}; its test loss {test_loss:.3f} (measured once)")

    # In eval mode a BatchNorm net gives each example the same output alone or in a batch;
    # in train mode the output depends on the batch's statistics.
    bn_model = models[True]
    with torch.no_grad():
        bn_model.eval()
        alone = torch.cat([bn_model(x_val[i:i + 1]) for i in range(8)])   # (8, 10)
        check.close("eval mode: 8 examples one at a time vs as one batch", alone,
                    bn_model(x_val[:8]), atol=1e-4)     # float32 matmuls per batch size
        bn_model.train()                                   # (this also moves running stats)
        shift = (bn_model(x_val[:8])[0] - bn_model(x_val[:64])[0]).abs().max().item()
        print(f"train mode, for contrast: example 0's logits in a batch of 8 vs of 64 differ "
              f"by up to {shift:.3f}")

    # 3) Does BatchNorm also regularise? Its train-mode output for an example depends on the
    # other examples in the batch: noise, like dropout's. Measure that noise per batch size.
    gen = torch.Generator().manual_seed(run.seed)
    noise = {b: batch_noise(bn_model, x, b, gen) for b in NOISE_BATCHES}
    small, large = NOISE_BATCHES
    print("batch-statistics noise in the first BatchNorm layer's output (std over batches): "
          + ", ".join(f"batch {b}: {v:.3f}" for b, v in noise.items())
          + f"; 1/sqrt(batch) predicts a ratio of {(large / small) ** 0.5:.1f}")
    # Half the predicted ratio leaves room for the sampling error of NOISE_DRAWS draws.
    check.greater(f"noise at batch {small} vs half the 1/sqrt(batch) prediction from batch {large}",
                  noise[small], 0.5 * (large / small) ** 0.5 * noise[large])
    gaps = {bn: results[bn]["val_loss"][-1] - results[bn]["train_loss"][-1] for bn in results}
    print(f"generalisation gap (val - train loss) at batch {BATCH} after {epochs} epochs: "
          f"with BatchNorm {gaps[True]:.3f}, without {gaps[False]:.3f}")
    small_gaps = {}
    if not run.quick:
        # Full run only (batch 16 costs several seconds): the same pair with noisier batches.
        for use_bn in (False, True):
            _, hist = train(run, use_bn, epochs, x, y, x_val, y_val, batch=SMALL_BATCH)
            small_gaps[use_bn] = (hist["train_loss"][-1], hist["val_loss"][-1])
            print(f"batch {SMALL_BATCH}, {'with' if use_bn else 'without'} BatchNorm: train loss "
                  f"{hist['train_loss'][-1]:.3f}  val loss {hist['val_loss'][-1]:.3f}  gap "
                  f"{hist['val_loss'][-1] - hist['train_loss'][-1]:.3f}")

    fig, ax = plt.subplots(figsize=(8, 4.8))
    for use_bn, colour in ((False, "tab:red"), (True, "tab:blue")):
        label = "with BatchNorm" if use_bn else "without"
        epochs_axis = range(1, len(results[use_bn]["train_loss"]) + 1)
        ax.plot(epochs_axis, results[use_bn]["train_loss"], "--", color=colour,
                label=f"{label}: train")
        ax.plot(epochs_axis, results[use_bn]["val_loss"], "-", color=colour,
                label=f"{label}: validation")
    ax.set(xlabel="epoch", ylabel="cross-entropy (eval mode)",
           title=f"{DEPTH}-layer ReLU MLP, SGD lr {LR}: BatchNorm trains faster")
    ax.legend()
    plot.save(fig, run, "batchnorm.png")
    return cli.finish(run, {"epochs": len(results[True]["train_loss"]),
                            "train_loss_bn": results[True]["train_loss"][-1],
                            "train_loss_no_bn": results[False]["train_loss"][-1],
                            "val_loss_bn": results[True]["val_loss"][-1],
                            "val_loss_no_bn": results[False]["val_loss"][-1],
                            "chosen_on_val": chosen_name, "test_loss": test_loss,
                            **{f"bn_noise_batch{b}": v for b, v in noise.items()},
                            **{f"small_batch_{'bn' if k else 'no_bn'}_train_val": v
                               for k, v in small_gaps.items()}}, answers={
        "faster_train": ("with" if results[True]["train_loss"][-1] < results[False]["train_loss"][-1]
                         else "without", f"train loss after {epochs} epochs: with BatchNorm "
                         f"{results[True]['train_loss'][-1]:.3f}, without {results[False]['train_loss'][-1]:.3f} "
                         "(batchnorm.png)"),
        "noise_ratio": (min(("1", "4", "16"), key=lambda o: abs(float(o) - noise[small] / noise[large])),
                        f"batch-statistics noise: batch {small} {noise[small]:.3f}, batch {large} "
                        f"{noise[large]:.3f}, ratio {noise[small] / noise[large]:.2f}"),
    })


# Predict, then run: answer in your copy (`python -m dlcourse exercise 04.07`) before running it;
# `python -m dlcourse check 04.07` compares your answers with what the run measures.
# PREDICT faster_train (with / without): a 6-layer ReLU MLP, same SGD: which ends with the lower training loss, with BatchNorm or without?
# ANSWER faster_train:
# PREDICT noise_ratio (1 / 4 / 16): how many times noisier is an example's BatchNorm output in batches of 16 than in batches of 256?
# ANSWER noise_ratio:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
