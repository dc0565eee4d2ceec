-- Relationship breadth (DOMAIN.md §6.1, §6.2): engaged stakeholders, when the champion
-- left, and since when the executive sponsor is in place.
SELECT
    account_id,
    -- A contact who has left since was still there (and engaged) on an earlier day.
    count(*) FILTER (WHERE (engaged OR end_date > getvariable('as_of')) AND (end_date IS NULL OR end_date > getvariable('as_of'))) AS engaged_stakeholders,
    max(end_date) FILTER (WHERE role = 'champion' AND end_date <= getvariable('as_of')) AS champion_left_on,
    max(start_date) FILTER (WHERE role = 'executive_sponsor' AND (end_date IS NULL OR end_date > getvariable('as_of'))) AS sponsor_since
FROM contacts
WHERE start_date <= getvariable('as_of')
GROUP BY account_id
