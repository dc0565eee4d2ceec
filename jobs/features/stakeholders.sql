-- Relationship breadth (DOMAIN.md §6.1, §6.2): engaged stakeholders, when the champion
-- left, and since when the executive sponsor is in place.
SELECT
    account_id,
    count(*) FILTER (WHERE engaged AND end_date IS NULL) AS engaged_stakeholders,
    max(end_date) FILTER (WHERE role = 'champion') AS champion_left_on,
    max(start_date) FILTER (WHERE role = 'executive_sponsor' AND end_date IS NULL) AS sponsor_since
FROM contacts
GROUP BY account_id
