-- Rate limits shared by every sverka process of one state database (issue 14):
-- one row per vendor account (the lock that serialises taking a slot) and
-- one row per request slot, held while the request is in flight.
CREATE TABLE rate_buckets (
    name VARCHAR(190) PRIMARY KEY,
    touched_at BIGINT NOT NULL
);
CREATE TABLE rate_slots (
    slot VARCHAR(40) PRIMARY KEY,
    bucket VARCHAR(190) NOT NULL,
    taken_at BIGINT NOT NULL,
    released_at BIGINT NULL
);
CREATE INDEX rate_slots_bucket ON rate_slots (bucket, taken_at);
