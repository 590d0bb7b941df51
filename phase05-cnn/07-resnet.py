"""07 - ResNet-18 from scratch (phase 05, week 7)

Goal: write the residual block and ResNet-18, load torchvision's weights into it unchanged
      and get the same outputs, and see why the skip connection matters: gradients that stay
      the same size through 40 layers, and a deep net that trains where its plain twin stalls.
Run:  python phase05-cnn/07-resnet.py            (224x224 comparison, 150 demo steps per twin; about 45 s on a 2-core CPU shared with other jobs)
      python phase05-cnn/07-resnet.py --quick    (seconds, offline, used by the tests: 30 steps)
Expect: "[check] scratch ResNet-18 (same weights): logits vs torchvision, eval mode" and
        "..., train mode" max |diff| 0 (the same operations in the same order), likewise the
        60 BN buffers after the train-mode pass and the gradients; in a 20-block stack at
        initialisation the first block's gradient is ~480x the last one's without skips and
        ~12x with them; the training loss (mean of the last 10 steps) after 150 steps is ~0.4
        with skips and ~2.1 without (after the 30 quick steps ~1.9 and ~2.3; seed 0). With a
        network, torchvision's ImageNet weights are used and two sample photos classified.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked

STEPS_DEMO = 150         # training steps of each twin in the demo (full run)
QUICK_STEPS_DEMO = 30    # --quick


def parse_args(argv=None):
    return cli.parser(__doc__, steps=(STEPS_DEMO, QUICK_STEPS_DEMO)).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from sklearn.datasets import load_digits, load_sample_image

from dlcourse import check, data, plot
import matplotlib.pyplot as plt  # after dlcourse.plot, which picks the headless backend

N_CLASSES = 1000         # ImageNet's classes, so torchvision's weights fit
DEPTH_DEMO = 20          # residual blocks (40 conv layers) in the plain-vs-residual demo
WIDTH_DEMO = 8          # channels of the demo stacks
MIN_STEPS_COMPARE = 30   # fewer steps: the losses are printed, not compared (the residual
                         # stack pulls clearly ahead only after ~30 steps, every seed 0-4)
LR_DEMO = 1e-3           # Adam learning rate of the demo
BATCH_DEMO = 32          # digits per demo step


class BasicBlock(nn.Module):
    """out = relu( bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x) ).

    The block learns a *residual* F(x) = H(x) - x: doing nothing is easy (F = 0), and in the
    backward pass the identity path hands the gradient through unchanged:
    d out / d x = dF/dx + I. When the shape changes (stride 2 or more channels) the shortcut
    is a 1x1 conv + BN ("downsample") so that the sum is defined.
    """

    def __init__(self, c_in, c_out, stride=1):
        super().__init__()
        # EXERCISE block_layers: conv1 3x3 (stride, padding 1, no bias), bn1, relu, conv2 3x3 (stride 1), bn2; a 1x1 conv + BN "downsample" only when the stride or the channels change, else None
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)  # BN's shift makes a bias redundant
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                            nn.BatchNorm2d(c_out))
        # END EXERCISE

    def forward(self, x):
        # EXERCISE block_forward: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut), the shortcut being x or downsample(x)
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)
        # END EXERCISE


class ResNet18(nn.Module):
    """Stem (7x7/2 conv, 3x3/2 max pool) -> 4 stages of 2 blocks (64, 128, 256, 512 channels;
    stages 2-4 halve H and W in their first block) -> global average pool -> FC.
    Attribute names follow torchvision's, so its state_dict loads unchanged."""

    def __init__(self, n_classes=N_CLASSES):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths, c = (64, 128, 256, 512), 64
        for i, w in enumerate(widths, start=1):
            stride = 1 if i == 1 else 2
            setattr(self, f"layer{i}", nn.Sequential(BasicBlock(c, w, stride), BasicBlock(w, w)))
            c = w
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, n_classes)

    def forward(self, x, trace=None):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, 64, H/4, W/4)
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)                  # stage i: (B, 64*2^(i-1), H/2^(i+1), ...)
            if trace is not None:
                trace.append((f"layer{i}", tuple(x.shape)))
        x = self.avgpool(x).flatten(1)                         # (B, 512)
        return self.fc(x)                                      # (B, n_classes)


