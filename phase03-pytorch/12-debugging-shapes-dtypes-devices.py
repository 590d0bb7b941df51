"""12 - Debugging shapes, dtypes and devices (phase 03, week 4)

Goal: plant the errors every PyTorch programmer meets (shape, dtype, device, silent broadcasting,
      labels out of range), read what each message says, fix each one, and trace shapes with
      hooks to find the layer where a model breaks.
Run:  python phase03-pytorch/12-debugging-shapes-dtypes-devices.py            (about 5 s on a 2-core CPU, imports included)
      python phase03-pytorch/12-debugging-shapes-dtypes-devices.py --quick    (seconds, offline, used by the tests)
Expect: one "[check] bug: ... raised <Error>: <message>" and one "[check] fix: ..." line per planted
        bug; on a GPU also the real cross-device error. The shape tracer names the failing layer, or
        says "(between layers)" when the error comes from forward()'s own code (a bad view).
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import math
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from dlcourse import check

B = 8                    # batch size of every planted example
IMG = 28                 # image side for the image examples
CLASSES = 10             # number of classes


def plant(title, reading, error, bug, fix, expect):
    """Run a planted bug (it must raise `error`), then its fix (it must give `expect`)."""
    print(f"\n-- {title}")
    check.raises(f"bug: {title}", error, bug)
    print(f"   how to read it: {reading}")
    check.equal(f"fix: {title}", fix(), expect)


def warned(fn):
    """Call fn with warnings turned into errors, so a silent bug becomes a loud one."""
    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            return fn()
    return run


def shape_bugs(dev):
    lin = nn.Linear(40, 64).to(dev)
    x = torch.randn(B, 20, device=dev)
    plant("input features do not match in_features", "'mat1 and mat2 shapes cannot be multiplied "
          f"({B}x20 and 40x64)': mat1 is your batch (B x features), mat2 is the weight transposed "
          "(in x out); the inner sizes 20 and 40 must agree",
          RuntimeError, lambda: lin(x),
          lambda: tuple(nn.Linear(20, 64).to(dev)(x).shape), (B, 64))
    images = torch.randn(B, 1, IMG, IMG, device=dev)                 # (B, C, H, W)
    head = nn.Linear(IMG * IMG, CLASSES).to(dev)
    plant("images into a Linear layer without flattening", f"'({B * IMG}x{IMG} and {IMG * IMG}x{CLASSES})': "
          f"Linear works on the last axis only, so B*C*H = {B}*1*{IMG} = {B * IMG} rows of {IMG} features "
          f"arrived instead of {B} rows of {IMG * IMG}",
          RuntimeError, lambda: head(images),
          lambda: tuple(head(images.flatten(1)).shape), (B, CLASSES))  # (B, 1, 28, 28) -> (B, 784)
    conv = nn.Conv2d(1, 8, 3).to(dev)
    hwc = torch.randn(B, IMG, IMG, 1, device=dev)                     # (B, H, W, C) as PIL/NumPy give it
    plant("channels-last images into Conv2d", f"'expected input[{B}, {IMG}, {IMG}, 1] to have 1 channels, "
          f"but got {IMG}': torch wants (B, C, H, W); axis 1 was taken as channels",
          RuntimeError, lambda: conv(hwc),
          lambda: tuple(conv(hwc.permute(0, 3, 1, 2)).shape), (B, 8, IMG - 2, IMG - 2))
    pred, target = torch.randn(B, 1, device=dev), torch.randn(B, device=dev)
    plant("(B, 1) predictions vs (B,) targets: silent broadcasting", "the loss broadcasts (B, 1) against "
          f"(B,) to (B, B) and averages {B * B} differences instead of {B}; torch only warns - treat the "
          "warning as an error", UserWarning, warned(lambda: F.mse_loss(pred, target)),
          lambda: math.isclose(F.mse_loss(pred.squeeze(1), target).item(),
                               ((pred.squeeze(1) - target) ** 2).mean().item(), rel_tol=1e-6), True)
    wide = torch.randn(4, 5, device=dev).t()                          # (5, 4), not contiguous
    plant("view() on a transposed tensor", "view needs memory laid out in the new order; use "
          "reshape (copies if needed) or .contiguous().view", RuntimeError, lambda: wide.view(20),
          lambda: tuple(wide.reshape(20).shape), (20,))


def dtype_bugs(dev):
    lin = nn.Linear(40, 64).to(dev)
    x64 = torch.from_numpy(np.random.default_rng(0).random((B, 40)))   # NumPy's float64
    plant("NumPy float64 into a float32 model", "'mat1 and mat2 must have the same dtype, but got Double "
          "and Float': Double = float64 (your data), Float = float32 (the weights)",
          RuntimeError, lambda: lin(x64.to(dev)),
          lambda: lin(x64.float().to(dev)).dtype, torch.float32)
    logits = torch.randn(B, CLASSES, device=dev)
    y_float = torch.randint(0, CLASSES, (B,), device=dev).float()    # e.g. labels read from a CSV
    plant("float class labels into cross_entropy", "class indices must be int64 (Long); the CPU says "
          "'expected target dtype to be Long', CUDA '... not implemented for 'Float''", RuntimeError, lambda: F.cross_entropy(logits, y_float),
          lambda: F.cross_entropy(logits, y_float.long()).dim(), 0)
    emb = nn.Embedding(100, 16).to(dev)
    ids = torch.tensor([3.0, 7.0, 42.0], device=dev)
    plant("float token ids into nn.Embedding", "'indices ... Long, Int; but got FloatTensor': an "
          "embedding is a table lookup; rows are addressed by integers",
          RuntimeError, lambda: emb(ids), lambda: tuple(emb(ids.long()).shape), (3, 16))
    z, y01 = torch.randn(B, device=dev), torch.randint(0, 2, (B,), device=dev)
    plant("integer 0/1 targets into BCE-with-logits", "'result type Float can't be cast to ... Long': "
          "BCE takes probabilities as targets, so they must be float",
          RuntimeError, lambda: F.binary_cross_entropy_with_logits(z, y01),
          lambda: F.binary_cross_entropy_with_logits(z, y01.float()).dim(), 0)
    w = torch.ones(3, requires_grad=True)                 # on the CPU: on a GPU .numpy() fails sooner
    plant(".numpy() on a tensor that requires grad", "detach first: NumPy cannot follow the graph",
          RuntimeError, lambda: (w * 2).numpy(), lambda: (w * 2).detach().numpy().tolist(), [2.0] * 3)


def label_bug():
    # Always on the CPU: on a GPU the same mistake is a "device-side assert triggered" that leaves
    # the CUDA context unusable and names no culprit. To debug it, rerun with --device cpu (or
    # CUDA_LAUNCH_BLOCKING=1) and you get this readable message instead.
    logits = torch.randn(B, CLASSES)
    y = torch.arange(B) + 3                                           # labels 3..10: 10 is out of range
    plant("label 10 with only 10 classes (0..9)", "'Target 10 is out of bounds': labels must lie in "
          "[0, num_classes); check for 1-based labels or a missing class", IndexError,
          lambda: F.cross_entropy(logits, y), lambda: F.cross_entropy(logits, y % CLASSES).dim(), 0)


def device_bugs(dev):
    if dev.type == "cpu":
        print("\n-- devices: only one here (the CPU), so no cross-device bug can be planted.\n"
              "   On a GPU machine, model.to('cuda') followed by model(x) with x still on the CPU raises\n"
              "   'Expected all tensors to be on the same device, but found at least two devices, cuda:0\n"
              "   and cpu!'. Fix: x = x.to(device) for every batch, or create tensors with device=...\n"
              "   The same kind of mix-up without devices: a tensor built elsewhere with other defaults.")
        counts = torch.tensor([[1, 2], [3, 4]])                          # ints -> int64, not float32
        weights = torch.randn(2, 2)
        plant("int64 tensor times float32 weights", "'expected m1 and m2 to have the same dtype, but got: "
              "long int != float': torch.tensor([[1, 2]]) is int64; make it float",
              RuntimeError, lambda: counts @ weights, lambda: (counts.float() @ weights).dtype, torch.float32)
        return False
    model = nn.Linear(40, CLASSES).to(dev)
    x_cpu = torch.randn(B, 40)                                        # forgot .to(device)
    plant(f"model on {dev}, batch on the CPU", "'Expected all tensors to be on the same device, but "
          "found at least two devices': move the batch (x.to(device)) - the model cannot move for it",
          RuntimeError, lambda: model(x_cpu), lambda: model(x_cpu.to(dev)).device.type, dev.type)
    on_gpu = torch.ones(3, device=dev)
    plant(f".numpy() on a {dev.type} tensor", "NumPy lives in CPU memory: .cpu() first",
          TypeError, lambda: on_gpu.numpy(), lambda: on_gpu.cpu().numpy().tolist(), [1.0] * 3)
    return True


class SmallCNN(nn.Module):
    """A CNN with a planted bug: the classifier expects 16*7*7 features, the convs give 16*14*14."""

    def __init__(self, pools=1):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
                                      *[nn.MaxPool2d(2) for _ in range(pools)])
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(16 * 7 * 7, CLASSES)

    def forward(self, x):                       # x: (B, 1, 28, 28)
        return self.classifier(self.flatten(self.features(x)))


class ViewInForward(nn.Module):
    """The same mistake made by a view() in forward(): no layer fails, the code between them does."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Linear(16 * 7 * 7, CLASSES)

    def forward(self, x):                       # x: (B, 1, 28, 28)
        h = self.features(x)                    # (B, 16, 14, 14)
        return self.classifier(h.view(len(h), 16 * 7 * 7))  # 3136 values per row, not 784: fails


