"""The AUC and the per-grade churn rates of `keepwell validate`, computed independently:
scikit-learn's roc_auc_score and SciPy's Wilson interval, over the stored scores (read with
`keepwell query`) matched to the outcomes here, not by keepwell.

    python3 independent.py scores.csv outcomes.csv HORIZON_DAYS RULE_SET HEALTHIER
"""
import csv
import datetime
import json
import sys

from scipy.stats import binomtest
from sklearn.metrics import roc_auc_score

scores_path, outcomes_path, horizon, rule_set, healthier = sys.argv[1:6]
horizon = datetime.timedelta(days=int(horizon))
by_run = {}
for row in csv.DictReader(open(scores_path)):
    if row["rule_set"] == rule_set:
        day = datetime.date.fromisoformat(row["as_of"])
        by_run.setdefault(day, {})[row["account_id"]] = row
days = sorted(by_run)

labels, values, grades = [], [], {}
for row in csv.DictReader(open(outcomes_path)):
    target = datetime.date.fromisoformat(row["date"]) - horizon
    earlier = [d for d in days if d <= target]
    if not earlier:
        continue
    scored = by_run[earlier[-1]].get(row["account_id"])
    if scored is None:
        continue
    churned = row["outcome"] == "churned"
    score = float(scored["score"])
    labels.append(int(churned))
    values.append(-score if healthier == "true" else score)
    k, n = grades.get(scored["grade"], (0, 0))
    grades[scored["grade"]] = (k + int(churned), n + 1)

result = {"accounts": len(labels), "auc": roc_auc_score(labels, values), "grades": {}}
for grade, (k, n) in grades.items():
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    result["grades"][grade] = {"count": k, "of": n, "rate": k / n, "low": ci.low, "high": ci.high}
print(json.dumps(result))
