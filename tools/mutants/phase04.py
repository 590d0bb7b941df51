"""Planted mistakes for phase 04 (see tools/mutate.py): each a realistic one-line
slip in the from-scratch code, which a self-check of the lesson must catch."""
MUTANTS = [
    dict(lesson="04.06", why="dropout mask keeps with probability p instead of 1 - p",
         find="mask = (torch.rand_like(x) < keep).to(x.dtype)",
         replace="mask = (torch.rand_like(x) < self.p).to(x.dtype)"),
    dict(lesson="04.06", why="survivors not rescaled by 1/(1-p) (the non-inverted dropout)",
         find="return x * mask / keep", replace="return x * mask"),
    dict(lesson="04.06", why="dropout left on in eval mode",
         find="if not self.training or self.p == 0:", replace="if self.p == 0:"),
]
