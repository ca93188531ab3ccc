-- Idempotency by entity (issue 13): the same body may be journaled again when
-- it is a real change (a stock level or a track coming back), so the events'
-- idempotency key is no longer unique. `event_heads` holds, per entity (order,
-- SKU card, scan, other subject), the latest event applied to it: a callback
-- identical to that event is a redelivery.

ALTER TABLE events DROP INDEX idem_key, ADD INDEX events_idem_key (idem_key),
    ADD INDEX events_status (status, received_at);

CREATE TABLE event_heads (
    entity VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin PRIMARY KEY,
    kind VARCHAR(16) NOT NULL,
    subject TEXT NOT NULL,
    event_id BIGINT NOT NULL,
    idem_key VARCHAR(128) NOT NULL,
    event_at BIGINT,
    received_at BIGINT NOT NULL
);
CREATE INDEX event_heads_kind ON event_heads (kind, received_at);
