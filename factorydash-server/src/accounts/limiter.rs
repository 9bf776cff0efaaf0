//! Sign-in attempts, limited per user name and per client address (governor's GCRA
//! limiters, keyed), so that guessing passwords is slow whoever and wherever one is.
//!
//! - Per address: [`PER_ADDRESS_PER_MINUTE`] attempts a minute (a burst of as many); IPv6
//!   addresses count by their /64 network, which one client usually holds whole.
//! - Per user name (whether or not the user exists, so that the limit tells nothing about
//!   who exists): [`PER_USER_PER_MINUTE`] attempts a minute.
//! - Keys not seen for a while are forgotten ([`LoginLimiter::forget_idle`], every
//!   minute), so memory stays bounded by the clients of the last minutes.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota};

/// Sign-in attempts per minute from one address (or IPv6 /64).
pub const PER_ADDRESS_PER_MINUTE: u32 = 20;
/// Sign-in attempts per minute for one user name.
pub const PER_USER_PER_MINUTE: u32 = 5;

/// The two limiters, and the one of refusals written to the audit log.
pub struct LoginLimiter {
    by_address: DefaultKeyedRateLimiter<IpAddr>,
    by_user: DefaultKeyedRateLimiter<String>,
    /// One refusal a minute per address is noted ([`LoginLimiter::note_refusal`]): a
    /// client that goes on asking past the limit writes nothing more.
    noted: DefaultKeyedRateLimiter<IpAddr>,
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN))
}

/// The key of an address: itself (IPv4), or its /64 network (IPv6).
fn address_key(address: IpAddr) -> IpAddr {
    // An IPv4 client of a dual-stack listener comes as `::ffff:a.b.c.d`: its own key, not
    // the /64 every IPv4 client would share.
    match address.to_canonical() {
        v4 @ IpAddr::V4(_) => v4,
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
    }
}

impl Default for LoginLimiter {
    fn default() -> Self {
        LoginLimiter {
            by_address: DefaultKeyedRateLimiter::keyed(per_minute(PER_ADDRESS_PER_MINUTE)),
            by_user: DefaultKeyedRateLimiter::keyed(per_minute(PER_USER_PER_MINUTE)),
            noted: DefaultKeyedRateLimiter::keyed(per_minute(1)),
        }
    }
}

impl LoginLimiter {
    /// Counts an attempt for `user` from `address`; `Err(wait)` when either limit is
    /// reached (the attempt is refused without checking the password).
    pub fn attempt(&self, user: &str, address: Option<IpAddr>) -> Result<(), Duration> {
        let clock = governor::clock::DefaultClock::default();
        use governor::clock::Clock;
        if let Some(address) = address {
            if let Err(not_until) = self.by_address.check_key(&address_key(address)) {
                return Err(not_until.wait_time_from(clock.now()));
            }
        }
        // Bounded: a name longer than any user's counts as that prefix.
        let key: String = user.chars().take(80).collect();
        self.by_user
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(clock.now()))
    }

    /// Whether a refused attempt from `address` is to be written to the audit log: the
    /// first a minute per address (or IPv6 /64; always for an unknown address's first).
    pub fn note_refusal(&self, address: Option<IpAddr>) -> bool {
        let key = address.map_or(IpAddr::from([0, 0, 0, 0]), address_key);
        self.noted.check_key(&key).is_ok()
    }

    /// Forgets the keys whose limits are back to full.
    pub fn forget_idle(&self) {
        self.by_address.retain_recent();
        self.by_address.shrink_to_fit();
        self.by_user.retain_recent();
        self.by_user.shrink_to_fit();
        self.noted.retain_recent();
        self.noted.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_noted_once_a_minute_per_address() {
        let l = LoginLimiter::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(l.note_refusal(Some(a)));
        assert!(!l.note_refusal(Some(a)));
        assert!(l.note_refusal(Some("10.0.0.2".parse().unwrap())));
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert!(l.note_refusal(Some(v6)));
        assert!(
            !l.note_refusal(Some("2001:db8::ffff".parse().unwrap())),
            "the same /64"
        );
        assert!(l.note_refusal(Some("::ffff:10.0.0.3".parse().unwrap())));
        assert!(
            l.note_refusal(Some("::ffff:10.0.0.4".parse().unwrap())),
            "IPv4-mapped: each its own"
        );
        assert!(
            !l.note_refusal(Some("10.0.0.4".parse().unwrap())),
            "as the IPv4 address"
        );
    }

    #[test]
    fn limits_per_user_and_per_address() {
        let l = LoginLimiter::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..PER_USER_PER_MINUTE {
            assert!(l.attempt("ada", Some(a)).is_ok());
        }
        assert!(l.attempt("ada", Some("10.0.0.2".parse().unwrap())).is_err());
        for i in 0..(PER_ADDRESS_PER_MINUTE - PER_USER_PER_MINUTE) {
            assert!(l.attempt(&format!("user{i}"), Some(a)).is_ok());
        }
        assert!(l.attempt("bob", Some(a)).is_err());
        // One IPv6 /64 is one client.
        let v6 = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        for i in 0..PER_ADDRESS_PER_MINUTE {
            assert!(l
                .attempt(&format!("v{i}"), v6(&format!("2001:db8::{i:x}")))
                .is_ok());
        }
        assert!(l.attempt("carol", v6("2001:db8::ffff:1")).is_err());
        assert!(l.attempt("carol", v6("2001:db8:0:1::1")).is_ok());
    }
}
