"""08 - Data augmentation with transforms v2, Mixup/CutMix (phase 03, week 4)

Goal: build a torchvision transforms v2 pipeline that moves boxes together with the image,
      re-derive a flip, MixUp and CutMix by hand against torchvision, and check that labels
      survive augmentation and that seeded runs repeat.
Run:  python phase03-pytorch/08-data-augmentation.py            (about 18 s on a 2-core CPU, imports included)
      python phase03-pytorch/08-data-augmentation.py --quick    (seconds, offline, used by the tests)
Expect: "[check] mixup images vs v2.MixUp: max |diff| 0" (lambda 0.864), CutMix images equal;
        figures augmentation_grid.png (one photo, many views, box following) and mixup_cutmix.png.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import time

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits, load_sample_image
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.utils import draw_bounding_boxes

from dlcourse import check, data, plot
import matplotlib.pyplot as plt  # noqa: E402  (after dlcourse.plot, which picks a headless backend)

PHOTO_SIZE = (160, 240)  # (H, W) the photo is resized to before augmenting: small and fast
GRID_QUICK = (2, 4)      # rows x columns of augmented views in --quick
GRID_FULL = (3, 6)       # and in a full run
BOX = [210, 40, 330, 180]  # (x1, y1, x2, y2) around the pagoda roof in china.jpg, original pixels
DIGIT_SIZE = 32          # digits are upsampled from 8x8 to this many pixels
MIX_BATCH = 8            # digits per MixUp/CutMix batch
ALPHA = 1.0              # Beta(alpha, alpha) for lambda; 1.0 = uniform on [0, 1]
TIMED_QUICK = 20         # photos pushed through the pipeline for the throughput number, --quick
TIMED_FULL = 100         # and in a full run


def pipeline():
    """A typical training-time pipeline. v2 transforms accept dicts/tuples and transform every
    tv_tensor inside consistently: the box is cropped, flipped and rotated with the image;
    plain ints and strings (class labels, names) pass through untouched."""
    return v2.Compose([
        v2.RandomResizedCrop(PHOTO_SIZE, scale=(0.25, 1.0), antialias=True),  # zoom + aspect jitter
        v2.RandomHorizontalFlip(p=0.5),                                       # mirror symmetry
        v2.RandomRotation(degrees=15),                                        # small tilts
        v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05),  # lighting, camera
        v2.SanitizeBoundingBoxes(),   # drop boxes cropped to nothing, with their "labels"
    ])
    # (v2.RandomErasing, random occlusion, is another favourite; it is left out here because
    # it does not know what to do with boxes.)


def augment(aug, img, boxes, class_id=3):
    """Run the pipeline on one detection-style sample: a dict of image, boxes, labels."""
    return aug({"image": img, "boxes": boxes, "labels": torch.tensor([7] * len(boxes)),
                "class_id": class_id})


def load_photo():
    """scikit-learn's bundled photo as a uint8 tv_tensors.Image (3, H, W) with one box."""
    img = torch.tensor(load_sample_image("china.jpg")).permute(2, 0, 1)  # (H, W, 3) -> (3, H, W)
    h, w = img.shape[1:]
    boxes = tv_tensors.BoundingBoxes([BOX], format="XYXY", canvas_size=(h, w))
    resize = v2.Resize(PHOTO_SIZE, antialias=True)   # boxes are rescaled along with the image
    img, boxes = resize(tv_tensors.Image(img), boxes)
    return img, boxes


# ---- the augmentations written by hand, checked against torchvision below ------------------

def hflip(img, boxes):
    """Mirror left-right. Pixel column c goes to W - 1 - c: reverse the last axis. Box
    coordinates are edges between pixels (0..W), so an edge at x goes to W - x, and the left
    edge x1 becomes the right one: (x1, y1, x2, y2) -> (W - x2, y1, W - x1, y2)."""
    # EXERCISE hflip: reverse the image's last axis; a box (x1, y1, x2, y2) becomes (W - x2, y1, W - x1, y2)
    W = img.shape[-1]
    x1, y1, x2, y2 = torch.as_tensor(boxes).unbind(-1)             # each (N,)
    return img.flip(-1), torch.stack([W - x2, y1, W - x1, y2], dim=-1)  # (C, H, W), (N, 4)
    # END EXERCISE


def mixup(x, onehot, lam):
    """MixUp: each example blended with its neighbour in the batch (x.roll(1)), the labels the
    same way: one lambda for the whole batch, as torchvision does."""
    # EXERCISE mixup: blend each image and each one-hot label with its neighbour x.roll(1, 0): lam * own + (1 - lam) * neighbour
    mixed = lam * x + (1 - lam) * x.roll(1, 0)                      # (B, C, H, W)
    soft = lam * onehot + (1 - lam) * onehot.roll(1, 0)             # (B, classes)
    return mixed, soft
    # END EXERCISE


