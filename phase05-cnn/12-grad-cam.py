"""12 - Grad-CAM (phase 05, week 7)

Goal: implement Grad-CAM with forward and tensor hooks, check it against the closed form it
      reduces to for a global-average-pool head (CAM), and show that it finds the object that
      decides the class in generated cluttered images, with overlays to look at.
Run:  python phase05-cnn/12-grad-cam.py            (4000 images, 12 epochs; about 8 s on a 2-core CPU)
      python phase05-cnn/12-grad-cam.py --quick    (seconds, offline, used by the tests)
Expect: "[check] Grad-CAM by hooks vs CAM from the FC weights" ~1e-6; the Grad-CAM peak of the
        class-margin score falls inside the planted object's box for ~99-100% of test images
        (checked >= 80%), the raw logit's peak less often (~70% quick, ~96% full); test
        accuracy ~0.87 quick, ~1.0 full; overlays.png shows both maps.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from dlcourse import check, cli, data, plot
import matplotlib.pyplot as plt  # after dlcourse.plot, which picks the headless backend

SIZE = 32            # image height and width (pixels)
CLASSES = ["cross", "ring", "triangle", "none"]   # "none": clutter only, no planted object
RADIUS = (4, 7)      # planted object's half-size in pixels, [low, high)
CLUTTER = 5          # 2x2 bright dots per image, in every class: they never decide the class
NOISE = 0.1          # std of the Gaussian pixel noise
N_TRAIN, N_TEST = 4000, 500       # --quick: 1000 training images
EPOCHS = 12          # full run; --quick trains 5
LR = 3e-3            # Adam learning rate
BATCH = 32           # images per step
WIDTH = 8            # channels of the first conv; doubled at each of the next two
MIN_HIT = 0.8        # required share of test objects whose Grad-CAM peak lies in their box


def make_images(n, gen):
    """n images: clutter + noise + (except class 'none') one planted shape at a random place.
    Returns x (n, 1, S, S), labels (n,), boxes (n, 4) as x0, y0, x1, y1 in pixel units."""
    yy, xx = torch.meshgrid(torch.arange(SIZE).float(), torch.arange(SIZE).float(), indexing="ij")
    label = torch.randint(0, len(CLASSES), (n,), generator=gen)
    r = torch.randint(*RADIUS, (n, 1, 1), generator=gen).float()
    cx = torch.rand(n, 1, 1, generator=gen) * (SIZE - 2 * r - 2) + r + 1     # keep it inside
    cy = torch.rand(n, 1, 1, generator=gen) * (SIZE - 2 * r - 2) + r + 1
    dx, dy = xx - cx, yy - cy                                                  # (n, S, S)
    dist = (dx ** 2 + dy ** 2).sqrt()
    shapes = torch.stack([
        ((dx.abs() <= 1) & (dy.abs() <= r)) | ((dy.abs() <= 1) & (dx.abs() <= r)),   # cross
        (dist <= r) & (dist >= r - 2),                                             # ring
        (dy.abs() <= r) & (dx.abs() <= (dy + r) / 2),                              # triangle
        torch.zeros_like(dist, dtype=torch.bool),                                  # none
    ], dim=1)                                                                      # (n, 4, S, S)
    img = shapes[torch.arange(n), label].float()
    for _ in range(CLUTTER):
        px = torch.randint(0, SIZE - 2, (n, 1, 1), generator=gen)
        py = torch.randint(0, SIZE - 2, (n, 1, 1), generator=gen)
        dot = (xx >= px) & (xx < px + 2) & (yy >= py) & (yy < py + 2)
        img = torch.maximum(img, 0.8 * dot.float())
    img = img + NOISE * torch.randn(n, SIZE, SIZE, generator=gen)
    boxes = torch.cat([cx - r, cy - r, cx + r, cy + r], dim=1).flatten(1)        # (n, 4)
    return img[:, None], label, boxes


class SmallCNN(nn.Module):
    """Three 3x3 conv blocks, then global average pooling and one linear layer."""

    def __init__(self):
        super().__init__()
        c = WIDTH
        self.features = nn.Sequential(
            nn.Conv2d(1, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),            # (B, c, S/2, S/2)
            nn.Conv2d(c, 2 * c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),        # (B, 2c, S/4, S/4)
            nn.Conv2d(2 * c, 4 * c, 3, padding=1), nn.ReLU())                     # (B, 4c, S/4, S/4)
        self.fc = nn.Linear(4 * c, len(CLASSES))

    def forward(self, x):
        return self.fc(self.features(x).mean(dim=(2, 3)))   # GAP: (B, 4c) -> (B, classes)


def train(model, run, x, y, epochs):
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    gen = torch.Generator().manual_seed(run.seed)
    for epoch in range(1, epochs + 1):
        model.train()
        total = 0.0
        for idx in torch.randperm(len(x), generator=gen).split(BATCH):
            idx = idx.to(run.device)
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        print(f"epoch {epoch}/{epochs}  train loss {total / len(x):.4f}", flush=True)
    return total / len(x)


class GradCAM:
    """Grad-CAM (Selvaraju et al. 2017) on one layer:
        alpha_k = mean_{i,j} d score / d A_k[i, j]      (how much channel k matters)
        map     = ReLU( sum_k alpha_k A_k )             (where the helpful channels fire)
    A forward hook keeps the layer's output A and puts a hook on that tensor, which
    receives d score / d A during backward. No change to the model's code."""

    def __init__(self, layer):
        self.acts = self.grads = None
        self.handle = layer.register_forward_hook(self._forward_hook)

    def _forward_hook(self, module, inputs, output):
        self.acts = output.detach()
        if output.requires_grad:
            output.register_hook(self._save_grad)         # called with d score / d output

    def _save_grad(self, grad):
        self.grads = grad.detach()

    def __call__(self, model, x, score_fn):
        """score_fn(logits) -> (B,) scores; one backward for the whole batch, since each
        image's score depends only on that image."""
        model.eval()
        x = x.clone().requires_grad_(True)                # a graph even when params are frozen
        score_fn(model(x)).sum().backward()
        alpha = self.grads.mean(dim=(2, 3), keepdim=True)                # (B, K, 1, 1)
        return F.relu((alpha * self.acts).sum(dim=1))                    # (B, h, w)

    def remove(self):
        self.handle.remove()


