"""10 - Padding masks and packed sequences (phase 06, week 9)

Goal: batch sequences of different lengths the two ways PyTorch offers, padding plus a mask and
      packing, and prove each against the same model run on every sequence alone: outputs, final
      states, last-step gathering, a token-level masked loss and masked mean/max pooling. Then
      train a small GRU classifier with mean pooling with and without the mask.
Run:  python phase06-rnn/10-sequence-masking-packing.py            (3000 training sequences,
                                                                   12 epochs; 11 s, 2-core CPU)
      python phase06-rnn/10-sequence-masking-packing.py --quick    (seconds, offline, tests)
Expect: packed LSTM/GRU outputs and final states equal the per-sequence runs (max |diff| ~1e-7
        on CPU); the padded run WITHOUT packing has the wrong final state for every padded
        sequence (errors ~0.2-1) and the wrong backward direction of a bidirectional GRU,
        while gathering its output at index length-1 gives the right last state; the hand-masked
        loss, the ignore_index loss and masked mean/max pooling equal the per-sequence numbers,
        and the same code without the mask misses them by ~0.1-0.5. Classifier, test accuracy
        on sequences of length <= 12 (masked vs unmasked mean): quick (640 sequences, 5 epochs)
        masked ahead on seeds 0-4 by 0.02-0.12 (seed 0: 0.69 vs 0.68); full (3000 sequences,
        12 epochs, seed 0, measured) 0.80 vs 0.77, all lengths 0.914 vs 0.908: the gap shrinks
        as a GRU learns to live with the padding, given data; the mask makes it exact for free.
        masking.png shows accuracy by length.
"""
from dlcourse import cli

EPOCHS = 12          # classifier training epochs, full run
QUICK_EPOCHS = 5     # --quick


def parse_args(argv=None):
    return cli.parser(__doc__, epochs=(EPOCHS, QUICK_EPOCHS)).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # a mistyped flag fails here, before torch loads

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence

from dlcourse import check, data, plot
import matplotlib.pyplot as plt  # after dlcourse.plot, which picks the headless backend

# --- the exactness part: one small batch, every path compared with per-sequence runs
LENGTHS = (5, 2, 7, 1, 4, 6)   # B = 6 sequences, unsorted on purpose (enforce_sorted=False)
T_PAD = 8            # batch width: longer than the longest sequence, as with a fixed-width
                     # loader, so even the longest sequence has a padded step
N_IN = 3             # features per step (B, N_IN, HIDDEN and the class count all differ, so a
HIDDEN = 5           # transposed or swapped axis cannot line up by chance)
LAYERS = 2           # stacked LSTM: final states of both layers are compared
N_TAGS = 4           # classes of the per-step tagger used for the masked loss
PAD_VALUE = 3.0      # padding input: non-zero and larger than the data, so a step over padding
                     # visibly changes the state and an unmasked statistic visibly moves
MUST_DIFFER = 1e-2   # a wrong path (no packing, no mask) must miss by more than this, far above
                     # any tolerance, for these inputs to be able to catch a dropped mask
IGNORE = -100        # F.cross_entropy's default ignore_index

# --- the training part: does a mask matter for mean pooling when lengths say nothing?
SEQ_T = 48           # padded width of the classification data
MIN_LEN = 2          # lengths uniform in [MIN_LEN, SEQ_T], drawn independently of the label
STDS = (0.6, 1.0)    # class 0 / class 1: steps are N(0, std^2); the label is the std
SHORT = 12           # "short" sequences for the accuracy report: length <= SHORT
N_TRAIN = 3000       # training sequences, full run
QUICK_N_TRAIN = 640  # --quick
N_TEST = 2000        # test sequences (scored once per model)
CLS_HIDDEN = 16      # GRU width of the classifier
LR = 1e-2            # Adam learning rate
BATCH = 64           # sequences per step


def tolerance(device):
    """float32 on the CPU agrees to ~1e-7 here; GPUs may use TF32 / reordered sums."""
    return 1e-5 if device.type == "cpu" else 1e-3


# ------------------------------------------------------------------ the lesson's own code

def pad_batch(seqs, total_length, value):
    """List of (L_i, C) tensors -> (B, total_length, C), each padded at the end with `value`."""
    padded = pad_sequence(seqs, batch_first=True, padding_value=value)    # (B, max L_i, C)
    extra = total_length - padded.shape[1]
    return F.pad(padded, (0, 0, 0, extra), value=value)                   # (B, total_length, C)


