-- Journey milestones (DOMAIN.md §2, §4): go-live and first value, for implementation
-- length and time to first value.
SELECT
    account_id,
    min(reached_at) FILTER (WHERE milestone = 'go_live') AS go_live_on,
    min(reached_at) FILTER (WHERE milestone = 'first_value') AS first_value_on
FROM milestones
WHERE reached_at <= getvariable('as_of')
GROUP BY account_id