def trace_shapes(model, x):
    """Print each leaf module's input -> output shape; return the name of the module that failed
    (None when nothing failed)."""
    # EXERCISE trace_shapes: pre-hooks record the running leaf's name and input shape, forward hooks print and clear it; run the model, catch RuntimeError, name the leaf (or "(between layers)")
    last = {"name": None, "shape": None}    # the leaf module running now; None between leaves

    def before(name):
        def hook(module, inputs):
            last["name"], last["shape"] = name, tuple(inputs[0].shape)
        return hook

    def after(name):
        def hook(module, inputs, output):
            print(f"   {name:12s} {str(tuple(inputs[0].shape)):18s} -> {tuple(output.shape)}")
            last["name"] = None
        return hook

    leaves = [(n, m) for n, m in model.named_modules() if not list(m.children())]
    handles = [h for n, m in leaves for h in (m.register_forward_pre_hook(before(n)),
                                              m.register_forward_hook(after(n)))]
    failed = None
    try:
        model(x)
    except RuntimeError as err:
        # No leaf running: the error came from forward() itself, e.g. a reshape between layers.
        failed = last["name"] or "(between layers)"
        shape = str(last["shape"]) if last["name"] else ""
        print(f"   {failed:12s} {shape:18s} -> ERROR: {str(err).splitlines()[0]}")
    finally:
        for h in handles:
            h.remove()
    return failed
    # END EXERCISE


