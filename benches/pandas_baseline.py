#!/usr/bin/env python3
"""The pandas baseline of `make bench`: the nightly job as an analyst would write it in
idiomatic, vectorised pandas (no row-wise `apply`): the same extracts, the job's features
(jobs/features/*.sql) and the playbook's nine rule sets, giving every score and grade.

    python3 benches/pandas_baseline.py DATA_DIR OUT_DIR AS_OF [--compare SCORES.parquet]

Prints the stage times as JSON; with --compare, the share of grades equal to the SQL
baseline's (which reproduces keepwell's).
"""

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent


def round1(x):
    """DuckDB's round(x, 1): halves away from zero (numpy rounds them to even)."""
    return np.sign(x) * np.floor(np.abs(x) * 10 + 0.5) / 10


def load(data):
    dates = lambda *c: list(c)  # noqa: E731
    read = lambda name, parse=(), dtype=None: pd.read_csv(  # noqa: E731
        data / f"{name}.csv", parse_dates=list(parse), dtype=dtype, engine="pyarrow")
    t = {
        "accounts": read("accounts", dates("contract_start", "renewal_date"),
                         {"account_id": str, "runway_months": "Int64", "seats": "Int64"}),
        "modules": read("modules"),
        "daily_usage": read("daily_usage", dates("day")),
        "support_tickets": read("support_tickets", dates("opened_at", "closed_at")),
        "contacts": read("contacts", dates("start_date", "end_date")),
        "survey_responses": read("survey_responses", dates("answered_at")),
        "milestones": read("milestones", dates("reached_at")),
        "csm_sentiment": read("csm_sentiment", dates("updated_at")),
        "engagements": read("engagements", dates("day")),
        "opportunities": read("opportunities"),
        "churn_overrides": read("churn_overrides"),
        "module_catalogue": read("module_catalogue"),
    }
    lookups = ROOT / "rules/lookups"
    t["region_risk"] = pd.read_csv(lookups / "region_risk.csv")
    t["languages"] = pd.read_csv(lookups / "languages.csv")
    t["retention_rates"] = pd.read_csv(lookups / "retention_rates.csv")
    return t


def latest(df, by, value):
    """The `value` of each account's latest row by `by` (arg_max)."""
    return df.sort_values(by).groupby("account_id")[value].last()


