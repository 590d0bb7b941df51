"""Planted mistakes for phase 07, lessons 09-10 (see tools/mutate.py): each a realistic
one-line slip in the from-scratch GPT code, which a self-check of the lesson must catch."""
MUTANTS = [
    # 09 - GPT-2 architecture
    dict(lesson="07.09", why="attention's c_proj left out of the Conv1D transposes (square: "
                             "loads without error, wrong numbers)",
         find='    "attn.c_proj.weight",   # (C, C)', replace='    # "attn.c_proj.weight",   # (C, C)'),
    dict(lesson="07.09", why="post-LN instead of pre-LN: LayerNorm applied after the residual "
                             "addition",
         find="x = x + self.attn(self.ln_1(x))", replace="x = self.ln_1(x + self.attn(x))"),
    dict(lesson="07.09", why="c_attn unpacked as k, q, v (it packs q, k, v)",
         find="q, k, v = self.c_attn(x).split(", replace="k, q, v = self.c_attn(x).split("),
    dict(lesson="07.09", why="heads split by viewing (B, H, T, hd) directly instead of "
                             "(B, T, H, hd) then transposing",
         find="t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)",
         replace="t.reshape(B, self.n_head, T, C // self.n_head)"),
    dict(lesson="07.09", why="causal mask transposed: each position attends to the future",
         find="mask = attention.causal_mask(x.shape[1], device=x.device)",
         replace="mask = attention.causal_mask(x.shape[1], device=x.device).T"),
    dict(lesson="07.09", why="GELU's cubic term written as a square",
         find="(x + 0.044715 * x ** 3)", replace="(x + 0.044715 * x ** 2)"),
    # 10 - generation and the KV cache
    dict(lesson="07.10", why="position ids not advanced with a cache: new tokens get 0..T-1",
         find="pos = torch.arange(past, past + T, device=idx.device)",
         replace="pos = torch.arange(T, device=idx.device)"),
    dict(lesson="07.10", why="new keys prepended to the cache instead of appended",
         find="k = torch.cat([cache[i][0], k], dim=2)", replace="k = torch.cat([k, cache[i][0]], dim=2)"),
    dict(lesson="07.10", why="cached causal mask takes the first T rows, not the rows of the "
                             "new positions",
         find="attention.causal_mask(past + T, device=idx.device)[past:]",
         replace="attention.causal_mask(past + T, device=idx.device)[:T]"),
    dict(lesson="07.10", why="top-p drops the boundary token: keeps only mass strictly below p",
         find="remove_sorted = mass_before >= p", replace="remove_sorted = probs.cumsum(dim=-1) > p"),
    dict(lesson="07.10", why="top-k keeps k - 1 tokens (the k-th largest removed too)",
         find="logits.masked_fill(logits < kth,", replace="logits.masked_fill(logits <= kth,"),
    dict(lesson="07.10", why="temperature multiplies the logits instead of dividing them",
         find="logits = logits / temperature", replace="logits = logits * temperature"),
    dict(lesson="07.10", why="beam search ranks candidates by the last token's log-prob only, "
                             "not the beam's running total",
         find="total = (scores[:, None] + logp).flatten()", replace="total = logp.flatten()"),
]