def peaks_in_boxes(cams, boxes):
    """Upsample each map to the image size; is its arg-max pixel inside the object's box?"""
    up = F.interpolate(cams[:, None], size=SIZE, mode="bilinear", align_corners=False)[:, 0]
    flat = up.flatten(1).argmax(dim=1)
    px, py = (flat % SIZE).float(), (flat // SIZE).float()
    inside = (px >= boxes[:, 0] - 0.5) & (px <= boxes[:, 2] + 0.5) & \
             (py >= boxes[:, 1] - 0.5) & (py <= boxes[:, 3] + 0.5)      # pixel centres vs box edges
    return inside, up, px, py


def figure(run, x, y, pred, boxes, maps, hits):
    n = 8
    fig, axes = plt.subplots(3, n, figsize=(2 * n, 6.4))
    titles = ["image, planted object's box", "Grad-CAM, raw logit\n(of the true class)",
              "Grad-CAM, margin\n(of the true class)"]
    for i in range(n):
        img = x[i, 0].cpu()
        for row in range(3):
            ax = axes[row, i]
            ax.imshow(img, cmap="gray", vmin=-0.2, vmax=1.2)
            if row > 0:
                up, px, py = (t[i].cpu() for t in maps[row - 1])
                ax.imshow(up, cmap="jet", alpha=0.45)
                ax.plot(px, py, "w+", ms=12, mew=2)
                ax.set_xlabel("peak in box" if hits[row - 1][i] else "peak outside", fontsize=8,
                              color="k" if hits[row - 1][i] else "r")
            x0, y0, x1, y1 = boxes[i].tolist()
            ax.add_patch(plt.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0 + 1, y1 - y0 + 1,
                                       fill=False, color="lime", lw=1))
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, i].set_title(f"{CLASSES[y[i]]} (pred {CLASSES[pred[i]]})", fontsize=9)
    for row, t in enumerate(titles):
        axes[row, 0].set_ylabel(t, fontsize=8)
    plot.save(fig, run, "overlays.png")


