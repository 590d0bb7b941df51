"""Planted mistakes for phase 02, lessons 02.01-02.09 (see tools/mutate.py): each a realistic
one-line slip in the from-scratch code, which a self-check of the lesson must catch.
(phase02b.py holds those of 02.10-02.17 and the capstone.)"""
MUTANTS = [
    # 02.01 vectors and matrices
    dict(lesson="02.01", why="projection onto a line divides by |a| instead of a . a",
         find="return (a @ b) / (a @ a) * a", replace="return (a @ b) / np.linalg.norm(a) * a"),
    dict(lesson="02.01", why="Gram-Schmidt keeps the residual without normalising it",
         find="basis.append(v / np.linalg.norm(v))", replace="basis.append(v)"),
    dict(lesson="02.01", why="shoelace formula without the factor 1/2",
         find="return 0.5 * abs(", replace="return abs("),
    # 02.02 eigenvalues and SVD
    dict(lesson="02.02", why="deflation subtracts v v^T without the eigenvalue",
         find="S -= lam * np.outer(v, v)", replace="S -= np.outer(v, v)"),
    dict(lesson="02.02", why="left singular vectors not divided by sigma (u_i = A v_i)",
         find="U = A @ V[:, keep] / sigma[keep]", replace="U = A @ V[:, keep]"),
    dict(lesson="02.02", why="rank-k approximation keeps k + 1 pieces (off by one)",
         find="return (U[:, :k] * s[:k]) @ Vt[:k]",
         replace="return (U[:, :k + 1] * s[:k + 1]) @ Vt[:k + 1]"),
    dict(lesson="02.02", why="singular values taken as the eigenvalues of A^T A (no square root)",
         find="sigma = np.sqrt(lam)", replace="sigma = lam"),
    # 02.03 derivatives, gradients, Jacobians
    dict(lesson="02.03", why="tanh derivative written as 1 - tanh instead of 1 - tanh^2",
         find="return (1 - a ** 2)[:, None] * W", replace="return (1 - a)[:, None] * W"),
    dict(lesson="02.03", why="softmax Jacobian taken elementwise (diagonal p(1 - p) only)",
         find="return np.diag(p) - np.outer(p, p)", replace="return np.diag(p * (1 - p))"),
    dict(lesson="02.03", why="least-squares gradient dL/dw without the 1/n",
         find="return X.T @ r / len(y), r.mean()", replace="return X.T @ r, r.mean()"),
    dict(lesson="02.03", why="sign slip in dg/dy (d cos(y)/dy taken as +sin(y))",
         find="-np.sin(x) * np.sin(y) + 0.2 * y", replace="np.sin(x) * np.sin(y) + 0.2 * y"),
    dict(lesson="02.03", why="central difference divided by h instead of 2h",
         find="return (fn(x + h) - fn(x - h)) / (2 * h)", replace="return (fn(x + h) - fn(x - h)) / h"),
]
