"""The names of everything a run folder holds (imports nothing: the CLI reads them without
loading torch). ``neas.run`` documents the folder and re-exports these."""

MARKER = "run.json"
CONFIG = "config.json"
SPACE = "space.json"
CHECKPOINT = "supernet.pt"
TRAIN_SUMMARY = "train_summary.json"
SHRINK_HISTORY = "shrink_history.json"
SHRINK_PLOT = "shrink_history.png"
LATENCY_TABLE = "latency_table.json"
SEARCH_DIR = "search"
SEARCH_LOCK = ".search.lock"
SEARCH_SCORES = "scores.json"  # in SEARCH_DIR
PARETO = "pareto.csv"
PARETO_PLOT = "pareto.png"
ENSEMBLES = "ensembles"
RANKING = "ranking.json"
RANKING_CSV = "ranking.csv"
RANKING_PLOT = "ranking.png"
REPORT = "report.html"
TIME_RECORD = "time_limit.json"  # --time-limit: the plan and the seconds each stage took