def length_mask(lengths, T):
    """(B, T) bool: True at real steps t < L_i, False at padding."""
    return torch.arange(T, device=lengths.device)[None, :] < lengths[:, None]


def run_packed(rnn, padded, lengths, state=None):
    """Run `rnn` (batch_first) on a padded batch without ever stepping over padding.
    pack_padded_sequence sorts by length (enforce_sorted=False) and stores the batch time step
    by time step, each step holding only the sequences still running; the RNN returns final
    states in the ORIGINAL batch order, taken at each sequence's own last step."""
    packed = pack_padded_sequence(padded, lengths.cpu(), batch_first=True, enforce_sorted=False)
    out, state = rnn(packed, state)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=padded.shape[1])  # (B,T,D*H)
    return out, state          # out is 0.0 at padded positions


def last_valid(outputs, lengths):
    """outputs (B, T, H) of a run over padding: the output at each sequence's last real step,
    t = L_i - 1, which for a one-directional RNN is that sequence's final hidden state."""
    # EXERCISE last_valid: gather along time at index L_i - 1: an index tensor of shape (B, 1, H), then drop the time axis
    index = (lengths - 1).view(-1, 1, 1).expand(-1, 1, outputs.shape[2])   # (B, 1, H)
    return outputs.gather(1, index).squeeze(1)                             # (B, H)
    # END EXERCISE


def masked_cross_entropy(logits, targets, mask):
    """Token-level mean over real steps: sum of per-token cross-entropy where mask, divided by
    the NUMBER OF REAL TOKENS (not by B*T, and not a mean of per-sequence means)."""
    # EXERCISE masked_cross_entropy: per-token cross-entropy (reduction='none', classes on dim 1), times the mask as numbers, summed, divided by the number of real tokens
    ce = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")   # (B, T)
    mask = mask.to(ce.dtype)
    return (ce * mask).sum() / mask.sum()
    # END EXERCISE


def ignore_padding(targets, mask):
    """The other way: write ignore_index into the pad targets; F.cross_entropy then leaves
    them out of both the sum and the count."""
    return targets.masked_fill(~mask, IGNORE)


def masked_mean(h, mask):
    """h (B, T, H), mask (B, T) -> (B, H): the mean over each sequence's real steps."""
    # EXERCISE masked_mean: zero the padded steps with the mask (as (B, T, 1) numbers), sum over time, divide by each row's number of real steps
    m = mask.unsqueeze(-1).to(h.dtype)                                     # (B, T, 1)
    return (h * m).sum(dim=1) / m.sum(dim=1)
    # END EXERCISE


def masked_max(h, mask):
    """(B, H): the max over real steps. Padding is set to -inf, not 0: with 0, a channel
    whose real values are all negative would report 0."""
    return h.masked_fill(~mask.unsqueeze(-1), float("-inf")).max(dim=1).values


# ------------------------------------------------------------------ exactness checks

def per_sequence(rnn, seqs, state):
    """The reference: run every sequence alone, batch of one, no padding at all.
    Returns the outputs (list of (L_i, D*H)) and the final states stacked on the batch axis."""
    outs, finals = [], []
    for i, x in enumerate(seqs):
        s_i = tuple(s[:, i:i + 1].contiguous() for s in state) if isinstance(state, tuple) \
            else state[:, i:i + 1].contiguous()
        out, s = rnn(x[None], s_i)                                         # (1, L_i, D*H)
        outs.append(out[0])
        finals.append(s)
    if isinstance(state, tuple):
        final = tuple(torch.cat([f[k] for f in finals], dim=1) for k in range(len(state)))
    else:
        final = torch.cat(finals, dim=1)                                   # (layers*D, B, H)
    return outs, final


