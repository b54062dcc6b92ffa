-- API keys: only a SHA-256 of each key is stored (keys are 256-bit random
-- tokens, so a fast hash is enough and allows an indexed lookup).
CREATE TABLE api_keys (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    key_hash    bytea NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

CREATE TABLE jobs (
    id            uuid PRIMARY KEY,
    -- insertion order: the cursor of newest-first listings
    seq           bigserial NOT NULL UNIQUE,
    owner_id      uuid NOT NULL REFERENCES api_keys (id),
    kind          text NOT NULL,
    params        jsonb NOT NULL,
    -- sha256(owner, kind, canonical params): identical submissions
    dedup_key     bytea NOT NULL,
    status        text NOT NULL DEFAULT 'queued'
                  CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    progress      double precision NOT NULL DEFAULT 0 CHECK (progress >= 0 AND progress <= 1),
    result        jsonb,
    error         jsonb,
    attempts      integer NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    finished_at   timestamptz,
    -- set once the broker confirmed the job's message; the reconciler
    -- republishes rows where it stays NULL
    published_at  timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX jobs_owner_seq ON jobs (owner_id, seq DESC);
CREATE INDEX jobs_owner_kind_seq ON jobs (owner_id, kind, seq DESC);
CREATE INDEX jobs_owner_status_seq ON jobs (owner_id, status, seq DESC);
CREATE INDEX jobs_dedup ON jobs (dedup_key, seq DESC);
CREATE INDEX jobs_unfinished ON jobs (updated_at) WHERE status IN ('queued', 'running');

-- Outbox of terminal events: written in the transaction that ends the job,
-- published after commit, so a crash between the two never loses one.
CREATE TABLE job_events (
    id          bigserial PRIMARY KEY,
    job_id      uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    event       jsonb NOT NULL,
    published   boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_events_unpublished ON job_events (created_at) WHERE NOT published;
