//! When each website is due.
//!
//! A website's slots are fixed points in time: `phase + k × interval`, where the
//! phase is derived from the website's id. Any replica computes the same slots, so
//! a new leader carries on where the old one stopped and the one-check-per-slot rule
//! in the database can drop duplicates. The next slot is always computed from the
//! schedule, never from when the last check ended, so nothing drifts.
//!
//! Phases follow the golden-ratio sequence over ids: consecutive websites land far
//! apart and any number of them covers the interval evenly, instead of all firing
//! at second 0.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::WebsiteId;

/// The offset of a website's slots within its interval, in milliseconds.
pub fn phase_ms(id: WebsiteId, interval: Duration) -> i64 {
    let interval_ms = interval.as_millis().max(1);
    // Fractional part of id × (golden ratio − 1), in 64-bit fixed point.
    const FRACTION: u64 = 0x9E37_79B9_7F4A_7C15;
    let frac = (id as u64).wrapping_mul(FRACTION) as u128;
    ((frac * interval_ms) >> 64) as i64
}

/// The first slot at or after `t`.
pub fn slot_at_or_after(id: WebsiteId, interval: Duration, t: DateTime<Utc>) -> DateTime<Utc> {
    let interval_ms = interval.as_millis().max(1) as i64;
    let phase = phase_ms(id, interval);
    let t_ms = t.timestamp_millis();
    let k = (t_ms - phase + interval_ms - 1).div_euclid(interval_ms);
    millis(k * interval_ms + phase)
}

/// The last slot at or before `t`.
pub fn slot_at_or_before(id: WebsiteId, interval: Duration, t: DateTime<Utc>) -> DateTime<Utc> {
    let interval_ms = interval.as_millis().max(1) as i64;
    let phase = phase_ms(id, interval);
    let k = (t.timestamp_millis() - phase).div_euclid(interval_ms);
    millis(k * interval_ms + phase)
}

/// The slot to run after `slot`: the next one on the grid, or, after a stall or a
/// pause, the first one not yet past (the schedule resumes instead of catching up in
/// a burst). An off-grid slot (a website's very first check) rejoins the grid.
pub fn next_slot(
    id: WebsiteId,
    interval: Duration,
    slot: DateTime<Utc>,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    let after = (slot + chrono::Duration::milliseconds(1)).max(now);
    slot_at_or_after(id, interval, after)
}

/// How far back a schedule taken over from elsewhere (a new leader, a restart)
/// still picks up a missed slot.
pub const RESUME_WITHIN: Duration = Duration::from_secs(5);

/// Where a website's schedule continues after its last stored check at `last`: the
/// next slot on the grid, even if it just passed (a leader handing over takes a
/// moment), unless that is more than [`RESUME_WITHIN`] ago; then the first slot not
/// yet past. Either way at most one late check, never a burst.
pub fn resume_after(
    id: WebsiteId,
    interval: Duration,
    last: DateTime<Utc>,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    let next = slot_at_or_after(id, interval, last + chrono::Duration::milliseconds(1));
    let oldest = now - chrono::Duration::from_std(RESUME_WITHIN).unwrap_or_default();
    if next >= oldest {
        next
    } else {
        slot_at_or_after(id, interval, now)
    }
}

fn millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_resumes_after_the_last_stored_slot_but_never_far_back() {
        let interval = Duration::from_secs(1);
        let id = 7;
        let last = slot_at_or_before(
            id,
            interval,
            DateTime::from_timestamp(1_790_000_000, 0).unwrap(),
        );
        let s = chrono::Duration::milliseconds;
        // Taken over 1.4 s later: the slot right after the last stored one, though past.
        assert_eq!(
            resume_after(id, interval, last, last + s(1400)),
            last + s(1000)
        );
        // A minute later: no catching up, the next slot from now.
        let now = last + s(60_400);
        assert_eq!(
            resume_after(id, interval, last, now),
            slot_at_or_after(id, interval, now)
        );
    }

    #[test]
    fn slots_are_on_the_grid_and_bracket_the_time() {
        let interval = Duration::from_secs(60);
        let t = DateTime::from_timestamp_millis(1_790_000_123_456).unwrap();
        for id in [1, 2, 3, 1000, 123_456] {
            let after = slot_at_or_after(id, interval, t);
            let before = slot_at_or_before(id, interval, t);
            assert!(before <= t && t <= after);
            assert!((after - before).num_milliseconds() <= 60_000);
            let phase = phase_ms(id, interval);
            assert_eq!((after.timestamp_millis() - phase).rem_euclid(60_000), 0);
            assert_eq!(slot_at_or_after(id, interval, after), after);
        }
    }

    #[test]
    fn phases_spread_evenly() {
        // 1,000 websites over 60 s: every 6-second bucket gets close to 100 of them.
        let interval = Duration::from_secs(60);
        let mut buckets = [0u32; 10];
        for id in 1..=1000 {
            buckets[(phase_ms(id, interval) / 6000) as usize] += 1;
        }
        for count in buckets {
            assert!((95..=105).contains(&count), "{buckets:?}");
        }
    }

    #[test]
    fn next_slot_never_drifts_and_never_bursts() {
        let interval = Duration::from_secs(10);
        let slot = slot_at_or_after(7, interval, Utc::now());
        // Finishing late does not move the schedule.
        let next = next_slot(7, interval, slot, slot + chrono::Duration::seconds(3));
        assert_eq!((next - slot).num_seconds(), 10);
        // After a long stall the schedule resumes at the next future slot.
        let now = slot + chrono::Duration::seconds(95);
        let next = next_slot(7, interval, slot, now);
        assert_eq!((next - slot).num_seconds(), 100);
        // An off-grid first check is followed by the next slot on the grid.
        let first = slot - chrono::Duration::milliseconds(4321);
        assert_eq!(next_slot(7, interval, first, first), slot);
    }
}