def cutmix(x, onehot, box):
    """CutMix: paste the neighbour's pixels inside box = (x1, y1, x2, y2) into each image;
    each label keeps the weight of the area that is still its own, 1 - box area / image area."""
    # EXERCISE cutmix: copy the rolled batch's pixels in rows y1:y2, columns x1:x2; lam = 1 - box area / image area weights the own label
    x1, y1, x2, y2 = box
    H, W = x.shape[-2:]
    mixed = x.clone()
    mixed[..., y1:y2, x1:x2] = x.roll(1, 0)[..., y1:y2, x1:x2]     # rows are y, columns x
    lam = 1 - (x2 - x1) * (y2 - y1) / (H * W)
    return mixed, lam * onehot + (1 - lam) * onehot.roll(1, 0)
    # END EXERCISE


def check_flip(img, boxes):
    print("\n-- a horizontal flip by hand vs v2.RandomHorizontalFlip(p=1)")
    out_img, out_boxes = v2.RandomHorizontalFlip(p=1.0)(img, boxes)
    ours_img, ours_boxes = hflip(img, boxes)
    check.equal("hflip image vs v2 (reverse the last axis)", ours_img, out_img)
    check.equal("hflip box vs v2 (x -> W - x, x1 and x2 swap)", ours_boxes, out_boxes.as_subclass(torch.Tensor))
    W, (x1, _, x2, _) = img.shape[-1], boxes[0].tolist()       # torchvision's answer, for the question
    left = {"w - x1": W - x1, "w - x2": W - x2, "w - 1 - x2": W - 1 - x2}
    new_left = out_boxes[0, 0].item()
    return next((k for k, v in left.items() if v == new_left), "other"), new_left, W, x2


def check_pipeline(run, img, boxes):
    print("\n-- labels survive the pipeline; seeds repeat")
    aug = pipeline()
    kept = []
    for s in range(20):
        torch.manual_seed(run.seed * 1000 + s)
        out = augment(aug, img, boxes)
        if out["class_id"] != 3 or len(out["labels"]) != len(out["boxes"]):
            break
        kept.append(len(out["boxes"]))
    # What torchvision's pipeline does with our sample: demonstrations, not counted as our checks.
    check.equal("20 draws: class label untouched, one label per surviving box", len(kept), 20, demo=True)
    print(f"  the box survived {sum(kept)} of 20 random crops (SanitizeBoundingBoxes removes boxes "
          "cropped away, and their labels)")
    torch.manual_seed(run.seed)
    a = augment(aug, img, boxes)["image"]
    torch.manual_seed(run.seed)
    b = augment(aug, img, boxes)["image"]
    torch.manual_seed(run.seed + 1)
    c = augment(aug, img, boxes)["image"]
    check.equal("same seed -> same augmented image", a, b, demo=True)
    check.true("another seed -> another image", not torch.equal(a, c), "images differ", demo=True)


def load_digit_batch(run):
    digits = load_digits()
    g = torch.Generator().manual_seed(run.seed)
    idx = torch.randperm(len(digits.target), generator=g)[:MIX_BATCH]
    x = torch.tensor(digits.images[idx.numpy()], dtype=torch.float32)[:, None] / 16   # (B, 1, 8, 8)
    x = F.interpolate(x, size=DIGIT_SIZE, mode="bilinear", align_corners=False)        # (B, 1, 32, 32)
    return x, torch.tensor(digits.target[idx.numpy()])


def pasted_box(before, after):
    """(x1, y1, x2, y2) of the region where `after` differs from `before` ((H, W) images),
    or an empty box when nothing was pasted."""
    rows = (after != before).any(1).nonzero().squeeze(1)
    cols = (after != before).any(0).nonzero().squeeze(1)
    if len(rows) == 0:
        return 0, 0, 0, 0
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def check_mixing(run, x, y):
    print("\n-- MixUp and CutMix: scratch vs torchvision")
    onehot = F.one_hot(y, 10).float()
    torch.manual_seed(run.seed)
    mixed, soft = v2.MixUp(alpha=ALPHA, num_classes=10)(x, y)     # soft: (B, 10)
    # torchvision draws lambda inside; read it off a row whose partner has another class.
    i = int((y != y.roll(1)).nonzero()[0])
    lam = soft[i, y[i]].item()
    ours, ours_soft = mixup(x, onehot, lam)
    check.close("mixup images vs v2.MixUp", ours, mixed, atol=1e-6)
    check.close("mixup labels vs v2.MixUp", ours_soft, soft, atol=1e-6)
    # CutMix draws a box. To see it, replay the same random draws on images that are constant
    # (image k filled with k): pasted pixels then carry another value.
    torch.manual_seed(run.seed)
    cut, cut_soft = v2.CutMix(alpha=ALPHA, num_classes=10)(x, y)
    ids = torch.arange(len(y), dtype=torch.float32).view(-1, 1, 1, 1).expand_as(x).clone()
    torch.manual_seed(run.seed)
    ids_cut, _ = v2.CutMix(alpha=ALPHA, num_classes=10)(ids, y)
    box = pasted_box(ids[0, 0], ids_cut[0, 0])
    ours_cut, ours_cut_soft = cutmix(x, onehot, box)
    check.equal(f"cutmix images (box {box}) vs v2.CutMix", ours_cut, cut)
    check.close("cutmix labels (weight 1 - box area) vs v2.CutMix", ours_cut_soft, cut_soft, atol=1e-6)
    check.close("cutmix labels still sum to 1", ours_cut_soft.sum(1), torch.ones(len(y)), atol=1e-6)
    share = (box[2] - box[0]) * (box[3] - box[1]) / (x.shape[-1] * x.shape[-2])
    print(f"  MixUp lambda {lam:.3f}; CutMix pasted a box covering {share:.1%} of each image")
    return (mixed, soft, lam), (cut, cut_soft)


