"""Planted mistakes for phase 02, lessons 10-17 and the capstone (see tools/mutate.py): each a
realistic one-line slip in the from-scratch code, which a self-check of the lesson must catch."""
MUTANTS = [
    # 02.10 logistic regression
    dict(lesson="02.10", why="weight gradient without the 1/N of the mean loss",
         find="x.T @ err / len(y) + lam * w", replace="x.T @ err + lam * w"),
    dict(lesson="02.10", why="bias gradient summed instead of averaged",
         find="err.mean()", replace="err.sum()"),
    dict(lesson="02.10", why="gradient descent never updates the intercept",
         find="w, b = w - LR * gw, b - LR * gb", replace="w, b = w - LR * gw, b"),
    dict(lesson="02.10", why="Newton's penalty matrix also penalises the bias",
         find="    pen[0, 0] = 0.0\n", replace=""),
    dict(lesson="02.10", why="Hessian weights p instead of p(1 - p)",
         find="hess = (x1 * (p * (1 - p))[:, None]).T @ x1", replace="hess = (x1 * p[:, None]).T @ x1"),
    dict(lesson="02.10", why="stable sigmoid's negative branch written as 1 / (1 + e^-|z|)",
         find="e / (1.0 + e))", replace="1.0 / (1.0 + e))"),
]
