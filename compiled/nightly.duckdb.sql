-- Job `nightly` compiled by keepwell 0.1.0 for duckdb: its features, its entity and its 9 rule set(s),
-- writing /tmp/.tmpXHTq2v/duck/entity and /tmp/.tmpXHTq2v/duck/results as Parquet. Generated: edit the job and its rules, not this file.
SET VARIABLE as_of = DATE '2026-11-23';

CREATE OR REPLACE TEMP VIEW "accounts" AS
SELECT CAST("account_id" AS VARCHAR) AS "account_id", CAST("name" AS VARCHAR) AS "name", CAST("industry" AS VARCHAR) AS "industry", CAST("country" AS VARCHAR) AS "country", CAST("language" AS VARCHAR) AS "language", CAST("segment" AS VARCHAR) AS "segment", CAST("funding_stage" AS VARCHAR) AS "funding_stage", CAST("runway_months" AS INTEGER) AS "runway_months", CAST("arr" AS DECIMAL(18,2)) AS "arr", CAST("seats" AS INTEGER) AS "seats", CAST("contract_start" AS DATE) AS "contract_start", CAST("renewal_date" AS DATE) AS "renewal_date", CAST("csm_email" AS VARCHAR) AS "csm_email", CAST("manager_email" AS VARCHAR) AS "manager_email", CAST("last_renewal_date" AS DATE) AS "last_renewal_date" FROM read_parquet(['/tmp/.tmpXHTq2v/parquet/accounts.parquet']);

CREATE OR REPLACE TEMP VIEW "modules" AS
SELECT CAST("account_id" AS VARCHAR) AS "account_id", CAST("module" AS VARCHAR) AS "module", CAST("status" AS VARCHAR) AS "status" FROM read_parquet(['/tmp/.tmpXHTq2v/parquet/modules.parquet']);

CREATE OR REPLACE TEMP VIEW "daily_usage" AS
SELECT CAST("account_id" AS VARCHAR) AS "account_id", CAST("day" AS DATE) AS "day", CAST("active_users" AS INTEGER) AS "active_users", CAST("key_feature_events" AS INTEGER) AS "key_feature_events" FROM read_parquet(['/tmp/.tmpXHTq2v/parquet/daily_usage.parquet']);

CREATE OR REPLACE TEMP VIEW "support_tickets" AS
SELECT CAST("ticket_id" AS VARCHAR) AS "ticket_id", CAST("account_id" AS VARCHAR) AS "account_id", CAST("opened_at" AS DATE) AS "opened_at", CAST("closed_at" AS DATE) AS "closed_at", CAST("priority" AS VARCHAR) AS "priority", CAST("category" AS VARCHAR) AS "category", CAST("escalated" AS BOOLEAN) AS "escalated" FROM read_parquet(['/tmp/.tmpXHTq2v/parquet/support_tickets.parquet']);

CREATE OR REPLACE TEMP VIEW "contacts" AS
SELECT CAST("contact_id" AS VARCHAR) AS "contact_id", CAST("account_id" AS VARCHAR) AS "account_id", CAST("role" AS VARCHAR) AS "role", CAST("engaged" AS BOOLEAN) AS "engaged", CAST("start_date" AS DATE) AS "start_date", CAST("end_date" AS DATE) AS "end_date" FROM read_parquet(['/tmp/.tmpXHTq2v/parquet/contacts.parquet']);

CREATE OR REPLACE TEMP VIEW "survey_responses" AS
SELECT CAST("account_id" AS VARCHAR) AS "account_id", CAST("answered_at" AS DATE) AS "answered_at", CAST("kind" AS VARCHAR) AS "kind", CAST("score" AS INTEGER) AS "score" FROM read_parquet(['/tmp/.tmpXHTq2v/parquet/survey_responses.parquet']);

CREATE OR REPLACE TEMP VIEW "milestones" AS
SELECT CAST("account_id" AS VARCHAR) AS "account_id", CAST("milestone" AS VARCHAR) AS "milestone", CAST("reached_at" AS DATE) AS "reached_at" FROM read_parquet(['/tmp/.tmpXHTq2v/parquet/milestones.parquet']);

CREATE OR REPLACE TEMP VIEW "csm_sentiment" AS
SELECT CAST("account_id" AS VARCHAR) AS "account_id", CAST("sentiment" AS VARCHAR) AS "sentiment", CAST("updated_at" AS DATE) AS "updated_at" FROM read_parquet(['/tmp/.tmpXHTq2v/parquet/csm_sentiment.parquet']);

CREATE OR REPLACE TEMP VIEW "engagements" AS
SELECT CAST("account_id" AS VARCHAR) AS "account_id", CAST("day" AS DATE) AS "day", CAST("kind" AS VARCHAR) AS "kind" FROM read_parquet(['/tmp/.tmpXHTq2v/parquet/engagements.parquet']);

CREATE OR REPLACE TEMP VIEW "opportunities" AS
SELECT CAST("opportunity_id" AS VARCHAR) AS "opportunity_id", CAST("account_id" AS VARCHAR) AS "account_id", CAST("kind" AS VARCHAR) AS "kind", CAST("stage" AS VARCHAR) AS "stage", CAST("amount" AS DECIMAL(18,2)) AS "amount", CAST("created_on" AS DATE) AS "created_on" FROM read_parquet(['/tmp/.tmpXHTq2v/parquet/opportunities.parquet']);

CREATE OR REPLACE TEMP VIEW "churn_overrides" AS
SELECT CAST("account_id" AS VARCHAR) AS "account_id", CAST("expected_churn" AS BOOLEAN) AS "expected_churn", CAST("set_by" AS VARCHAR) AS "set_by", CAST("note" AS VARCHAR) AS "note" FROM read_parquet(['/tmp/.tmpXHTq2v/parquet/churn_overrides.parquet']);

CREATE OR REPLACE TEMP VIEW "module_catalogue" AS
SELECT CAST("module" AS VARCHAR) AS "module", CAST("segments" AS VARCHAR) AS "segments" FROM read_parquet(['/tmp/.tmpXHTq2v/parquet/module_catalogue.parquet']);

CREATE OR REPLACE TEMP VIEW "usage_30d" AS
-- Adoption telemetry (DOMAIN.md §3): active users now against two weeks before, and
-- key-feature use, over the last 30 days of daily usage. Every feature reads only what was
-- known on `as_of`, so a run for an earlier day sees what that day's run saw.
SELECT
    account_id,
    avg(active_users) FILTER (WHERE day > DATE '2026-11-23' - INTERVAL 14 DAY) AS active_users_14d,
    avg(active_users) FILTER (WHERE day <= DATE '2026-11-23' - INTERVAL 16 DAY) AS active_users_prior,
    sum(key_feature_events) AS key_feature_events_30d
FROM daily_usage
WHERE day > DATE '2026-11-23' - INTERVAL 30 DAY AND day <= DATE '2026-11-23'
GROUP BY account_id;

CREATE OR REPLACE TEMP VIEW "support_90d" AS
-- Support load (DOMAIN.md §3, §6.3, §6.5, §6.7): volume, spikes, open critical tickets,
-- escalations, integration gaps, performance (scalability) and complaints about service.
SELECT
    account_id,
    count(*) FILTER (WHERE opened_at > DATE '2026-11-23' - INTERVAL 90 DAY) AS tickets_90d,
    count(*) FILTER (WHERE opened_at > DATE '2026-11-23' - INTERVAL 30 DAY) AS tickets_30d,
    count(*) FILTER (WHERE priority = 'critical' AND (closed_at IS NULL OR closed_at > DATE '2026-11-23')) AS open_critical_tickets,
    count(*) FILTER (WHERE escalated AND opened_at > DATE '2026-11-23' - INTERVAL 90 DAY) AS escalations_90d,
    count(*) FILTER (WHERE category = 'integration' AND opened_at > DATE '2026-11-23' - INTERVAL 90 DAY) AS integration_tickets_90d,
    count(*) FILTER (WHERE category = 'performance' AND opened_at > DATE '2026-11-23' - INTERVAL 90 DAY) AS performance_tickets_90d,
    count(*) FILTER (WHERE category = 'complaint' AND opened_at > DATE '2026-11-23' - INTERVAL 90 DAY) AS complaints_90d
FROM support_tickets
WHERE opened_at <= DATE '2026-11-23'
GROUP BY account_id;

CREATE OR REPLACE TEMP VIEW "stakeholders" AS
-- Relationship breadth (DOMAIN.md §6.1, §6.2): engaged stakeholders, when the champion
-- left, and since when the executive sponsor is in place.
SELECT
    account_id,
    -- A contact who has left since was still there (and engaged) on an earlier day.
    count(*) FILTER (WHERE (engaged OR end_date > DATE '2026-11-23') AND (end_date IS NULL OR end_date > DATE '2026-11-23')) AS engaged_stakeholders,
    max(end_date) FILTER (WHERE role = 'champion' AND end_date <= DATE '2026-11-23') AS champion_left_on,
    max(start_date) FILTER (WHERE role = 'executive_sponsor' AND (end_date IS NULL OR end_date > DATE '2026-11-23')) AS sponsor_since
FROM contacts
WHERE start_date <= DATE '2026-11-23'
GROUP BY account_id;

CREATE OR REPLACE TEMP VIEW "experience" AS
-- Experience (DOMAIN.md §3): the latest NPS, CSAT and implementation-satisfaction answers,
-- and the CSM's latest sentiment, a manual measure from its own extract.
WITH surveys AS (
    SELECT
        account_id,
        arg_max(score, answered_at) FILTER (WHERE kind = 'nps') AS nps,
        arg_max(score, answered_at) FILTER (WHERE kind = 'csat') AS csat,
        arg_max(score, answered_at) FILTER (WHERE kind = 'implementation') AS implementation_csat
    FROM survey_responses
    WHERE answered_at <= DATE '2026-11-23'
    GROUP BY account_id
),
sentiment AS (
    SELECT account_id, arg_max(sentiment, updated_at) AS csm_sentiment
    FROM csm_sentiment
    WHERE updated_at <= DATE '2026-11-23'
    GROUP BY account_id
)
SELECT a.account_id, s.nps, s.csat, s.implementation_csat, m.csm_sentiment
FROM accounts a
LEFT JOIN surveys s USING (account_id)
LEFT JOIN sentiment m USING (account_id);

CREATE OR REPLACE TEMP VIEW "implementation" AS
-- Journey milestones (DOMAIN.md §2, §4): go-live and first value, for implementation
-- length and time to first value.
SELECT
    account_id,
    min(reached_at) FILTER (WHERE milestone = 'go_live') AS go_live_on,
    min(reached_at) FILTER (WHERE milestone = 'first_value') AS first_value_on
FROM milestones
WHERE reached_at <= DATE '2026-11-23'
GROUP BY account_id;

CREATE OR REPLACE TEMP VIEW "engagement" AS
-- Engagement with the team (DOMAIN.md §3): meetings in the last 90 days and the last QBR.
SELECT
    account_id,
    count(*) FILTER (WHERE kind = 'meeting' AND day > DATE '2026-11-23' - INTERVAL 90 DAY) AS meetings_90d,
    max(day) FILTER (WHERE kind = 'qbr') AS last_qbr_on
FROM engagements
WHERE day <= DATE '2026-11-23'
GROUP BY account_id;

CREATE OR REPLACE TEMP VIEW "commercial" AS
-- Expansion inputs (DOMAIN.md §5): open upsell conversations, and modules the account's
-- segment is eligible for but it does not own.
WITH upsell AS (
    SELECT account_id, count(*) AS open_upsells, sum(amount) AS open_upsell_amount
    FROM opportunities
    WHERE stage = 'open' AND kind = 'upsell' AND created_on <= DATE '2026-11-23'
    GROUP BY account_id
),
eligible AS (
    SELECT a.account_id, list(c.module ORDER BY c.module) AS modules_not_owned
    FROM accounts a
    JOIN module_catalogue c ON list_contains(string_split(c.segments, '|'), a.segment)
    WHERE NOT EXISTS (
        SELECT 1 FROM modules m WHERE m.account_id = a.account_id AND m.module = c.module AND m.status = 'active'
    )
    GROUP BY a.account_id
)
SELECT
    a.account_id,
    coalesce(u.open_upsells, 0) AS open_upsells,
    coalesce(u.open_upsell_amount, 0) AS open_upsell_amount,
    coalesce(e.modules_not_owned, []) AS modules_not_owned,
    coalesce(len(e.modules_not_owned), 0) AS eligible_modules_not_owned
FROM accounts a
LEFT JOIN upsell u USING (account_id)
LEFT JOIN eligible e USING (account_id);

