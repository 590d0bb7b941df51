"""04 - nn.Module: parameters, buffers, state_dict, hooks (phase 03, week 4)

Goal: write Linear and a batch-norm layer from scratch as nn.Modules, see what parameters,
      buffers, submodules, state_dict, hooks and train/eval do, and train the scratch network
      step for step alongside the one built from torch's layers.
Run:  python phase03-pytorch/04-nn-module.py            (about 15 s on a 2-core CPU, imports included)
      python phase03-pytorch/04-nn-module.py --quick    (seconds, offline, used by the tests)
Expect: "[check] MyLinear forward vs nn.Linear: max |diff| 0" (CPU); MyBatchNorm matches BatchNorm1d
        in train and eval mode, buffers included (float32 rounding apart); the scratch and torch networks
        follow the same loss curve (same_training.png; max |diff| 3.6e-07 over 300 steps, loss 2.36 -> 1.46),
        and their BatchNorm buffers and eval-mode outputs agree (seed 0, CPU).
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked

STEPS_FULL = 300                # training steps compared (--steps)
STEPS_QUICK = 30                # and in --quick


def parse_args(argv=None):
    return cli.parser(__doc__, steps=(STEPS_FULL, STEPS_QUICK)).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import io
import math

import torch
import torch.nn as nn

from dlcourse import check, data, plot
import matplotlib.pyplot as plt  # noqa: E402  (after dlcourse.plot, which picks a headless backend)

IN, HIDDEN, OUT = 40, 64, 10    # MNIST-1D: 40-sample signals, 10 classes
BATCH = 50                      # examples per step (not 40, 64 or 10: a batch axis mixed up
                                # with a feature axis then fails on shapes or values)
LR = 0.1                        # SGD learning rate
BN_MOMENTUM = 0.1               # running = (1 - m) * running + m * batch statistic (torch's default)
EPS = 1e-5                      # added to the variance before the square root


class MyLinear(nn.Module):
    """y = x W^T + b, with W of shape (out, in) like nn.Linear."""

    def __init__(self, in_features, out_features):
        super().__init__()
        # nn.Parameter = a tensor the module trains: listed by .parameters(), saved in state_dict.
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features))
        self.reset_parameters()

    def reset_parameters(self):
        # nn.Linear's default: kaiming_uniform_(a=sqrt(5)), which works out to U(-1/sqrt(in), 1/sqrt(in)),
        # then the bias from the same range. Same draws in the same order -> same numbers.
        # EXERCISE linear_init: draw the weight, then the bias, from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = in_features
        bound = 1 / math.sqrt(self.weight.shape[1])
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)
        # END EXERCISE

    def forward(self, x):                       # x: (B, in)
        # EXERCISE linear_forward: y = x W^T + b, with W of shape (out, in)
        return x @ self.weight.T + self.bias    # (B, out)
        # END EXERCISE


class MyBatchNorm(nn.Module):
    """Batch norm without the learned scale/shift: the textbook example of buffers.

    train: normalise with this batch's mean and (biased) variance, and update running
           estimates (torch stores the unbiased variance there).
    eval:  normalise with the running estimates, so one example's output does not depend
           on the rest of its batch.
    """

    def __init__(self, features, momentum=BN_MOMENTUM, eps=EPS):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        # A buffer is state that is saved and moved with .to(device) but not trained.
        self.register_buffer("running_mean", torch.zeros(features))
        self.register_buffer("running_var", torch.ones(features))

    def forward(self, x):                       # x: (B, features)
        # EXERCISE batchnorm_forward: train: batch mean and biased var, lerp the running stats (unbiased var, n/(n-1)) under no_grad; eval: running stats; then (x - mean) / sqrt(var + eps)
        if self.training:
            mean, var = x.mean(0), x.var(0, unbiased=False)
            n = x.shape[0]
            with torch.no_grad():               # running stats are bookkeeping, not part of the graph
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(var * n / (n - 1), self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        return (x - mean) / torch.sqrt(var + self.eps)
        # END EXERCISE


def scratch_net():
    return nn.Sequential(MyLinear(IN, HIDDEN), MyBatchNorm(HIDDEN), nn.ReLU(), MyLinear(HIDDEN, OUT))


def torch_net():
    return nn.Sequential(nn.Linear(IN, HIDDEN), nn.BatchNorm1d(HIDDEN, affine=False), nn.ReLU(),
                         nn.Linear(HIDDEN, OUT))


def linear_vs_torch(run):
    print("\n-- a scratch Linear vs nn.Linear")
    torch.manual_seed(run.seed)
    ref = nn.Linear(IN, HIDDEN)
    torch.manual_seed(run.seed)
    mine = MyLinear(IN, HIDDEN)
    check.close("MyLinear init vs nn.Linear init (same seed)", mine.weight, ref.weight, atol=1e-7)
    mine, ref = mine.to(run.device), ref.to(run.device)
    x = torch.randn(BATCH, IN, device=run.device)
    out_mine, out_ref = mine(x), ref(x)
    check.close("MyLinear forward vs nn.Linear", out_mine, out_ref, atol=1e-6)
    out_mine.square().sum().backward()
    out_ref.square().sum().backward()
    check.close("dLoss/dW: MyLinear vs nn.Linear", mine.weight.grad, ref.weight.grad, atol=1e-4, rtol=1e-5)
    check.close("dLoss/db: MyLinear vs nn.Linear", mine.bias.grad, ref.bias.grad, atol=1e-4, rtol=1e-5)


def batchnorm_vs_torch(run):
    """MyBatchNorm vs nn.BatchNorm1d alone: train-mode outputs, both buffers, eval-mode outputs."""
    print("\n-- a scratch batch norm vs nn.BatchNorm1d")
    g = torch.Generator().manual_seed(run.seed)
    # Columns on scales from 1e-4 to 10: where the variance is far below EPS, adding eps inside
    # or outside the square root makes all the difference. momentum 0.3, not torch's default, so
    # that a hard-coded 0.1 would show.
    scales = torch.logspace(-4, 1, HIDDEN)                                  # (HIDDEN,)
    mine = MyBatchNorm(HIDDEN, momentum=0.3).to(run.device)
    ref = nn.BatchNorm1d(HIDDEN, momentum=0.3, affine=False).to(run.device)
    for step in range(3):                                                   # 3 updates of the buffers
        # mean `step` per column, in units of its scale (a shift of 1 on a 1e-4 column would
        # leave float32 only a few digits for the part that batch norm keeps)
        x = ((torch.randn(BATCH, HIDDEN, generator=g) + step) * scales).to(run.device)  # (B, HIDDEN)
        check.close(f"MyBatchNorm train-mode output vs BatchNorm1d (batch {step + 1})", mine(x), ref(x),
                    atol=1e-4, rtol=1e-4)
    for buffer in ("running_mean", "running_var"):
        check.close(f"MyBatchNorm {buffer} vs BatchNorm1d after 3 batches", getattr(mine, buffer),
                    getattr(ref, buffer), atol=1e-7, rtol=1e-5)
    mine.eval()
    ref.eval()
    x = (torch.randn(BATCH, HIDDEN, generator=g) * scales).to(run.device)
    check.close("MyBatchNorm eval-mode output (running statistics) vs BatchNorm1d", mine(x), ref(x),
                atol=1e-4, rtol=1e-4)


def anatomy(run):
    print("\n-- parameters, buffers, submodules, state_dict")
    net = scratch_net().to(run.device)
    for name, p in net.named_parameters():
        print(f"  parameter {name:14s} {tuple(p.shape)}")
    for name, b in net.named_buffers():
        print(f"  buffer    {name:14s} {tuple(b.shape)}")
    expected = IN * HIDDEN + HIDDEN + HIDDEN * OUT + OUT     # W and b of each Linear
    check.equal("trainable parameters = in*h + h + h*out + out",
                sum(p.numel() for p in net.parameters()), expected)
    print(f"  submodules: {[type(m).__name__ for m in net.children()]}")
    print(f"  state_dict keys: {list(net.state_dict())}")
    # state_dict holds parameters AND buffers: a saved model keeps its running statistics.
    buf = io.BytesIO()
    net.train()
    net(torch.randn(BATCH, IN, device=run.device))           # update the running stats once
    torch.save(net.state_dict(), buf)
    buf.seek(0)
    fresh = scratch_net().to(run.device)
    fresh.load_state_dict(torch.load(buf, map_location=run.device, weights_only=True))
    x = torch.randn(8, IN, device=run.device)
    net.eval()
    fresh.eval()
    check.close("reloaded state_dict gives identical eval outputs", fresh(x), net(x), atol=0)
    # Loading torch's layout into ours: the keys line up except BatchNorm's extra counter.
    result = scratch_net().load_state_dict(torch_net().state_dict(), strict=False)
    print(f"  torch_net -> scratch_net with strict=False: unexpected keys {result.unexpected_keys}")
    check.equal("only BatchNorm's num_batches_tracked is unexpected", result.unexpected_keys,
                ["1.num_batches_tracked"])
    return "yes" if "1.running_mean" in net.state_dict() else "no", list(net.state_dict())


def hooks_and_modes(run):
    print("\n-- hooks and train/eval")
    torch.manual_seed(run.seed)
    net = scratch_net().to(run.device)
    seen, grads = {}, {}
    # A forward hook sees (module, inputs, output) after every forward: activation logging.
    handles = [m.register_forward_hook(lambda mod, inp, out, i=i: seen.__setitem__(i, out.detach()))
               for i, m in enumerate(net)]
    # A full backward hook sees dLoss/d(input) and dLoss/d(output) of the module.
    handles.append(net[3].register_full_backward_hook(
        lambda mod, g_in, g_out: grads.update(g_in=g_in[0], g_out=g_out[0])))
    x = torch.randn(BATCH, IN, device=run.device)
    net(x).logsumexp(1).sum().backward()
    for i, out in seen.items():
        print(f"  hook on {i}:{type(net[i]).__name__:11s} output {tuple(out.shape)}  "
              f"mean {out.mean():+.3f} std {out.std():.3f}")
    check.close("forward hook output of layer 0 vs F.linear(x, W, b)", seen[0],
                nn.functional.linear(x, net[0].weight, net[0].bias), atol=1e-6)
    # Backprop through y = h W^T + b: dL/dh = dL/dy W.
    check.close("backward hook: dL/d(input) = dL/d(output) @ W", grads["g_in"],
                grads["g_out"] @ net[3].weight, atol=1e-6)
    for h in handles:
        h.remove()                      # hooks stay until removed: forgetting leaks memory
    drop = nn.Sequential(nn.Dropout(0.5)).to(run.device)
    ones = torch.ones(1000, device=run.device)
    drop.train()
    a, b = drop(ones), drop(ones)
    # torch's own layer: shown, not counted (lesson 04.06 writes and checks dropout).
    check.true("train mode: dropout differs between calls, kept units scaled by 1/(1-p)",
               not torch.equal(a, b) and set(a.unique().tolist()) <= {0.0, 2.0},
               f"{int((a == 0).sum())} of 1000 zeroed, survivors = {a.max().item()}", demo=True)
    drop.eval()                         # .eval() sets training=False on every submodule
    check.equal("eval mode: dropout is the identity", drop(ones), ones, demo=True)
    survivor = a.max().item()
    net.eval()
    before = net[1].running_mean.clone()
    net(x)
    check.equal("eval mode: BatchNorm's running stats frozen", net[1].running_mean, before)
    return survivor


def train_side_by_side(run, steps):
    """Train the scratch net and torch's from the same weights; the losses must agree."""
    print(f"\n-- scratch net vs torch net: {steps} SGD steps from the same weights")
    d = data.mnist1d(num_samples=500 if run.quick else 5000, seed=run.seed)
    data.announce("MNIST-1D (made by the mnist1d package)", kind="generated")
    X = torch.tensor(d["x_train"], dtype=torch.float32, device=run.device)  # (N, 40)
    y = torch.tensor(d["y_train"], dtype=torch.long, device=run.device)     # (N,)
    torch.manual_seed(run.seed)
    ref = torch_net().to(run.device)
    mine = scratch_net().to(run.device)
    mine.load_state_dict(ref.state_dict(), strict=False)    # same starting weights
    opts = [torch.optim.SGD(m.parameters(), lr=LR) for m in (mine, ref)]
    g = torch.Generator().manual_seed(run.seed)
    losses = {"scratch": [], "torch": []}
    for _ in range(steps):
        idx = torch.randint(len(X), (BATCH,), generator=g).to(run.device)
        for name, model, opt in zip(losses, (mine, ref), opts):
            loss = nn.functional.cross_entropy(model(X[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses[name].append(loss.item())
    print(f"  scratch net: loss {losses['scratch'][0]:.2f} at the first step -> "
          f"{losses['scratch'][-1]:.2f} at step {steps}")
    check.close("loss curves: scratch vs torch", losses["scratch"], losses["torch"], atol=1e-4)
    # Both buffers, and the eval-mode path that reads them: the loss curves above only ever
    # ran in train mode, where the running statistics are written but never used.
    for buffer in ("running_mean", "running_var"):
        check.close(f"{buffer} after training: MyBatchNorm vs BatchNorm1d",
                    getattr(mine[1], buffer), getattr(ref[1], buffer), atol=1e-4, rtol=1e-4)
    mine.eval()
    ref.eval()
    with torch.no_grad():
        check.close("eval-mode logits (running statistics): scratch vs torch", mine(X[:BATCH]),
                    ref(X[:BATCH]), atol=1e-4, rtol=1e-4)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(losses["torch"], lw=4, alpha=0.4, label="nn.Linear + nn.BatchNorm1d")
    ax.plot(losses["scratch"], lw=1, label="MyLinear + MyBatchNorm")
    ax.set(xlabel="SGD step", ylabel="cross-entropy", title="Scratch modules train exactly like torch's")
    ax.legend()
    plot.save(fig, run, "same_training.png")
    return losses["scratch"]


def main(args) -> dict:
    run = cli.start(args, __file__)
    linear_vs_torch(run)
    batchnorm_vs_torch(run)
    buffers_saved, keys = anatomy(run)
    survivor = hooks_and_modes(run)
    losses = train_side_by_side(run, run.steps)
    return cli.finish(run, {"final_loss": losses[-1], "steps": len(losses)}, answers={
        "buffers_saved": (buffers_saved, f"state_dict keys: {', '.join(keys)} (the '-- parameters, "
                          "buffers' section)"),
        "dropout_survivor": ({0.5: "half", 1.0: "one", 2.0: "two"}.get(survivor, "other"),
                             f"largest output of Dropout(0.5) on ones in train mode: {survivor:g} "
                             "(the '-- hooks and train/eval' section)"),
    })


# Predict, then run: answer in your copy (`python -m dlcourse exercise 03.04`) before running it;
# `python -m dlcourse check 03.04` compares your answers with what the run measures.
# PREDICT buffers_saved (yes / no): does a model's state_dict hold BatchNorm's running_mean (a buffer, not a parameter)?
# ANSWER buffers_saved:
# PREDICT dropout_survivor (half / one / two): in train mode, nn.Dropout(0.5) applied to a tensor of ones: what value do the kept units have?
# ANSWER dropout_survivor:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