def features(t, as_of):
    a = t["accounts"].set_index("account_id")
    u = t["daily_usage"]
    u = u[u["day"] > as_of - pd.Timedelta(days=30)]
    usage = pd.DataFrame({
        "active_users_14d": u[u["day"] > as_of - pd.Timedelta(days=14)].groupby("account_id")["active_users"].mean(),
        "active_users_prior": u[u["day"] <= as_of - pd.Timedelta(days=16)].groupby("account_id")["active_users"].mean(),
        "key_feature_events_30d": u.groupby("account_id")["key_feature_events"].sum(),
    })

    s = t["support_tickets"]
    d90 = s["opened_at"] > as_of - pd.Timedelta(days=90)
    flags = pd.DataFrame({
        "account_id": s["account_id"],
        "tickets_90d": d90,
        "tickets_30d": s["opened_at"] > as_of - pd.Timedelta(days=30),
        "open_critical_tickets": (s["priority"] == "critical") & s["closed_at"].isna(),
        "escalations_90d": s["escalated"].astype(bool) & d90,
        "integration_tickets_90d": (s["category"] == "integration") & d90,
        "performance_tickets_90d": (s["category"] == "performance") & d90,
        "complaints_90d": (s["category"] == "complaint") & d90,
    })
    support = flags.groupby("account_id").sum()

    c = t["contacts"]
    current = c["end_date"].isna()
    stake = pd.DataFrame({
        "engaged_stakeholders": (c["engaged"].astype(bool) & current).groupby(c["account_id"]).sum(),
        "champion_left_on": c[c["role"] == "champion"].groupby("account_id")["end_date"].max(),
        "sponsor_since": c[(c["role"] == "executive_sponsor") & current].groupby("account_id")["start_date"].max(),
    })

    sv = t["survey_responses"]
    experience = pd.DataFrame({
        "nps": latest(sv[sv["kind"] == "nps"], "answered_at", "score"),
        "csat": latest(sv[sv["kind"] == "csat"], "answered_at", "score"),
        "implementation_csat": latest(sv[sv["kind"] == "implementation"], "answered_at", "score"),
        "csm_sentiment": latest(t["csm_sentiment"], "updated_at", "sentiment"),
    })

    m = t["milestones"]
    implementation = pd.DataFrame({
        "go_live_on": m[m["milestone"] == "go_live"].groupby("account_id")["reached_at"].min(),
        "first_value_on": m[m["milestone"] == "first_value"].groupby("account_id")["reached_at"].min(),
    })

    e = t["engagements"]
    engagement = pd.DataFrame({
        "meetings_90d": ((e["kind"] == "meeting") & (e["day"] > as_of - pd.Timedelta(days=90)))
        .groupby(e["account_id"]).sum(),
        "last_qbr_on": e[e["kind"] == "qbr"].groupby("account_id")["day"].max(),
    })

    o = t["opportunities"]
    up = o[(o["stage"] == "open") & (o["kind"] == "upsell")].groupby("account_id")["amount"]
    # Modules of the account's segment in the catalogue, minus those it has active.
    cat = t["module_catalogue"].assign(segment=lambda d: d["segments"].str.split("|")).explode("segment")
    offer = a[["segment"]].reset_index().merge(cat[["module", "segment"]], on="segment")
    mods = t["modules"]
    active = mods[mods["status"] == "active"][["account_id", "module"]].assign(owned=True)
    offer = offer.merge(active, on=["account_id", "module"], how="left")
    eligible = offer[offer["owned"].isna()].groupby("account_id")["module"].count()

    f = a.join([usage, support, stake, experience, engagement, implementation])
    churn = t["churn_overrides"].set_index("account_id")
    f["expected_churn"] = churn["expected_churn"].reindex(f.index).fillna(False).astype(bool)
    f["days_to_renewal"] = (f["renewal_date"] - as_of).dt.days
    f["tenure_days"] = (as_of - f["contract_start"]).dt.days
    seats = f["seats"].astype("float64").replace(0, np.nan)
    f["active_users"] = round1(f["active_users_14d"])
    f["seat_utilisation"] = round1(100.0 * f["active_users_14d"] / seats)
    prior = f["active_users_prior"].replace(0, np.nan)
    f["usage_trend_pct"] = round1(100.0 * (f["active_users_14d"] - f["active_users_prior"]) / prior)
    f["key_feature_events_per_user"] = round1(f["key_feature_events_30d"] / f["active_users_14d"].replace(0, np.nan))
    for col in ["tickets_90d", "tickets_30d", "open_critical_tickets", "escalations_90d", "integration_tickets_90d",
                "performance_tickets_90d", "complaints_90d", "engaged_stakeholders", "meetings_90d"]:
        f[col] = f[col].fillna(0)
    f["ttfv_days"] = (f["first_value_on"] - f["contract_start"]).dt.days
    f["open_upsells"] = up.count().reindex(f.index).fillna(0)
    f["open_upsell_amount"] = up.sum().reindex(f.index).fillna(0)
    f["eligible_modules_not_owned"] = eligible.reindex(f.index).fillna(0)
    return f


def bands(x, cuts, scores, otherwise):
    """The first band whose minimum `x` reaches; missing `x` is N/A."""
    return pd.Series(np.select([x >= c for c in cuts], scores, otherwise), index=x.index).where(x.notna())


def grade(score, cuts, names):
    return pd.Series(np.select([score >= c for c in cuts], names[:-1], names[-1]), index=score.index)


def clamp(points):
    return points.clip(0, 100)