CREATE OR REPLACE TEMP VIEW "account_features" AS
-- The entity view: one row per account with everything the rule sets read.
SELECT
    a.account_id,
    a.name,
    a.industry,
    a.country,
    a.language,
    a.segment,
    a.funding_stage,
    a.runway_months,
    a.arr,
    a.seats,
    a.contract_start,
    -- The renewal to come on `as_of`: a run for a day before the account's last renewal
    -- (a backfill of history from today's extract) reads that one.
    CASE WHEN a.last_renewal_date > DATE '2026-11-23' THEN a.last_renewal_date ELSE a.renewal_date END AS renewal_date,
    a.csm_email,
    a.manager_email,
    coalesce(o.expected_churn, false) AS expected_churn,
    o.note AS expected_churn_note,
    CAST(CASE WHEN a.last_renewal_date > DATE '2026-11-23' THEN a.last_renewal_date ELSE a.renewal_date END
        - DATE '2026-11-23' AS INTEGER) AS days_to_renewal,
    CAST(DATE '2026-11-23' - a.contract_start AS INTEGER) AS tenure_days,
    round(u.active_users_14d, 1) AS active_users,
    round(100.0 * u.active_users_14d / nullif(a.seats, 0), 1) AS seat_utilisation,
    round(100.0 * (u.active_users_14d - u.active_users_prior) / nullif(u.active_users_prior, 0), 1) AS usage_trend_pct,
    round(u.key_feature_events_30d / nullif(u.active_users_14d, 0), 1) AS key_feature_events_per_user,
    coalesce(t.tickets_90d, 0) AS tickets_90d,
    coalesce(t.tickets_30d, 0) AS tickets_30d,
    coalesce(t.open_critical_tickets, 0) AS open_critical_tickets,
    coalesce(t.escalations_90d, 0) AS escalations_90d,
    coalesce(t.integration_tickets_90d, 0) AS integration_tickets_90d,
    coalesce(t.performance_tickets_90d, 0) AS performance_tickets_90d,
    coalesce(t.complaints_90d, 0) AS complaints_90d,
    coalesce(s.engaged_stakeholders, 0) AS engaged_stakeholders,
    s.champion_left_on,
    s.sponsor_since,
    e.nps,
    e.csat,
    e.implementation_csat,
    e.csm_sentiment,
    coalesce(g.meetings_90d, 0) AS meetings_90d,
    g.last_qbr_on,
    i.go_live_on,
    i.first_value_on,
    CAST(i.first_value_on - a.contract_start AS INTEGER) AS ttfv_days,
    c.open_upsells,
    c.open_upsell_amount,
    c.modules_not_owned,
    c.eligible_modules_not_owned
FROM accounts a
LEFT JOIN usage_30d u USING (account_id)
LEFT JOIN support_90d t USING (account_id)
LEFT JOIN stakeholders s USING (account_id)
LEFT JOIN experience e USING (account_id)
LEFT JOIN engagement g USING (account_id)
LEFT JOIN implementation i USING (account_id)
LEFT JOIN commercial c USING (account_id)
LEFT JOIN churn_overrides o USING (account_id)
-- Customers on `as_of`: signed by then, and not yet past the renewal they left at.
WHERE a.contract_start <= DATE '2026-11-23' AND a.renewal_date >= DATE '2026-11-23';

CREATE OR REPLACE TEMP TABLE "kw_entity" AS
SELECT * FROM "account_features";

CREATE OR REPLACE TEMP TABLE "kw_rs_health" AS
SELECT kw_key, score, coalesce(kw_grade, CASE WHEN score IS NULL THEN NULL WHEN score >= CAST('70.0' AS DOUBLE) THEN 'green' WHEN score >= CAST('50.0' AS DOUBLE) THEN 'yellow' ELSE 'red' END) AS grade, fired, tags, reasons
FROM (
  SELECT kw_key, CASE WHEN kw_total IS NULL THEN NULL WHEN kw_total < CAST('-inf' AS DOUBLE) THEN CAST('-inf' AS DOUBLE) WHEN kw_total > CAST('inf' AS DOUBLE) THEN CAST('inf' AS DOUBLE) ELSE kw_total END AS score, kw_grade, fired, tags, reasons
  FROM (
  SELECT kw_key, CASE WHEN kw_x11 THEN NULL WHEN ((((((((((((0.0 + CASE WHEN kw_m0 IS NULL THEN 0.0 ELSE CAST('20.0' AS DOUBLE) END) + CASE WHEN kw_m1 IS NULL THEN 0.0 ELSE CAST('15.0' AS DOUBLE) END) + CASE WHEN kw_m2 IS NULL THEN 0.0 ELSE CAST('10.0' AS DOUBLE) END) + CASE WHEN kw_m3 IS NULL THEN 0.0 ELSE CAST('10.0' AS DOUBLE) END) + CASE WHEN kw_m4 IS NULL THEN 0.0 ELSE CAST('5.0' AS DOUBLE) END) + CASE WHEN kw_m5 IS NULL THEN 0.0 ELSE CAST('5.0' AS DOUBLE) END) + CASE WHEN kw_m6 IS NULL THEN 0.0 ELSE CAST('10.0' AS DOUBLE) END) + CASE WHEN kw_m7 IS NULL THEN 0.0 ELSE CAST('5.0' AS DOUBLE) END) + CASE WHEN kw_m8 IS NULL THEN 0.0 ELSE CAST('5.0' AS DOUBLE) END) + CASE WHEN kw_m9 IS NULL THEN 0.0 ELSE CAST('5.0' AS DOUBLE) END) + CASE WHEN kw_m10 IS NULL THEN 0.0 ELSE CAST('5.0' AS DOUBLE) END) + CASE WHEN kw_m11 IS NULL THEN 0.0 ELSE CAST('15.0' AS DOUBLE) END) > 0.0 THEN ((((((((((((0.0 + CASE WHEN kw_m0 IS NULL THEN 0.0 ELSE kw_m0 * CAST('20.0' AS DOUBLE) END) + CASE WHEN kw_m1 IS NULL THEN 0.0 ELSE kw_m1 * CAST('15.0' AS DOUBLE) END) + CASE WHEN kw_m2 IS NULL THEN 0.0 ELSE kw_m2 * CAST('10.0' AS DOUBLE) END) + CASE WHEN kw_m3 IS NULL THEN 0.0 ELSE kw_m3 * CAST('10.0' AS DOUBLE) END) + CASE WHEN kw_m4 IS NULL THEN 0.0 ELSE kw_m4 * CAST('5.0' AS DOUBLE) END) + CASE WHEN kw_m5 IS NULL THEN 0.0 ELSE kw_m5 * CAST('5.0' AS DOUBLE) END) + CASE WHEN kw_m6 IS NULL THEN 0.0 ELSE kw_m6 * CAST('10.0' AS DOUBLE) END) + CASE WHEN kw_m7 IS NULL THEN 0.0 ELSE kw_m7 * CAST('5.0' AS DOUBLE) END) + CASE WHEN kw_m8 IS NULL THEN 0.0 ELSE kw_m8 * CAST('5.0' AS DOUBLE) END) + CASE WHEN kw_m9 IS NULL THEN 0.0 ELSE kw_m9 * CAST('5.0' AS DOUBLE) END) + CASE WHEN kw_m10 IS NULL THEN 0.0 ELSE kw_m10 * CAST('5.0' AS DOUBLE) END) + CASE WHEN kw_m11 IS NULL THEN 0.0 ELSE kw_m11 * CAST('15.0' AS DOUBLE) END) / ((((((((((((0.0 + CASE WHEN kw_m0 IS NULL THEN 0.0 ELSE CAST('20.0' AS DOUBLE) END) + CASE WHEN kw_m1 IS NULL THEN 0.0 ELSE CAST('15.0' AS DOUBLE) END) + CASE WHEN kw_m2 IS NULL THEN 0.0 ELSE CAST('10.0' AS DOUBLE) END) + CASE WHEN kw_m3 IS NULL THEN 0.0 ELSE CAST('10.0' AS DOUBLE) END) + CASE WHEN kw_m4 IS NULL THEN 0.0 ELSE CAST('5.0' AS DOUBLE) END) + CASE WHEN kw_m5 IS NULL THEN 0.0 ELSE CAST('5.0' AS DOUBLE) END) + CASE WHEN kw_m6 IS NULL THEN 0.0 ELSE CAST('10.0' AS DOUBLE) END) + CASE WHEN kw_m7 IS NULL THEN 0.0 ELSE CAST('5.0' AS DOUBLE) END) + CASE WHEN kw_m8 IS NULL THEN 0.0 ELSE CAST('5.0' AS DOUBLE) END) + CASE WHEN kw_m9 IS NULL THEN 0.0 ELSE CAST('5.0' AS DOUBLE) END) + CASE WHEN kw_m10 IS NULL THEN 0.0 ELSE CAST('5.0' AS DOUBLE) END) + CASE WHEN kw_m11 IS NULL THEN 0.0 ELSE CAST('15.0' AS DOUBLE) END) END AS kw_total, CAST(NULL AS VARCHAR) AS kw_grade, flatten([CASE WHEN kw_m0 < CAST('50.0' AS DOUBLE) THEN ['seat_utilisation'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_m1 < CAST('50.0' AS DOUBLE) THEN ['usage_trend'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_m2 < CAST('50.0' AS DOUBLE) THEN ['key_feature_use'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_m3 < CAST('50.0' AS DOUBLE) THEN ['critical_tickets'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_m4 < CAST('50.0' AS DOUBLE) THEN ['escalations'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_m5 < CAST('50.0' AS DOUBLE) THEN ['ticket_volume'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_m6 < CAST('50.0' AS DOUBLE) THEN ['nps'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_m7 < CAST('50.0' AS DOUBLE) THEN ['csat'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_m8 < CAST('50.0' AS DOUBLE) THEN ['meetings'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_m9 < CAST('50.0' AS DOUBLE) THEN ['qbr_recency'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_m10 < CAST('50.0' AS DOUBLE) THEN ['implementation_satisfaction'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_m11 < CAST('60.0' AS DOUBLE) THEN ['csm_sentiment'] ELSE CAST([] AS VARCHAR[]) END]) AS fired, CAST([] AS VARCHAR[]) AS tags, flatten([CASE WHEN kw_m0 < CAST('50.0' AS DOUBLE) THEN [kw_r0] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_m1 < CAST('50.0' AS DOUBLE) THEN [kw_r1] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_m2 < CAST('50.0' AS DOUBLE) THEN [kw_r2] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_m3 < CAST('50.0' AS DOUBLE) THEN [kw_r3] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_m4 < CAST('50.0' AS DOUBLE) THEN [kw_r4] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_m5 < CAST('50.0' AS DOUBLE) THEN [kw_r5] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_m6 < CAST('50.0' AS DOUBLE) THEN [kw_r6] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_m7 < CAST('50.0' AS DOUBLE) THEN [kw_r7] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_m8 < CAST('50.0' AS DOUBLE) THEN [kw_r8] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_m9 < CAST('50.0' AS DOUBLE) THEN [kw_r9] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_m10 < CAST('50.0' AS DOUBLE) THEN [kw_r10] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_m11 < CAST('60.0' AS DOUBLE) THEN [kw_r11] ELSE CAST([] AS VARCHAR[]) END]) AS reasons
  FROM (
  SELECT
    e."account_id" AS kw_key,
    CAST(CASE WHEN CAST((CASE WHEN CAST((CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) / nullif(CAST(CAST('0.8' AS DOUBLE) AS DOUBLE), 0)) AS DOUBLE) IS NULL OR CAST(CAST(0 AS BIGINT) AS DOUBLE) IS NULL OR CAST(CAST(100 AS BIGINT) AS DOUBLE) IS NULL THEN NULL ELSE (CASE WHEN isnan((CASE WHEN isnan(CAST((CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) / nullif(CAST(CAST('0.8' AS DOUBLE) AS DOUBLE), 0)) AS DOUBLE)) THEN CAST(CAST(0 AS BIGINT) AS DOUBLE) WHEN isnan(CAST(CAST(0 AS BIGINT) AS DOUBLE)) THEN CAST((CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) / nullif(CAST(CAST('0.8' AS DOUBLE) AS DOUBLE), 0)) AS DOUBLE) ELSE greatest(CAST((CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) / nullif(CAST(CAST('0.8' AS DOUBLE) AS DOUBLE), 0)) AS DOUBLE), CAST(CAST(0 AS BIGINT) AS DOUBLE)) END)) THEN CAST(CAST(100 AS BIGINT) AS DOUBLE) WHEN isnan(CAST(CAST(100 AS BIGINT) AS DOUBLE)) THEN (CASE WHEN isnan(CAST((CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) / nullif(CAST(CAST('0.8' AS DOUBLE) AS DOUBLE), 0)) AS DOUBLE)) THEN CAST(CAST(0 AS BIGINT) AS DOUBLE) WHEN isnan(CAST(CAST(0 AS BIGINT) AS DOUBLE)) THEN CAST((CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) / nullif(CAST(CAST('0.8' AS DOUBLE) AS DOUBLE), 0)) AS DOUBLE) ELSE greatest(CAST((CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) / nullif(CAST(CAST('0.8' AS DOUBLE) AS DOUBLE), 0)) AS DOUBLE), CAST(CAST(0 AS BIGINT) AS DOUBLE)) END) ELSE least((CASE WHEN isnan(CAST((CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) / nullif(CAST(CAST('0.8' AS DOUBLE) AS DOUBLE), 0)) AS DOUBLE)) THEN CAST(CAST(0 AS BIGINT) AS DOUBLE) WHEN isnan(CAST(CAST(0 AS BIGINT) AS DOUBLE)) THEN CAST((CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) / nullif(CAST(CAST('0.8' AS DOUBLE) AS DOUBLE), 0)) AS DOUBLE) ELSE greatest(CAST((CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) / nullif(CAST(CAST('0.8' AS DOUBLE) AS DOUBLE), 0)) AS DOUBLE), CAST(CAST(0 AS BIGINT) AS DOUBLE)) END), CAST(CAST(100 AS BIGINT) AS DOUBLE)) END) END) AS DOUBLE) IS NULL THEN NULL WHEN CAST((CASE WHEN CAST((CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) / nullif(CAST(CAST('0.8' AS DOUBLE) AS DOUBLE), 0)) AS DOUBLE) IS NULL OR CAST(CAST(0 AS BIGINT) AS DOUBLE) IS NULL OR CAST(CAST(100 AS BIGINT) AS DOUBLE) IS NULL THEN NULL ELSE (CASE WHEN isnan((CASE WHEN isnan(CAST((CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) / nullif(CAST(CAST('0.8' AS DOUBLE) AS DOUBLE), 0)) AS DOUBLE)) THEN CAST(CAST(0 AS BIGINT) AS DOUBLE) WHEN isnan(CAST(CAST(0 AS BIGINT) AS DOUBLE)) THEN CAST((CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) / nullif(CAST(CAST('0.8' AS DOUBLE) AS DOUBLE), 0)) AS DOUBLE) ELSE greatest(CAST((CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) / nullif(CAST(CAST('0.8' AS DOUBLE) AS DOUBLE), 0)) AS DOUBLE), CAST(CAST(0 AS BIGINT) AS DOUBLE)) END)) THEN CAST(CAST(100 AS BIGINT) AS DOUBLE) WHEN isnan(CAST(CAST(100 AS BIGINT) AS DOUBLE)) THEN (CASE WHEN isnan(CAST((CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) / nullif(CAST(CAST('0.8' AS DOUBLE) AS DOUBLE), 0)) AS DOUBLE)) THEN CAST(CAST(0 AS BIGINT) AS DOUBLE) WHEN isnan(CAST(CAST(0 AS BIGINT) AS DOUBLE)) THEN CAST((CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) / nullif(CAST(CAST('0.8' AS DOUBLE) AS DOUBLE), 0)) AS DOUBLE) ELSE greatest(CAST((CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) / nullif(CAST(CAST('0.8' AS DOUBLE) AS DOUBLE), 0)) AS DOUBLE), CAST(CAST(0 AS BIGINT) AS DOUBLE)) END) ELSE least((CASE WHEN isnan(CAST((CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) / nullif(CAST(CAST('0.8' AS DOUBLE) AS DOUBLE), 0)) AS DOUBLE)) THEN CAST(CAST(0 AS BIGINT) AS DOUBLE) WHEN isnan(CAST(CAST(0 AS BIGINT) AS DOUBLE)) THEN CAST((CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) / nullif(CAST(CAST('0.8' AS DOUBLE) AS DOUBLE), 0)) AS DOUBLE) ELSE greatest(CAST((CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) / nullif(CAST(CAST('0.8' AS DOUBLE) AS DOUBLE), 0)) AS DOUBLE), CAST(CAST(0 AS BIGINT) AS DOUBLE)) END), CAST(CAST(100 AS BIGINT) AS DOUBLE)) END) END) AS DOUBLE) < 0.0 THEN 0.0 WHEN CAST((CASE WHEN CAST((CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) / nullif(CAST(CAST('0.8' AS DOUBLE) AS DOUBLE), 0)) AS DOUBLE) IS NULL OR CAST(CAST(0 AS BIGINT) AS DOUBLE) IS NULL OR CAST(CAST(100 AS BIGINT) AS DOUBLE) IS NULL THEN NULL ELSE (CASE WHEN isnan((CASE WHEN isnan(CAST((CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) / nullif(CAST(CAST('0.8' AS DOUBLE) AS DOUBLE), 0)) AS DOUBLE)) THEN CAST(CAST(0 AS BIGINT) AS DOUBLE) WHEN isnan(CAST(CAST(0 AS BIGINT) AS DOUBLE)) THEN CAST((CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) / nullif(CAST(CAST('0.8' AS DOUBLE) AS DOUBLE), 0)) AS DOUBLE) ELSE greatest(CAST((CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) / nullif(CAST(CAST('0.8' AS DOUBLE) AS DOUBLE), 0)) AS DOUBLE), CAST(CAST(0 AS BIGINT) AS DOUBLE)) END)) THEN CAST(CAST(100 AS BIGINT) AS DOUBLE) WHEN isnan(CAST(CAST(100 AS BIGINT) AS DOUBLE)) THEN (CASE WHEN isnan(CAST((CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) / nullif(CAST(CAST('0.8' AS DOUBLE) AS DOUBLE), 0)) AS DOUBLE)) THEN CAST(CAST(0 AS BIGINT) AS DOUBLE) WHEN isnan(CAST(CAST(0 AS BIGINT) AS DOUBLE)) THEN CAST((CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) / nullif(CAST(CAST('0.8' AS DOUBLE) AS DOUBLE), 0)) AS DOUBLE) ELSE greatest(CAST((CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) / nullif(CAST(CAST('0.8' AS DOUBLE) AS DOUBLE), 0)) AS DOUBLE), CAST(CAST(0 AS BIGINT) AS DOUBLE)) END) ELSE least((CASE WHEN isnan(CAST((CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) / nullif(CAST(CAST('0.8' AS DOUBLE) AS DOUBLE), 0)) AS DOUBLE)) THEN CAST(CAST(0 AS BIGINT) AS DOUBLE) WHEN isnan(CAST(CAST(0 AS BIGINT) AS DOUBLE)) THEN CAST((CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) / nullif(CAST(CAST('0.8' AS DOUBLE) AS DOUBLE), 0)) AS DOUBLE) ELSE greatest(CAST((CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) / nullif(CAST(CAST('0.8' AS DOUBLE) AS DOUBLE), 0)) AS DOUBLE), CAST(CAST(0 AS BIGINT) AS DOUBLE)) END), CAST(CAST(100 AS BIGINT) AS DOUBLE)) END) END) AS DOUBLE) > 100.0 THEN 100.0 ELSE CAST((CASE WHEN CAST((CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) / nullif(CAST(CAST('0.8' AS DOUBLE) AS DOUBLE), 0)) AS DOUBLE) IS NULL OR CAST(CAST(0 AS BIGINT) AS DOUBLE) IS NULL OR CAST(CAST(100 AS BIGINT) AS DOUBLE) IS NULL THEN NULL ELSE (CASE WHEN isnan((CASE WHEN isnan(CAST((CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) / nullif(CAST(CAST('0.8' AS DOUBLE) AS DOUBLE), 0)) AS DOUBLE)) THEN CAST(CAST(0 AS BIGINT) AS DOUBLE) WHEN isnan(CAST(CAST(0 AS BIGINT) AS DOUBLE)) THEN CAST((CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) / nullif(CAST(CAST('0.8' AS DOUBLE) AS DOUBLE), 0)) AS DOUBLE) ELSE greatest(CAST((CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) / nullif(CAST(CAST('0.8' AS DOUBLE) AS DOUBLE), 0)) AS DOUBLE), CAST(CAST(0 AS BIGINT) AS DOUBLE)) END)) THEN CAST(CAST(100 AS BIGINT) AS DOUBLE) WHEN isnan(CAST(CAST(100 AS BIGINT) AS DOUBLE)) THEN (CASE WHEN isnan(CAST((CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) / nullif(CAST(CAST('0.8' AS DOUBLE) AS DOUBLE), 0)) AS DOUBLE)) THEN CAST(CAST(0 AS BIGINT) AS DOUBLE) WHEN isnan(CAST(CAST(0 AS BIGINT) AS DOUBLE)) THEN CAST((CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) / nullif(CAST(CAST('0.8' AS DOUBLE) AS DOUBLE), 0)) AS DOUBLE) ELSE greatest(CAST((CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) / nullif(CAST(CAST('0.8' AS DOUBLE) AS DOUBLE), 0)) AS DOUBLE), CAST(CAST(0 AS BIGINT) AS DOUBLE)) END) ELSE least((CASE WHEN isnan(CAST((CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) / nullif(CAST(CAST('0.8' AS DOUBLE) AS DOUBLE), 0)) AS DOUBLE)) THEN CAST(CAST(0 AS BIGINT) AS DOUBLE) WHEN isnan(CAST(CAST(0 AS BIGINT) AS DOUBLE)) THEN CAST((CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) / nullif(CAST(CAST('0.8' AS DOUBLE) AS DOUBLE), 0)) AS DOUBLE) ELSE greatest(CAST((CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) / nullif(CAST(CAST('0.8' AS DOUBLE) AS DOUBLE), 0)) AS DOUBLE), CAST(CAST(0 AS BIGINT) AS DOUBLE)) END), CAST(CAST(100 AS BIGINT) AS DOUBLE)) END) END) AS DOUBLE) END AS DOUBLE) AS kw_m0,
    concat('only ', (CASE WHEN CAST(e."seat_utilisation" AS DOUBLE) IS NULL THEN 'none' WHEN abs(CAST(e."seat_utilisation" AS DOUBLE)) < 1e15 AND CAST(e."seat_utilisation" AS DOUBLE) % 1 = 0 THEN CAST(CAST(CAST(e."seat_utilisation" AS DOUBLE) AS BIGINT) AS VARCHAR) ELSE CAST(CAST(e."seat_utilisation" AS DOUBLE) AS VARCHAR) END), '% of seats in use') AS kw_r0,
    CAST(CASE WHEN CAST(CAST(e."usage_trend_pct" AS DOUBLE) AS DOUBLE) IS NULL THEN NULL WHEN CAST(CAST(e."usage_trend_pct" AS DOUBLE) AS DOUBLE) >= CAST('0.0' AS DOUBLE) THEN CAST('100.0' AS DOUBLE) WHEN CAST(CAST(e."usage_trend_pct" AS DOUBLE) AS DOUBLE) >= CAST('-10.0' AS DOUBLE) THEN CAST('80.0' AS DOUBLE) WHEN CAST(CAST(e."usage_trend_pct" AS DOUBLE) AS DOUBLE) >= CAST('-25.0' AS DOUBLE) THEN CAST('45.0' AS DOUBLE) ELSE CAST('10.0' AS DOUBLE) END AS DOUBLE) AS kw_m1,
    concat('active users down ', (CASE WHEN (- CAST(e."usage_trend_pct" AS DOUBLE)) IS NULL THEN 'none' WHEN abs((- CAST(e."usage_trend_pct" AS DOUBLE))) < 1e15 AND (- CAST(e."usage_trend_pct" AS DOUBLE)) % 1 = 0 THEN CAST(CAST((- CAST(e."usage_trend_pct" AS DOUBLE)) AS BIGINT) AS VARCHAR) ELSE CAST((- CAST(e."usage_trend_pct" AS DOUBLE)) AS VARCHAR) END), '% in two weeks') AS kw_r1,
    CAST(CASE WHEN CAST(CAST(e."key_feature_events_per_user" AS DOUBLE) AS DOUBLE) IS NULL THEN NULL WHEN CAST(CAST(e."key_feature_events_per_user" AS DOUBLE) AS DOUBLE) >= CAST('2.0' AS DOUBLE) THEN CAST('100.0' AS DOUBLE) WHEN CAST(CAST(e."key_feature_events_per_user" AS DOUBLE) AS DOUBLE) >= CAST('1.0' AS DOUBLE) THEN CAST('60.0' AS DOUBLE) ELSE CAST('20.0' AS DOUBLE) END AS DOUBLE) AS kw_m2,
    concat('little use of key features (', (CASE WHEN CAST(e."key_feature_events_per_user" AS DOUBLE) IS NULL THEN 'none' WHEN abs(CAST(e."key_feature_events_per_user" AS DOUBLE)) < 1e15 AND CAST(e."key_feature_events_per_user" AS DOUBLE) % 1 = 0 THEN CAST(CAST(CAST(e."key_feature_events_per_user" AS DOUBLE) AS BIGINT) AS VARCHAR) ELSE CAST(CAST(e."key_feature_events_per_user" AS DOUBLE) AS VARCHAR) END), ' a user a month)') AS kw_r2,
    CAST(CASE WHEN CAST(CAST(e."open_critical_tickets" AS BIGINT) AS DOUBLE) IS NULL THEN NULL WHEN CAST(CAST(e."open_critical_tickets" AS BIGINT) AS DOUBLE) >= CAST('2.0' AS DOUBLE) THEN CAST('0.0' AS DOUBLE) WHEN CAST(CAST(e."open_critical_tickets" AS BIGINT) AS DOUBLE) >= CAST('1.0' AS DOUBLE) THEN CAST('40.0' AS DOUBLE) ELSE CAST('100.0' AS DOUBLE) END AS DOUBLE) AS kw_m3,
    concat(coalesce(CAST(CAST(e."open_critical_tickets" AS BIGINT) AS VARCHAR), 'none'), ' critical ticket(s) open') AS kw_r3,
    CAST(CASE WHEN CAST(CAST(e."escalations_90d" AS BIGINT) AS DOUBLE) IS NULL THEN NULL WHEN CAST(CAST(e."escalations_90d" AS BIGINT) AS DOUBLE) >= CAST('2.0' AS DOUBLE) THEN CAST('0.0' AS DOUBLE) WHEN CAST(CAST(e."escalations_90d" AS BIGINT) AS DOUBLE) >= CAST('1.0' AS DOUBLE) THEN CAST('50.0' AS DOUBLE) ELSE CAST('100.0' AS DOUBLE) END AS DOUBLE) AS kw_m4,
    concat(coalesce(CAST(CAST(e."escalations_90d" AS BIGINT) AS VARCHAR), 'none'), ' escalation(s) in 90 days') AS kw_r4,
    CAST(CASE WHEN CAST(CAST(e."tickets_30d" AS BIGINT) AS DOUBLE) IS NULL THEN NULL WHEN CAST(CAST(e."tickets_30d" AS BIGINT) AS DOUBLE) >= CAST('8.0' AS DOUBLE) THEN CAST('10.0' AS DOUBLE) WHEN CAST(CAST(e."tickets_30d" AS BIGINT) AS DOUBLE) >= CAST('4.0' AS DOUBLE) THEN CAST('50.0' AS DOUBLE) ELSE CAST('100.0' AS DOUBLE) END AS DOUBLE) AS kw_m5,
    concat(coalesce(CAST(CAST(e."tickets_30d" AS BIGINT) AS VARCHAR), 'none'), ' tickets in 30 days') AS kw_r5,
    CAST(CASE WHEN CAST(CAST(e."nps" AS BIGINT) AS DOUBLE) IS NULL THEN NULL WHEN CAST(CAST(e."nps" AS BIGINT) AS DOUBLE) >= CAST('9.0' AS DOUBLE) THEN CAST('100.0' AS DOUBLE) WHEN CAST(CAST(e."nps" AS BIGINT) AS DOUBLE) >= CAST('7.0' AS DOUBLE) THEN CAST('70.0' AS DOUBLE) WHEN CAST(CAST(e."nps" AS BIGINT) AS DOUBLE) >= CAST('5.0' AS DOUBLE) THEN CAST('30.0' AS DOUBLE) ELSE CAST('0.0' AS DOUBLE) END AS DOUBLE) AS kw_m6,
    concat('NPS ', coalesce(CAST(CAST(e."nps" AS BIGINT) AS VARCHAR), 'none')) AS kw_r6,
    CAST(CASE WHEN CAST(CAST(e."csat" AS BIGINT) AS DOUBLE) IS NULL THEN NULL WHEN CAST(CAST(e."csat" AS BIGINT) AS DOUBLE) >= CAST('4.0' AS DOUBLE) THEN CAST('100.0' AS DOUBLE) WHEN CAST(CAST(e."csat" AS BIGINT) AS DOUBLE) >= CAST('3.0' AS DOUBLE) THEN CAST('60.0' AS DOUBLE) ELSE CAST('10.0' AS DOUBLE) END AS DOUBLE) AS kw_m7,
    concat('CSAT ', coalesce(CAST(CAST(e."csat" AS BIGINT) AS VARCHAR), 'none'), ' of 5') AS kw_r7,
    CAST(CASE WHEN CAST(CAST(e."meetings_90d" AS BIGINT) AS DOUBLE) IS NULL THEN NULL WHEN CAST(CAST(e."meetings_90d" AS BIGINT) AS DOUBLE) >= CAST('3.0' AS DOUBLE) THEN CAST('100.0' AS DOUBLE) WHEN CAST(CAST(e."meetings_90d" AS BIGINT) AS DOUBLE) >= CAST('1.0' AS DOUBLE) THEN CAST('60.0' AS DOUBLE) ELSE CAST('20.0' AS DOUBLE) END AS DOUBLE) AS kw_m8,
    concat(coalesce(CAST(CAST(e."meetings_90d" AS BIGINT) AS VARCHAR), 'none'), ' meeting(s) in 90 days') AS kw_r8,
    CAST(CASE WHEN CAST(CAST(CAST(DATE '2026-11-23' AS DATE) - CAST(e."last_qbr_on" AS DATE) AS BIGINT) AS DOUBLE) IS NULL THEN NULL WHEN CAST(CAST(CAST(DATE '2026-11-23' AS DATE) - CAST(e."last_qbr_on" AS DATE) AS BIGINT) AS DOUBLE) >= CAST('180.0' AS DOUBLE) THEN CAST('0.0' AS DOUBLE) WHEN CAST(CAST(CAST(DATE '2026-11-23' AS DATE) - CAST(e."last_qbr_on" AS DATE) AS BIGINT) AS DOUBLE) >= CAST('100.0' AS DOUBLE) THEN CAST('50.0' AS DOUBLE) ELSE CAST('100.0' AS DOUBLE) END AS DOUBLE) AS kw_m9,
    concat('last QBR on ', coalesce(strftime(CAST(e."last_qbr_on" AS DATE), '%Y-%m-%d'), 'none')) AS kw_r9,
    CAST(CASE WHEN CAST(CAST(e."implementation_csat" AS BIGINT) AS DOUBLE) IS NULL THEN NULL WHEN CAST(CAST(e."implementation_csat" AS BIGINT) AS DOUBLE) >= CAST('4.0' AS DOUBLE) THEN CAST('100.0' AS DOUBLE) WHEN CAST(CAST(e."implementation_csat" AS BIGINT) AS DOUBLE) >= CAST('3.0' AS DOUBLE) THEN CAST('60.0' AS DOUBLE) ELSE CAST('10.0' AS DOUBLE) END AS DOUBLE) AS kw_m10,
    concat('implementation rated ', coalesce(CAST(CAST(e."implementation_csat" AS BIGINT) AS VARCHAR), 'none'), ' of 5') AS kw_r10,
    (CAST(CAST(e."csm_sentiment" AS VARCHAR) AS VARCHAR) IS NOT NULL AND CAST(CAST(e."csm_sentiment" AS VARCHAR) AS VARCHAR) NOT IN ('green', 'yellow', 'red')) AS kw_x11,
    CAST(CASE WHEN CAST(CAST(e."csm_sentiment" AS VARCHAR) AS VARCHAR) IS NULL THEN NULL WHEN CAST(CAST(e."csm_sentiment" AS VARCHAR) AS VARCHAR) = 'green' THEN CAST('100.0' AS DOUBLE) WHEN CAST(CAST(e."csm_sentiment" AS VARCHAR) AS VARCHAR) = 'yellow' THEN CAST('50.0' AS DOUBLE) WHEN CAST(CAST(e."csm_sentiment" AS VARCHAR) AS VARCHAR) = 'red' THEN CAST('0.0' AS DOUBLE) END AS DOUBLE) AS kw_m11,
    concat('CSM sentiment ', coalesce(CAST(e."csm_sentiment" AS VARCHAR), 'none')) AS kw_r11
  FROM kw_entity e
  ) kw_1
  ) kw_2
) kw_3;