def check_lstm(seqs, lengths, mask, tol, device, gen):
    print("--- a 2-layer LSTM: packed vs padded vs one sequence at a time")
    lstm = nn.LSTM(N_IN, HIDDEN, num_layers=LAYERS, batch_first=True).to(device)
    B = len(seqs)
    h0 = (0.5 * torch.randn(LAYERS, B, HIDDEN, generator=gen)).to(device)  # non-zero h0 and c0
    c0 = (0.5 * torch.randn(LAYERS, B, HIDDEN, generator=gen)).to(device)
    padded = pad_batch(seqs, T_PAD, PAD_VALUE)                             # (B, T_PAD, N_IN)
    with torch.no_grad():
        ref_outs, (ref_h, ref_c) = per_sequence(lstm, seqs, (h0, c0))
        ref = pad_batch(ref_outs, T_PAD, 0.0)                    # (B, T_PAD, H), 0 at pads
        out_p, (h_p, c_p) = run_packed(lstm, padded, lengths, (h0, c0))
        out_u, (h_u, c_u) = lstm(padded, (h0, c0))                         # over the padding
    check.close("packed LSTM outputs vs per-sequence runs (all steps, pads 0)", out_p, ref,
                atol=tol)
    check.close("packed LSTM final h_n (both layers) vs per-sequence", h_p, ref_h, atol=tol)
    check.close("packed LSTM final c_n (both layers) vs per-sequence", c_p, ref_c, atol=tol)
    # A one-directional RNN reads left to right, so padding AFTER a sequence cannot change its
    # outputs at real steps: only what comes after them (the final state) is spoiled.
    m = mask.unsqueeze(-1)
    check.close("padded run (no packing): outputs at real steps vs per-sequence",
                torch.where(m, out_u, 0.0), ref, atol=tol)
    spoiled = (h_u - ref_h).abs().amax(dim=(0, 2))                         # (B,) per sequence
    print("padded run's final h_n, max |diff| from per-sequence, per sequence (length):",
          ", ".join(f"{d:.3f} ({n})" for d, n in zip(spoiled.tolist(), lengths.tolist())))
    check.greater("padded run's final h_n is WRONG for every padded sequence (smallest error)",
                  spoiled.min(), MUST_DIFFER)
    # The fix without packing: take the top layer's output at t = L_i - 1.
    check.close("last_valid (gather at length-1) of the padded run vs per-sequence top-layer h",
                last_valid(out_u, lengths), ref_h[-1], atol=tol)
    return lstm, out_u, ref_outs


def check_bidirectional_gru(seqs, lengths, mask, tol, device, gen):
    print("--- a bidirectional GRU: the backward direction starts at the END of the row")
    gru = nn.GRU(N_IN, HIDDEN, batch_first=True, bidirectional=True).to(device)
    h0 = (0.5 * torch.randn(2, len(seqs), HIDDEN, generator=gen)).to(device)
    padded = pad_batch(seqs, T_PAD, PAD_VALUE)
    with torch.no_grad():
        ref_outs, ref_h = per_sequence(gru, seqs, h0)
        ref = pad_batch(ref_outs, T_PAD, 0.0)                              # (B, T_PAD, 2H)
        out_p, h_p = run_packed(gru, padded, lengths, h0)
        out_u, _ = gru(padded, h0)
    check.close("packed bi-GRU outputs (both directions) vs per-sequence", out_p, ref, atol=tol)
    check.close("packed bi-GRU final h_n (forward and backward) vs per-sequence", h_p, ref_h,
                atol=tol)
    m = mask.unsqueeze(-1)
    fwd_err = (torch.where(m, out_u, 0.0) - ref)[..., :HIDDEN].abs().max()
    bwd_err = (torch.where(m, out_u, 0.0) - ref)[..., HIDDEN:].abs().max()
    print(f"padded run without packing, at real steps: forward half off by {fwd_err:.2e}, "
          f"backward half off by {bwd_err:.3f} (it read the padding first)")
    check.less("padded bi-GRU: forward direction still right at real steps", fwd_err, tol)
    check.greater("padded bi-GRU: backward direction WRONG at real steps", bwd_err, MUST_DIFFER)
    return fwd_err.item(), bwd_err.item()


def check_masked_loss(lstm_out, ref_outs, mask, tol, device, gen):
    print("--- token-level cross-entropy that ignores padding")
    B, T, _ = lstm_out.shape
    head = nn.Linear(HIDDEN, N_TAGS).to(device)             # a per-step tagger on the LSTM
    logits = head(lstm_out).detach().requires_grad_(True)   # (B, T, N_TAGS), garbage at pads
    tags = torch.randint(0, N_TAGS, (B, T), generator=gen).to(device)
    # Pad targets are real classes (as after padding a label tensor with 0), here the class the
    # tagger finds least likely there: a loss that counts pads is then clearly pulled up.
    tags = torch.where(mask, tags, logits.detach().argmin(dim=-1))
    with torch.no_grad():  # reference: all real tokens of all sequences, one plain mean
        ref_logits = torch.cat([head(o) for o in ref_outs])                 # (sum L_i, N_TAGS)
        ref_tags = torch.cat([tags[i, :len(o)] for i, o in enumerate(ref_outs)])
        ref = F.cross_entropy(ref_logits, ref_tags)
        per_seq_mean = torch.stack([F.cross_entropy(head(o), tags[i, :len(o)])
                                    for i, o in enumerate(ref_outs)]).mean()
    loss = masked_cross_entropy(logits, tags, mask)
    check.close("masked cross-entropy (hand mask) vs per-sequence token mean", loss, ref, atol=tol)
    by_ignore = F.cross_entropy(logits.transpose(1, 2), ignore_padding(tags, mask),
                                ignore_index=IGNORE)
    check.close("cross-entropy with ignore_index at pads vs per-sequence token mean", by_ignore,
                ref, atol=tol)
    loss.backward()
    check.equal("gradient reaching pad positions' logits (max |grad|)",
                logits.grad[~mask].abs().max().item(), 0.0)
    unmasked = F.cross_entropy(logits.transpose(1, 2), tags).item()
    print(f"token mean {ref:.4f}; without the mask {unmasked:.4f}; mean of per-sequence means "
          f"{per_seq_mean:.4f} (weights a 1-step sequence like a 7-step one: another quantity)")
    check.greater("|loss without the mask - token mean| (these inputs can catch a dropped mask)",
                  abs(unmasked - ref.item()), MUST_DIFFER)
    return loss.item()


