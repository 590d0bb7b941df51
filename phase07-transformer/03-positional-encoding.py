"""03 - Positional encodings: sinusoidal, learned, RoPE (phase 07, week 10)

Goal: attention is blind to order (permute the tokens and the outputs permute with them), so
      position must be put in. Build the three ways Transformers do it: the sinusoidal table of
      "Attention is all you need" (added to the input), a learned table (nn.Embedding), and
      rotary embeddings (RoPE: rotate each query/key pair by an angle proportional to its
      position) and check what each promises: the sinusoid's shift is a fixed rotation, RoPE's
      scores depend only on the distance between positions and it keeps norms.
Run:  python phase07-transformer/03-positional-encoding.py            (same sizes; about 1 s on CPU,
                                                                       plus ~3 s to import transformers)
      python phase07-transformer/03-positional-encoding.py --quick    (seconds, offline, used by the tests)
Expect: sinusoidal table vs its closed form ~2e-6, PE(pos+k) = R_k PE(pos) ~1e-6 (float32 table);
        RoPE vs the complex-number closed form ~2e-7, norms kept ~5e-7, scores unchanged when both
        positions shift (<= ~4e-6 over seeds 0-4, checked at 1e-5) while additive sinusoids change
        them by ~10; RoPE equals transformers' apply_rotary_pos_emb after the interleaved ->
        half-split permutation (~1e-6) and misses it by ~7 without.
        sinusoidal.png (the table, and the dot product of encodings vs distance), rope.png (scores
        vs relative position; the score matrix is constant along diagonals).
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)   # nothing trains: no --epochs / --steps


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import math

import torch
import torch.nn as nn

from dlcourse import check, data, lessons, plot
import matplotlib.pyplot as plt  # after dlcourse.plot, which picks the headless backend

attn = lessons.load("07.01")   # scaled_dot_product_attention

MAX_LEN = 64         # positions in the tables
D_MODEL = 24         # sinusoidal / learned encoding width
BASE = 10000.0       # wavelength base: wavelengths run from 2 pi to 2 pi * BASE
SHIFTS = [1, 5, 17]  # k in PE(pos + k) = R_k PE(pos)
B, H = 2, 3          # batch and heads for the RoPE checks
T = 9                # positions per RoPE sequence
HEAD_DIM = 16        # RoPE head dimension (pairs: HEAD_DIM / 2 frequencies)
OFFSETS = [1, 13, 40]   # common shift of query and key positions
REL_RANGE = 48       # the figure's relative positions: -REL_RANGE..REL_RANGE
# float32 scores of size ~10 (HEAD_DIM products of unit normals): rounding ~1e-6
TOL = 1e-5
# --quick runs the same sizes: everything here takes well under a second.


# ---------------------------------------------------------------- sinusoidal (Vaswani et al. 2017)
def frequencies(dim, base=BASE, device=None, dtype=torch.float32):
    """omega_i = base^(-2i/dim), i = 0..dim/2-1: one angular frequency per (sin, cos) pair."""
    # EXERCISE frequencies: omega_i = base^(-2i/dim) for i = 0..dim/2-1, in the dtype and on the device asked for
    return base ** (-torch.arange(0, dim, 2, device=device, dtype=dtype) / dim)
    # END EXERCISE


def sinusoidal_encoding(max_len, d_model, base=BASE, device=None):
    """(max_len, d_model): PE[pos, 2i] = sin(pos omega_i), PE[pos, 2i+1] = cos(pos omega_i)."""
    assert d_model % 2 == 0, "d_model must be even: features come in (sin, cos) pairs"
    # EXERCISE sinusoidal: angle = pos x omega (an outer product, (max_len, d/2)); even columns sin(angle), odd columns cos(angle)
    pos = torch.arange(max_len, device=device, dtype=torch.float32)[:, None]   # (L, 1)
    angle = pos * frequencies(d_model, base, device)[None, :]                     # (L, d/2)
    pe = torch.empty(max_len, d_model, device=device)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle)
    return pe
    # END EXERCISE


class LearnedPositionalEncoding(nn.Module):
    """One trained vector per position (BERT, GPT-2): an nn.Embedding looked up with 0..T-1
    and added to the token vectors. Flexible, but it knows nothing past max_len."""

    def __init__(self, max_len, d_model):
        super().__init__()
        self.table = nn.Embedding(max_len, d_model)

    def forward(self, x):                                   # x (B, T, d_model)
        pos = torch.arange(x.shape[1], device=x.device)     # (T,)
        return x + self.table(pos)                          # (B, T, d_model), broadcast over B


# ---------------------------------------------------------------- RoPE (Su et al. 2021)
def apply_rope(x, positions, base=BASE):
    """Rotate each pair (x[2i], x[2i+1]) by the angle positions * omega_i (interleaved pairs,
    as in the RoFormer paper). x (..., T, hd), positions (T,) -> (..., T, hd).
    With q_m = R(m) q and k_n = R(n) k: q_m . k_n = q^T R(m)^T R(n) k = q^T R(n - m) k,
    a function of n - m only, because rotations by angles a and b compose to a rotation by b - a."""
    # EXERCISE rope: angle = positions x frequencies(hd) (float64, then cast back); pairs (x1, x2) = (x[2i], x[2i+1]) -> (x1 cos - x2 sin, x1 sin + x2 cos), interleaved again
    hd = x.shape[-1]
    # Angles in float64: a float32 angle p * omega is off by up to ~p * 6e-8 rad, an error
    # that grows with the position (the scores at 0..9 and at 40..49 would then differ by
    # ~1e-5 instead of ~1e-6). MPS has no float64: there, float32.
    wide = torch.float32 if x.device.type == "mps" else torch.float64
    angle = positions.to(wide)[:, None] * frequencies(hd, base, x.device, wide)[None, :]   # (T, hd/2)
    cos, sin = torch.cos(angle).to(x.dtype), torch.sin(angle).to(x.dtype)
    x1, x2 = x[..., 0::2], x[..., 1::2]                                              # (..., T, hd/2)
    rotated = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)        # (..., T, hd/2, 2)
    return rotated.flatten(-2)                                                       # (..., T, hd)
    # END EXERCISE


# ---------------------------------------------------------------- checks
def check_sinusoidal(dev):
    print("--- sinusoidal encoding")
    pe = sinusoidal_encoding(MAX_LEN, D_MODEL, device=dev)
    closed = torch.tensor([[math.sin(p / BASE ** (j / D_MODEL)) if j % 2 == 0
                            else math.cos(p / BASE ** ((j - 1) / D_MODEL))
                            for j in range(D_MODEL)] for p in range(MAX_LEN)], dtype=torch.float64)
    check.close("sinusoidal table vs the closed form sin/cos(pos / base^(2i/d))", pe, closed, atol=1e-5)
    # sin(a + b) = sin a cos b + cos a sin b, cos(a + b) = cos a cos b - sin a sin b:
    # [sin, cos](pos + k) = [[cos kw, sin kw], [-sin kw, cos kw]] [sin, cos](pos) for each pair,
    # the same matrix at every pos. A linear layer can therefore read "k positions back".
    w = torch.tensor([1 / BASE ** (2 * i / D_MODEL) for i in range(D_MODEL // 2)], dtype=torch.float64)
    for k in SHIFTS:
        R = torch.zeros(D_MODEL, D_MODEL, dtype=torch.float64)
        for i, wi in enumerate(w.tolist()):
            c, s = math.cos(k * wi), math.sin(k * wi)
            R[2 * i:2 * i + 2, 2 * i:2 * i + 2] = torch.tensor([[c, s], [-s, c]])
        pred = pe[:MAX_LEN - k].double().cpu() @ R.T                                    # (L-k, d)
        check.close(f"PE(pos + {k}) = R_{k} PE(pos) for every pos (one fixed rotation)",
                    pred, pe[k:].double().cpu(), atol=1e-5)
    return pe


def check_learned(gen, dev):
    print("--- learned encoding (nn.Embedding)")
    lpe = LearnedPositionalEncoding(MAX_LEN, D_MODEL).to(dev)
    x = torch.randn(B, T, D_MODEL, generator=gen).to(dev)
    with torch.no_grad():
        check.close("learned encoding adds rows 0..T-1 of the table to every sequence",
                    lpe(x), x + lpe.table.weight[:T][None], atol=0.0)
    long = torch.zeros(1, MAX_LEN + 1, D_MODEL, device=dev)
    check.raises(f"learned table has no row for position {MAX_LEN} (cannot extrapolate)",
                 (IndexError, RuntimeError), lpe, long)


def rope_complex(x, positions, base=BASE):
    """RoPE as complex multiplication, float64: pair (a, b) is a + ib, rotating by theta is
    multiplying by e^{i theta}. Written independently of apply_rope, with base^(-2i/hd)."""
    hd = x.shape[-1]
    z = torch.view_as_complex(x.double().reshape(*x.shape[:-1], hd // 2, 2).contiguous())
    theta = torch.tensor([base ** (-2 * i / hd) for i in range(hd // 2)], dtype=torch.float64)
    rot = torch.polar(torch.ones(len(positions), hd // 2, dtype=torch.float64),
                      positions.double()[:, None] * theta[None])                   # e^{i pos theta}
    return torch.view_as_real(z * rot.to(z.device)).flatten(-2)


def check_rope(gen, dev):
    print("--- rotary position embedding (RoPE)")
    q = torch.randn(B, H, T, HEAD_DIM, generator=gen).to(dev)
    k = torch.randn(B, H, T, HEAD_DIM, generator=gen).to(dev)
    pos = torch.arange(T, device=dev)
    q_rot, k_rot = apply_rope(q, pos), apply_rope(k, pos)
    spread = 3 * pos + 5                                   # positions need not be 0..T-1
    check.close("apply_rope vs the complex-number closed form x e^{i pos theta}",
                apply_rope(q, spread), rope_complex(q, spread.cpu()), atol=TOL)
    check.close("RoPE keeps every vector's norm", q_rot.norm(dim=-1), q.norm(dim=-1), atol=TOL)
    scores = q_rot @ k_rot.transpose(-2, -1)                                          # (B, H, T, T)
    for off in OFFSETS:
        shifted = apply_rope(q, pos + off) @ apply_rope(k, pos + off).transpose(-2, -1)
        check.close(f"RoPE scores unchanged when query and key positions both shift by {off}",
                    shifted, scores, atol=TOL)
    # The same vectors at different position pairs with the same distance n - m: q at m, k at
    # m + 2, for every m. Equal scores along each diagonal of the score matrix.
    q0, k0 = q[0, 0, 0], k[0, 0, 0]                                                   # (hd,)
    along = [float(apply_rope(q0[None], pos[m:m + 1])[0] @ apply_rope(k0[None], pos[m:m + 1] + 2)[0])
             for m in range(T)]
    check.close("same q, k at (m, m+2) for every m: one score", along, [along[0]] * T, atol=TOL)
    # Contrast: the sinusoid ADDED to the input (and then no rotation) does not give this.
    pe = sinusoidal_encoding(T + max(OFFSETS), HEAD_DIM, device=dev)
    add = (q + pe[:T]) @ (k + pe[:T]).transpose(-2, -1)
    add_shift = (q + pe[max(OFFSETS):]) @ (k + pe[max(OFFSETS):]).transpose(-2, -1)
    check.greater("additive sinusoids: the same shift changes scores (max |diff|)",
                  (add - add_shift).abs().max(), 0.1)
    return q0, k0


def check_against_transformers(gen, dev):
    """transformers' Llama uses the HALF-SPLIT convention: pairs (x[i], x[i + hd/2]), rotated
    by rotate_half. Ours pairs neighbours (x[2i], x[2i+1]). Same rotation, different storage:
    ours(x)[perm] = llama(x[perm]) with perm = [0, 2, 4, ..., 1, 3, 5, ...]. (This is why
    checkpoints converted from Meta's interleaved layout permute the rows of W_Q and W_K.)"""
    try:
        from transformers import LlamaConfig
        from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb
    except ImportError as err:
        print(f"    transformers not importable ({err}): comparison skipped")
        return
    config = LlamaConfig(hidden_size=H * HEAD_DIM, num_attention_heads=H, head_dim=HEAD_DIM,
                         rope_theta=BASE)
    rotary = LlamaRotaryEmbedding(config).to(dev)
    q = torch.randn(B, H, T, HEAD_DIM, generator=gen).to(dev)
    k = torch.randn(B, H, T, HEAD_DIM, generator=gen).to(dev)
    pos = torch.arange(T, device=dev) + OFFSETS[-1]
    cos, sin = rotary(q, pos[None].expand(B, T))                                    # (B, T, hd)
    perm = torch.cat([torch.arange(0, HEAD_DIM, 2), torch.arange(1, HEAD_DIM, 2)]).to(dev)
    q_hf, k_hf = apply_rotary_pos_emb(q[..., perm], k[..., perm], cos, sin)
    check.close("ours vs transformers' apply_rotary_pos_emb (queries, permuted to half-split)",
                apply_rope(q, pos)[..., perm], q_hf, atol=TOL)
    check.close("ours vs transformers' apply_rotary_pos_emb (keys)", apply_rope(k, pos)[..., perm],
                k_hf, atol=TOL)
    same = (apply_rope(q, pos) - apply_rotary_pos_emb(q, k, cos, sin)[0]).abs().max()
    print(f"    without the permutation they differ by {same:.3g}: same idea, different pairs")


def figures(run, pe, q0, k0, dev):
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    im = axes[0].imshow(pe.cpu().T, aspect="auto", cmap="RdBu", vmin=-1, vmax=1)
    axes[0].set(xlabel="position", ylabel="feature (even: sin, odd: cos)",
                title="sinusoidal encoding (fast waves at the top)")
    fig.colorbar(im, ax=axes[0])
    dots = (pe @ pe.T).cpu()                                                         # (L, L)
    for p in (0, MAX_LEN // 2):
        axes[1].plot(dots[p], label=f"PE(pos) . PE({p})")
    axes[1].set(xlabel="pos", ylabel="dot product", title="nearby positions look alike")
    axes[1].legend(fontsize=8)
    plot.save(fig, run, "sinusoidal.png")

    rel = torch.arange(-REL_RANGE, REL_RANGE + 1, device=dev)
    zero = torch.zeros(1, dtype=torch.long, device=dev)
    # score(q at 0, k at r) = q^T R(r) k. For q = k the average over random vectors decays:
    # high-frequency pairs stop lining up first.
    same = torch.stack([apply_rope(q0[None], zero)[0] @ apply_rope(q0[None], r[None])[0] for r in rel])
    diff = torch.stack([apply_rope(q0[None], zero)[0] @ apply_rope(k0[None], r[None])[0] for r in rel])
    S = (apply_rope(q0.expand(T, -1), torch.arange(T, device=dev))
         @ apply_rope(k0.expand(T, -1), torch.arange(T, device=dev)).T)             # (T, T)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    axes[0].plot(rel.cpu(), same.cpu(), label="q . k with k = q")
    axes[0].plot(rel.cpu(), diff.cpu(), label="q . k, random k")
    axes[0].set(xlabel="relative position n - m", ylabel="score", title="RoPE score vs relative position")
    axes[0].legend(fontsize=8)
    im = axes[1].imshow(S.cpu(), cmap="viridis")
    axes[1].set(xlabel="key position n", ylabel="query position m",
                title="same q, k at every position: constant diagonals")
    fig.colorbar(im, ax=axes[1])
    plot.save(fig, run, "rope.png")


def main(args) -> dict:
    run = cli.start(args, __file__)
    dev = run.device
    gen = torch.Generator().manual_seed(run.seed)
    data.announce("random normal queries, keys and token vectors", kind="generated")

    print("--- why positions are needed: attention commutes with permutations")
    x = torch.randn(1, T, HEAD_DIM, generator=gen).to(dev)
    perm = torch.randperm(T, generator=gen).to(dev)
    out = attn.scaled_dot_product_attention(x, x, x)[0]
    check.close("attention(x[perm]) = attention(x)[perm]: order is invisible without positions",
                attn.scaled_dot_product_attention(x[:, perm], x[:, perm], x[:, perm])[0], out[:, perm], atol=1e-6)

    pe = check_sinusoidal(dev)
    check_learned(gen, dev)
    q0, k0 = check_rope(gen, dev)
    print("--- transformers' LLaMA rotary embedding")
    check_against_transformers(gen, dev)
    figures(run, pe, q0, k0, dev)
    # the answers to the questions at the end of the file: the same q0, k0 at (0, 3) and (40, 43)
    shift = OFFSETS[-1]
    at = lambda t: torch.tensor([t], device=dev)                                     # noqa: E731
    rope = [float(apply_rope(q0[None], at(m))[0] @ apply_rope(k0[None], at(m + 3))[0]) for m in (0, shift)]
    pe_add = sinusoidal_encoding(shift + 4, HEAD_DIM, device=dev)
    add = [float((q0 + pe_add[m]) @ (k0 + pe_add[m + 3])) for m in (0, shift)]
    answers = {
        "rope_shift": ("the same" if abs(rope[1] - rope[0]) <= TOL else
                       "larger" if rope[1] > rope[0] else "smaller",
                       f"RoPE score q at 0, k at 3: {rope[0]:.6f}; q at {shift}, k at {shift + 3}: "
                       f"{rope[1]:.6f} (rope.png, right: constant diagonals)"),
        "additive_shift": ("yes" if abs(add[1] - add[0]) > 0.1 else "no",
                           f"with sinusoids added: {add[0]:.3f} at (0, 3), {add[1]:.3f} at "
                           f"({shift}, {shift + 3})"),
    }
    return cli.finish(run, {"max_len": MAX_LEN, "head_dim": HEAD_DIM}, answers=answers)


# Predict, then run: answer in your copy (`python -m dlcourse exercise 07.03`) before running it;
# `python -m dlcourse check 07.03` compares your answers with what the run measures.
# PREDICT rope_shift (the same / larger / smaller): with RoPE, the score of q at position 40 and k at 43, compared with the same q at 0 and k at 3, is?
# ANSWER rope_shift:
# PREDICT additive_shift (yes / no): with the sinusoidal table ADDED to q and k instead (q + PE(m)) . (k + PE(n)), does moving both positions from (0, 3) to (40, 43) change the score by more than 0.1?
# ANSWER additive_shift:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
