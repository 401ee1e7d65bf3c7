-- Checks older than the current and the previous hour are packed into one row per
-- website and UTC hour: each column becomes an array in slot order. A row per check
-- costs about 84 bytes in PostgreSQL (tuple header, line pointer and primary key
-- entry); packed, a minute check costs about 18, so a website-month of minute
-- checks takes under 1 MB instead of 3.6 MB.
--
-- New checks land in recent_checks (the former checks table); compaction moves
-- whole hours from there into check_blocks. The view `checks` shows both as one
-- row per check for reading.

ALTER TABLE checks RENAME TO recent_checks;
ALTER TABLE recent_checks RENAME CONSTRAINT checks_pkey TO recent_checks_pkey;
ALTER TABLE recent_checks RENAME CONSTRAINT checks_website_id_fkey TO recent_checks_website_id_fkey;

CREATE TABLE check_blocks (
    website_id    integer     NOT NULL REFERENCES websites (id) ON DELETE CASCADE,
    hour          timestamptz NOT NULL,
    -- Milliseconds from the start of the hour to each slot, ascending.
    offsets       integer[]   NOT NULL,
    delay_ms      integer[]   NOT NULL,
    response_ms   integer[]   NOT NULL,
    status_code   smallint[]  NOT NULL,
    up            boolean[]   NOT NULL,
    -- NULL when no check of the hour failed with an error.
    error_kind    text[],
    error_message text[],
    PRIMARY KEY (website_id, hour)
);

CREATE INDEX check_blocks_hour ON check_blocks (hour);

CREATE VIEW checks AS
    SELECT slot, website_id, delay_ms, response_ms, status_code, up, error_kind, error_message
    FROM recent_checks
    UNION ALL
    SELECT b.hour + c.offset_ms * interval '1 millisecond', b.website_id, c.delay_ms,
           c.response_ms, c.status_code, c.up, c.error_kind, c.error_message
    FROM check_blocks b
    CROSS JOIN LATERAL unnest(b.offsets, b.delay_ms, b.response_ms, b.status_code, b.up,
                              b.error_kind, b.error_message)
        AS c (offset_ms, delay_ms, response_ms, status_code, up, error_kind, error_message);
