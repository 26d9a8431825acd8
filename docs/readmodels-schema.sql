-- The schema the read models live in on PostgreSQL (READ_MODEL_URL ...?schema=readmodels).
-- The projectors create their own tables in it on start.
CREATE SCHEMA IF NOT EXISTS readmodels;