CREATE OR REPLACE TEMP TABLE "kw_rs_impact" AS
SELECT kw_key, score, coalesce(kw_grade, CASE WHEN score IS NULL THEN NULL END) AS grade, fired, tags, reasons
FROM (
  SELECT kw_key, CASE WHEN kw_total IS NULL THEN NULL WHEN kw_total < CAST('-inf' AS DOUBLE) THEN CAST('-inf' AS DOUBLE) WHEN kw_total > CAST('inf' AS DOUBLE) THEN CAST('inf' AS DOUBLE) ELSE kw_total END AS score, kw_grade, fired, tags, reasons
  FROM (
  SELECT kw_key, CAST(NULL AS DOUBLE) AS kw_total, CASE WHEN kw_f0 THEN '1' WHEN kw_f1 THEN '3' ELSE '2' END AS kw_grade, CASE WHEN kw_f0 THEN ['1'] WHEN kw_f1 THEN ['3'] ELSE CAST([] AS VARCHAR[]) END AS fired, CAST([] AS VARCHAR[]) AS tags, CASE WHEN kw_f0 THEN [kw_r0] WHEN kw_f1 THEN [kw_r1] ELSE CAST([] AS VARCHAR[]) END AS reasons
  FROM (
  SELECT
    e."account_id" AS kw_key,
    (CASE WHEN CAST(e."industry" AS VARCHAR) IN ('travel', 'hospitality', 'restaurants', 'retail', 'energy', 'recruiting') THEN true ELSE false END) AS kw_f0,
    concat('category 1: ', coalesce(CAST(e."industry" AS VARCHAR), 'none'), ' is directly hurt') AS kw_r0,
    (CASE WHEN CAST(e."industry" AS VARCHAR) IN ('healthcare', 'remote_work', 'video_conferencing', 'logistics', 'ecommerce') THEN true ELSE false END) AS kw_f1,
    concat('category 3: ', coalesce(CAST(e."industry" AS VARCHAR), 'none'), ' is structurally helped') AS kw_r1
  FROM kw_entity e
  ) kw_1
  ) kw_2
) kw_3;

