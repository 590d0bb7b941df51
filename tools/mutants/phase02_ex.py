"""Planted mistakes for phase 02 exercise parts that no earlier mutant reached (see
tools/mutate.py): each a realistic one-line slip inside a marked part, which a self-check of
the lesson must catch."""
MUTANTS = [
    # 02.01 vectors and matrices
    dict(lesson="02.01", why="projection onto the columns as if they were orthogonal: "
                             "diag(A^T A) instead of A^T A in the normal equations",
         find="x = np.linalg.solve(A.T @ A, A.T @ b)",
         replace="x = np.linalg.solve(np.diag(np.diag(A.T @ A)), A.T @ b)"),
    # 02.02 eigenvalues and SVD
    dict(lesson="02.02", why="power iteration's eigenvalue estimate w . w (= lambda^2) instead of "
                             "the Rayleigh quotient v . S v",
         find="new_lam = v @ w ", replace="new_lam = w @ w "),
]
