"""11 - Seeing what a CNN learned (phase 05, week 7)

Goal: train a small CNN on generated shapes, then look inside it: first-layer filters before
      and after training, feature maps captured with forward hooks, and inputs synthesised by
      gradient ascent to excite one class or one channel (activation maximisation).
Run:  python phase05-cnn/11-feature-visualization.py            (2000 images, 6 epochs, longer ascent; about 15 s on a 2-core CPU)
      python phase05-cnn/11-feature-visualization.py --quick    (seconds, offline, used by the tests)
Expect: validation accuracy 1.0 by the last epoch and test accuracy (measured once) 1.0, full
        and quick; "[check] conv2 maps: forward hook vs manual forward" exact; every class's
        synthesised input scores above the best real test image for that class (smallest
        factor 4.4x full, 3.0x quick; seed 0); figures filters.png, feature_maps.png,
        activation_max.png.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked

EPOCHS = 6                # full run
QUICK_EPOCHS = 4          # --quick


def parse_args(argv=None):
    return cli.parser(__doc__, epochs=(EPOCHS, QUICK_EPOCHS)).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import torch
import torch.nn as nn
import torch.nn.functional as F

from torch.utils.data import DataLoader, TensorDataset

from dlcourse import check, data, plot, train
import matplotlib.pyplot as plt  # after dlcourse.plot, which picks the headless backend

SIZE = 32                 # image height and width (pixels)
CLASSES = ["disk", "square", "triangle", "cross"]
RADIUS = (5, 10)          # shape half-size in pixels, [low, high)
NOISE = 0.1               # std of the Gaussian pixel noise
N_TRAIN = 2000            # training images (full run)
QUICK_N_TRAIN = 640       # --quick
N_VAL, N_TEST = 200, 400  # validation (watched while training) and test (used once) images
LR = 1e-2                 # Adam learning rate (high, for a short run)
BATCH = 32                # images per step
ASCENT_STEPS = 200        # gradient-ascent steps for activation maximisation
QUICK_ASCENT_STEPS = 60   # --quick
ASCENT_LR = 0.05          # step size on the (normalised) input gradient
ASCENT_L2 = 1e-3          # pull towards 0: keeps the picture from filling with noise
BLUR_EVERY = 4            # blur the input every few steps: a prior for smooth images
PIXEL_RANGE = (-0.3, 1.3) # clamp to the range real images occupy, so scores stay comparable


def shape_masks(n, gen, radius, arm=1.5):
    """A random place and half-size r in [radius) for each of n shapes, and the mask of every
    kind of shape drawn there: ({kind: (n, S, S) bool}, boxes (n, 4) as x0, y0, x1, y1 in
    pixels). `arm`: half-width of the cross's bars. Lesson 12 plants its objects with this."""
    yy, xx = torch.meshgrid(torch.arange(SIZE).float(), torch.arange(SIZE).float(), indexing="ij")
    r = torch.randint(*radius, (n, 1, 1), generator=gen).float()
    cx = torch.rand(n, 1, 1, generator=gen) * (SIZE - 2 * r - 2) + r + 1      # keep it inside
    cy = torch.rand(n, 1, 1, generator=gen) * (SIZE - 2 * r - 2) + r + 1
    dx, dy = xx - cx, yy - cy                                                   # (n, S, S)
    dist = (dx ** 2 + dy ** 2).sqrt()
    masks = {
        "disk": dist <= r,
        "ring": (dist <= r) & (dist >= r - 2),
        "square": (dx.abs() <= 0.8 * r) & (dy.abs() <= 0.8 * r),               # about a disk's area
        "triangle": (dy.abs() <= r) & (dx.abs() <= (dy + r) / 2),
        "cross": ((dx.abs() <= arm) & (dy.abs() <= r)) | ((dy.abs() <= arm) & (dx.abs() <= r)),
    }
    boxes = torch.cat([cx - r, cy - r, cx + r, cy + r], dim=1).flatten(1)     # (n, 4)
    return masks, boxes