def main(args) -> dict:
    run = cli.start(args, __file__)
    epochs = args.epochs or (5 if run.quick else EPOCHS)
    gen = torch.Generator().manual_seed(run.seed)
    x, y, _ = make_images(1000 if run.quick else N_TRAIN, gen)
    x_test, y_test, box_test = make_images(N_TEST, gen)
    data.announce(f"generated {SIZE}x{SIZE} clutter images with a planted cross/ring/triangle "
                  "(or none) deciding the class", real=False)
    x, y, x_test, y_test, box_test = (t.to(run.device) for t in (x, y, x_test, y_test, box_test))

    model = SmallCNN().to(run.device)
    final_loss = train(model, run, x, y, epochs)
    with torch.no_grad():
        model.eval()
        pred = model(x_test).argmax(1)
    acc = (pred == y_test).float().mean().item()
    check.greater(f"test accuracy beats chance ({1 / len(CLASSES):.2f}) by 0.3", acc, 1 / len(CLASSES) + 0.3)

    print("--- Grad-CAM on the last conv block (after its ReLU)")
    cam = GradCAM(model.features[-1])
    has_obj = y_test != CLASSES.index("none")
    xs, ys, boxes = x_test[has_obj], y_test[has_obj], box_test[has_obj]
    # With a GAP + linear head, d logit_c / d A_k[i,j] = W[c, k] / (h*w) at every position, so
    # Grad-CAM must equal ReLU(sum_k W[c,k] A_k) / (h*w): CAM (Zhou et al. 2016).
    raw = cam(model, xs, lambda logits: logits.gather(1, ys[:, None])[:, 0])
    h, w = cam.acts.shape[-2:]
    cam_closed = F.relu(torch.einsum("bk,bkij->bij", model.fc.weight[ys], cam.acts)) / (h * w)
    check.close("Grad-CAM by hooks vs CAM from the FC weights", raw, cam_closed, atol=1e-5)

    # Softmax only sees differences between logits: adding the same evidence to every class
    # changes nothing, so a raw logit can be 'explained' by clutter that counts against the
    # other classes. The margin logit_c - mean(other logits) is free of that shared part.
    def margin(logits):
        own = logits.gather(1, ys[:, None])[:, 0]
        return own - (logits.sum(1) - own) / (logits.shape[1] - 1)

    contrast = cam(model, xs, margin)
    cam.remove()
    hit_raw, *maps_raw = peaks_in_boxes(raw, boxes)
    hit_margin, *maps_margin = peaks_in_boxes(contrast, boxes)
    share_raw, share_margin = hit_raw.float().mean().item(), hit_margin.float().mean().item()
    print(f"    peak inside the object's box: raw logit {share_raw:.1%}, margin {share_margin:.1%} "
          f"of {len(xs)} test images with an object")
    check.greater(f"share of Grad-CAM (margin) peaks inside the planted box (>= {MIN_HIT})",
                  share_margin, MIN_HIT, strict=False)
    figure(run, xs, ys, pred[has_obj], boxes, [maps_raw, maps_margin], [hit_raw, hit_margin])
    return cli.finish(run, {"test_acc": acc, "final_loss": final_loss, "hit_margin": share_margin,
                            "hit_raw_logit": share_raw, "epochs": epochs})


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)


if __name__ == "__main__":
    with cli.friendly_errors():
        main(parse_args())
