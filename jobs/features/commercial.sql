-- Expansion inputs (DOMAIN.md §5): open upsell conversations, and modules the account's
-- segment is eligible for but it does not own.
WITH upsell AS (
    SELECT account_id, count(*) AS open_upsells, sum(amount) AS open_upsell_amount
    FROM opportunities
    WHERE stage = 'open' AND kind = 'upsell' AND created_on <= getvariable('as_of')
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
LEFT JOIN eligible e USING (account_id)
