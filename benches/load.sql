-- The SQL baseline, part 1: the nightly job's sources loaded as an analyst would, with the
-- same column types as jobs/nightly.yaml. `${DATA}` is the folder of extracts.
CREATE TABLE accounts AS SELECT * FROM read_csv('${DATA}/accounts.csv', header = true, types = {
  'account_id': 'VARCHAR', 'name': 'VARCHAR', 'industry': 'VARCHAR', 'country': 'VARCHAR', 'language': 'VARCHAR',
  'segment': 'VARCHAR', 'funding_stage': 'VARCHAR', 'runway_months': 'INTEGER', 'arr': 'DECIMAL(18,2)',
  'seats': 'INTEGER', 'contract_start': 'DATE', 'renewal_date': 'DATE', 'csm_email': 'VARCHAR', 'manager_email': 'VARCHAR'});
CREATE TABLE modules AS SELECT * FROM read_csv('${DATA}/modules.csv', header = true, types = {
  'account_id': 'VARCHAR', 'module': 'VARCHAR', 'status': 'VARCHAR'});
CREATE TABLE daily_usage AS SELECT * FROM read_csv('${DATA}/daily_usage.csv', header = true, types = {
  'account_id': 'VARCHAR', 'day': 'DATE', 'active_users': 'INTEGER', 'key_feature_events': 'INTEGER'});
CREATE TABLE support_tickets AS SELECT * FROM read_csv('${DATA}/support_tickets.csv', header = true, types = {
  'ticket_id': 'VARCHAR', 'account_id': 'VARCHAR', 'opened_at': 'DATE', 'closed_at': 'DATE', 'priority': 'VARCHAR',
  'category': 'VARCHAR', 'escalated': 'BOOLEAN'});
CREATE TABLE contacts AS SELECT * FROM read_csv('${DATA}/contacts.csv', header = true, types = {
  'contact_id': 'VARCHAR', 'account_id': 'VARCHAR', 'role': 'VARCHAR', 'engaged': 'BOOLEAN', 'start_date': 'DATE',
  'end_date': 'DATE'});
CREATE TABLE survey_responses AS SELECT * FROM read_csv('${DATA}/survey_responses.csv', header = true, types = {
  'account_id': 'VARCHAR', 'answered_at': 'DATE', 'kind': 'VARCHAR', 'score': 'INTEGER'});
CREATE TABLE milestones AS SELECT * FROM read_csv('${DATA}/milestones.csv', header = true, types = {
  'account_id': 'VARCHAR', 'milestone': 'VARCHAR', 'reached_at': 'DATE'});
CREATE TABLE csm_sentiment AS SELECT * FROM read_csv('${DATA}/csm_sentiment.csv', header = true, types = {
  'account_id': 'VARCHAR', 'sentiment': 'VARCHAR', 'updated_at': 'DATE'});
CREATE TABLE engagements AS SELECT * FROM read_csv('${DATA}/engagements.csv', header = true, types = {
  'account_id': 'VARCHAR', 'day': 'DATE', 'kind': 'VARCHAR'});
CREATE TABLE opportunities AS SELECT * FROM read_csv('${DATA}/opportunities.csv', header = true, types = {
  'opportunity_id': 'VARCHAR', 'account_id': 'VARCHAR', 'kind': 'VARCHAR', 'stage': 'VARCHAR', 'amount': 'DECIMAL(18,2)'});
CREATE TABLE churn_overrides AS SELECT * FROM read_csv('${DATA}/churn_overrides.csv', header = true, types = {
  'account_id': 'VARCHAR', 'expected_churn': 'BOOLEAN', 'set_by': 'VARCHAR', 'note': 'VARCHAR'});
CREATE TABLE module_catalogue AS SELECT * FROM read_csv('${DATA}/module_catalogue.csv', header = true, types = {
  'module': 'VARCHAR', 'segments': 'VARCHAR'});
CREATE TABLE region_risk AS SELECT * FROM read_csv('${RULES}/lookups/region_risk.csv', header = true);
CREATE TABLE languages AS SELECT * FROM read_csv('${RULES}/lookups/languages.csv', header = true);
CREATE TABLE retention_rates AS SELECT * FROM read_csv('${RULES}/lookups/retention_rates.csv', header = true);
SET VARIABLE as_of = DATE '${AS_OF}';
