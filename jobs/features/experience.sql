-- Experience (DOMAIN.md §3): the latest NPS, CSAT and implementation-satisfaction answers,
-- and the CSM's latest sentiment, a manual measure from its own extract.
WITH surveys AS (
    SELECT
        account_id,
        arg_max(score, answered_at) FILTER (WHERE kind = 'nps') AS nps,
        arg_max(score, answered_at) FILTER (WHERE kind = 'csat') AS csat,
        arg_max(score, answered_at) FILTER (WHERE kind = 'implementation') AS implementation_csat
    FROM survey_responses
    WHERE answered_at <= getvariable('as_of')
    GROUP BY account_id
),
sentiment AS (
    SELECT account_id, arg_max(sentiment, updated_at) AS csm_sentiment
    FROM csm_sentiment
    WHERE updated_at <= getvariable('as_of')
    GROUP BY account_id
)
SELECT a.account_id, s.nps, s.csat, s.implementation_csat, m.csm_sentiment
FROM accounts a
LEFT JOIN surveys s USING (account_id)
LEFT JOIN sentiment m USING (account_id)