CREATE OR REPLACE TEMP TABLE "kw_rs_expansion" AS
SELECT kw_key, score, coalesce(kw_grade, CASE WHEN score IS NULL THEN NULL WHEN score >= CAST('50.0' AS DOUBLE) THEN 'ready' WHEN score >= CAST('20.0' AS DOUBLE) THEN 'developing' ELSE 'not_now' END) AS grade, fired, tags, reasons
FROM (
  SELECT kw_key, CASE WHEN kw_total IS NULL THEN NULL WHEN kw_total < CAST('0.0' AS DOUBLE) THEN CAST('0.0' AS DOUBLE) WHEN kw_total > CAST('100.0' AS DOUBLE) THEN CAST('100.0' AS DOUBLE) ELSE kw_total END AS score, kw_grade, fired, tags, reasons
  FROM (
  SELECT kw_key, ((((CAST('0.0' AS DOUBLE) + CASE WHEN kw_f0 THEN CAST('40.0' AS DOUBLE) ELSE 0.0 END) + CASE WHEN kw_f1 THEN kw_p1 ELSE 0.0 END) + CASE WHEN kw_f2 THEN CAST('40.0' AS DOUBLE) ELSE 0.0 END) + CASE WHEN kw_f3 THEN CAST('-100.0' AS DOUBLE) ELSE 0.0 END) AS kw_total, CAST(NULL AS VARCHAR) AS kw_grade, flatten([CASE WHEN kw_f0 THEN ['over_entitlement'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f1 THEN ['eligible_modules'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f2 THEN ['green_with_open_upsell'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f3 THEN ['not_while_red'] ELSE CAST([] AS VARCHAR[]) END]) AS fired, flatten([CASE WHEN kw_f0 THEN ['seats'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f1 THEN ['modules'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f2 THEN ['upsell'] ELSE CAST([] AS VARCHAR[]) END]) AS tags, flatten([CASE WHEN kw_f0 THEN [kw_r0] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f1 THEN [kw_r1] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f2 THEN [kw_r2] ELSE CAST([] AS VARCHAR[]) END]) AS reasons
  FROM (
  SELECT
    e."account_id" AS kw_key,
    (CASE WHEN (CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) BETWEEN CAST('100.00000000000003' AS DOUBLE) AND CAST('1.7976931348623157e308' AS DOUBLE)) THEN true ELSE false END) AS kw_f0,
    concat((CASE WHEN CAST(e."active_users" AS DOUBLE) IS NULL THEN 'none' WHEN abs(CAST(e."active_users" AS DOUBLE)) < 1e15 AND CAST(e."active_users" AS DOUBLE) % 1 = 0 THEN CAST(CAST(CAST(e."active_users" AS DOUBLE) AS BIGINT) AS VARCHAR) ELSE CAST(CAST(e."active_users" AS DOUBLE) AS VARCHAR) END), ' active users on ', coalesce(CAST(CAST(e."seats" AS BIGINT) AS VARCHAR), 'none'), ' seats') AS kw_r0,
    (CASE WHEN (CAST(e."eligible_modules_not_owned" AS BIGINT) > CAST(0 AS BIGINT) AND "kw_rs_health"."grade" <> 'red') THEN true ELSE false END) AS kw_f1,
    coalesce(CAST(CAST((CAST(10 AS BIGINT) * (CASE WHEN CAST(e."eligible_modules_not_owned" AS BIGINT) IS NULL OR CAST(3 AS BIGINT) IS NULL THEN NULL ELSE least(CAST(e."eligible_modules_not_owned" AS BIGINT), CAST(3 AS BIGINT)) END)) AS DOUBLE) AS DOUBLE), 0.0) AS kw_p1,
    concat('could add ', coalesce(array_to_string(e."modules_not_owned", ', '), '')) AS kw_r1,
    (CASE WHEN ("kw_rs_health"."grade" = 'green' AND CAST(e."open_upsells" AS BIGINT) > CAST(0 AS BIGINT)) THEN true ELSE false END) AS kw_f2,
    concat('green, with an open upsell worth ', concat(CASE WHEN round(coalesce(CAST(CAST(e."open_upsell_amount" AS DOUBLE) AS DOUBLE), 0.0)) < 0 THEN '-' ELSE '' END, '$', format('{:,}', abs(CAST(round(coalesce(CAST(CAST(e."open_upsell_amount" AS DOUBLE) AS DOUBLE), 0.0)) AS BIGINT))))) AS kw_r2,
    (CASE WHEN "kw_rs_health"."grade" = 'red' THEN true ELSE false END) AS kw_f3
  FROM kw_entity e
    LEFT JOIN "kw_rs_health" ON "kw_rs_health".kw_key = e."account_id"
  ) kw_1
  ) kw_2
) kw_3;

CREATE OR REPLACE TEMP TABLE "kw_rs_forecast" AS
SELECT kw_key, score, coalesce(kw_grade, CASE WHEN score IS NULL THEN NULL WHEN score >= CAST('90.0' AS DOUBLE) THEN 'retain' WHEN score >= CAST('60.0' AS DOUBLE) THEN 'shrink' ELSE 'churn' END) AS grade, fired, tags, reasons
FROM (
  SELECT kw_key, CASE WHEN kw_total IS NULL THEN NULL WHEN kw_total < CAST('-inf' AS DOUBLE) THEN CAST('-inf' AS DOUBLE) WHEN kw_total > CAST('inf' AS DOUBLE) THEN CAST('inf' AS DOUBLE) ELSE kw_total END AS score, kw_grade, fired, tags, reasons
  FROM (
  SELECT kw_key, kw_s AS kw_total, kw_g AS kw_grade, kw_fired AS fired, kw_tags AS tags, kw_reasons AS reasons
  FROM (
  SELECT
    e."account_id" AS kw_key,
    CAST((coalesce(((CASE WHEN ((e."expected_churn" = true) IS TRUE) THEN CAST(0 AS BIGINT) ELSE (MAP {'1_green': CAST(CAST(75 AS BIGINT) AS BIGINT), '1_red': CAST(CAST(40 AS BIGINT) AS BIGINT), '1_yellow': CAST(CAST(60 AS BIGINT) AS BIGINT), '2_green': CAST(CAST(95 AS BIGINT) AS BIGINT), '2_red': CAST(CAST(60 AS BIGINT) AS BIGINT), '2_yellow': CAST(CAST(80 AS BIGINT) AS BIGINT), '3_green': CAST(CAST(108 AS BIGINT) AS BIGINT), '3_red': CAST(CAST(85 AS BIGINT) AS BIGINT), '3_yellow': CAST(CAST(98 AS BIGINT) AS BIGINT)}[concat(coalesce("kw_rs_impact"."grade", ''), coalesce('_', ''), coalesce((coalesce("kw_rs_health"."grade", 'yellow')), ''))]) END)), CAST(100 AS BIGINT))) AS DOUBLE) AS kw_s,
    CAST(NULL AS VARCHAR) AS kw_g,
    CAST([] AS VARCHAR[]) AS kw_fired,
    coalesce((CASE WHEN (coalesce(((CASE WHEN ((e."expected_churn" = true) IS TRUE) THEN CAST(0 AS BIGINT) ELSE (MAP {'1_green': CAST(CAST(75 AS BIGINT) AS BIGINT), '1_red': CAST(CAST(40 AS BIGINT) AS BIGINT), '1_yellow': CAST(CAST(60 AS BIGINT) AS BIGINT), '2_green': CAST(CAST(95 AS BIGINT) AS BIGINT), '2_red': CAST(CAST(60 AS BIGINT) AS BIGINT), '2_yellow': CAST(CAST(80 AS BIGINT) AS BIGINT), '3_green': CAST(CAST(108 AS BIGINT) AS BIGINT), '3_red': CAST(CAST(85 AS BIGINT) AS BIGINT), '3_yellow': CAST(CAST(98 AS BIGINT) AS BIGINT)}[concat(coalesce("kw_rs_impact"."grade", ''), coalesce('_', ''), coalesce((coalesce("kw_rs_health"."grade", 'yellow')), ''))]) END)), CAST(100 AS BIGINT))) < CAST(100 AS BIGINT) THEN CAST([coalesce(CAST('churn_risk' AS VARCHAR), '')] AS VARCHAR[]) ELSE CAST([coalesce(CAST('growth' AS VARCHAR), '')] AS VARCHAR[]) END), CAST([] AS VARCHAR[])) AS kw_tags,
    coalesce(CAST([coalesce(CAST(concat(coalesce('expects to keep ', ''), coalesce((CASE WHEN round(CAST(((CAST((coalesce(CAST(e."arr" AS DOUBLE), CAST('0.0' AS DOUBLE)) * (coalesce(((CASE WHEN ((e."expected_churn" = true) IS TRUE) THEN CAST(0 AS BIGINT) ELSE (MAP {'1_green': CAST(CAST(75 AS BIGINT) AS BIGINT), '1_red': CAST(CAST(40 AS BIGINT) AS BIGINT), '1_yellow': CAST(CAST(60 AS BIGINT) AS BIGINT), '2_green': CAST(CAST(95 AS BIGINT) AS BIGINT), '2_red': CAST(CAST(60 AS BIGINT) AS BIGINT), '2_yellow': CAST(CAST(80 AS BIGINT) AS BIGINT), '3_green': CAST(CAST(108 AS BIGINT) AS BIGINT), '3_red': CAST(CAST(85 AS BIGINT) AS BIGINT), '3_yellow': CAST(CAST(98 AS BIGINT) AS BIGINT)}[concat(coalesce("kw_rs_impact"."grade", ''), coalesce('_', ''), coalesce((coalesce("kw_rs_health"."grade", 'yellow')), ''))]) END)), CAST(100 AS BIGINT)))) AS DOUBLE) / nullif(CAST(CAST(100 AS BIGINT) AS DOUBLE), 0))) AS DOUBLE)) IS NULL THEN '' ELSE (CASE WHEN round(CAST(((CAST((coalesce(CAST(e."arr" AS DOUBLE), CAST('0.0' AS DOUBLE)) * (coalesce(((CASE WHEN ((e."expected_churn" = true) IS TRUE) THEN CAST(0 AS BIGINT) ELSE (MAP {'1_green': CAST(CAST(75 AS BIGINT) AS BIGINT), '1_red': CAST(CAST(40 AS BIGINT) AS BIGINT), '1_yellow': CAST(CAST(60 AS BIGINT) AS BIGINT), '2_green': CAST(CAST(95 AS BIGINT) AS BIGINT), '2_red': CAST(CAST(60 AS BIGINT) AS BIGINT), '2_yellow': CAST(CAST(80 AS BIGINT) AS BIGINT), '3_green': CAST(CAST(108 AS BIGINT) AS BIGINT), '3_red': CAST(CAST(85 AS BIGINT) AS BIGINT), '3_yellow': CAST(CAST(98 AS BIGINT) AS BIGINT)}[concat(coalesce("kw_rs_impact"."grade", ''), coalesce('_', ''), coalesce((coalesce("kw_rs_health"."grade", 'yellow')), ''))]) END)), CAST(100 AS BIGINT)))) AS DOUBLE) / nullif(CAST(CAST(100 AS BIGINT) AS DOUBLE), 0))) AS DOUBLE)) < 0 THEN '-' ELSE '' END) || '$' || format('{:,}', abs(CAST(round(CAST(((CAST((coalesce(CAST(e."arr" AS DOUBLE), CAST('0.0' AS DOUBLE)) * (coalesce(((CASE WHEN ((e."expected_churn" = true) IS TRUE) THEN CAST(0 AS BIGINT) ELSE (MAP {'1_green': CAST(CAST(75 AS BIGINT) AS BIGINT), '1_red': CAST(CAST(40 AS BIGINT) AS BIGINT), '1_yellow': CAST(CAST(60 AS BIGINT) AS BIGINT), '2_green': CAST(CAST(95 AS BIGINT) AS BIGINT), '2_red': CAST(CAST(60 AS BIGINT) AS BIGINT), '2_yellow': CAST(CAST(80 AS BIGINT) AS BIGINT), '3_green': CAST(CAST(108 AS BIGINT) AS BIGINT), '3_red': CAST(CAST(85 AS BIGINT) AS BIGINT), '3_yellow': CAST(CAST(98 AS BIGINT) AS BIGINT)}[concat(coalesce("kw_rs_impact"."grade", ''), coalesce('_', ''), coalesce((coalesce("kw_rs_health"."grade", 'yellow')), ''))]) END)), CAST(100 AS BIGINT)))) AS DOUBLE) / nullif(CAST(CAST(100 AS BIGINT) AS DOUBLE), 0))) AS DOUBLE)) AS BIGINT))) END), ''), coalesce(' of ', ''), coalesce((CASE WHEN round(CAST(coalesce(CAST(e."arr" AS DOUBLE), CAST('0.0' AS DOUBLE)) AS DOUBLE)) IS NULL THEN '' ELSE (CASE WHEN round(CAST(coalesce(CAST(e."arr" AS DOUBLE), CAST('0.0' AS DOUBLE)) AS DOUBLE)) < 0 THEN '-' ELSE '' END) || '$' || format('{:,}', abs(CAST(round(CAST(coalesce(CAST(e."arr" AS DOUBLE), CAST('0.0' AS DOUBLE)) AS DOUBLE)) AS BIGINT))) END), ''), coalesce(' ARR (', ''), coalesce(CAST((coalesce(((CASE WHEN ((e."expected_churn" = true) IS TRUE) THEN CAST(0 AS BIGINT) ELSE (MAP {'1_green': CAST(CAST(75 AS BIGINT) AS BIGINT), '1_red': CAST(CAST(40 AS BIGINT) AS BIGINT), '1_yellow': CAST(CAST(60 AS BIGINT) AS BIGINT), '2_green': CAST(CAST(95 AS BIGINT) AS BIGINT), '2_red': CAST(CAST(60 AS BIGINT) AS BIGINT), '2_yellow': CAST(CAST(80 AS BIGINT) AS BIGINT), '3_green': CAST(CAST(108 AS BIGINT) AS BIGINT), '3_red': CAST(CAST(85 AS BIGINT) AS BIGINT), '3_yellow': CAST(CAST(98 AS BIGINT) AS BIGINT)}[concat(coalesce("kw_rs_impact"."grade", ''), coalesce('_', ''), coalesce((coalesce("kw_rs_health"."grade", 'yellow')), ''))]) END)), CAST(100 AS BIGINT))) AS VARCHAR), ''), coalesce('%)', ''), coalesce(((CASE WHEN ((e."expected_churn" = true) IS TRUE) THEN ': marked as expected churn' ELSE '' END)), '')) AS VARCHAR), '')] AS VARCHAR[]), CAST([] AS VARCHAR[])) AS kw_reasons
  FROM kw_entity e
    LEFT JOIN "kw_rs_health" ON "kw_rs_health".kw_key = e."account_id"
    LEFT JOIN "kw_rs_impact" ON "kw_rs_impact".kw_key = e."account_id"
  ) kw_1
  ) kw_2
) kw_3;

CREATE OR REPLACE TEMP TABLE "kw_rs_stage" AS
SELECT kw_key, score, coalesce(kw_grade, CASE WHEN score IS NULL THEN NULL END) AS grade, fired, tags, reasons
FROM (
  SELECT kw_key, CASE WHEN kw_total IS NULL THEN NULL WHEN kw_total < CAST('-inf' AS DOUBLE) THEN CAST('-inf' AS DOUBLE) WHEN kw_total > CAST('inf' AS DOUBLE) THEN CAST('inf' AS DOUBLE) ELSE kw_total END AS score, kw_grade, fired, tags, reasons
  FROM (
  SELECT kw_key, CAST(NULL AS DOUBLE) AS kw_total, CASE WHEN kw_f0 THEN 'implementing' WHEN kw_f1 THEN 'defending' WHEN kw_f2 THEN 'growing' ELSE 'maturing' END AS kw_grade, CASE WHEN kw_f0 THEN ['implementing'] WHEN kw_f1 THEN ['defending'] WHEN kw_f2 THEN ['growing'] ELSE CAST([] AS VARCHAR[]) END AS fired, CAST([] AS VARCHAR[]) AS tags, CASE WHEN kw_f0 THEN [kw_r0] WHEN kw_f1 THEN [kw_r1] WHEN kw_f2 THEN [kw_r2] ELSE CAST([] AS VARCHAR[]) END AS reasons
  FROM (
  SELECT
    e."account_id" AS kw_key,
    (CASE WHEN (CAST(e."go_live_on" AS DATE) IS NULL) THEN true ELSE false END) AS kw_f0,
    concat('not live after ', coalesce(CAST(CAST(e."tenure_days" AS BIGINT) AS VARCHAR), 'none'), ' days') AS kw_r0,
    (CASE WHEN (e."expected_churn" = true OR "kw_rs_health"."grade" = 'red' OR CAST(CAST(DATE '2026-11-23' AS DATE) - CAST(e."champion_left_on" AS DATE) AS BIGINT) <= CAST(90 AS BIGINT) OR ((CAST(e."nps" AS BIGINT) IS NOT NULL) AND CAST(e."nps" AS BIGINT) <= CAST(4 AS BIGINT))) THEN true ELSE false END) AS kw_f1,
    concat('defending: health ', coalesce("kw_rs_health"."grade", 'none'), (CASE WHEN CAST(e."champion_left_on" AS DATE) IS NOT NULL THEN concat(', champion left ', coalesce(strftime(CAST(e."champion_left_on" AS DATE), '%Y-%m-%d'), 'none')) ELSE '' END)) AS kw_r1,
    (CASE WHEN ("kw_rs_health"."grade" = 'green' AND (CAST(e."open_upsells" AS BIGINT) > CAST(0 AS BIGINT) OR (CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) BETWEEN CAST('100.00000000000003' AS DOUBLE) AND CAST('1.7976931348623157e308' AS DOUBLE)))) THEN true ELSE false END) AS kw_f2,
    concat('growing: ', (CASE WHEN coalesce(CAST(e."open_upsells" AS BIGINT) <> 0, false) THEN concat('open upsell') ELSE concat('usage above entitlement') END)) AS kw_r2
  FROM kw_entity e
    LEFT JOIN "kw_rs_health" ON "kw_rs_health".kw_key = e."account_id"
  ) kw_1
  ) kw_2
) kw_3;

CREATE OR REPLACE TEMP TABLE "kw_rs_adoption" AS
SELECT kw_key, score, coalesce(kw_grade, CASE WHEN score IS NULL THEN NULL WHEN score >= CAST('40.0' AS DOUBLE) THEN 'off_track' WHEN score >= CAST('20.0' AS DOUBLE) THEN 'watch' ELSE 'on_track' END) AS grade, fired, tags, reasons
FROM (
  SELECT kw_key, CASE WHEN kw_total IS NULL THEN NULL WHEN kw_total < CAST('0.0' AS DOUBLE) THEN CAST('0.0' AS DOUBLE) WHEN kw_total > CAST('100.0' AS DOUBLE) THEN CAST('100.0' AS DOUBLE) ELSE kw_total END AS score, kw_grade, fired, tags, reasons
  FROM (
  SELECT kw_key, (((((CAST('0.0' AS DOUBLE) + CASE WHEN kw_f0 THEN CAST('40.0' AS DOUBLE) ELSE 0.0 END) + CASE WHEN kw_f1 THEN CAST('10.0' AS DOUBLE) ELSE 0.0 END) + CASE WHEN kw_f2 THEN CAST('25.0' AS DOUBLE) ELSE 0.0 END) + CASE WHEN kw_f3 THEN CAST('20.0' AS DOUBLE) ELSE 0.0 END) + CASE WHEN kw_f4 THEN CAST('25.0' AS DOUBLE) ELSE 0.0 END) AS kw_total, CAST(NULL AS VARCHAR) AS kw_grade, flatten([CASE WHEN kw_f0 THEN ['past_ttfv_benchmark'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f1 THEN ['slow_ttfv'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f2 THEN ['under_use'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f3 THEN ['downsell_risk'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f4 THEN ['usage_falling'] ELSE CAST([] AS VARCHAR[]) END]) AS fired, flatten([CASE WHEN kw_f0 THEN ['ttfv'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f1 AND NOT (kw_f0) THEN ['ttfv'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f2 THEN ['downsell'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f3 AND NOT (kw_f2) THEN ['downsell'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f4 THEN ['usage'] ELSE CAST([] AS VARCHAR[]) END]) AS tags, flatten([CASE WHEN kw_f0 THEN [kw_r0] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f1 THEN [kw_r1] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f2 THEN [kw_r2] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f3 THEN [kw_r3] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f4 THEN [kw_r4] ELSE CAST([] AS VARCHAR[]) END]) AS reasons
  FROM (
  SELECT
    e."account_id" AS kw_key,
    (CASE WHEN ((CAST(e."first_value_on" AS DATE) IS NULL) AND CAST(e."tenure_days" AS BIGINT) > (MAP {'engaged_stakeholders': CAST(CAST(3 AS BIGINT) AS BIGINT), 'implementation_days': CAST(CAST(120 AS BIGINT) AS BIGINT), 'onboarding_days': CAST(CAST(180 AS BIGINT) AS BIGINT), 'ttfv_days': CAST(CAST(60 AS BIGINT) AS BIGINT)}['ttfv_days'])) THEN true ELSE false END) AS kw_f0,
    concat('no first value after ', coalesce(CAST(CAST(e."tenure_days" AS BIGINT) AS VARCHAR), 'none'), ' days') AS kw_r0,
    (CASE WHEN CAST(e."ttfv_days" AS BIGINT) > (MAP {'engaged_stakeholders': CAST(CAST(3 AS BIGINT) AS BIGINT), 'implementation_days': CAST(CAST(120 AS BIGINT) AS BIGINT), 'onboarding_days': CAST(CAST(180 AS BIGINT) AS BIGINT), 'ttfv_days': CAST(CAST(60 AS BIGINT) AS BIGINT)}['ttfv_days']) THEN true ELSE false END) AS kw_f1,
    concat('first value took ', coalesce(CAST(CAST(e."ttfv_days" AS BIGINT) AS VARCHAR), 'none'), ' days') AS kw_r1,
    (CASE WHEN ("kw_rs_stage"."grade" <> 'implementing' AND (CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) BETWEEN CAST('-1.7976931348623157e308' AS DOUBLE) AND CAST('34.999999999999986' AS DOUBLE))) THEN true ELSE false END) AS kw_f2,
    concat((CASE WHEN CAST(e."seat_utilisation" AS DOUBLE) IS NULL THEN 'none' WHEN abs(CAST(e."seat_utilisation" AS DOUBLE)) < 1e15 AND CAST(e."seat_utilisation" AS DOUBLE) % 1 = 0 THEN CAST(CAST(CAST(e."seat_utilisation" AS DOUBLE) AS BIGINT) AS VARCHAR) ELSE CAST(CAST(e."seat_utilisation" AS DOUBLE) AS VARCHAR) END), '% of seats used') AS kw_r2,
    (CASE WHEN ((CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) BETWEEN CAST('-1.7976931348623157e308' AS DOUBLE) AND CAST('34.999999999999986' AS DOUBLE)) AND CAST(e."days_to_renewal" AS BIGINT) <= CAST(120 AS BIGINT) AND CAST(e."days_to_renewal" AS BIGINT) >= CAST(0 AS BIGINT)) THEN true ELSE false END) AS kw_f3,
    concat('under-used with renewal in ', coalesce(CAST(CAST(e."days_to_renewal" AS BIGINT) AS VARCHAR), 'none'), ' days: downsell risk') AS kw_r3,
    (CASE WHEN (CAST(CAST(e."usage_trend_pct" AS DOUBLE) AS DOUBLE) BETWEEN CAST('-1.7976931348623157e308' AS DOUBLE) AND CAST('-24.999999999999996' AS DOUBLE)) THEN true ELSE false END) AS kw_f4,
    concat('active users down ', (CASE WHEN (- CAST(e."usage_trend_pct" AS DOUBLE)) IS NULL THEN 'none' WHEN abs((- CAST(e."usage_trend_pct" AS DOUBLE))) < 1e15 AND (- CAST(e."usage_trend_pct" AS DOUBLE)) % 1 = 0 THEN CAST(CAST((- CAST(e."usage_trend_pct" AS DOUBLE)) AS BIGINT) AS VARCHAR) ELSE CAST((- CAST(e."usage_trend_pct" AS DOUBLE)) AS VARCHAR) END), '% in two weeks') AS kw_r4
  FROM kw_entity e
    LEFT JOIN "kw_rs_stage" ON "kw_rs_stage".kw_key = e."account_id"
  ) kw_1
  ) kw_2
) kw_3;

CREATE OR REPLACE TEMP TABLE "kw_rs_risk" AS
SELECT kw_key, score, coalesce(kw_grade, CASE WHEN score IS NULL THEN NULL WHEN score >= CAST('50.0' AS DOUBLE) THEN 'high' WHEN score >= CAST('25.0' AS DOUBLE) THEN 'medium' ELSE 'low' END) AS grade, fired, tags, reasons
FROM (
  SELECT kw_key, CASE WHEN kw_total IS NULL THEN NULL WHEN kw_total < CAST('0.0' AS DOUBLE) THEN CAST('0.0' AS DOUBLE) WHEN kw_total > CAST('100.0' AS DOUBLE) THEN CAST('100.0' AS DOUBLE) ELSE kw_total END AS score, kw_grade, fired, tags, reasons
  FROM (
  SELECT kw_key, (((((((((CAST('0.0' AS DOUBLE) + CASE WHEN kw_f0 THEN CAST('30.0' AS DOUBLE) ELSE 0.0 END) + CASE WHEN kw_f1 THEN CAST('-10.0' AS DOUBLE) ELSE 0.0 END) + CASE WHEN kw_f2 THEN kw_p2 ELSE 0.0 END) + CASE WHEN kw_f3 THEN CAST('30.0' AS DOUBLE) ELSE 0.0 END) + CASE WHEN kw_f4 THEN CAST('15.0' AS DOUBLE) ELSE 0.0 END) + CASE WHEN kw_f5 THEN CAST('-10.0' AS DOUBLE) ELSE 0.0 END) + CASE WHEN kw_f6 THEN CAST('15.0' AS DOUBLE) ELSE 0.0 END) + CASE WHEN kw_f7 THEN CAST('25.0' AS DOUBLE) ELSE 0.0 END) + CASE WHEN kw_f8 THEN CAST('50.0' AS DOUBLE) ELSE 0.0 END) AS kw_total, CAST(NULL AS VARCHAR) AS kw_grade, flatten([CASE WHEN kw_f0 THEN ['hard_hit_industry'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f1 THEN ['resilient_industry'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f2 THEN ['regional_exposure'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f3 THEN ['short_runway'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f4 THEN ['limited_runway'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f5 THEN ['cash_rich'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f6 THEN ['renewal_this_quarter'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f7 THEN ['long_implementation'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f8 THEN ['expected_churn'] ELSE CAST([] AS VARCHAR[]) END]) AS fired, flatten([CASE WHEN kw_f0 THEN ['industry'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f1 AND NOT (kw_f0) THEN ['industry'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f2 THEN ['geography'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f3 THEN ['cash'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f4 AND NOT (kw_f3) THEN ['cash'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f5 AND NOT (kw_f3 OR kw_f4) THEN ['cash'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f6 THEN ['renewal'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f7 THEN ['journey'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f8 THEN ['forecast'] ELSE CAST([] AS VARCHAR[]) END]) AS tags, flatten([CASE WHEN kw_f0 THEN [kw_r0] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f2 THEN [kw_r2] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f3 THEN [kw_r3] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f4 THEN [kw_r4] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f6 THEN [kw_r6] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f7 THEN [kw_r7] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f8 THEN [kw_r8] ELSE CAST([] AS VARCHAR[]) END]) AS reasons
  FROM (
  SELECT
    e."account_id" AS kw_key,
    (CASE WHEN "kw_rs_impact"."grade" = '1' THEN true ELSE false END) AS kw_f0,
    concat(coalesce(CAST(e."industry" AS VARCHAR), 'none'), ' is among the industries hit hardest in a downturn') AS kw_r0,
    (CASE WHEN "kw_rs_impact"."grade" = '3' THEN true ELSE false END) AS kw_f1,
    (CASE WHEN (MAP {'AU': CAST(CAST(5 AS BIGINT) AS BIGINT), 'BR': CAST(CAST(20 AS BIGINT) AS BIGINT), 'CA': CAST(CAST(0 AS BIGINT) AS BIGINT), 'DE': CAST(CAST(5 AS BIGINT) AS BIGINT), 'ES': CAST(CAST(10 AS BIGINT) AS BIGINT), 'FR': CAST(CAST(5 AS BIGINT) AS BIGINT), 'GB': CAST(CAST(5 AS BIGINT) AS BIGINT), 'IN': CAST(CAST(10 AS BIGINT) AS BIGINT), 'IT': CAST(CAST(10 AS BIGINT) AS BIGINT), 'JP': CAST(CAST(5 AS BIGINT) AS BIGINT), 'MX': CAST(CAST(15 AS BIGINT) AS BIGINT), 'NL': CAST(CAST(0 AS BIGINT) AS BIGINT), 'SE': CAST(CAST(0 AS BIGINT) AS BIGINT), 'US': CAST(CAST(0 AS BIGINT) AS BIGINT)}[CAST(e."country" AS VARCHAR)]) > CAST(0 AS BIGINT) THEN true ELSE false END) AS kw_f2,
    coalesce(CAST(CAST((MAP {'AU': CAST(CAST(5 AS BIGINT) AS BIGINT), 'BR': CAST(CAST(20 AS BIGINT) AS BIGINT), 'CA': CAST(CAST(0 AS BIGINT) AS BIGINT), 'DE': CAST(CAST(5 AS BIGINT) AS BIGINT), 'ES': CAST(CAST(10 AS BIGINT) AS BIGINT), 'FR': CAST(CAST(5 AS BIGINT) AS BIGINT), 'GB': CAST(CAST(5 AS BIGINT) AS BIGINT), 'IN': CAST(CAST(10 AS BIGINT) AS BIGINT), 'IT': CAST(CAST(10 AS BIGINT) AS BIGINT), 'JP': CAST(CAST(5 AS BIGINT) AS BIGINT), 'MX': CAST(CAST(15 AS BIGINT) AS BIGINT), 'NL': CAST(CAST(0 AS BIGINT) AS BIGINT), 'SE': CAST(CAST(0 AS BIGINT) AS BIGINT), 'US': CAST(CAST(0 AS BIGINT) AS BIGINT)}[CAST(e."country" AS VARCHAR)]) AS DOUBLE) AS DOUBLE), 0.0) AS kw_p2,
    concat(coalesce(CAST(e."country" AS VARCHAR), 'none'), ' carries ', (CASE WHEN kw_p2 IS NULL THEN 'none' WHEN abs(kw_p2) < 1e15 AND kw_p2 % 1 = 0 THEN CAST(CAST(kw_p2 AS BIGINT) AS VARCHAR) ELSE CAST(kw_p2 AS VARCHAR) END), ' points of regional risk') AS kw_r2,
    (CASE WHEN (CAST(e."funding_stage" AS VARCHAR) IN ('seed', 'series_a', 'series_b') AND CAST(e."runway_months" AS BIGINT) < CAST(12 AS BIGINT)) THEN true ELSE false END) AS kw_f3,
    concat(coalesce(CAST(e."funding_stage" AS VARCHAR), 'none'), ' company with ', coalesce(CAST(CAST(e."runway_months" AS BIGINT) AS VARCHAR), 'none'), ' months of runway') AS kw_r3,
    (CASE WHEN (CAST(e."runway_months" AS BIGINT) >= CAST(12 AS BIGINT) AND CAST(e."runway_months" AS BIGINT) < CAST(18 AS BIGINT)) THEN true ELSE false END) AS kw_f4,
    concat('only ', coalesce(CAST(CAST(e."runway_months" AS BIGINT) AS VARCHAR), 'none'), ' months of runway') AS kw_r4,
    (CASE WHEN CAST(e."funding_stage" AS VARCHAR) IN ('public', 'multinational') THEN true ELSE false END) AS kw_f5,
    (CASE WHEN (coalesce(date_trunc('quarter', CAST(CAST(e."renewal_date" AS DATE) AS DATE)) = date_trunc('quarter', CAST(CAST(DATE '2026-11-23' AS DATE) AS DATE)), false) AND CAST(e."days_to_renewal" AS BIGINT) >= CAST(0 AS BIGINT)) THEN true ELSE false END) AS kw_f6,
    concat('renews this quarter, on ', coalesce(strftime(CAST(e."renewal_date" AS DATE), '%Y-%m-%d'), 'none')) AS kw_r6,
    (CASE WHEN ("kw_rs_stage"."grade" = 'implementing' AND CAST(e."tenure_days" AS BIGINT) > (MAP {'engaged_stakeholders': CAST(CAST(3 AS BIGINT) AS BIGINT), 'implementation_days': CAST(CAST(120 AS BIGINT) AS BIGINT), 'onboarding_days': CAST(CAST(180 AS BIGINT) AS BIGINT), 'ttfv_days': CAST(CAST(60 AS BIGINT) AS BIGINT)}['implementation_days'])) THEN true ELSE false END) AS kw_f7,
    concat('still implementing after ', coalesce(CAST(CAST(e."tenure_days" AS BIGINT) AS VARCHAR), 'none'), ' days') AS kw_r7,
    (CASE WHEN e."expected_churn" THEN true ELSE false END) AS kw_f8,
    concat('marked as expected churn', (CASE WHEN coalesce(CAST(e."expected_churn_note" AS VARCHAR), '') <> '' THEN concat(': ', coalesce(CAST(e."expected_churn_note" AS VARCHAR), 'none')) ELSE '' END)) AS kw_r8
  FROM kw_entity e
    LEFT JOIN "kw_rs_impact" ON "kw_rs_impact".kw_key = e."account_id"
    LEFT JOIN "kw_rs_stage" ON "kw_rs_stage".kw_key = e."account_id"
  ) kw_1
  ) kw_2
) kw_3;

CREATE OR REPLACE TEMP TABLE "kw_rs_signals" AS
SELECT kw_key, score, coalesce(kw_grade, CASE WHEN score IS NULL THEN NULL WHEN score >= CAST('40.0' AS DOUBLE) THEN 'alert' WHEN score >= CAST('15.0' AS DOUBLE) THEN 'watch' ELSE 'quiet' END) AS grade, fired, tags, reasons
FROM (
  SELECT kw_key, CASE WHEN kw_total IS NULL THEN NULL WHEN kw_total < CAST('0.0' AS DOUBLE) THEN CAST('0.0' AS DOUBLE) WHEN kw_total > CAST('100.0' AS DOUBLE) THEN CAST('100.0' AS DOUBLE) ELSE kw_total END AS score, kw_grade, fired, tags, reasons
  FROM (
  SELECT kw_key, (((((((((((CAST('0.0' AS DOUBLE) + CASE WHEN kw_f0 THEN CAST('30.0' AS DOUBLE) ELSE 0.0 END) + CASE WHEN kw_f1 THEN CAST('10.0' AS DOUBLE) ELSE 0.0 END) + CASE WHEN kw_f2 THEN CAST('15.0' AS DOUBLE) ELSE 0.0 END) + CASE WHEN kw_f3 THEN CAST('15.0' AS DOUBLE) ELSE 0.0 END) + CASE WHEN kw_f4 THEN CAST('15.0' AS DOUBLE) ELSE 0.0 END) + CASE WHEN kw_f5 THEN CAST('15.0' AS DOUBLE) ELSE 0.0 END) + CASE WHEN kw_f6 THEN CAST('15.0' AS DOUBLE) ELSE 0.0 END) + CASE WHEN kw_f7 THEN CAST('15.0' AS DOUBLE) ELSE 0.0 END) + CASE WHEN kw_f8 THEN CAST('20.0' AS DOUBLE) ELSE 0.0 END) + CASE WHEN kw_f9 THEN CAST('10.0' AS DOUBLE) ELSE 0.0 END) + CASE WHEN kw_f10 THEN CAST('10.0' AS DOUBLE) ELSE 0.0 END) AS kw_total, CAST(NULL AS VARCHAR) AS kw_grade, flatten([CASE WHEN kw_f0 THEN ['champion_left'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f1 THEN ['single_threaded'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f2 THEN ['new_executive_sponsor'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f3 THEN ['integration_gaps'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f4 THEN ['early_detractor'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f5 THEN ['outgrowing'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f6 THEN ['weak_price_to_value'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f7 THEN ['service_complaints'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f8 THEN ['failed_onboarding'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f9 THEN ['language_not_served'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f10 THEN ['change_not_led'] ELSE CAST([] AS VARCHAR[]) END]) AS fired, flatten([CASE WHEN kw_f0 THEN ['champion_change'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f1 AND NOT (kw_f0) THEN ['champion_change'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f2 THEN ['new_executive'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f3 THEN ['integration_gaps'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f4 THEN ['expectations'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f5 THEN ['scalability'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f6 THEN ['price_to_value'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f7 THEN ['service_quality'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f8 THEN ['failed_onboarding'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f9 THEN ['language'] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f10 THEN ['change_management'] ELSE CAST([] AS VARCHAR[]) END]) AS tags, flatten([CASE WHEN kw_f0 THEN [kw_r0] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f1 THEN [kw_r1] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f2 THEN [kw_r2] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f3 THEN [kw_r3] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f4 THEN [kw_r4] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f5 THEN [kw_r5] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f6 THEN [kw_r6] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f7 THEN [kw_r7] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f8 THEN [kw_r8] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f9 THEN [kw_r9] ELSE CAST([] AS VARCHAR[]) END, CASE WHEN kw_f10 THEN [kw_r10] ELSE CAST([] AS VARCHAR[]) END]) AS reasons
  FROM (
  SELECT
    e."account_id" AS kw_key,
    (CASE WHEN CAST(CAST(DATE '2026-11-23' AS DATE) - CAST(e."champion_left_on" AS DATE) AS BIGINT) <= CAST(90 AS BIGINT) THEN true ELSE false END) AS kw_f0,
    concat('champion left on ', coalesce(strftime(CAST(e."champion_left_on" AS DATE), '%Y-%m-%d'), 'none')) AS kw_r0,
    (CASE WHEN CAST(e."engaged_stakeholders" AS BIGINT) < (MAP {'engaged_stakeholders': CAST(CAST(3 AS BIGINT) AS BIGINT), 'implementation_days': CAST(CAST(120 AS BIGINT) AS BIGINT), 'onboarding_days': CAST(CAST(180 AS BIGINT) AS BIGINT), 'ttfv_days': CAST(CAST(60 AS BIGINT) AS BIGINT)}['engaged_stakeholders']) THEN true ELSE false END) AS kw_f1,
    concat(coalesce(CAST(CAST(e."engaged_stakeholders" AS BIGINT) AS VARCHAR), 'none'), ' engaged stakeholder(s), fewer than 3') AS kw_r1,
    (CASE WHEN CAST(CAST(DATE '2026-11-23' AS DATE) - CAST(e."sponsor_since" AS DATE) AS BIGINT) <= CAST(90 AS BIGINT) THEN true ELSE false END) AS kw_f2,
    concat('new executive sponsor since ', coalesce(strftime(CAST(e."sponsor_since" AS DATE), '%Y-%m-%d'), 'none')) AS kw_r2,
    (CASE WHEN CAST(e."integration_tickets_90d" AS BIGINT) >= CAST(2 AS BIGINT) THEN true ELSE false END) AS kw_f3,
    concat(coalesce(CAST(CAST(e."integration_tickets_90d" AS BIGINT) AS VARCHAR), 'none'), ' integration tickets in 90 days') AS kw_r3,
    (CASE WHEN (CAST(e."tenure_days" AS BIGINT) <= CAST(270 AS BIGINT) AND CAST(e."nps" AS BIGINT) <= CAST(6 AS BIGINT)) THEN true ELSE false END) AS kw_f4,
    concat('NPS ', coalesce(CAST(CAST(e."nps" AS BIGINT) AS VARCHAR), 'none'), ' within the first months') AS kw_r4,
    (CASE WHEN (CAST(e."performance_tickets_90d" AS BIGINT) >= CAST(2 AS BIGINT) OR ((CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) BETWEEN CAST('110.00000000000003' AS DOUBLE) AND CAST('1.7976931348623157e308' AS DOUBLE)) AND CAST(e."performance_tickets_90d" AS BIGINT) >= CAST(1 AS BIGINT))) THEN true ELSE false END) AS kw_f5,
    concat('performance tickets as usage grows') AS kw_r5,
    (CASE WHEN ((CAST(CAST(e."seat_utilisation" AS DOUBLE) AS DOUBLE) BETWEEN CAST('-1.7976931348623157e308' AS DOUBLE) AND CAST('39.999999999999986' AS DOUBLE)) AND (CAST(CAST(e."arr" AS DOUBLE) AS DOUBLE) BETWEEN CAST('49999.99999999999' AS DOUBLE) AND CAST('1.7976931348623157e308' AS DOUBLE))) THEN true ELSE false END) AS kw_f6,
    concat(concat(CASE WHEN round(coalesce(CAST(CAST(e."arr" AS DOUBLE) AS DOUBLE), 0.0)) < 0 THEN '-' ELSE '' END, '$', format('{:,}', abs(CAST(round(coalesce(CAST(CAST(e."arr" AS DOUBLE) AS DOUBLE), 0.0)) AS BIGINT)))), ' ARR for ', (CASE WHEN CAST(e."seat_utilisation" AS DOUBLE) IS NULL THEN 'none' WHEN abs(CAST(e."seat_utilisation" AS DOUBLE)) < 1e15 AND CAST(e."seat_utilisation" AS DOUBLE) % 1 = 0 THEN CAST(CAST(CAST(e."seat_utilisation" AS DOUBLE) AS BIGINT) AS VARCHAR) ELSE CAST(CAST(e."seat_utilisation" AS DOUBLE) AS VARCHAR) END), '% seat use') AS kw_r6,
    (CASE WHEN (CAST(e."complaints_90d" AS BIGINT) >= CAST(1 AS BIGINT) OR CAST(e."csat" AS BIGINT) <= CAST(2 AS BIGINT)) THEN true ELSE false END) AS kw_f7,
    concat('complaints about support (', coalesce(CAST(CAST(e."complaints_90d" AS BIGINT) AS VARCHAR), 'none'), ' in 90 days', (CASE WHEN coalesce(CAST(e."csat" AS BIGINT) <> 0, false) THEN concat(', CSAT ', coalesce(CAST(CAST(e."csat" AS BIGINT) AS VARCHAR), 'none')) ELSE '' END), ')') AS kw_r7,
    (CASE WHEN (CAST(e."tenure_days" AS BIGINT) <= (MAP {'engaged_stakeholders': CAST(CAST(3 AS BIGINT) AS BIGINT), 'implementation_days': CAST(CAST(120 AS BIGINT) AS BIGINT), 'onboarding_days': CAST(CAST(180 AS BIGINT) AS BIGINT), 'ttfv_days': CAST(CAST(60 AS BIGINT) AS BIGINT)}['onboarding_days']) AND "kw_rs_stage"."grade" = 'implementing' AND CAST(e."tenure_days" AS BIGINT) > CAST(90 AS BIGINT)) THEN true ELSE false END) AS kw_f8,
    concat('onboarding stalled at day ', coalesce(CAST(CAST(e."tenure_days" AS BIGINT) AS VARCHAR), 'none')) AS kw_r8,
    (CASE WHEN (MAP {'de': CAST(true AS BOOLEAN), 'en': CAST(true AS BOOLEAN), 'es': CAST(true AS BOOLEAN), 'fr': CAST(true AS BOOLEAN), 'it': CAST(false AS BOOLEAN), 'ja': CAST(false AS BOOLEAN), 'nl': CAST(false AS BOOLEAN), 'pt': CAST(false AS BOOLEAN), 'sv': CAST(false AS BOOLEAN)}[CAST(e."language" AS VARCHAR)]) = false THEN true ELSE false END) AS kw_f9,
    concat(coalesce(CAST(e."language" AS VARCHAR), 'none'), ' is not a language we serve') AS kw_r9,
    (CASE WHEN ("kw_rs_stage"."grade" <> 'implementing' AND CAST(e."tenure_days" AS BIGINT) > CAST(180 AS BIGINT) AND (CAST(CAST(e."key_feature_events_per_user" AS DOUBLE) AS DOUBLE) BETWEEN CAST('-1.7976931348623157e308' AS DOUBLE) AND CAST('0.9999999999999997' AS DOUBLE))) THEN true ELSE false END) AS kw_f10,
    concat('live but key features barely used') AS kw_r10
  FROM kw_entity e
    LEFT JOIN "kw_rs_stage" ON "kw_rs_stage".kw_key = e."account_id"
  ) kw_1
  ) kw_2
) kw_3;

CREATE OR REPLACE TEMP TABLE "kw_rs_plays" AS
SELECT kw_key, score, coalesce(kw_grade, CASE WHEN score IS NULL THEN NULL END) AS grade, fired, tags, reasons
FROM (
  SELECT kw_key, CASE WHEN kw_total IS NULL THEN NULL WHEN kw_total < CAST('-inf' AS DOUBLE) THEN CAST('-inf' AS DOUBLE) WHEN kw_total > CAST('inf' AS DOUBLE) THEN CAST('inf' AS DOUBLE) ELSE kw_total END AS score, kw_grade, fired, tags, reasons
  FROM (
  SELECT kw_key, CAST(NULL AS DOUBLE) AS kw_total, CASE WHEN kw_f0 THEN 'expected_churn' WHEN kw_f1 THEN 'onboarding_rescue' WHEN kw_f2 THEN 'cash_relief' WHEN kw_f3 THEN 'executive_save' WHEN kw_f4 THEN 'value_recovery' WHEN kw_f5 THEN 'swarm' WHEN kw_f6 THEN 'expand' WHEN kw_f7 THEN 'tech_touch' ELSE 'nurture' END AS kw_grade, CASE WHEN kw_f0 THEN ['expected_churn'] WHEN kw_f1 THEN ['onboarding_rescue'] WHEN kw_f2 THEN ['cash_relief'] WHEN kw_f3 THEN ['executive_save'] WHEN kw_f4 THEN ['value_recovery'] WHEN kw_f5 THEN ['swarm'] WHEN kw_f6 THEN ['expand'] WHEN kw_f7 THEN ['tech_touch'] ELSE CAST([] AS VARCHAR[]) END AS fired, CAST([] AS VARCHAR[]) AS tags, CASE WHEN kw_f0 THEN [kw_r0] WHEN kw_f1 THEN [kw_r1] WHEN kw_f2 THEN [kw_r2] WHEN kw_f3 THEN [kw_r3] WHEN kw_f4 THEN [kw_r4] WHEN kw_f5 THEN [kw_r5] WHEN kw_f6 THEN [kw_r6] WHEN kw_f7 THEN [kw_r7] ELSE [kw_r8] END AS reasons
  FROM (
  SELECT
    e."account_id" AS kw_key,
    (CASE WHEN e."expected_churn" = true THEN true ELSE false END) AS kw_f0,
    concat('expected churn (set by a manager): no save play; keep it in the forecast and review why') AS kw_r0,
    (CASE WHEN ("kw_rs_stage"."grade" = 'implementing' AND ("kw_rs_risk"."grade" = 'high' OR "kw_rs_adoption"."grade" = 'off_track')) THEN true ELSE false END) AS kw_f1,
    concat('rescue onboarding: free professional services to close the implementation gaps') AS kw_r1,
    (CASE WHEN ("kw_rs_impact"."grade" = '1' AND list_contains("kw_rs_risk"."tags", 'cash')) THEN true ELSE false END) AS kw_f2,
    concat('cash relief: offer a 3-month payment holiday or extended payment terms') AS kw_r2,
    (CASE WHEN ("kw_rs_stage"."grade" = 'defending' AND CAST(e."segment" AS VARCHAR) = 'enterprise') THEN true ELSE false END) AS kw_f3,
    concat('save plan: executive sponsor meeting; offer a lower price for a longer term') AS kw_r3,
    (CASE WHEN "kw_rs_stage"."grade" = 'defending' THEN true ELSE false END) AS kw_f4,
    concat('save plan: free training on the key features; early access to new features') AS kw_r4,
    (CASE WHEN ("kw_rs_health"."grade" = 'yellow' AND "kw_rs_impact"."grade" = '2') THEN true ELSE false END) AS kw_f5,
    concat('swarm: turn it green with training on under-used features and a QBR within 30 days') AS kw_r5,
    (CASE WHEN ("kw_rs_stage"."grade" = 'growing' OR "kw_rs_expansion"."grade" = 'ready') THEN true ELSE false END) AS kw_f6,
    concat('expand: re-qualify the upsell this quarter; offer a 6-month plan upgrade at the same price') AS kw_r6,
    (CASE WHEN CAST(e."segment" AS VARCHAR) = 'smb' THEN true ELSE false END) AS kw_f7,
    concat('tech touch: automated adoption emails') AS kw_r7,
    concat('nurture: deepen usage with more features and use cases') AS kw_r8
  FROM kw_entity e
    LEFT JOIN "kw_rs_adoption" ON "kw_rs_adoption".kw_key = e."account_id"
    LEFT JOIN "kw_rs_expansion" ON "kw_rs_expansion".kw_key = e."account_id"
    LEFT JOIN "kw_rs_health" ON "kw_rs_health".kw_key = e."account_id"
    LEFT JOIN "kw_rs_impact" ON "kw_rs_impact".kw_key = e."account_id"
    LEFT JOIN "kw_rs_risk" ON "kw_rs_risk".kw_key = e."account_id"
    LEFT JOIN "kw_rs_stage" ON "kw_rs_stage".kw_key = e."account_id"
  ) kw_1
  ) kw_2
) kw_3;

COPY (SELECT * FROM kw_entity) TO '/tmp/.tmpXHTq2v/duck/entity' (FORMAT parquet, PER_THREAD_OUTPUT true, OVERWRITE true);

COPY (SELECT kw_key AS account, 'health' AS rule_set, score, grade, fired, tags, reasons, DATE '2026-11-23' AS as_of FROM "kw_rs_health"
UNION ALL
SELECT kw_key AS account, 'impact' AS rule_set, score, grade, fired, tags, reasons, DATE '2026-11-23' AS as_of FROM "kw_rs_impact"
UNION ALL
SELECT kw_key AS account, 'expansion' AS rule_set, score, grade, fired, tags, reasons, DATE '2026-11-23' AS as_of FROM "kw_rs_expansion"
UNION ALL
SELECT kw_key AS account, 'forecast' AS rule_set, score, grade, fired, tags, reasons, DATE '2026-11-23' AS as_of FROM "kw_rs_forecast"
UNION ALL
SELECT kw_key AS account, 'stage' AS rule_set, score, grade, fired, tags, reasons, DATE '2026-11-23' AS as_of FROM "kw_rs_stage"
UNION ALL
SELECT kw_key AS account, 'adoption' AS rule_set, score, grade, fired, tags, reasons, DATE '2026-11-23' AS as_of FROM "kw_rs_adoption"
UNION ALL
SELECT kw_key AS account, 'risk' AS rule_set, score, grade, fired, tags, reasons, DATE '2026-11-23' AS as_of FROM "kw_rs_risk"
UNION ALL
SELECT kw_key AS account, 'signals' AS rule_set, score, grade, fired, tags, reasons, DATE '2026-11-23' AS as_of FROM "kw_rs_signals"
UNION ALL
SELECT kw_key AS account, 'plays' AS rule_set, score, grade, fired, tags, reasons, DATE '2026-11-23' AS as_of FROM "kw_rs_plays") TO '/tmp/.tmpXHTq2v/duck/results' (FORMAT parquet, PER_THREAD_OUTPUT true, OVERWRITE true);