def rules(f, t, as_of):
    r = pd.DataFrame(index=f.index)
    days_since = lambda col: (as_of - f[col]).dt.days  # noqa: E731
    region = f["country"].map(t["region_risk"].set_index("country")["risk_points"])
    served = f["language"].map(t["languages"].set_index("language")["served"])
    util, trend = f["seat_utilisation"], f["usage_trend_pct"]

    r["impact"] = np.select(
        [f["industry"].isin(["travel", "hospitality", "restaurants", "retail", "energy", "recruiting"]),
         f["industry"].isin(["healthcare", "remote_work", "video_conferencing", "logistics", "ecommerce"])],
        ["1", "3"], "2")

    measures = pd.DataFrame({
        "seats": util.div(0.8).clip(0, 100),
        "trend": bands(trend, [0, -10, -25], [100, 80, 45], 10),
        "key": bands(f["key_feature_events_per_user"], [2, 1], [100, 60], 20),
        "critical": bands(f["open_critical_tickets"], [2, 1], [0, 40], 100),
        "escalations": bands(f["escalations_90d"], [2, 1], [0, 50], 100),
        "volume": bands(f["tickets_30d"], [8, 4], [10, 50], 100),
        "nps": bands(f["nps"], [9, 7, 5], [100, 70, 30], 0),
        "csat": bands(f["csat"], [4, 3], [100, 60], 10),
        "meetings": bands(f["meetings_90d"], [3, 1], [100, 60], 20),
        "qbr": bands(days_since("last_qbr_on"), [180, 100], [0, 50], 100),
        "impl": bands(f["implementation_csat"], [4, 3], [100, 60], 10),
        "sentiment": f["csm_sentiment"].map({"green": 100, "yellow": 50, "red": 0}),
    })
    weights = pd.Series([20, 15, 10, 10, 5, 5, 10, 5, 5, 5, 5, 15], index=measures.columns)
    present = measures.notna()
    r["health_score"] = (measures.fillna(0) * weights).sum(axis=1) / present.mul(weights).sum(axis=1).replace(0, np.nan)
    r["health"] = grade(r["health_score"], [70, 50], ["green", "yellow", "red"]).where(r["health_score"].notna())

    health, churn = r["health"], f["expected_churn"]
    r["stage"] = np.select(
        [f["go_live_on"].isna(),
         churn | (health == "red") | (days_since("champion_left_on") <= 90) | (f["nps"] <= 4),
         (health == "green") & ((f["open_upsells"] > 0) | (util > 100))],
        ["implementing", "defending", "growing"], "maturing")
    stage = r["stage"]

    short = f["funding_stage"].isin(["seed", "series_a", "series_b"]) & (f["runway_months"] < 12).fillna(False)
    limited = ((f["runway_months"] >= 12) & (f["runway_months"] < 18)).fillna(False)
    rich = f["funding_stage"].isin(["public", "multinational"])
    quarter = f["renewal_date"].dt.to_period("Q") == pd.Timestamp(as_of).to_period("Q")
    r["risk_score"] = clamp(
        30 * (r["impact"] == "1") - 10 * (r["impact"] == "3") + region.where(region > 0, 0).fillna(0)
        + 30 * short + 15 * limited - 10 * rich + 15 * (quarter & (f["days_to_renewal"] >= 0))
        + 25 * ((stage == "implementing") & (f["tenure_days"] > 120)) + 50 * churn)
    r["risk"] = grade(r["risk_score"], [50, 25], ["high", "medium", "low"])

    r["adoption_score"] = clamp(
        40 * (f["first_value_on"].isna() & (f["tenure_days"] > 60)) + 10 * (f["ttfv_days"] > 60)
        + 25 * ((stage != "implementing") & (util < 35))
        + 20 * ((util < 35) & (f["days_to_renewal"] <= 120) & (f["days_to_renewal"] >= 0)) + 25 * (trend <= -25))
    r["adoption"] = grade(r["adoption_score"], [40, 20], ["off_track", "watch", "on_track"])

    eligible = f["eligible_modules_not_owned"]
    r["expansion_score"] = clamp(
        40 * (util > 100) + (10 * eligible.clip(upper=3)).where((eligible > 0) & health.notna() & (health != "red"), 0)
        + 40 * ((health == "green") & (f["open_upsells"] > 0)) - 100 * (health == "red"))
    r["expansion"] = grade(r["expansion_score"], [50, 20], ["ready", "developing", "not_now"])

    tenure, perf = f["tenure_days"], f["performance_tickets_90d"]
    r["signals_score"] = clamp(
        30 * (days_since("champion_left_on") <= 90) + 10 * (f["engaged_stakeholders"] < 3)
        + 15 * (days_since("sponsor_since") <= 90) + 15 * (f["integration_tickets_90d"] >= 2)
        + 15 * ((tenure <= 270) & (f["nps"] <= 6)) + 15 * ((perf >= 2) | ((util > 110) & (perf >= 1)))
        + 15 * ((util < 40) & (f["arr"] >= 50000)) + 15 * ((f["complaints_90d"] >= 1) | (f["csat"] <= 2))
        + 20 * ((tenure <= 180) & (stage == "implementing") & (tenure > 90)) + 10 * (served == False)  # noqa: E712
        + 10 * ((stage != "implementing") & (tenure > 180) & (f["key_feature_events_per_user"] < 1)))
    r["signals"] = grade(r["signals_score"], [40, 15], ["alert", "watch", "quiet"])

    impact, risk = r["impact"], r["risk"]
    r["plays"] = np.select(
        [churn, (stage == "implementing") & ((risk == "high") | (r["adoption"] == "off_track")),
         (impact == "1") & (short | limited | rich), (stage == "defending") & (f["segment"] == "enterprise"),
         stage == "defending", (health == "yellow") & (impact == "2"),
         (stage == "growing") | (r["expansion"] == "ready"), f["segment"] == "smb"],
        ["expected_churn", "onboarding_rescue", "cash_relief", "executive_save", "value_recovery", "swarm", "expand",
         "tech_touch"], "nurture")

    rates = t["retention_rates"].set_index("segment")["rate"]
    key = impact + "_" + health.fillna("yellow")
    r["forecast_score"] = key.map(rates).fillna(100).where(~churn, 0)
    r["forecast"] = grade(r["forecast_score"], [90, 60], ["retain", "shrink", "churn"])
    return r


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    compare = sys.argv[sys.argv.index("--compare") + 1] if "--compare" in sys.argv else None
    if compare:
        args.remove(compare)
    data, out, as_of = Path(args[0]), Path(args[1]), pd.Timestamp(args[2])
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    t = load(data)
    loaded = time.monotonic()
    f = features(t, as_of)
    featured = time.monotonic()
    r = rules(f, t, as_of)
    scores = f[["name", "csm_email", "manager_email", "arr", "renewal_date"]].join(r)
    scores.to_parquet(out / "scores.parquet")
    at_risk = scores[(scores["plays"] != "expected_churn")
                     & ((scores["risk"] == "high") | (scores["health"] == "red") | (scores["signals"] == "alert"))]
    at_risk.sort_values(["csm_email", "arr"], ascending=[True, False]).to_csv(out / "at_risk.csv")
    swarm = scores[(scores["health"] == "yellow") & (scores["impact"] == "2") & (scores["plays"] != "expected_churn")]
    swarm.sort_values(["manager_email", "arr"], ascending=[True, False]).to_csv(out / "swarm.csv")
    done = time.monotonic()
    result = {"accounts": len(scores), "load": loaded - started, "features": featured - loaded,
              "rules": done - featured, "total": done - started}
    if compare:
        sql = pd.read_parquet(compare).set_index("account_id").reindex(scores.index)
        sets = ["impact", "health", "stage", "risk", "adoption", "expansion", "signals", "plays", "forecast"]
        result["agreement"] = {
            s: float(((scores[s] == sql[s]) | (scores[s].isna() & sql[s].isna())).mean()) for s in sets}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
