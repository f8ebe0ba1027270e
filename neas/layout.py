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
SEARCH_SUMMARY = "summary.json"  # in SEARCH_DIR
SEARCH_HISTORY = "history.csv"  # in SEARCH_DIR
HYPERVOLUME = "hypervolume.csv"  # in SEARCH_DIR
HYPERVOLUME_PLOT = "hypervolume.png"  # in SEARCH_DIR
# In each exported ensemble's folder (ENSEMBLES/<id>/):
MANIFEST = "manifest.json"
MODEL_ONNX = "model.onnx"
MODEL_PT = "model.pt"
CASCADE_TABLE = "cascade.csv"
CASCADE_PLOT = "cascade.png"
#: The final stage's checkpoint while it trains (a killed export resumes); gone once exported.
FINAL_CHECKPOINT = "final.pt"
STAGES_DIR = "stages"  # <stage>.json: which stages finished, for which inputs (neas.run.Run)