def check_pooling(lstm_out, ref_outs, mask, tol):
    print("--- masked mean and max pooling over time (outputs of the padded run: garbage at pads)")
    ref_mean = torch.stack([o.mean(dim=0) for o in ref_outs])              # (B, H)
    ref_max = torch.stack([o.max(dim=0).values for o in ref_outs])
    check.close("masked mean pooling vs per-sequence mean", masked_mean(lstm_out, mask), ref_mean,
                atol=tol)
    check.close("masked max pooling vs per-sequence max", masked_max(lstm_out, mask), ref_max,
                atol=tol)
    check.greater("mean pooling without the mask misses it by (max |diff|)",
                  (lstm_out.mean(dim=1) - ref_mean).abs().max(), MUST_DIFFER)
    check.greater("max pooling without the mask misses it by (max |diff|)",
                  (lstm_out.max(dim=1).values - ref_max).abs().max(), MUST_DIFFER)


# ------------------------------------------------------------------ a small training run

def make_classification(n, gen):
    """n zero-padded sequences of scalars; label = which std they were drawn with. Lengths
    are drawn independently of the label, so length alone predicts nothing."""
    y = torch.randint(0, 2, (n,), generator=gen)
    lengths = torch.randint(MIN_LEN, SEQ_T + 1, (n,), generator=gen)
    std = torch.tensor(STDS)[y]
    x = torch.randn(n, SEQ_T, generator=gen) * std[:, None]
    x = x * length_mask(lengths, SEQ_T)                    # zero padding, the usual default
    return x[..., None], y, lengths                        # (n, SEQ_T, 1), (n,), (n,)


class PooledGRU(nn.Module):
    """Packed GRU -> mean over time -> linear. Packing means the GRU never reads the
    padding, and pad_packed_sequence returns zeros there: so the unmasked mean is
    sum / SEQ_T instead of sum / L, i.e. scaled by L / SEQ_T, which the GRU cannot see."""

    def __init__(self, masked):
        super().__init__()
        self.masked = masked
        self.rnn = nn.GRU(1, CLS_HIDDEN, batch_first=True)
        self.head = nn.Linear(CLS_HIDDEN, 2)

    def forward(self, x, lengths):
        h, _ = run_packed(self.rnn, x, lengths)                          # (B, T, CLS_HIDDEN)
        if self.masked:
            pooled = masked_mean(h, length_mask(lengths, x.shape[1]))
        else:
            pooled = h.mean(dim=1)
        return self.head(pooled)


