"""Planted mistakes for phase 06, lessons 02-03 (see tools/mutate.py): each a realistic
one-line slip in the from-scratch code, which a self-check of the lesson must catch."""
MUTANTS = [
    # 06.02 backpropagation through time by hand
    dict(lesson="06.02", why="tanh' written as 1 - h instead of 1 - h^2",
         find="d_z = d_h * (1 - h ** 2)", replace="d_z = d_h * (1 - h)"),
    dict(lesson="06.02", why="the recurrent gradient from step t+1 not added: each step on its own",
         find='d_h = d_logits[:, t] @ p["W_out"] + d_h_next', replace='d_h = d_logits[:, t] @ p["W_out"]'),
    dict(lesson="06.02", why="dL/dW_hh overwritten at every step instead of accumulated over steps",
         find='g["W_hh"] += d_z.T @ h_prev', replace='g["W_hh"] = d_z.T @ h_prev'),
    dict(lesson="06.02", why="dL/dW_hh paired with h_t instead of h_{t-1} (off by one in time)",
         find='g["W_hh"] += d_z.T @ h_prev', replace='g["W_hh"] += d_z.T @ h'),
    dict(lesson="06.02", why="h0 treated as a constant: its gradient left at zero",
         find='g["h0"] = d_h_next', replace='g["h0"] = torch.zeros_like(d_h_next)'),
    dict(lesson="06.02", why="truncated BPTT: dL/dh0 taken from the last chunk (whose start is "
                             "the cut state), not from the first",
         find="if start == 0:", replace="if start + k >= x.shape[1]:"),
    dict(lesson="06.02", why="truncated BPTT: the state reset to h0 at each chunk instead of carried",
         find="h = hs[:, -1]               # the state", replace="h = h0                      # the state"),
    dict(lesson="06.02", why="truncated BPTT: each chunk's loss averaged over its own targets, "
                             "so the chunks no longer add up to the sequence's loss",
         find="loss, d_logits = cross_entropy(logits, y[:, chunk], n)",
         replace="loss, d_logits = cross_entropy(logits, y[:, chunk])"),
    # 06.03 vanishing gradients, clipping
    dict(lesson="06.03", why="tanh' written as 1 - h instead of 1 - h^2",
         find="return 1 - h ** 2", replace="return 1 - h"),
    dict(lesson="06.03", why="one BPTT step through W_hh instead of W_hh^T (rows are examples)",
         find="return (g * tanh_prime(h)) @ w_hh", replace="return (g * tanh_prime(h)) @ w_hh.T"),
    dict(lesson="06.03", why="the bound with the spectral radius (largest |eigenvalue|) in place of "
                             "the largest singular value",
         find="return torch.linalg.matrix_norm(w_hh, ord=2) * tanh_prime(h).max(dim=-1).values",
         replace="return torch.linalg.eigvals(w_hh).abs().max() * tanh_prime(h).max(dim=-1).values"),
    dict(lesson="06.03", why="per-step Jacobian scaled by tanh' along columns instead of rows",
         find="return tanh_prime(h)[:, :, None] * w_hh", replace="return tanh_prime(h)[:, None, :] * w_hh"),
    dict(lesson="06.03", why="clip coefficient not capped at 1: small gradients get scaled UP",
         find="coef = torch.clamp(max_norm / (total + CLIP_EPS), max=1.0)",
         replace="coef = max_norm / (total + CLIP_EPS)"),
    dict(lesson="06.03", why="norm not global: each tensor clipped by its own norm",
         find="p.grad.mul_(coef)",
         replace="p.grad.mul_(torch.clamp(max_norm / (p.grad.norm() + CLIP_EPS), max=1.0))"),
    dict(lesson="06.03", why="global norm as the sum of per-tensor norms instead of the root of "
                             "the summed squares",
         find="return torch.sqrt(sum((p.grad ** 2).sum() for p in params if p.grad is not None))",
         replace="return sum(p.grad.norm() for p in params if p.grad is not None)"),
    dict(lesson="06.03", why="LSTM gate order assumed (forget, input, ...): the +1 goes to the input gate",
         find="self.rnn.bias_ih_l0[HIDDEN:2 * HIDDEN] += forget_bias",
         replace="self.rnn.bias_ih_l0[:HIDDEN] += forget_bias"),
    dict(lesson="06.03", why="clip by value (each entry to +-max_norm) instead of by norm",
         find="p.grad.mul_(coef)", replace="p.grad.clamp_(-max_norm, max_norm)"),
]
