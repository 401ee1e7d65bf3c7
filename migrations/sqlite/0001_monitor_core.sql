-- Websites, their raw checks and the aggregates the history is read from.
-- Times are UTC, stored as milliseconds since the Unix epoch; durations in milliseconds.

CREATE TABLE websites (
    id                 INTEGER PRIMARY KEY,
    name               TEXT    NOT NULL,
    url                TEXT    NOT NULL,
    interval_ms        INTEGER NOT NULL CHECK (interval_ms >= 1000),
    timeout_ms         INTEGER NOT NULL CHECK (timeout_ms >= 100 AND timeout_ms < interval_ms),
    paused             INTEGER NOT NULL DEFAULT 0,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    -- The newest check, copied here so the list of websites is one plain read.
    last_slot          INTEGER,
    last_delay_ms      INTEGER,
    last_up            INTEGER,
    last_status_code   INTEGER,
    last_response_ms   INTEGER,
    last_error_kind    TEXT,
    last_error_message TEXT,
    status_since       INTEGER
);

CREATE INDEX websites_name ON websites (name COLLATE NOCASE, id);

-- One row per website and slot (its scheduled time). WITHOUT ROWID keeps the rows
-- inside the primary key's B-tree: no second copy of (website_id, slot).
CREATE TABLE checks (
    website_id    INTEGER NOT NULL REFERENCES websites (id) ON DELETE CASCADE,
    slot          INTEGER NOT NULL,
    delay_ms      INTEGER NOT NULL, -- the request started this long after its slot
    up            INTEGER NOT NULL,
    status_code   INTEGER,
    response_ms   INTEGER NOT NULL,
    error_kind    TEXT,
    error_message TEXT,
    PRIMARY KEY (website_id, slot)
) WITHOUT ROWID;

-- Counts per website and UTC hour (hour = seconds since the epoch of its start).
CREATE TABLE check_hours (
    website_id      INTEGER NOT NULL REFERENCES websites (id) ON DELETE CASCADE,
    hour            INTEGER NOT NULL,
    checks          INTEGER NOT NULL,
    up_checks       INTEGER NOT NULL,
    response_ms_sum INTEGER NOT NULL,
    responses       INTEGER NOT NULL,
    PRIMARY KEY (website_id, hour)
) WITHOUT ROWID;

-- Counts per website and calendar day in the configured time zone ('YYYY-MM-DD').
CREATE TABLE check_days (
    website_id      INTEGER NOT NULL REFERENCES websites (id) ON DELETE CASCADE,
    day             TEXT    NOT NULL,
    checks          INTEGER NOT NULL,
    up_checks       INTEGER NOT NULL,
    response_ms_sum INTEGER NOT NULL,
    responses       INTEGER NOT NULL,
    PRIMARY KEY (website_id, day)
) WITHOUT ROWID;

CREATE INDEX check_days_day ON check_days (day);
CREATE INDEX check_hours_hour ON check_hours (hour);
