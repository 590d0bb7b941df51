"""Planted mistakes for phase 07, lessons 12-13 (see tools/mutate.py): each a realistic one-line
slip in the from-scratch code, which a self-check of the lesson must catch."""
MUTANTS = [
    # 12 - target attention (DIN) and next-item prediction
    dict(lesson="07.12", why="mask dropped in mean pooling: padding averaged in",
         find="m = mask.unsqueeze(-1).to(beh.dtype)",
         replace="m = torch.ones_like(mask).unsqueeze(-1).to(beh.dtype)"),
    dict(lesson="07.12", why="DIN weights softmax-normalised (the paper abandons the softmax)",
         find="w = self.scores(beh, tgt) * mask",
         replace="w = self.scores(beh, tgt).masked_fill(~mask, float('-inf')).softmax(dim=1)"),
    dict(lesson="07.12", why="DIN mask dropped: padded positions get weights too",
         find="w = self.scores(beh, tgt) * mask", replace="w = self.scores(beh, tgt)"),
    dict(lesson="07.12", why="softmax attention normalised over the batch axis",
         find="w = s.softmax(dim=1)", replace="w = s.softmax(dim=0)"),
    dict(lesson="07.12", why="AUC ties: every tied score gets the rank of the last copy",
         find="avg_rank = last - (counts - 1) / 2", replace="avg_rank = last"),
    dict(lesson="07.12", why="Recall@k counts rank k as a hit (off by one)",
         find="hit = (rank < k).double()", replace="hit = (rank <= k).double()"),
    dict(lesson="07.12", why="NDCG discount log2(rank + 1): infinite at rank 0",
         find="torch.log2(rank.double() + 2)", replace="torch.log2(rank.double() + 1)"),
    dict(lesson="07.12", why="causal mask includes the next position (diagonal 2): the future leaks",
         find="dtype=torch.bool, device=seq.device), diagonal=1)",
         replace="dtype=torch.bool, device=seq.device), diagonal=2)"),
]