def figures(run, img, boxes, mix, cut, x, y, grid):
    rows, cols = grid
    aug = pipeline()
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 1.9 * rows))
    for k, ax in enumerate(axes.flat):
        torch.manual_seed(run.seed * 1000 + k)
        out = {"image": img, "boxes": boxes} if k == 0 else augment(aug, img, boxes)
        out_img, out_boxes = out["image"], out["boxes"]
        shown = draw_bounding_boxes(out_img, out_boxes, colors="yellow", width=2) if len(out_boxes) else out_img
        ax.imshow(shown.permute(1, 2, 0))
        ax.set_title("original" if k == 0 else f"seed {k}", fontsize=8)
        ax.axis("off")
    fig.suptitle("transforms v2: one photo, many training views (the box moves with it)")
    plot.save(fig, run, "augmentation_grid.png")

    (mixed, soft, lam), (cut, cut_soft) = mix, cut
    n = min(4, len(y))
    fig, axes = plt.subplots(3, n, figsize=(2.4 * n, 7.4))
    def label_text(row):                                       # "0.86·6 + 0.14·4"
        vals, classes = row.topk(2)
        return " + ".join(f"{v:.2f}·{c}" for v, c in zip(vals.tolist(), classes.tolist()) if v > 0.005)

    for i in range(n):
        for row, (img_i, title) in enumerate([(x[i], f"digit {y[i].item()}"),
                                              (mixed[i], "MixUp: " + label_text(soft[i])),
                                              (cut[i], "CutMix: " + label_text(cut_soft[i]))]):
            axes[row, i].imshow(img_i[0], cmap="gray_r")
            axes[row, i].set_title(title, fontsize=8)
            axes[row, i].axis("off")
    fig.suptitle(f"Mixing a batch with its neighbour (lambda = {lam:.2f} for MixUp)")
    plot.save(fig, run, "mixup_cutmix.png")


def throughput(img, boxes, n):
    aug = pipeline()
    start = time.perf_counter()
    for _ in range(n):
        augment(aug, img, boxes)
    rate = n / (time.perf_counter() - start)
    print(f"\n-- pipeline speed: {rate:.0f} photos/s of {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} on one CPU process")
    return rate


def main(args) -> dict:
    run = cli.start(args, __file__)
    data.announce("china.jpg sample photo and the 8x8 handwritten digits, both shipped with scikit-learn",
                  kind="bundled")
    img, boxes = load_photo()
    flip_left, new_left, width, old_right = check_flip(img, boxes)
    check_pipeline(run, img, boxes)
    x, y = load_digit_batch(run)
    mix, cut = check_mixing(run, x, y)
    figures(run, img, boxes, mix, cut, x, y, GRID_QUICK if run.quick else GRID_FULL)
    rate = throughput(img, boxes, TIMED_QUICK if run.quick else TIMED_FULL)
    return cli.finish(run, {"mixup_lambda": mix[2], "photos_per_s": rate}, answers={
        "flip_left": (flip_left, f"v2.RandomHorizontalFlip(p=1): new x1 = {new_left:g} with W = {width} "
                      f"and old x2 = {old_right:g} (the '-- a horizontal flip' section)"),
    })


# Predict, then run: answer in your copy (`python -m dlcourse exercise 03.08`) before running it;
# `python -m dlcourse check 03.08` compares your answers with what the run measures.
# PREDICT flip_left (W - x1 / W - x2 / W - 1 - x2): after a horizontal flip of a W-pixel-wide image, where is a box (x1, y1, x2, y2)'s new left edge?
# ANSWER flip_left:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
