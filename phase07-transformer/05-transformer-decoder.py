"""05 - The Transformer decoder layer (phase 07, week 10)

Goal: build the decoder layer of "Attention Is All You Need" from lesson 02's attention and
      lesson 04's residual sub-layer: masked (causal) self-attention over the target, cross-
      attention from the target to the encoder's output ("memory"), then the feed-forward
      network, each with a residual and a LayerNorm, post-LN or pre-LN; load
      nn.TransformerDecoderLayer's weights into it and get the same outputs; prove it never
      looks ahead; stack it.
Run:  python phase07-transformer/05-transformer-decoder.py            (same sizes; about 1 s on CPU)
      python phase07-transformer/05-transformer-decoder.py --quick    (seconds, offline, used by the tests)
Expect: "[check] ... ours vs nn.TransformerDecoderLayer" max |diff| ~1e-6 (<= 1e-5 checked) for
        post-LN and pre-LN, relu and gelu, with a causal target mask, target and memory padding
        that remove real positions, Tq != Tk; changing target tokens after position t changes no
        output at <= t (max |diff| 0) and does change position t+1; a 2-layer stack equals
        nn.TransformerDecoder; cross_attention.png shows where each target position looks in
        the memory (never at padded memory positions).
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)   # nothing trains: no --epochs / --steps


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import torch
import torch.nn as nn

from dlcourse import check, data, lessons, plot
import matplotlib.pyplot as plt  # after dlcourse.plot, which picks the headless backend

attn = lessons.load("07.01")   # causal_mask, padding_mask
mha = lessons.load("07.02")    # MultiHeadAttention, load_from_torch
enc = lessons.load("07.04")    # sublayer, from_key_padding_mask, EncoderLayer, randomize_, ...

B = 3                    # batch
TQ = 5                   # target length (queries)
TK = 8                   # memory length (the encoder's output): Tq != Tk
D_MODEL = 12             # model width
N_HEADS = 2              # heads: head_dim 6
D_FF = 20                # feed-forward width
TGT_LENGTHS = [5, 3, 4]  # real target tokens per row: padding removes real positions
MEM_LENGTHS = [8, 5, 6]  # real memory tokens per row
TOL = 1e-5               # float32: both sides do the same sums in a different order
# --quick runs the same sizes: everything here takes well under a second.


# ---------------------------------------------------------------- the lesson's code
def target_mask(tgt_key_padding_mask):
    """What decoder self-attention may see: key j for query i iff j <= i (no look-ahead: at
    training time the whole target is fed at once, and position i must predict token i+1
    without seeing it) and j is a real token. (B, Tq) True = pad -> (B, 1, Tq, Tq), True = may attend."""
    # EXERCISE target_mask: AND lesson 01's causal mask (T, T) with 07.04's from_key_padding_mask (B, 1, 1, T); they broadcast to (B, 1, T, T)
    T = tgt_key_padding_mask.shape[1]
    return attn.causal_mask(T, device=tgt_key_padding_mask.device) & enc.from_key_padding_mask(tgt_key_padding_mask)
    # END EXERCISE


class DecoderLayer(enc.EncoderLayer):
    """x (B, Tq, d_model), memory (B, Tk, d_model) -> (B, Tq, d_model):
    h1 = sublayer(x,  SelfAttention(causal),      norm1)
    h2 = sublayer(h1, CrossAttention(q=h1, k=v=memory), norm2)
    out = sublayer(h2, FFN, norm3)
    Inherits self_attn, linear1, linear2, norm1, norm2, the dropout and the FFN from 07.04's
    EncoderLayer; adds multihead_attn (PyTorch's name for the cross-attention) and norm3."""

    def __init__(self, d_model, n_heads, d_ff, dropout=0.0, norm_first=False, activation="relu", eps=1e-5):
        super().__init__(d_model, n_heads, d_ff, dropout, norm_first, activation, eps)
        self.multihead_attn = mha.MultiHeadAttention(d_model, n_heads, dropout)
        self.norm3 = nn.LayerNorm(d_model, eps=eps)

    def _cross_attention(self, x, memory, memory_mask):
        # queries from the target, keys and values from the memory: (B, Tq, Tk) weights.
        # In pre-LN only the target is normalised here; the encoder normalised its own output.
        return self.dropout(self.multihead_attn(x, memory, memory, memory_mask))   # (B, Tq, d_model)

    def forward(self, x, memory, tgt_mask=None, memory_mask=None):
        """tgt_mask bool broadcastable to (B, h, Tq, Tq), memory_mask to (B, h, Tq, Tk);
        True = may attend."""
        # EXERCISE decoder_layer: three enc.sublayer() calls: masked self-attention (norm1), cross-attention to the memory (norm2), feed-forward (norm3)
        x = enc.sublayer(x, lambda h: self._self_attention(h, tgt_mask), self.norm1, self.norm_first)
        x = enc.sublayer(x, lambda h: self._cross_attention(h, memory, memory_mask), self.norm2, self.norm_first)
        return enc.sublayer(x, self._feed_forward, self.norm3, self.norm_first)
        # END EXERCISE


class Decoder(nn.Module):
    """A stack of DecoderLayers, each attending to the same memory; optional final LayerNorm.
    Mirrors nn.TransformerDecoder."""

    def __init__(self, n_layers, d_model, n_heads, d_ff, final_norm=False, eps=1e-5, **layer_kw):
        super().__init__()
        self.layers = nn.ModuleList(DecoderLayer(d_model, n_heads, d_ff, eps=eps, **layer_kw)
                                    for _ in range(n_layers))
        self.norm = nn.LayerNorm(d_model, eps=eps) if final_norm else None

    def forward(self, x, memory, tgt_mask=None, memory_mask=None):
        for layer in self.layers:
            x = layer(x, memory, tgt_mask, memory_mask)
        return x if self.norm is None else self.norm(x)


def load_from_torch(mine, ref):
    """nn.TransformerDecoderLayer -> DecoderLayer: the encoder part through 07.04's loader,
    then the cross-attention (07.02's loader) and norm3."""
    enc.load_from_torch(mine, ref)      # self_attn, linear1, linear2, norm1, norm2
    mha.load_from_torch(mine.multihead_attn, ref.multihead_attn)
    enc.copy_linear_or_norm(mine.norm3, ref.norm3)
    return mine


def load_stack_from_torch(mine, ref):
    assert len(mine.layers) == len(ref.layers)
    for m, r in zip(mine.layers, ref.layers):
        load_from_torch(m, r)
    assert (mine.norm is None) == (ref.norm is None), "final norm present on one side only"
    if ref.norm is not None:
        enc.copy_linear_or_norm(mine.norm, ref.norm)
    return mine


# ---------------------------------------------------------------- checks
def torch_layer(gen, dev, norm_first, activation):
    ref = nn.TransformerDecoderLayer(D_MODEL, N_HEADS, D_FF, dropout=0.0, activation=activation,
                                     batch_first=True, norm_first=norm_first)
    return enc.randomize_(ref, gen).to(dev).eval()


def ref_masks(tgt_kpm, mem_kpm):
    """PyTorch's conventions: tgt_mask (Tq, Tq) True = NOT allowed (the future), key padding
    masks (B, T) True = IGNORE."""
    return dict(tgt_mask=~attn.causal_mask(tgt_kpm.shape[1], device=tgt_kpm.device),
                tgt_key_padding_mask=tgt_kpm, memory_key_padding_mask=mem_kpm)


def main(args) -> dict:
    run = cli.start(args, __file__)
    dev = run.device
    gen = torch.Generator().manual_seed(run.seed)
    data.announce("random normal target and memory vectors", kind="generated")
    x = torch.randn(B, TQ, D_MODEL, generator=gen).to(dev)                 # target (B, Tq, d)
    memory = torch.randn(B, TK, D_MODEL, generator=gen).to(dev)            # encoder output (B, Tk, d)
    tgt_kpm = ~attn.padding_mask(torch.tensor(TGT_LENGTHS), TQ)[:, 0, 0].to(dev)   # (B, Tq) True = pad
    mem_kpm = ~attn.padding_mask(torch.tensor(MEM_LENGTHS), TK)[:, 0, 0].to(dev)   # (B, Tk) True = pad
    tgt_mask = target_mask(tgt_kpm)                                        # (B, 1, Tq, Tq)
    mem_mask = enc.from_key_padding_mask(mem_kpm)                          # (B, 1, 1, Tk)

    # PyTorch's own causal mask is a float matrix, 0 where allowed and -inf above the diagonal.
    square = nn.Transformer.generate_square_subsequent_mask(TQ, device=dev)
    check.equal("target_mask = (generate_square_subsequent_mask == 0) & real target keys",
                target_mask(tgt_kpm), (square == 0) & ~tgt_kpm[:, None, None, :])

    print(f"--- one layer vs nn.TransformerDecoderLayer (Tq {TQ}, Tk {TK}, d_model {D_MODEL}, "
          f"{N_HEADS} heads, d_ff {D_FF})")
    errs = {}
    with torch.no_grad():
        for norm_first in (False, True):
            for activation in ("relu", "gelu"):
                ref = torch_layer(gen, dev, norm_first, activation)
                mine = load_from_torch(DecoderLayer(D_MODEL, N_HEADS, D_FF, norm_first=norm_first,
                                                    activation=activation).to(dev), ref).eval()
                errs[(norm_first, activation)] = check.close(
                    f"{'pre' if norm_first else 'post'}-LN, {activation}, causal + both paddings: "
                    f"ours vs nn.TransformerDecoderLayer",
                    mine(x, memory, tgt_mask, mem_mask), ref(x, memory, **ref_masks(tgt_kpm, mem_kpm)), atol=TOL)
        cross_w = mine.multihead_attn.weights.cpu()                        # (B, h, Tq, Tk), last layer run

        print("--- causality: target tokens after position t cannot change outputs at <= t")
        full = torch.ones(B, TQ, dtype=torch.bool, device=dev)             # no target padding here:
        causal_only = target_mask(~full)                                   # every position is real
        base = mine(x, memory, causal_only, mem_mask)
        worst_past, least_next = 0.0, float("inf")
        for t in range(TQ - 1):
            changed = x.clone()
            changed[:, t + 1:] = torch.randn(B, TQ - t - 1, D_MODEL, generator=gen).to(dev)
            out = mine(changed, memory, causal_only, mem_mask)
            worst_past = max(worst_past, (out[:, :t + 1] - base[:, :t + 1]).abs().max().item())
            least_next = min(least_next, (out[:, t + 1] - base[:, t + 1]).abs().max().item())
        check.close("outputs at positions <= t after changing the target after t (all t)",
                    worst_past, 0.0, atol=TOL)
        check.greater("...while position t+1 does change (smallest max |diff| over t)", least_next, 100 * TOL)

        print("--- a 2-layer stack vs nn.TransformerDecoder")
        stack_errs = {}
        for norm_first in (False, True):
            layer = nn.TransformerDecoderLayer(D_MODEL, N_HEADS, D_FF, dropout=0.0, batch_first=True,
                                               norm_first=norm_first)
            final = nn.LayerNorm(D_MODEL) if norm_first else None         # pre-LN ends with a norm
            ref = enc.randomize_(nn.TransformerDecoder(layer, 2, norm=final), gen).to(dev).eval()
            mine = load_stack_from_torch(Decoder(2, D_MODEL, N_HEADS, D_FF, final_norm=norm_first,
                                                 norm_first=norm_first).to(dev), ref).eval()
            stack_errs[norm_first] = check.close(
                f"{'pre' if norm_first else 'post'}-LN 2-layer stack: ours vs nn.TransformerDecoder",
                mine(x, memory, tgt_mask, mem_mask), ref(x, memory, **ref_masks(tgt_kpm, mem_kpm)), atol=TOL)

    check.equal("cross-attention gives padded memory positions weight exactly 0",
                cross_w.masked_select(~mem_mask.cpu().expand_as(cross_w)).abs().max().item(), 0.0)
    fig, axes = plt.subplots(1, B, figsize=(3.4 * B, 2.8))
    for b, ax in enumerate(axes):
        ax.imshow(cross_w[b].mean(0), cmap="viridis", vmin=0)
        ax.axvline(MEM_LENGTHS[b] - 0.5, color="w", lw=1)
        ax.set_title(f"row {b}: {MEM_LENGTHS[b]} of {TK} memory tokens real", fontsize=9)
        ax.set_xlabel("memory position (key)")
        ax.set_ylabel("target position (query)")
    fig.suptitle("cross-attention weights (head average): nothing right of the white line", fontsize=10)
    plot.save(fig, run, "cross_attention.png")
    # Question to think about: at generation time the decoder sees one new target token per step.
    # Which of its three sub-layers' inputs can be cached between steps, and which cannot?
    pad_weight = cross_w.masked_select(~mem_mask.cpu().expand_as(cross_w)).abs().max().item()
    answers = {
        "future_changes_past": ("yes" if worst_past > TOL else "no",
                                f"outputs at positions <= t moved by at most {worst_past:.3g} after the "
                                f"target after t changed; position t+1 by at least {least_next:.3g}"),
        "padded_memory_weight": ("exactly 0" if pad_weight == 0 else "small but not 0",
                                 f"largest cross-attention weight on a padded memory position: {pad_weight:.3g} "
                                 "(cross_attention.png: nothing right of the white line)"),
    }
    return cli.finish(run, {"max_diff_layer": max(errs.values()), "max_diff_stack": max(stack_errs.values()),
                            "causal_leak": worst_past}, answers=answers)


# Predict, then run: answer in your copy (`python -m dlcourse exercise 07.05`) before running it;
# `python -m dlcourse check 07.05` compares your answers with what the run measures.
# PREDICT future_changes_past (yes / no): the decoder's self-attention is causal, but its cross-attention and FFN are not masked: does changing the target tokens after position t change any output at positions <= t?
# ANSWER future_changes_past:
# PREDICT padded_memory_weight (exactly 0 / small but not 0): after softmax, how much cross-attention weight does a padded memory position get?
# ANSWER padded_memory_weight:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
