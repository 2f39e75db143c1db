//! Packet time: the one clock the analyzer judges by.
//!
//! Every stage after `capture` reasons in `PacketTime`, the capture timestamp, so
//! a certificate is judged at the moment of its handshake and an offline run gives
//! the same answer today and next year. The wall clock appears only where it must
//! (live idle sweeps, stats intervals) and never through this type.

use std::time::Duration;

/// Capture timestamp in nanoseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PacketTime(i64);

impl PacketTime {
    pub const ZERO: Self = Self(0);

    pub const fn from_nanos(nanos: i64) -> Self {
        Self(nanos)
    }

    pub fn from_secs_nanos(secs: i64, nanos: i64) -> Self {
        Self(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
    }

    /// The wall clock as a packet time. Only for live capture, where idle
    /// timeouts and stats intervals must move even when no packet arrives.
    pub fn wall_clock() -> Self {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self(i64::try_from(since.as_nanos()).unwrap_or(i64::MAX))
    }

    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    pub const fn as_secs(self) -> i64 {
        self.0.div_euclid(1_000_000_000)
    }

    /// Time elapsed since `earlier`; zero when the capture's clock went backwards.
    pub fn since(self, earlier: PacketTime) -> Duration {
        Duration::from_nanos(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }

    pub fn saturating_add(self, duration: Duration) -> Self {
        let nanos = i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(nanos))
    }

    /// RFC 3339 with microseconds, as ECS `@timestamp` wants: `2026-11-23T01:02:03.456789Z`.
    pub fn to_rfc3339_micros(self) -> String {
        Rfc3339Micros(self).to_string()
    }
}

/// A packet time shown as RFC 3339 with microseconds, without a `String`:
/// records write three of them each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rfc3339Micros(pub PacketTime);

impl Rfc3339Micros {
    const EPOCH: &'static [u8; 27] = b"1970-01-01T00:00:00.000000Z";

    /// The text, handed to `f` (it lives on the stack).
    fn with_str<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        let text = self.text();
        match std::str::from_utf8(&text) {
            Ok(text) => f(text),
            Err(_) => f("1970-01-01T00:00:00.000000Z"),
        }
    }

    fn text(&self) -> [u8; 27] {
        let Ok(time) = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0 .0))
        else {
            return *Self::EPOCH;
        };
        let (year, month, day) = time.to_calendar_date();
        let (hour, minute, second, micro) = time.to_hms_micro();
        let Ok(year) = u32::try_from(year) else {
            return *Self::EPOCH;
        };
        // The calendar is the time crate's; only the digits are placed here
        // (its format-description path was a fifth of a record's cost).
        let mut text = *b"0000-00-00T00:00:00.000000Z";
        for (range, value) in [
            (0..4, year.min(9999)),
            (5..7, u32::from(u8::from(month))),
            (8..10, u32::from(day)),
            (11..13, u32::from(hour)),
            (14..16, u32::from(minute)),
            (17..19, u32::from(second)),
            (20..26, micro),
        ] {
            let mut value = value;
            for digit in text[range].iter_mut().rev() {
                *digit = b'0' + (value % 10) as u8;
                value /= 10;
            }
        }
        text
    }
}

impl std::fmt::Display for Rfc3339Micros {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.with_str(|text| f.write_str(text))
    }
}

/// Straight to `serialize_str`: `collect_str` ran the digits through the
/// formatting machinery and serde_json's escaping writer.
impl serde::Serialize for Rfc3339Micros {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.with_str(|text| serializer.serialize_str(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_keeps_microseconds_and_utc() {
        let t = PacketTime::from_secs_nanos(1_357_328_848, 549_370_123);
        assert_eq!(t.to_rfc3339_micros(), "2013-01-04T19:47:28.549370Z");
    }

    #[test]
    fn rfc3339_pads_every_field() {
        let t = PacketTime::from_secs_nanos(946_684_800 + 3_661, 7_000);
        assert_eq!(t.to_rfc3339_micros(), "2000-01-01T01:01:01.000007Z");
        assert_eq!(
            PacketTime::from_secs_nanos(0, 0).to_rfc3339_micros(),
            "1970-01-01T00:00:00.000000Z"
        );
        // 2024-02-29, a leap day.
        assert_eq!(
            PacketTime::from_secs_nanos(1_709_164_800, 999_999_999).to_rfc3339_micros(),
            "2024-02-29T00:00:00.999999Z"
        );
    }

    #[test]
    fn since_is_zero_when_clock_goes_backwards() {
        let a = PacketTime::from_nanos(10);
        let b = PacketTime::from_nanos(5);
        assert_eq!(b.since(a), Duration::ZERO);
        assert_eq!(a.since(b), Duration::from_nanos(5));
    }
}
