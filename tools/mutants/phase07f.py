"""Planted mistakes for 07.13 (see tools/mutate.py)."""
MUTANTS = [
    # 13 - multi-sequence causal
    dict(lesson="07.13", why="time cut dropped: events after T (the purchase itself) leak in",
         find='return x["valid"] & (x["time"] < T_PRED)', replace='return x["valid"]'),
    dict(lesson="07.13", why="counterfactual mask removes the wrong event type (purchase, not install)",
         find='out["valid"] = x["valid"] & ~((x["etype"] == etype) & (x["eid"] == eid))',
         replace='out["valid"] = x["valid"] & ~((x["etype"] == PURCHASE) & (x["eid"] == eid))'),
    dict(lesson="07.13", why="hidden keys not masked in the event attention",
         find="allowed = (rule & vis.unsqueeze(1)) | eye", replace="allowed = rule | eye"),
    dict(lesson="07.13", why="attention mask repeated per head in the wrong order (head-major)",
         find="blocked = (~allowed).repeat_interleave(HEADS, dim=0)",
         replace="blocked = (~allowed).repeat(HEADS, 1, 1)"),
    dict(lesson="07.13", why="do(no install) answered with the observed label: the copy says the "
         "install did not matter, so B (still there) looks predictive again",
         find="y_a = torch.where(installed, (torch.rand(n, generator=gen) < P_BUY[0]).float(), y)",
         replace="y_a = y"),
    dict(lesson="07.13", why="do(views of B) only deletes B at random, never adds it: B stays "
         "correlated with the install in the copies",
         find='cf_b["valid"][:, 1:1 + N_B_VIEWS] = (torch.rand(n, generator=gen) < 0.5).unsqueeze(1)',
         replace='cf_b["valid"][:, 1:1 + N_B_VIEWS] &= (torch.rand(n, generator=gen) < 0.5).unsqueeze(1)'),
]
