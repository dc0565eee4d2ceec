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
    CASE WHEN a.last_renewal_date > getvariable('as_of') THEN a.last_renewal_date ELSE a.renewal_date END AS renewal_date,
    a.csm_email,
    a.manager_email,
    coalesce(o.expected_churn, false) AS expected_churn,
    o.note AS expected_churn_note,
    CAST(CASE WHEN a.last_renewal_date > getvariable('as_of') THEN a.last_renewal_date ELSE a.renewal_date END
        - getvariable('as_of') AS INTEGER) AS days_to_renewal,
    CAST(getvariable('as_of') - a.contract_start AS INTEGER) AS tenure_days,
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
WHERE a.contract_start <= getvariable('as_of') AND a.renewal_date >= getvariable('as_of')
