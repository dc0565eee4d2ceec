-- Support load (DOMAIN.md §3, §6.3, §6.5, §6.7): volume, spikes, open critical tickets,
-- escalations, integration gaps, performance (scalability) and complaints about service.
SELECT
    account_id,
    count(*) FILTER (WHERE opened_at > getvariable('as_of') - INTERVAL 90 DAY) AS tickets_90d,
    count(*) FILTER (WHERE opened_at > getvariable('as_of') - INTERVAL 30 DAY) AS tickets_30d,
    count(*) FILTER (WHERE priority = 'critical' AND (closed_at IS NULL OR closed_at > getvariable('as_of'))) AS open_critical_tickets,
    count(*) FILTER (WHERE escalated AND opened_at > getvariable('as_of') - INTERVAL 90 DAY) AS escalations_90d,
    count(*) FILTER (WHERE category = 'integration' AND opened_at > getvariable('as_of') - INTERVAL 90 DAY) AS integration_tickets_90d,
    count(*) FILTER (WHERE category = 'performance' AND opened_at > getvariable('as_of') - INTERVAL 90 DAY) AS performance_tickets_90d,
    count(*) FILTER (WHERE category = 'complaint' AND opened_at > getvariable('as_of') - INTERVAL 90 DAY) AS complaints_90d
FROM support_tickets
WHERE opened_at <= getvariable('as_of')
GROUP BY account_id
