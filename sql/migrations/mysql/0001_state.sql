-- sverka state database: runs, job locks, corrections journal, id mappings,
-- balances and the callback events journal. Timestamps are Unix milliseconds.

CREATE TABLE runs (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    job VARCHAR(64) NOT NULL,
    window_from BIGINT,
    window_to BIGINT,
    started_at BIGINT NOT NULL,
    finished_at BIGINT,
    status VARCHAR(32) NOT NULL,
    dry_run INTEGER NOT NULL DEFAULT 0,
    forced INTEGER NOT NULL DEFAULT 0,
    counts TEXT NOT NULL,
    report_paths TEXT NOT NULL,
    summary TEXT NOT NULL,
    error TEXT
);
CREATE INDEX runs_job_started ON runs (job, started_at);

CREATE TABLE job_locks (
    job VARCHAR(64) PRIMARY KEY,
    owner VARCHAR(128) NOT NULL,
    acquired_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE corrections (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    run_id BIGINT NOT NULL,
    job VARCHAR(64) NOT NULL,
    target VARCHAR(32) NOT NULL,
    action VARCHAR(64) NOT NULL,
    item_key VARCHAR(255) NOT NULL,
    payload TEXT NOT NULL,
    status VARCHAR(16) NOT NULL,
    answer TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX corrections_run ON corrections (run_id);
CREATE INDEX corrections_key ON corrections (job, target, item_key);

CREATE TABLE id_map (
    kind VARCHAR(16) NOT NULL,
    partner_id VARCHAR(255) NOT NULL,
    wms_id VARCHAR(64) NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (kind, partner_id)
);

CREATE TABLE balances (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    run_id BIGINT NOT NULL,
    period_from BIGINT NOT NULL,
    period_to BIGINT NOT NULL,
    closing_kop BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL
);

CREATE TABLE events (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    source VARCHAR(16) NOT NULL,
    method VARCHAR(64) NOT NULL,
    idem_key VARCHAR(128) NOT NULL UNIQUE,
    body TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    status VARCHAR(16) NOT NULL DEFAULT 'accepted',
    error TEXT
);
CREATE INDEX events_source_method ON events (source, method, received_at);