def tracer(dev):
    print("\n-- tracing shapes with hooks to find where a model breaks")
    x = torch.randn(B, 1, IMG, IMG, device=dev)
    broken = trace_shapes(SmallCNN(pools=1).to(dev), x)
    check.equal("the tracer names the failing layer", broken, "classifier")
    print("   the classifier wants 16*7*7 = 784 features: one more 2x2 pooling (28 -> 14 -> 7) fixes it")
    fixed = trace_shapes(SmallCNN(pools=2).to(dev), x)
    check.equal("with two poolings nothing fails", fixed, None)
    print("   the same mistake in forward() itself, a view() between two layers:")
    check.equal("the tracer blames the code between layers, not the last layer that ran",
                trace_shapes(ViewInForward().to(dev), x), "(between layers)")
    return broken


def main(args) -> dict:
    run = cli.start(args, __file__)
    shape_bugs(run.device)
    dtype_bugs(run.device)
    label_bug()
    cross_device = device_bugs(run.device)
    broken = tracer(run.device)
    pairs = torch.broadcast_shapes((B, 1), (B,))          # what mse_loss((B, 1), (B,)) averages over
    return cli.finish(run, {"cross_device_bug_planted": cross_device}, answers={
        "broadcast_terms": (str(math.prod(pairs)), f"(B, 1) against (B,) broadcasts to {tuple(pairs)}: "
                            f"{math.prod(pairs)} squared differences for B = {B} (the silent-broadcasting bug)"),
        "failing_layer": (broken if broken in ("features", "flatten", "classifier") else
                          broken.split(".")[0] if broken else "none",
                          f"the tracer stops at '{broken}' for SmallCNN(pools=1) (the tracing section)"),
    })


# Predict, then run: answer in your copy (`python -m dlcourse exercise 03.12`) before running it;
# `python -m dlcourse check 03.12` compares your answers with what the run measures.
# PREDICT broadcast_terms (8 / 16 / 64): F.mse_loss of (8, 1) predictions against (8,) targets averages how many squared differences?
# ANSWER broadcast_terms:
# PREDICT failing_layer (features / flatten / classifier): SmallCNN with one pooling gives 16*14*14 features to a Linear(16*7*7, 10): which module raises?
# ANSWER failing_layer:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
