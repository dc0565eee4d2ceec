-- The SQL baseline, part 2: the shipped playbook's nine rule sets (rules/*.yaml) written by
-- hand as one DuckDB query over the job's own feature view, as an analyst would: a CASE per
-- rule, points summed and clamped, the health scorecard's N/A measures leaving the average,
-- classifications as first-match CASEs, the forecast from the retention table. It computes
-- every score and grade keepwell computes (no reasons or explanations), and writes them
-- with the at-risk list.
CREATE TABLE scores AS
WITH base AS (
    SELECT f.*, r.risk_points AS region_points, l.served AS language_served, getvariable('as_of') AS as_of
    FROM account_features f
    LEFT JOIN region_risk r ON r.country = f.country
    LEFT JOIN languages l ON l.language = f.language
),
impact AS (
    SELECT *,
        CASE WHEN industry IN ('travel', 'hospitality', 'restaurants', 'retail', 'energy', 'recruiting') THEN '1'
             WHEN industry IN ('healthcare', 'remote_work', 'video_conferencing', 'logistics', 'ecommerce') THEN '3'
             ELSE '2' END AS impact
    FROM base
),
measures AS (
    SELECT *,
        CASE WHEN seat_utilisation IS NOT NULL THEN greatest(0, least(100, seat_utilisation / 0.8)) END AS m_seats,
        CASE WHEN usage_trend_pct >= 0 THEN 100 WHEN usage_trend_pct >= -10 THEN 80 WHEN usage_trend_pct >= -25 THEN 45
             WHEN usage_trend_pct IS NOT NULL THEN 10 END AS m_trend,
        CASE WHEN key_feature_events_per_user >= 2 THEN 100 WHEN key_feature_events_per_user >= 1 THEN 60
             WHEN key_feature_events_per_user IS NOT NULL THEN 20 END AS m_key,
        CASE WHEN open_critical_tickets >= 2 THEN 0 WHEN open_critical_tickets >= 1 THEN 40
             WHEN open_critical_tickets IS NOT NULL THEN 100 END AS m_critical,
        CASE WHEN escalations_90d >= 2 THEN 0 WHEN escalations_90d >= 1 THEN 50
             WHEN escalations_90d IS NOT NULL THEN 100 END AS m_escalations,
        CASE WHEN tickets_30d >= 8 THEN 10 WHEN tickets_30d >= 4 THEN 50 WHEN tickets_30d IS NOT NULL THEN 100 END AS m_volume,
        CASE WHEN nps >= 9 THEN 100 WHEN nps >= 7 THEN 70 WHEN nps >= 5 THEN 30 WHEN nps IS NOT NULL THEN 0 END AS m_nps,
        CASE WHEN csat >= 4 THEN 100 WHEN csat >= 3 THEN 60 WHEN csat IS NOT NULL THEN 10 END AS m_csat,
        CASE WHEN meetings_90d >= 3 THEN 100 WHEN meetings_90d >= 1 THEN 60 WHEN meetings_90d IS NOT NULL THEN 20 END AS m_meetings,
        CASE WHEN as_of - last_qbr_on >= 180 THEN 0 WHEN as_of - last_qbr_on >= 100 THEN 50
             WHEN last_qbr_on IS NOT NULL THEN 100 END AS m_qbr,
        CASE WHEN implementation_csat >= 4 THEN 100 WHEN implementation_csat >= 3 THEN 60
             WHEN implementation_csat IS NOT NULL THEN 10 END AS m_impl,
        CASE csm_sentiment WHEN 'green' THEN 100 WHEN 'yellow' THEN 50 WHEN 'red' THEN 0 END AS m_sentiment
    FROM impact
),
health AS (
    SELECT *,
        CASE WHEN health_score >= 70 THEN 'green' WHEN health_score >= 50 THEN 'yellow'
             WHEN health_score IS NOT NULL THEN 'red' END AS health
    FROM (
        SELECT *,
            (coalesce(20 * m_seats, 0) + coalesce(15 * m_trend, 0) + coalesce(10 * m_key, 0) + coalesce(10 * m_critical, 0)
             + coalesce(5 * m_escalations, 0) + coalesce(5 * m_volume, 0) + coalesce(10 * m_nps, 0) + coalesce(5 * m_csat, 0)
             + coalesce(5 * m_meetings, 0) + coalesce(5 * m_qbr, 0) + coalesce(5 * m_impl, 0) + coalesce(15 * m_sentiment, 0))
            / nullif((CASE WHEN m_seats IS NULL THEN 0 ELSE 20 END) + (CASE WHEN m_trend IS NULL THEN 0 ELSE 15 END)
             + (CASE WHEN m_key IS NULL THEN 0 ELSE 10 END) + (CASE WHEN m_critical IS NULL THEN 0 ELSE 10 END)
             + (CASE WHEN m_escalations IS NULL THEN 0 ELSE 5 END) + (CASE WHEN m_volume IS NULL THEN 0 ELSE 5 END)
             + (CASE WHEN m_nps IS NULL THEN 0 ELSE 10 END) + (CASE WHEN m_csat IS NULL THEN 0 ELSE 5 END)
             + (CASE WHEN m_meetings IS NULL THEN 0 ELSE 5 END) + (CASE WHEN m_qbr IS NULL THEN 0 ELSE 5 END)
             + (CASE WHEN m_impl IS NULL THEN 0 ELSE 5 END) + (CASE WHEN m_sentiment IS NULL THEN 0 ELSE 15 END), 0)
            AS health_score
        FROM measures
    )
),
stage AS (
    SELECT *,
        CASE WHEN go_live_on IS NULL THEN 'implementing'
             WHEN expected_churn = true OR health = 'red' OR as_of - champion_left_on <= 90 OR (nps IS NOT NULL AND nps <= 4)
                 THEN 'defending'
             WHEN health = 'green' AND (open_upsells > 0 OR seat_utilisation > 100) THEN 'growing'
             ELSE 'maturing' END AS stage
    FROM health
),
points AS (
    SELECT *,
        greatest(0, least(100,
              CASE WHEN impact = '1' THEN 30 ELSE 0 END
            + CASE WHEN impact = '3' THEN -10 ELSE 0 END
            + CASE WHEN region_points > 0 THEN region_points ELSE 0 END
            + CASE WHEN funding_stage IN ('seed', 'series_a', 'series_b') AND runway_months < 12 THEN 30 ELSE 0 END
            + CASE WHEN runway_months >= 12 AND runway_months < 18 THEN 15 ELSE 0 END
            + CASE WHEN funding_stage IN ('public', 'multinational') THEN -10 ELSE 0 END
            + CASE WHEN date_trunc('quarter', renewal_date) = date_trunc('quarter', as_of) AND days_to_renewal >= 0
                   THEN 15 ELSE 0 END
            + CASE WHEN stage = 'implementing' AND tenure_days > 120 THEN 25 ELSE 0 END
            + CASE WHEN expected_churn THEN 50 ELSE 0 END)) AS risk_score,
        (funding_stage IN ('seed', 'series_a', 'series_b') AND runway_months < 12)
            OR (runway_months >= 12 AND runway_months < 18) OR funding_stage IN ('public', 'multinational') AS cash_tag,
        greatest(0, least(100,
              CASE WHEN first_value_on IS NULL AND tenure_days > 60 THEN 40 ELSE 0 END
            + CASE WHEN ttfv_days > 60 THEN 10 ELSE 0 END
            + CASE WHEN stage != 'implementing' AND seat_utilisation < 35 THEN 25 ELSE 0 END
            + CASE WHEN seat_utilisation < 35 AND days_to_renewal <= 120 AND days_to_renewal >= 0 THEN 20 ELSE 0 END
            + CASE WHEN usage_trend_pct <= -25 THEN 25 ELSE 0 END)) AS adoption_score,
        greatest(0, least(100,
              CASE WHEN seat_utilisation > 100 THEN 40 ELSE 0 END
            + CASE WHEN eligible_modules_not_owned > 0 AND health != 'red' THEN 10 * least(eligible_modules_not_owned, 3) ELSE 0 END
            + CASE WHEN health = 'green' AND open_upsells > 0 THEN 40 ELSE 0 END
            + CASE WHEN health = 'red' THEN -100 ELSE 0 END)) AS expansion_score,
        greatest(0, least(100,
              CASE WHEN as_of - champion_left_on <= 90 THEN 30 ELSE 0 END
            + CASE WHEN engaged_stakeholders < 3 THEN 10 ELSE 0 END
            + CASE WHEN as_of - sponsor_since <= 90 THEN 15 ELSE 0 END
            + CASE WHEN integration_tickets_90d >= 2 THEN 15 ELSE 0 END
            + CASE WHEN tenure_days <= 270 AND nps <= 6 THEN 15 ELSE 0 END
            + CASE WHEN performance_tickets_90d >= 2 OR (seat_utilisation > 110 AND performance_tickets_90d >= 1) THEN 15 ELSE 0 END
            + CASE WHEN seat_utilisation < 40 AND arr >= 50000 THEN 15 ELSE 0 END
            + CASE WHEN complaints_90d >= 1 OR csat <= 2 THEN 15 ELSE 0 END
            + CASE WHEN tenure_days <= 180 AND stage = 'implementing' AND tenure_days > 90 THEN 20 ELSE 0 END
            + CASE WHEN language_served = false THEN 10 ELSE 0 END
            + CASE WHEN stage != 'implementing' AND tenure_days > 180 AND key_feature_events_per_user < 1 THEN 10 ELSE 0 END))
            AS signals_score
    FROM stage
),
graded AS (
    SELECT *,
        CASE WHEN risk_score >= 50 THEN 'high' WHEN risk_score >= 25 THEN 'medium' ELSE 'low' END AS risk,
        CASE WHEN adoption_score >= 40 THEN 'off_track' WHEN adoption_score >= 20 THEN 'watch' ELSE 'on_track' END AS adoption,
        CASE WHEN expansion_score >= 50 THEN 'ready' WHEN expansion_score >= 20 THEN 'developing' ELSE 'not_now' END AS expansion,
        CASE WHEN signals_score >= 40 THEN 'alert' WHEN signals_score >= 15 THEN 'watch' ELSE 'quiet' END AS signals
    FROM points
),
plays AS (
    SELECT g.*,
        CASE WHEN expected_churn = true THEN 'expected_churn'
             WHEN stage = 'implementing' AND (risk = 'high' OR adoption = 'off_track') THEN 'onboarding_rescue'
             WHEN impact = '1' AND cash_tag THEN 'cash_relief'
             WHEN stage = 'defending' AND segment = 'enterprise' THEN 'executive_save'
             WHEN stage = 'defending' THEN 'value_recovery'
             WHEN health = 'yellow' AND impact = '2' THEN 'swarm'
             WHEN stage = 'growing' OR expansion = 'ready' THEN 'expand'
             WHEN segment = 'smb' THEN 'tech_touch'
             ELSE 'nurture' END AS plays,
        CASE WHEN expected_churn = true THEN 0 ELSE coalesce(rr.rate, 100) END AS forecast_score
    FROM graded g
    LEFT JOIN (SELECT segment AS rate_key, rate FROM retention_rates) rr
        ON rr.rate_key = g.impact || '_' || coalesce(g.health, 'yellow')
)
SELECT account_id, name, csm_email, manager_email, arr, renewal_date,
    impact, health_score, health, stage, risk_score, risk, adoption_score, adoption, expansion_score, expansion,
    signals_score, signals, plays, forecast_score,
    CASE WHEN forecast_score >= 90 THEN 'retain' WHEN forecast_score >= 60 THEN 'shrink' ELSE 'churn' END AS forecast
FROM plays;

COPY scores TO '${OUT}/scores.parquet' (FORMAT parquet);
COPY (SELECT csm_email, name, arr, renewal_date, risk, health, stage, plays FROM scores
      WHERE plays != 'expected_churn' AND (risk = 'high' OR health = 'red' OR signals = 'alert')
      ORDER BY csm_email, arr DESC) TO '${OUT}/at_risk.csv' (HEADER);
COPY (SELECT manager_email, name, csm_email, arr, renewal_date, round(health_score, 0) AS health_score, plays FROM scores
      WHERE health = 'yellow' AND impact = '2' AND plays != 'expected_churn'
      ORDER BY manager_email, arr DESC) TO '${OUT}/swarm.csv' (HEADER);