def make_images(n, gen):
    """One filled shape per image at a random place and size, plus noise; label = shape."""
    label = torch.randint(0, len(CLASSES), (n,), generator=gen)
    masks, _ = shape_masks(n, gen, RADIUS)
    shapes = torch.stack([masks[c] for c in CLASSES], dim=1)                    # (n, classes, S, S)
    img = shapes[torch.arange(n), label].float() + NOISE * torch.randn(n, SIZE, SIZE, generator=gen)
    return img[:, None], label                                                  # (n, 1, S, S)


class ShapeNet(nn.Module):
    """Three conv blocks (conv, BatchNorm, ReLU, pool), global average pool, linear.
    BatchNorm is here for speed: without it this net needs several times more steps."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 5, padding=2)      # 5x5: big enough to see what a filter is
        self.bn1 = nn.BatchNorm2d(8)
        self.relu1 = nn.ReLU()                          # separate modules, so hooks can see them
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(16)
        self.relu2 = nn.ReLU()
        self.conv3 = nn.Conv2d(16, 32, 3, padding=1)
        self.bn3 = nn.BatchNorm2d(32)
        self.relu3 = nn.ReLU()
        self.fc = nn.Linear(32, len(CLASSES))

    def forward(self, x):
        x = F.max_pool2d(self.relu1(self.bn1(self.conv1(x))), 2)      # (B, 8, 16, 16)
        x = F.max_pool2d(self.relu2(self.bn2(self.conv2(x))), 2)      # (B, 16, 8, 8)
        x = self.relu3(self.bn3(self.conv3(x)))                       # (B, 32, 8, 8)
        return self.fc(x.mean(dim=(2, 3)))                  # (B, classes)


def fit(model, run, train_set, val_set, lr=LR, batch=BATCH):
    """Adam on the shared loop (dlcourse.train.fit: lesson 03.09's loop, with the loss kept on
    the device between steps), watching a validation set; returns its history. Lesson 12
    trains with this too."""
    gen = torch.Generator().manual_seed(run.seed)        # the same shuffles on every device
    return train.fit(model, DataLoader(TensorDataset(*train_set), batch_size=batch, shuffle=True,
                                       generator=gen),
                     F.cross_entropy, torch.optim.Adam(model.parameters(), lr=lr),
                     device=run.device, epochs=run.epochs,
                     val_loader=DataLoader(TensorDataset(*val_set), batch_size=256),
                     metrics={"acc": train.accuracy})


def capture(model, x, names):
    """Forward once, keeping the outputs of the named modules via forward hooks.
    We hook the ReLU modules, not the convs: with nn.ReLU(inplace=True) a tensor saved from
    the conv would be overwritten by the ReLU after the hook ran (clone() would also work)."""
    maps, handles = {}, []
    for name in names:
        module = getattr(model, name)
        handles.append(module.register_forward_hook(
            lambda m, i, out, name=name: maps.__setitem__(name, out.detach())))
    with torch.no_grad():
        model.eval()(x)
    for h in handles:
        h.remove()                                          # hooks live until removed
    return maps


def blur(x):
    """3x3 binomial blur, applied to the image being optimised."""
    k = torch.tensor([1.0, 2.0, 1.0], device=x.device)
    k = (k[:, None] * k[None, :] / 16).view(1, 1, 3, 3)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k)


def maximise(model, score_fn, n, steps, device, gen):
    """Gradient ascent on the input: x <- x + lr * g/|g| - l2 * x, blurred now and then and
    clamped to the data range. score_fn(model, x) -> (n,) scores, one target per image."""
    # EXERCISE maximise: freeze the weights; x = 0.05 * noise (from gen); each step g = d score.sum() / dx scaled to unit norm per image; step UP the gradient by ASCENT_LR * SIZE and decay x by ASCENT_L2 (a small L2 pull towards 0); blur every BLUR_EVERY steps, clamp to PIXEL_RANGE; return x, start and end scores
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)                             # only the input is optimised
    x = (0.05 * torch.randn(n, 1, SIZE, SIZE, generator=gen)).to(device).requires_grad_(True)
    start = score_fn(model, x).detach()
    for step in range(steps):
        score = score_fn(model, x)
        g, = torch.autograd.grad(score.sum(), x)
        with torch.no_grad():
            g = g / (g.flatten(1).norm(dim=1).view(-1, 1, 1, 1) + 1e-12)   # same step size for all
            x += ASCENT_LR * SIZE * g - ASCENT_L2 * x
            if step % BLUR_EVERY == 0:
                x.copy_(blur(x))
            x.clamp_(*PIXEL_RANGE)
    for p in model.parameters():
        p.requires_grad_(True)
    return x.detach(), start, score_fn(model, x).detach()
    # END EXERCISE


def capture_mean(model, x, chans):
    """Mean activation of conv3 channel chans[i] for image i (differentiable, no hooks)."""
    # EXERCISE capture_mean: call the layers by hand, block 1 and 2 each conv -> bn -> relu -> 2x2 max pool, block 3 without the pool; then image i's channel chans[i], averaged over H and W
    a = F.max_pool2d(model.relu1(model.bn1(model.conv1(x))), 2)
    a = F.max_pool2d(model.relu2(model.bn2(model.conv2(a))), 2)
    a = model.relu3(model.bn3(model.conv3(a)))                                   # (n, 32, 8, 8)
    return a[torch.arange(len(x), device=x.device), chans].mean(dim=(1, 2))
    # END EXERCISE


def show_grid(axes, images, titles, cmap="gray"):
    for ax, img, t in zip(axes, images, titles):
        lim = float(img.abs().max()) if cmap == "RdBu_r" else None   # diverging: 0 is white
        ax.imshow(img.cpu(), cmap=cmap, vmin=-lim if lim else None, vmax=lim)
        ax.set_title(t, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])


def main(args) -> dict:
    run = cli.start(args, __file__)
    gen = torch.Generator().manual_seed(run.seed)
    train_set = make_images(QUICK_N_TRAIN if run.quick else N_TRAIN, gen)
    val_set = make_images(N_VAL, gen)
    x_test, y_test = make_images(N_TEST, gen)
    data.announce(f"generated {SIZE}x{SIZE} images of one disk/square/triangle/cross each",
                  kind="generated")
    x_test, y_test = x_test.to(run.device), y_test.to(run.device)

    model = ShapeNet().to(run.device)
    filters_before = model.conv1.weight.detach().clone()
    hist = fit(model, run, train_set, val_set)
    with torch.no_grad():                                   # the test set, once
        logits_test = model.eval()(x_test)
    acc = (logits_test.argmax(1) == y_test).float().mean().item()
    check.greater(f"test accuracy beats chance ({1 / len(CLASSES):.2f}) by 0.5", acc, 1 / len(CLASSES) + 0.5)

    print("--- 1. filters of the first layer (figure filters.png)")
    fig, axes = plt.subplots(2, 8, figsize=(12, 3.4))
    trained = model.conv1.weight.detach()
    for row, (w, when) in enumerate([(filters_before, "random init"), (trained, "trained")]):
        show_grid(axes[row], w[:, 0], [f"{when} {k}" for k in range(8)], cmap="RdBu_r")
    fig.suptitle("conv1's 5x5 filters (red +, blue -) before and after training: a short run only "
                 "nudges them towards oriented edges;\nfeature_maps.png shows what each one responds to",
                 fontsize=10)
    plot.save(fig, run, "filters.png")

    print("--- 2. feature maps through forward hooks (figure feature_maps.png)")
    examples = torch.stack([(y_test == c).nonzero()[0, 0] for c in range(len(CLASSES))])
    xe = x_test[examples]
    maps = capture(model, xe, ["relu1", "relu2"])
    with torch.no_grad():                                   # the same layers, called by hand
        a1 = F.relu(model.bn1(model.conv1(xe)))
        a2 = F.relu(model.bn2(model.conv2(F.max_pool2d(a1, 2))))
    check.close("conv1 maps: forward hook vs manual forward", maps["relu1"], a1, atol=1e-6)
    check.close("conv2 maps: forward hook vs manual forward", maps["relu2"], a2, atol=1e-6)
    # One mosaic image (many small axes are slow to draw): per row the input, then the 8 conv1
    # maps, then the first 8 conv2 maps (upsampled x2 to the same size), each scaled to [0, 1].
    tiles = torch.cat([xe, maps["relu1"], F.interpolate(maps["relu2"][:, :8], scale_factor=2)], 1)
    lo = tiles.amin(dim=(2, 3), keepdim=True)
    tiles = (tiles - lo) / (tiles.amax(dim=(2, 3), keepdim=True) - lo + 1e-8)      # (4, 17, S, S)
    tiles = F.pad(tiles, (1, 1, 1, 1), value=1.0)                                  # white frames
    n_rows, n_cols, side = tiles.shape[0], tiles.shape[1], tiles.shape[-1]
    mosaic = tiles.permute(0, 2, 1, 3).reshape(n_rows * side, n_cols * side)     # (4*(S+2), 17*(S+2))
    fig, ax = plt.subplots(figsize=(17, 4.6))
    ax.imshow(mosaic.cpu(), cmap="magma")
    ax.set_xticks([side * (c + 0.5) for c in range(n_cols)],
                  ["input"] + [f"c1.{k}" for k in range(8)] + [f"c2.{k}" for k in range(8)], fontsize=8)
    ax.set_yticks([side * (r + 0.5) for r in range(n_rows)], CLASSES)
    ax.set_title("input | conv1 maps (32x32, after ReLU) | first 8 conv2 maps (16x16, shown x2)")
    plot.save(fig, run, "feature_maps.png")

    print("--- 3. activation maximisation (figure activation_max.png)")
    steps = QUICK_ASCENT_STEPS if run.quick else ASCENT_STEPS
    classes = torch.arange(len(CLASSES), device=run.device)
    x_cls, start, end = maximise(model, lambda m, xi: m(xi).gather(1, classes[:, None])[:, 0],
                                 len(CLASSES), steps, run.device, gen)
    best_real = logits_test.max(dim=0).values                       # best real image, per class
    for c, name in enumerate(CLASSES):
        print(f"    {name:8s}: logit {start[c]:+.2f} (noise) -> {end[c]:+.2f} after ascent; "
              f"best real test image {best_real[c]:+.2f} ({end[c] / best_real[c]:.1f}x)")
    check.true("every class: synthesised input's logit > best real test image's",
               bool((end > best_real).all()),
               f"{int((end > best_real).sum())}/{len(CLASSES)} classes, smallest ratio "
               f"{(end / best_real).min():.2f}")
    # The most used channels of conv3: those with the largest mean activation on test images.
    channel_mean = capture(model, x_test, ["relu3"])["relu3"].mean(dim=(0, 2, 3))
    chans = channel_mean.topk(4).indices
    # the ascent needs a differentiable path to a channel: capture_mean calls the layers by
    # hand, so it must give what the hook sees
    check.close("conv3 channel means: by hand (for the ascent) vs forward hook",
                capture_mean(model, x_test[:4], chans).detach(),
                capture(model, x_test[:4], ["relu3"])["relu3"][torch.arange(4), chans].mean(dim=(1, 2)),
                atol=1e-6)
    x_ch, _, end_ch = maximise(model, lambda m, xi: capture_mean(m, xi, chans), 4, steps, run.device, gen)
    fig, axes = plt.subplots(2, 4, figsize=(9, 5))
    show_grid(axes[0], x_cls[:, 0], [f"class '{n}'\nlogit {e:.1f}" for n, e in zip(CLASSES, end)])
    show_grid(axes[1], x_ch[:, 0], [f"conv3 channel {int(c)}\nmean activation {e:.1f}"
                                    for c, e in zip(chans, end_ch)])
    fig.suptitle("inputs synthesised by gradient ascent (from faint noise, blurred, clamped)")
    plot.save(fig, run, "activation_max.png")
    beaten = int((end > best_real).sum())
    return cli.finish(run, {"test_acc": acc, "val_acc": hist["val_acc"][-1],
                            "ascent_over_best_real_min": float((end / best_real).min()),
                            "epochs": len(hist["epoch"])}, answers={
        "beats_real": ("all" if beaten == len(CLASSES) else "none" if beaten == 0 else "some",
                       f"{beaten}/{len(CLASSES)} classes: synthesised logit above the best real "
                       f"test image's, smallest ratio {(end / best_real).min():.2f} "
                       "(section 3 of the output; activation_max.png)")})


# Predict, then run: answer in your copy (`python -m dlcourse exercise 05.11`) before running it;
# `python -m dlcourse check 05.11` compares your answers with what the run measures.
# PREDICT beats_real (all / some / none): gradient ascent from faint noise on each class's logit: for how many classes does the synthesised input score higher than the best real test image of that class?
# ANSWER beats_real:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
