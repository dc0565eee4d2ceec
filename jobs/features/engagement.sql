-- Engagement with the team (DOMAIN.md §3): meetings in the last 90 days and the last QBR.
SELECT
    account_id,
    count(*) FILTER (WHERE kind = 'meeting' AND day > getvariable('as_of') - INTERVAL 90 DAY) AS meetings_90d,
    max(day) FILTER (WHERE kind = 'qbr') AS last_qbr_on
FROM engagements
WHERE day <= getvariable('as_of')
GROUP BY account_id
