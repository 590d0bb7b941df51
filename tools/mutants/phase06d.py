"""Planted mistakes for phase 06, lesson 09 and capstone 2 (see tools/mutate.py): each a
realistic one-line slip in the forecasting code, which a self-check of the lesson must catch.
Leaks make a forecaster look *better*, so they are caught by structural checks (where each
number came from, what changes when the future is changed), never by 'beats persistence'."""
MUTANTS = [
    # 09 - time series: windows, baselines, an LSTM
    dict(lesson="06.09",
         why="off-by-one window: inputs shifted one step, the last input is the target",
         find="idx_in = first + np.arange(window)",
         replace="idx_in = first + 1 + np.arange(window)"),
    dict(lesson="06.09",
         why="scaler fitted on the whole series: the future's level and spread leak",
         find="mean, std = fit_scaler(values, *splits[0])",
         replace="mean, std = fit_scaler(values, 0, len(values))"),
    dict(lesson="06.09", why="persistence with the wrong lag: the value two steps back",
         find="return np.repeat(X[:, -1:], horizon, axis=1)",
         replace="return np.repeat(X[:, -2:-1], horizon, axis=1)"),
    dict(lesson="06.09", why="seasonal persistence one step off: lag period - 1",
         find="start = X.shape[1] - period", replace="start = X.shape[1] - period + 1"),
    dict(lesson="06.09",
         why="a ridge term left in the normal equations: not least squares any more",
         find="return np.linalg.solve(A.T @ A, A.T @ Y)",
         replace="return np.linalg.solve(A.T @ A + 1e-3 * np.eye(A.shape[1]), A.T @ Y)"),
    dict(lesson="06.09", why="LSTM predicts the change but forgets to add it to the last value",
         find="return last + self.head(out[:, -1])", replace="return self.head(out[:, -1])"),
    # capstone 2 - forecasting, honestly evaluated
    dict(lesson="06.capstone2", why="rolling origin hands the forecaster the value at the origin",
         find="history = values[:o]", replace="history = values[:o + 1]"),
    dict(lesson="06.capstone2",
         why="Holt-Winters fitted on the whole series, held-out tail included",
         find="holt_winters(values[:tail], period, horizon)",
         replace="holt_winters(values, period, horizon)"),
    dict(lesson="06.capstone2", why="interval from the population std (ddof=0): too narrow",
         find="d.std(ddof=1) / np.sqrt(n)", replace="d.std() / np.sqrt(n)"),
    dict(lesson="06.capstone2", why="'price' made of the increments, not their running sum",
         find="return 100 + np.cumsum(rng.standard_normal(length))",
         replace="return 100 + rng.standard_normal(length)"),
]