def torchvision_resnet18(run):
    """Pretrained ImageNet weights when allowed and reachable, else random initialisation."""
    if not run.offline and data.network_available("download.pytorch.org"):
        torch.hub.set_dir(str(data.root() / "torch-hub"))      # keep downloads in the data folder
        data.library_timeout()
        try:
            weights = torchvision.models.ResNet18_Weights.DEFAULT
            model = torchvision.models.resnet18(weights=weights)
            print("weights: torchvision ResNet18_Weights.DEFAULT (ImageNet-pretrained)")
            return model, weights
        except Exception as err:  # network errors come in many types; fall back, say why
            print(f"weights: download failed ({type(err).__name__}); using random init")
    print("weights: random initialisation (offline or download.pytorch.org unreachable); "
          "the comparison is just as strict, only the predictions mean nothing")
    return torchvision.models.resnet18(weights=None), None


def randomise_batchnorm(model):
    """Fresh BN layers are almost the identity (mean 0, var 1, scale 1, shift 0), which would
    hide a BN wired in the wrong place. Give every BN its own statistics and affine terms.
    Lessons 08-10 load this function."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.2)


def load_weights(model, ref):
    """Put the reference's weights and buffers into `model` (built on the meta device) by name.
    strict=True: every name must fit. The tensors are cloned: assign=True would otherwise make
    both models share their running statistics, and a train-mode comparison would then update
    one set of buffers twice and compare it with itself."""
    model.load_state_dict({k: v.clone() for k, v in ref.state_dict().items()}, strict=True,
                          assign=True)
    return model


def compare_with_reference(name, model, ref, x, rtol=1e-4):
    """`model`, holding `ref`'s weights (load_weights), must compute what `ref` computes:
    - eval mode: the logits (BN uses its running statistics);
    - train mode: the logits (BN uses the batch's statistics; dropout and stochastic depth draw
      the same random numbers, as both run after the same seed), then every running statistic
      that pass updated (a wrong BN momentum shows only there) and every parameter's gradient.
    Identical code gives identical numbers; an equal formula written differently (x * m / q
    for x * (m / q)) differs by float32 rounding, ~1e-7 of the largest value involved, summed
    over thousands of terms. So each comparison allows rtol of the largest reference value
    (plus rtol of each element): a gradient that is zero in exact arithmetic (a BN shift
    followed by a train-mode BN) is pure rounding noise, small only next to the others.
    Lessons 08-10 load this function for their networks."""
    def compare(what, ours, theirs):
        check.close(f"{name}: {what}", ours, theirs,
                    atol=rtol * float(theirs.abs().max()), rtol=rtol)

    seed = int(torch.randint(0, 2 ** 31, ()))
    outs = {}
    for mode in ("eval", "train"):
        for key, net in (("ours", model), ("ref", ref)):
            net.train(mode == "train")
            net.zero_grad(set_to_none=True)
            torch.manual_seed(seed)                        # same dropout masks in both
            with torch.set_grad_enabled(mode == "train"):
                outs[key] = net(x)
        compare(f"logits vs torchvision, {mode} mode", outs["ours"], outs["ref"].detach())
    ours, theirs = dict(model.named_buffers()), dict(ref.named_buffers())
    compare(f"{len(theirs)} BN buffers after the train-mode pass vs torchvision's",
            torch.cat([ours[k].flatten().double() for k in theirs]),
            torch.cat([theirs[k].flatten().double() for k in theirs]))
    g = torch.randn_like(outs["ref"])                    # d loss / d logits of some loss
    outs["ours"].backward(g)
    outs["ref"].backward(g)
    ours, theirs = dict(model.named_parameters()), dict(ref.named_parameters())
    compare(f"gradients of all {len(theirs)} parameter tensors vs torchvision's (train mode)",
            torch.cat([ours[k].grad.flatten() for k in theirs]),
            torch.cat([theirs[k].grad.flatten() for k in theirs]))
    model.eval()
    ref.eval()


class DemoBlock(nn.Module):
    """A basic block whose skip connection can be switched off: the 'plain' twin."""

    def __init__(self, c, residual):
        super().__init__()
        self.residual = residual
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c),
                                  nn.ReLU(), nn.Conv2d(c, c, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(c))

    def forward(self, x):
        return F.relu(self.body(x) + x if self.residual else self.body(x))


def demo_net(residual):
    return nn.Sequential(nn.Conv2d(1, WIDTH_DEMO, 3, padding=1), nn.ReLU(),
                         *[DemoBlock(WIDTH_DEMO, residual) for _ in range(DEPTH_DEMO)],
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(WIDTH_DEMO, 10))


def plain_vs_residual(run, x, y):
    """Per-block gradient norms at initialisation, and (full run) training losses."""
    grads, losses = {}, {}
    for residual in (False, True):
        torch.manual_seed(run.seed)                            # same weights for both twins
        net = demo_net(residual).to(run.device)
        F.cross_entropy(net(x[:128]), y[:128]).backward()
        grads[residual] = [b.body[0].weight.grad.norm().item() for b in net if isinstance(b, DemoBlock)]
        opt = torch.optim.Adam(net.parameters(), lr=LR_DEMO)
        gen = torch.Generator().manual_seed(run.seed)          # same batches for both twins
        curve = []
        for _ in range(run.steps):
            idx = torch.randint(0, len(x), (BATCH_DEMO,), generator=gen).to(run.device)
            loss = F.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            curve.append(loss.detach())                        # stays on the device: no sync
        losses[residual] = torch.stack(curve).cpu().tolist()   # one transfer at the end
    return grads, losses


def figure_demo(run, grads, losses):
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), squeeze=False)
    ax = axes[0, 0]
    for residual, g in grads.items():
        ax.semilogy(range(1, len(g) + 1), g, "o-", label="with skip connections" if residual else "plain")
    ax.set(xlabel="block (1 = next to the input)", ylabel="|grad| of the block's first conv",
           title=f"gradients at initialisation, {DEPTH_DEMO} blocks + BN")
    ax.legend()
    ax = axes[0, 1]
    for residual, curve in losses.items():
        w = min(10, len(curve))                                     # moving-average window
        smooth = torch.tensor(curve).unfold(0, w, 1).mean(1)
        ax.plot(range(w, len(curve) + 1), smooth, label="with skip connections" if residual else "plain")
    ax.set(xlabel="step", ylabel=f"training loss ({w}-step mean)", title="same net, same data, same seed")
    ax.legend()
    plot.save(fig, run, "plain_vs_residual.png")


def classify_photos(run, model, weights):
    """Only with pretrained weights: ImageNet top-3 for two bundled photos."""
    data.announce("scikit-learn's sample photos china.jpg and flower.jpg", kind="bundled")
    preprocess = weights.transforms()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, name in zip(axes, ["china.jpg", "flower.jpg"]):
        img = torch.tensor(load_sample_image(name)).permute(2, 0, 1)        # (3, H, W) uint8
        with torch.no_grad():
            probs = model(preprocess(img)[None].to(run.device)).softmax(-1)[0].cpu()
        top = probs.topk(3)
        labels = [f"{weights.meta['categories'][i]} {p:.0%}" for p, i in zip(top.values, top.indices)]
        print(f"    {name}: " + ", ".join(labels))
        ax.imshow(img.permute(1, 2, 0))
        ax.set_title("\n".join(labels), fontsize=9)
        ax.axis("off")
    plot.save(fig, run, "predictions.png")


def main(args) -> dict:
    run = cli.start(args, __file__)

    print("--- 1. ResNet-18 from scratch vs torchvision")
    tv, weights = torchvision_resnet18(run)
    if weights is None:
        randomise_batchnorm(tv)
    tv = tv.to(run.device).eval()
    with torch.device("meta"):
        model = ResNet18()                                 # shapes only: weights come next
    load_weights(model, tv).eval()                         # eval: BN uses its running statistics
    n_params = sum(p.numel() for p in model.parameters())
    check.equal("parameters: scratch vs torchvision resnet18", n_params,
                sum(p.numel() for p in tv.parameters()))
    size = 128 if run.quick else 224                       # multiples of 32: every stride-2 halves exactly
    x = torch.randn(2, 3, size, size, device=run.device)
    trace = []
    with torch.no_grad():
        model(x, trace=trace)
    for name, shape in trace:
        print(f"    {name} -> {shape}")
    check.equal(f"stage shapes: (C, {size}/4, ...) halving per stage", [s[1:] for _, s in trace],
                [(64 * 2 ** i, size // 2 ** (i + 2), size // 2 ** (i + 2)) for i in range(4)])
    compare_with_reference("scratch ResNet-18 (same weights)", model, tv, x)
    if weights is not None:
        classify_photos(run, model, weights)

    print("--- 2. what the skip connection buys: a 20-block stack with and without it")
    d = load_digits()
    data.announce("scikit-learn digits (1797 8x8 scans) for the plain-vs-residual demo", kind="bundled")
    x = torch.tensor(d.images, dtype=torch.float32)[:, None]
    x = ((x - x.mean()) / x.std()).to(run.device)          # (1797, 1, 8, 8)
    y = torch.tensor(d.target).to(run.device)
    grads, losses = plain_vs_residual(run, x, y)
    spread = {r: g[0] / g[-1] for r, g in grads.items()}
    print(f"    first/last block gradient: plain {spread[False]:.0f}x, residual {spread[True]:.1f}x")
    check.greater("plain stack's gradient spread / residual stack's (at init)",
                  spread[False] / spread[True], 10)
    steps = len(losses[True])
    k = min(10, steps)                                     # mean of the last k steps
    final = {r: sum(c[-k:]) / k for r, c in losses.items()}
    print(f"    loss after {steps} steps (mean of the last {k}): plain {final[False]:.3f}, "
          f"residual {final[True]:.3f}")
    if steps >= MIN_STEPS_COMPARE:
        check.less("residual stack's final loss < plain stack's", final[True], final[False])
    else:
        print(f"    (not compared: fewer than {MIN_STEPS_COMPARE} steps)")
    metrics = {"params": n_params, "grad_spread_plain": spread[False],
               "grad_spread_residual": spread[True], "loss_plain": final[False],
               "loss_residual": final[True], "steps": steps}
    figure_demo(run, grads, losses)
    metrics["pretrained"] = weights is not None
    uneven = {r: abs(float(torch.tensor(s).log())) for r, s in spread.items()}
    return cli.finish(run, metrics, answers={
        "grad_spread": ("plain" if uneven[False] > uneven[True] else "residual",
                        f"first/last block gradient norm at init: plain {spread[False]:.0f}x, "
                        f"residual {spread[True]:.1f}x (plain_vs_residual.png, left)"),
        "lower_loss": ("residual" if final[True] < final[False] else "plain",
                       f"loss after {steps} steps (mean of the last {k}): plain {final[False]:.3f}, "
                       f"residual {final[True]:.3f} (plain_vs_residual.png, right)")})


# Predict, then run: answer in your copy (`python -m dlcourse exercise 05.07`) before running it;
# `python -m dlcourse check 05.07` compares your answers with what the run measures.
# PREDICT grad_spread (plain / residual): in the 20-block stack at initialisation, which twin's gradient norm differs more between its first and its last block?
# ANSWER grad_spread:
# PREDICT lower_loss (plain / residual): after the same Adam steps on the same batches, which twin has the lower training loss?
# ANSWER lower_loss:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
