"""04 - The Transformer encoder layer (phase 07, week 10)

Goal: build the encoder layer of "Attention Is All You Need" on lesson 02's multi-head
      attention: self-attention and a position-wise feed-forward network, each wrapped in a
      residual connection and a LayerNorm, in both places the norm can go (post-LN as in the
      paper, pre-LN as in GPT-2 and most modern models); load nn.TransformerEncoderLayer's
      weights into it and get the same outputs; stack it; and measure why pre-LN is the
      easier one to train when the stack is deep.
Run:  python phase07-transformer/04-transformer-encoder.py            (same sizes; about 1 s on CPU)
      python phase07-transformer/04-transformer-encoder.py --quick    (seconds, offline, used by the tests)
Expect: "[check] ... ours vs nn.TransformerEncoderLayer" max |diff| ~1e-6 (<= 1e-5 checked) for
        post-LN and pre-LN, relu and gelu, with a padding mask that removes real positions (and
        with a causal mask too); a 2-layer stack equals nn.TransformerEncoder (real positions only
        on its nested-tensor fast path, which returns 0 at padded ones; all positions without it);
        the same weights in the wrong norm placement, or without a residual, miss by ~1.
        At init in a 24-layer stack (seeds 0-4), post-LN's per-layer gradient norms rise toward
        the top layer (log10 top/bottom +0.04 to +0.20), pre-LN's fall slightly (-0.16 to -0.20),
        and post-LN's top-layer gradient is 2.5-3.6x pre-LN's: grad_norms.png.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)   # nothing trains: no --epochs / --steps


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

from dlcourse import check, data, lessons, plot
import matplotlib.pyplot as plt  # after dlcourse.plot, which picks the headless backend

attn = lessons.load("07.01")   # causal_mask, padding_mask
mha = lessons.load("07.02")    # MultiHeadAttention, load_from_torch

B = 3                # batch
T = 7                # sequence length
D_MODEL = 12         # model width
N_HEADS = 2          # heads: head_dim 6, all sizes different so a swapped axis shows; even,
                     # because nn.TransformerEncoder's nested-tensor path refuses odd head counts
D_FF = 20            # feed-forward width (the paper uses 4 * d_model; any value works)
LENGTHS = [7, 4, 6]  # real tokens per row: padding removes real positions in rows 1 and 2
PARAM_STD = 0.5      # biases and LayerNorm shifts made non-zero, LayerNorm scales != 1
TOL = 1e-5           # float32: both sides do the same sums in a different order
DEEP = 24            # layers in the gradient-norm experiment (at 12 the effect is there but noisy)
DEEP_D_MODEL = 64    # its width
DEEP_HEADS = 4       # its heads
DEEP_T = 16          # its sequence length
DEEP_B = 8           # its batch
DEEP_DRAWS = 3       # independent inits averaged (log scale) per placement
# --quick runs the same sizes: everything here takes about a second.

ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}   # nn.TransformerEncoderLayer's two string options


# ---------------------------------------------------------------- the lesson's code (07.05 loads it)
def sublayer(x, fn, norm, norm_first):
    """One residual sub-layer, the two ways the LayerNorm can sit:
    post-LN (the paper):  x -> LayerNorm(x + fn(x))   every path to the output crosses the norm
    pre-LN  (GPT-2 on):   x -> x + fn(LayerNorm(x))   the residual stream x is never normalised,
                                                       so an identity path runs from input to output."""
    # EXERCISE sublayer: pre-LN (norm_first) adds fn of the normalised x to x itself; post-LN normalises the sum x + fn(x)
    if norm_first:
        return x + fn(norm(x))
    return norm(x + fn(x))
    # END EXERCISE


def from_key_padding_mask(key_padding_mask):
    """PyTorch's key_padding_mask (B, T), True = IGNORE this key, -> our mask (B, 1, 1, T),
    True = MAY attend (07.01's convention, broadcast over heads and queries)."""
    return ~key_padding_mask[:, None, None, :]


class EncoderLayer(nn.Module):
    """x (B, T, d_model) -> (B, T, d_model):
    h = sublayer(x, SelfAttention, norm1);  out = sublayer(h, FFN, norm2),
    FFN(h) = linear2(activation(linear1(h))), applied to every position separately.
    Submodule names match nn.TransformerEncoderLayer's, so its weights map one to one."""

    def __init__(self, d_model, n_heads, d_ff, dropout=0.0, norm_first=False, activation="relu", eps=1e-5):
        super().__init__()
        assert activation in ACTIVATIONS, f"activation must be one of {list(ACTIVATIONS)}"
        self.norm_first = norm_first
        self.self_attn = mha.MultiHeadAttention(d_model, n_heads, dropout)
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.norm1 = nn.LayerNorm(d_model, eps=eps)
        self.norm2 = nn.LayerNorm(d_model, eps=eps)
        self.dropout = nn.Dropout(dropout)   # on each sub-layer's output and inside the FFN
        self.activation = ACTIVATIONS[activation]

    def _self_attention(self, x, mask):
        return self.dropout(self.self_attn(x, x, x, mask))                    # (B, T, d_model)

    def _feed_forward(self, x):
        return self.dropout(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward(self, x, mask=None):
        """mask: bool broadcastable to (B, n_heads, T, T), True = may attend."""
        # EXERCISE encoder_layer: two sublayer() calls: self-attention under the mask with norm1, then the feed-forward with norm2
        x = sublayer(x, lambda h: self._self_attention(h, mask), self.norm1, self.norm_first)
        return sublayer(x, self._feed_forward, self.norm2, self.norm_first)
        # END EXERCISE


class Encoder(nn.Module):
    """A stack of EncoderLayers, plus an optional final LayerNorm (pre-LN stacks need one:
    their residual stream is never normalised otherwise). Mirrors nn.TransformerEncoder."""

    def __init__(self, n_layers, d_model, n_heads, d_ff, final_norm=False, eps=1e-5, **layer_kw):
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(d_model, n_heads, d_ff, eps=eps, **layer_kw)
                                    for _ in range(n_layers))
        self.norm = nn.LayerNorm(d_model, eps=eps) if final_norm else None

    def forward(self, x, mask=None):
        for layer in self.layers:
            x = layer(x, mask)
        return x if self.norm is None else self.norm(x)


def copy_linear_or_norm(mine, ref):
    with torch.no_grad():
        mine.weight.copy_(ref.weight)
        mine.bias.copy_(ref.bias)


def load_from_torch(mine, ref):
    """Copy nn.TransformerEncoderLayer's weights into EncoderLayer (same names, attention
    through 07.02's loader, which unpacks the packed in_proj)."""
    assert ref.self_attn.batch_first, "build the reference with batch_first=True"
    assert mine.norm_first == ref.norm_first, "norm placement differs: the outputs would too"
    mha.load_from_torch(mine.self_attn, ref.self_attn)
    for name in ("linear1", "linear2", "norm1", "norm2"):
        copy_linear_or_norm(getattr(mine, name), getattr(ref, name))
    return mine


def load_stack_from_torch(mine, ref):
    """nn.TransformerEncoder -> Encoder: layer by layer, then the final norm if any."""
    assert len(mine.layers) == len(ref.layers)
    for m, r in zip(mine.layers, ref.layers):
        load_from_torch(m, r)
    assert (mine.norm is None) == (ref.norm is None), "final norm present on one side only"
    if ref.norm is not None:
        copy_linear_or_norm(mine.norm, ref.norm)
    return mine


# ---------------------------------------------------------------- references and checks
def randomize_(module, gen):
    """PyTorch starts LayerNorms at scale 1 / shift 0 and attention biases at 0: a norm or bias
    copied to the wrong place would go unnoticed. Give every parameter its own random value
    (and every layer of a stack different ones: nn.TransformerEncoder deep-copies one layer)."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.dim() >= 2:                                       # weights: std 1/sqrt(fan_in)
                p.copy_(torch.randn(p.shape, generator=gen) / p.shape[1] ** 0.5)
            elif "norm" in name and name.endswith("weight"):       # LayerNorm scale around 1
                p.copy_(1 + PARAM_STD * torch.randn(p.shape, generator=gen))
            else:                                                  # biases, LayerNorm shifts
                p.copy_(PARAM_STD * torch.randn(p.shape, generator=gen))
    return module


def torch_layer(gen, dev, norm_first, activation):
    ref = nn.TransformerEncoderLayer(D_MODEL, N_HEADS, D_FF, dropout=0.0, activation=activation,
                                     batch_first=True, norm_first=norm_first)
    return randomize_(ref, gen).to(dev).eval()


def compare_layer(gen, dev, x, kpm, norm_first, activation, causal=False):
    ref = torch_layer(gen, dev, norm_first, activation)
    mine = load_from_torch(EncoderLayer(D_MODEL, N_HEADS, D_FF, norm_first=norm_first,
                                        activation=activation).to(dev), ref).eval()
    mask = from_key_padding_mask(kpm)                                    # (B, 1, 1, T)
    ref_kw = dict(src_key_padding_mask=kpm)
    if causal:
        c = attn.causal_mask(T, device=dev)
        mask = mask & c                                                  # (B, 1, T, T)
        ref_kw["src_mask"] = ~c                                          # True = NOT allowed
    name = f"{'pre' if norm_first else 'post'}-LN, {activation}, padding{' + causal' if causal else ''}"
    with torch.no_grad():
        out = mine(x, mask)
        err = check.close(f"{name}: ours vs nn.TransformerEncoderLayer", out, ref(x, **ref_kw), atol=TOL)
    return err, mine, ref


class NoResidualLayer(EncoderLayer):
    """A planted mistake: the attention sub-layer without its residual, norm1(attention(x))."""

    def forward(self, x, mask=None):
        x = self.norm1(self._self_attention(x, mask))
        return sublayer(x, self._feed_forward, self.norm2, self.norm_first)


def grad_norms_per_layer(norm_first, gen, dev):
    """A DEEP-layer stack at PyTorch's default init (pre-LN with the final norm GPT-2 uses);
    a token-level loss on a random linear read-out; the gradient norm of each layer's parameters."""
    torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
    enc = Encoder(DEEP, DEEP_D_MODEL, DEEP_HEADS, 4 * DEEP_D_MODEL, final_norm=norm_first,
                  norm_first=norm_first).to(dev)
    x = torch.randn(DEEP_B, DEEP_T, DEEP_D_MODEL, generator=gen).to(dev)
    readout = torch.randn(DEEP_D_MODEL, 10, generator=gen).to(dev) / DEEP_D_MODEL ** 0.5
    target = torch.randint(0, 10, (DEEP_B, DEEP_T), generator=gen).to(dev)
    loss = F.cross_entropy((enc(x) @ readout).flatten(0, 1), target.flatten())
    loss.backward()
    return torch.stack([torch.sqrt(sum((p.grad ** 2).sum() for p in layer.parameters()))
                        for layer in enc.layers]).cpu()                  # (DEEP,)


def main(args) -> dict:
    run = cli.start(args, __file__)
    dev = run.device
    gen = torch.Generator().manual_seed(run.seed)
    data.announce("random normal token vectors", kind="generated")
    x = torch.randn(B, T, D_MODEL, generator=gen).to(dev)                  # (B, T, d_model)
    kpm = ~attn.padding_mask(torch.tensor(LENGTHS), T)[:, 0, 0].to(dev)   # (B, T) True = pad
    check.equal("from_key_padding_mask: our mask is True at the real tokens",
                from_key_padding_mask(kpm).sum(dim=-1).flatten().tolist(), LENGTHS)

    print(f"--- one layer vs nn.TransformerEncoderLayer (d_model {D_MODEL}, {N_HEADS} heads, d_ff {D_FF})")
    errs = {}
    for norm_first in (False, True):
        for activation in ("relu", "gelu"):
            errs[(norm_first, activation)], *_ = compare_layer(gen, dev, x, kpm, norm_first, activation)
    errs["causal"], *_ = compare_layer(gen, dev, x, kpm, True, "gelu", causal=True)
    # With grad enabled, nn.TransformerEncoderLayer takes its plain Python path; under no_grad in
    # eval mode (above) it may take a fused C++ "fast path". Compare on the plain one too.
    _, mine, ref = compare_layer(gen, dev, x, kpm, False, "relu")
    xg = x.clone().requires_grad_(True)
    check.close("post-LN, relu, grad enabled (no fast path): ours vs nn.TransformerEncoderLayer",
                mine(xg, from_key_padding_mask(kpm)), ref(xg, src_key_padding_mask=kpm), atol=TOL)

    print("--- the checks above catch a wrong norm placement and a missing residual")
    with torch.no_grad():
        for norm_first in (False, True):
            ref = torch_layer(gen, dev, norm_first, "relu")
            expected = ref(x, src_key_padding_mask=kpm)
            swapped = load_from_torch(EncoderLayer(D_MODEL, N_HEADS, D_FF, norm_first=norm_first).to(dev), ref)
            swapped.norm_first = not norm_first                          # same weights, other placement
            check.greater(f"{'pre' if norm_first else 'post'}-LN weights run as "
                          f"{'post' if norm_first else 'pre'}-LN: miss the reference by",
                          (swapped(x, from_key_padding_mask(kpm)) - expected).abs().max(), 100 * TOL)
            nores = load_from_torch(NoResidualLayer(D_MODEL, N_HEADS, D_FF, norm_first=norm_first).to(dev), ref)
            check.greater(f"{'pre' if norm_first else 'post'}-LN without the attention residual: misses by",
                          (nores(x, from_key_padding_mask(kpm)) - expected).abs().max(), 100 * TOL)

    print("--- a 2-layer stack vs nn.TransformerEncoder")
    # PyTorch warns when enable_nested_tensor cannot be used (norm_first) and that nested tensors
    # are a prototype; both are expected here, where the two paths are compared on purpose.
    warnings.filterwarnings("ignore", message="enable_nested_tensor is True")
    warnings.filterwarnings("ignore", message="The PyTorch API of nested tensors")
    stack_errs = {}
    for norm_first in (False, True):
        for nested in (True, False):
            layer = nn.TransformerEncoderLayer(D_MODEL, N_HEADS, D_FF, dropout=0.0, batch_first=True,
                                               norm_first=norm_first)
            final = nn.LayerNorm(D_MODEL) if norm_first else None
            # enable_nested_tensor only matters for post-LN (PyTorch skips it for norm_first)
            ref = randomize_(nn.TransformerEncoder(layer, 2, norm=final, enable_nested_tensor=nested),
                             gen).to(dev).eval()
            mine = load_stack_from_torch(Encoder(2, D_MODEL, N_HEADS, D_FF, final_norm=norm_first,
                                                 norm_first=norm_first).to(dev), ref).eval()
            with torch.no_grad():
                out, expected = mine(x, from_key_padding_mask(kpm)), ref(x, src_key_padding_mask=kpm)
            real = ~kpm                                                  # (B, T) real positions
            name = f"{'pre' if norm_first else 'post'}-LN stack, enable_nested_tensor={nested}"
            stack_errs[(norm_first, nested)] = check.close(
                f"{name}: ours vs nn.TransformerEncoder at the real positions", out[real], expected[real], atol=TOL)
            if nested and not norm_first:
                # The nested-tensor fast path packs only the real tokens, runs the stack on them
                # and pads the result back with zeros: padded positions are not computed at all.
                # Ours computes them (they attend to the real keys), so compare real ones only.
                print(f"    padded positions from the nested-tensor path: max |value| "
                      f"{expected[~real].abs().max().item():.3g} (ours: {out[~real].abs().max().item():.3g})")
            else:
                check.close(f"{name}: every position, padded ones included", out, expected, atol=TOL)

    print(f"--- gradient norms per layer at init, {DEEP}-layer stacks, {DEEP_DRAWS} inits each")
    logs = {}
    for norm_first in (False, True):
        g = torch.stack([grad_norms_per_layer(norm_first, gen, dev) for _ in range(DEEP_DRAWS)])
        logs[norm_first] = g.log10().mean(0)                             # (DEEP,) mean log10 norm
        print(f"    {'pre' if norm_first else 'post'}-LN log10 |grad| layer 1..{DEEP}: "
              + " ".join(f"{v:.2f}" for v in logs[norm_first].tolist()))
    slope = {nf: float(logs[nf][-1] - logs[nf][0]) for nf in logs}   # log10(top / bottom)
    top_gap = float(logs[False][-1] - logs[True][-1])                  # log10(post / pre), top layer
    # Post-LN: the gradient reaching layer l has crossed every LayerNorm above it, each of which
    # divides by the std of (x + sublayer(x)) > 1, so it shrinks on the way down and the top
    # layers get the largest gradients, larger than any pre-LN layer's (Xiong et al. 2020: the
    # top layers' gradients do not shrink with depth in post-LN; in pre-LN they shrink like
    # 1/sqrt(L), and the residual stream carries the gradient to every layer alike). Large
    # top-layer gradients at the start are why post-LN needs a learning-rate warm-up.
    # At PyTorch's default init the effect is a factor of 2-3, not orders of magnitude; it grows
    # with depth. The checks test its direction with margins well inside seeds 0-4's spread.
    print(f"    log10(top / bottom layer): post-LN {slope[False]:+.2f}, pre-LN {slope[True]:+.2f}; "
          f"top layer post-LN / pre-LN: x{10 ** top_gap:.2f}")
    check.greater("post-LN's gradients grow more from the bottom layer to the top than pre-LN's "
                  "(difference of log10 ratios)", slope[False] - slope[True], 0.1)
    check.greater("the top layer's gradient is larger in post-LN than in pre-LN (log10 ratio)", top_gap, 0.1)

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for nf, style in ((False, "o-"), (True, "s-")):
        ax.plot(range(1, DEEP + 1), (10 ** logs[nf]).numpy(), style, label="pre-LN" if nf else "post-LN")
    ax.set_yscale("log")
    ax.set_xlabel("layer (1 = next to the input)")
    ax.set_ylabel("gradient norm of the layer's parameters")
    ax.set_title(f"{DEEP}-layer encoder at init (geometric mean of {DEEP_DRAWS} inits)", fontsize=10)
    ax.legend()
    plot.save(fig, run, "grad_norms.png")
    # Question to think about: with a learning-rate warm-up, which placement needs it more, and why?
    answers = {
        "larger_top_gradient": ("post-ln" if top_gap > 0 else "pre-ln",
                                f"top layer's gradient post-LN / pre-LN: x{10 ** top_gap:.2f} (grad_norms.png)"),
        "pre_ln_trend": ("rise" if slope[True] > 0 else "fall",
                         f"pre-LN log10(top / bottom layer) {slope[True]:+.2f}, post-LN "
                         f"{slope[False]:+.2f} (grad_norms.png)"),
    }
    return cli.finish(run, {"max_diff_layer": max(errs.values()), "max_diff_stack": max(stack_errs.values()),
                            "post_ln_log10_top_over_bottom": slope[False], "pre_ln_log10_top_over_bottom": slope[True],
                            "log10_top_post_over_pre": top_gap}, answers=answers)


# Predict, then run: answer in your copy (`python -m dlcourse exercise 07.04`) before running it;
# `python -m dlcourse check 07.04` compares your answers with what the run measures.
# PREDICT larger_top_gradient (post-ln / pre-ln): at init in a 24-layer stack, which placement gives the top layer (next to the output) the larger gradient?
# ANSWER larger_top_gradient:
# PREDICT pre_ln_trend (rise / fall): in the pre-LN stack, do the per-layer gradient norms rise or fall from the bottom layer to the top one?
# ANSWER pre_ln_trend:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
