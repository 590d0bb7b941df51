"""Planted mistakes for the business cases added to 02.17 (see tools/mutate.py): each a
realistic one-line slip in the feature code, which a self-check of the lesson must catch."""
MUTANTS = [
    # 02.17, case A: vegetable price features
    dict(lesson="02.17", why="rolling mean over days t-6..t: includes the day being predicted",
         find='f["price_mean7"] = p.shift(1).rolling(ROLL).mean()', replace='f["price_mean7"] = p.rolling(ROLL).mean()'),
    dict(lesson="02.17", why="lags off by one: 'lag 1' is day t's own price (lag 0)",
         find='f[f"price_lag{k}"] = p.shift(k)', replace='f[f"price_lag{k}"] = p.shift(k - 1)'),
    dict(lesson="02.17", why="temperature window includes day t (the shift before rolling forgotten)",
         find='f["temp_mean7"] = df.temp.shift(1).rolling(ROLL).mean()',
         replace='f["temp_mean7"] = df.temp.rolling(ROLL).mean()'),
    dict(lesson="02.17", why="rain lagged one day instead of the planted delay: the weather signal is missed",
         find='f["rain_lag"] = df.rain.shift(RAIN_DELAY)', replace='f["rain_lag"] = df.rain.shift(1)'),
    dict(lesson="02.17", why="the backtest keeps the same-day wholesale price instead of the one known the evening before",
         find="known = test.assign(wholesale_LEAK=df.wholesale.shift(1).loc[test.index])",
         replace="known = test.assign(wholesale_LEAK=df.wholesale.loc[test.index])"),
    # 02.17, case B: car ownership from browsing logs
    dict(lesson="02.17", why="aggregation not cut at the label date: logs after it reach the features",
         find="seen = logs[logs.day < logs.label_day] if cut else logs", replace="seen = logs"),
    dict(lesson="02.17", why="cut one day late: the label day itself (service page already visible) included",
         find="seen = logs[logs.day < logs.label_day] if cut else logs",
         replace="seen = logs[logs.day <= logs.label_day] if cut else logs"),
    dict(lesson="02.17", why="group-by on the wrong key: per session instead of per user",
         find='.groupby("user")', replace='.groupby("session")'),
    dict(lesson="02.17", why="distinct car days counted as car page views (count instead of nunique)",
         find='"car_days": g.car_day.nunique()', replace='"car_days": g.car_day.count()'),
]
