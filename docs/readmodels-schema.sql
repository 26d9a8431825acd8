-- The schema the read models live in on PostgreSQL (READ_MODEL_URL ...?schema=readmodels).
-- The projectors create their own tables in it on start.
CREATE SCHEMA IF NOT EXISTS readmodels;
-- Among them, kept beside the read models (projections/store.py CheckpointTables): the audit's
-- checkpoints of the stream, a copy outside it, only ever added to:
--   CREATE TABLE audit_checkpoints (stream TEXT, head BIGINT, digest TEXT, doc TEXT,
--                                   PRIMARY KEY (stream, head, digest));
