-- Adoption telemetry (DOMAIN.md §3): active users now against two weeks before, and
-- key-feature use, over the last 30 days of daily usage. Every feature reads only what was
-- known on `as_of`, so a run for an earlier day sees what that day's run saw.
SELECT
    account_id,
    avg(active_users) FILTER (WHERE day > getvariable('as_of') - INTERVAL 14 DAY) AS active_users_14d,
    avg(active_users) FILTER (WHERE day <= getvariable('as_of') - INTERVAL 16 DAY) AS active_users_prior,
    sum(key_feature_events) AS key_feature_events_30d
FROM daily_usage
WHERE day > getvariable('as_of') - INTERVAL 30 DAY AND day <= getvariable('as_of')
GROUP BY account_id