def train_classifier(masked, train_set, epochs, device, seed):
    torch.manual_seed(seed)   # both models start from the same weights and batch order
    model = PooledGRU(masked).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    x, y, lengths = (t.to(device) for t in train_set)
    n = len(y)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(n).split(BATCH):
            idx = idx.to(device)
            loss = F.cross_entropy(model(x[idx], lengths[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model


def figure(run, results, test_lengths):
    bins = torch.arange(MIN_LEN, SEQ_T + 2, 6)
    centres = ((bins[:-1] + bins[1:] - 1) / 2).tolist()
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, ok in results.items():
        acc = [ok[(test_lengths >= lo) & (test_lengths < hi)].float().mean().item()
               for lo, hi in zip(bins[:-1], bins[1:])]
        ax.plot(centres, acc, "o-", label=name)
    ax.set(xlabel="sequence length (steps)", ylabel="test accuracy",
           title="mean pooling over zero padding dilutes short sequences")
    ax.legend()
    plot.save(fig, run, "masking.png")


def main(args) -> dict:
    run = cli.start(args, __file__)
    device, tol = run.device, tolerance(run.device)
    gen = torch.Generator().manual_seed(run.seed)

    data.announce("random normal sequences of lengths " + ", ".join(map(str, LENGTHS)),
                  kind="generated")
    seqs = [torch.randn(n, N_IN, generator=gen).to(device) for n in LENGTHS]
    lengths = torch.tensor(LENGTHS, device=device)
    mask = length_mask(lengths, T_PAD)                                     # (B, T_PAD)
    check.equal("mask counts per row equal the lengths", mask.sum(dim=1).tolist(), list(LENGTHS))
    lstm, out_u, ref_outs = check_lstm(seqs, lengths, mask, tol, device, gen)
    fwd_err, bwd_err = check_bidirectional_gru(seqs, lengths, mask, tol, device, gen)
    loss = check_masked_loss(out_u, ref_outs, mask, tol, device, gen)
    check_pooling(out_u, ref_outs, mask, tol)

    print("--- training: packed GRU + mean pooling, with and without the mask, "
          f"{run.epochs} epochs")
    n_train = QUICK_N_TRAIN if run.quick else N_TRAIN
    train_set = make_classification(n_train, gen)
    x_te, y_te, len_te = make_classification(N_TEST, gen)
    data.announce(f"generated variable-length N(0, std^2) sequences, label = std in {STDS}, "
                  f"lengths {MIN_LEN}-{SEQ_T} independent of the label", kind="generated")
    results, metrics = {}, {}
    for masked in (True, False):
        model = train_classifier(masked, train_set, run.epochs, device, run.seed)
        model.eval()
        with torch.no_grad():
            if masked:  # the masked model must not care how wide the batch was padded
                wider = F.pad(x_te[:BATCH], (0, 0, 0, 5), value=PAD_VALUE).to(device)
                check.close("masked classifier: logits with 5 extra pad steps vs without",
                            model(wider, len_te[:BATCH].to(device)),
                            model(x_te[:BATCH].to(device), len_te[:BATCH].to(device)), atol=tol)
            pred = model(x_te.to(device), len_te.to(device)).argmax(dim=1).cpu()
        ok = pred == y_te                                   # the test set, once per model
        name = "masked mean" if masked else "unmasked mean"
        results[name] = ok
        key = "masked" if masked else "unmasked"
        metrics[f"test_acc_{key}"] = ok.float().mean().item()
        metrics[f"test_acc_short_{key}"] = ok[len_te <= SHORT].float().mean().item()
        print(f"{name:14s}: test accuracy {metrics[f'test_acc_{key}']:.3f}, on sequences of "
              f"length <= {SHORT}: {metrics[f'test_acc_short_{key}']:.3f}")
    figure(run, results, len_te)
    print("Predict before the full run: with ~5x the data and more epochs, does the unmasked "
          "model stay behind? (A GRU can learn to offset a scale it cannot see... partly.)")
    wrong = [d for d, err in (("forward", fwd_err), ("backward", bwd_err)) if err > MUST_DIFFER]
    short = {k: metrics[f"test_acc_short_{k}"] for k in ("masked", "unmasked")}
    return cli.finish(run, {"epochs": run.epochs, "masked_loss": loss, **metrics}, answers={
        "padded_bigru": ({0: "neither", 2: "both"}.get(len(wrong), wrong[0]),
                         f"padded bi-GRU without packing, at the real steps: forward half off by "
                         f"{fwd_err:.1e}, backward half by {bwd_err:.3f} (the bi-GRU lines of the output)"),
        "short_winner": (max(short, key=short.get) + " mean",
                         f"test accuracy on sequences of length <= {SHORT}: masked mean "
                         f"{short['masked']:.3f}, unmasked mean {short['unmasked']:.3f} (masking.png)")})


# Predict, then run: answer in your copy (`python -m dlcourse exercise 06.10`) before running it;
# `python -m dlcourse check 06.10` compares your answers with what the run measures.
# PREDICT padded_bigru (forward / backward / both / neither): a bidirectional GRU run over a padded batch WITHOUT packing: which direction's outputs at the real steps are wrong?
# ANSWER padded_bigru:
# PREDICT short_winner (masked mean / unmasked mean): classifiers that mean-pool a GRU's outputs, with and without the padding mask: which is more accurate on the short test sequences?
# ANSWER short_winner:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
