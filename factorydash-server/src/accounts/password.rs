//! Passwords: Argon2id hashes with OWASP's parameters, checked off the async runtime and
//! a few at a time, and the rules a new password must pass.
//!
//! Parameters: Argon2id, m = 19 MiB, t = 2, p = 1 (OWASP Password Storage Cheat Sheet,
//! "Argon2id with a minimum configuration of 19 MiB of memory, an iteration count of 2,
//! and 1 degree of parallelism"; RFC 9106). Hashes are PHC strings, which carry their
//! parameters: a hash made with other parameters is still checked by its own.

use std::sync::{Arc, LazyLock};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

/// The shortest password taken, in characters (NIST SP 800-63B section 5.1.1.2 asks for
/// at least 8; a plant's shared terminals argue for more).
pub const MIN_LEN: usize = 10;
/// The longest password taken, in bytes: hashing cost is bounded whatever is sent.
pub const MAX_LEN: usize = 256;

/// At most this many hashes are computed at once (each holds 19 MiB): what sign-in
/// attempts can cost the server is bounded.
const AT_ONCE: usize = 2;

static HASHING: LazyLock<Arc<Semaphore>> = LazyLock::new(|| Arc::new(Semaphore::new(AT_ONCE)));

fn argon2() -> Argon2<'static> {
    // The parameters are constants that `Params::new` accepts.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Why a new password is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRefused {
    /// Shorter than [`MIN_LEN`] characters.
    #[error("a password needs at least {MIN_LEN} characters")]
    TooShort,
    /// Longer than [`MAX_LEN`] bytes.
    #[error("a password has at most {MAX_LEN} bytes")]
    TooLong,
    /// On the list of common passwords (the `passwords` crate's).
    #[error("this password is on the list of common passwords: choose another")]
    Common,
    /// The user's name, or holds it.
    #[error("a password may not hold the user's name")]
    HoldsName,
}

/// Checks a new password for `user` against the rules: [`MIN_LEN`] characters at least,
/// [`MAX_LEN`] bytes at most, not a common password, not holding the user's name
/// (NIST SP 800-63B section 5.1.1.2: length and a blocklist, no composition rules).
///
/// # Errors
/// The first rule it breaks.
pub fn check_new(user: &str, password: &str) -> Result<(), PasswordRefused> {
    if password.chars().count() < MIN_LEN {
        return Err(PasswordRefused::TooShort);
    }
    if password.len() > MAX_LEN {
        return Err(PasswordRefused::TooLong);
    }
    if password.to_lowercase().contains(&user.to_lowercase()) {
        return Err(PasswordRefused::HoldsName);
    }
    if passwords::analyzer::is_common_password(password) {
        return Err(PasswordRefused::Common);
    }
    Ok(())
}

/// The Argon2id hash of `password` with a new random salt, as a PHC string. Runs on a
/// blocking thread, at most [`AT_ONCE`] at a time.
///
/// # Errors
/// Hashing failed (it does not with these parameters) or the runtime is stopping.
pub async fn hash(password: String) -> anyhow::Result<String> {
    let _permit = HASHING.clone().acquire_owned().await?;
    tokio::task::spawn_blocking(move || {
        let salt: [u8; 16] = rand::random();
        let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("{e}"))?;
        let hash = argon2()
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(hash.to_string())
    })
    .await?
}

/// A hash of nothing anyone knows, checked when a user is unknown, disabled or has no
/// password: a sign-in takes as long whether the user exists or not.
static DUMMY: LazyLock<String> = LazyLock::new(|| {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).expect("16 bytes encode");
    argon2()
        .hash_password(&rand::random::<[u8; 32]>(), &salt)
        .expect("hashing with constant parameters")
        .to_string()
});

/// How long a check waits for its turn before it is refused as [`Busy`].
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Too many checks at once: none could start within [`WAIT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// Whether `password` is the one `hash` was made of; with `hash` `None` (no such user)
/// a hash is checked all the same, and the answer is `false`. Runs on a blocking thread,
/// at most [`AT_ONCE`] at a time. A password longer than [`MAX_LEN`] is refused at once
/// (no stored password is that long).
///
/// # Errors
/// [`Busy`] when no check could start within [`WAIT`] (many sign-ins from many
/// addresses at once): a queue of waiting checks stays short, and the caller answers
/// `503` rather than making everyone wait.
pub async fn verify(hash: Option<String>, password: String) -> Result<bool, Busy> {
    if password.len() > MAX_LEN {
        return Ok(false);
    }
    let permit = tokio::time::timeout(WAIT, HASHING.clone().acquire_owned()).await;
    let Ok(Ok(_permit)) = permit else {
        return Err(Busy);
    };
    Ok(verify_now(hash, password).await)
}

async fn verify_now(hash: Option<String>, password: String) -> bool {
    tokio::task::spawn_blocking(move || {
        let known = hash.is_some();
        let text = hash.unwrap_or_else(|| DUMMY.clone());
        let Ok(parsed) = PasswordHash::new(&text) else {
            return false;
        };
        let matches = argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        known && matches
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_checks_its_password_only() {
        let h = hash("correct horse battery".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify(Some(h.clone()), "correct horse battery".into())
            .await
            .unwrap());
        assert!(!verify(Some(h), "correct horse battery!".into())
            .await
            .unwrap());
        assert!(!verify(None, "anything at all".into()).await.unwrap());
        assert!(!verify(Some("not a hash".into()), "anything".into())
            .await
            .unwrap());
    }

    #[test]
    fn new_passwords_follow_the_rules() {
        assert_eq!(check_new("ada", "short"), Err(PasswordRefused::TooShort));
        assert_eq!(
            check_new("ada", "password123"),
            Err(PasswordRefused::Common)
        );
        assert_eq!(
            check_new("ada", "ada-the-machinist"),
            Err(PasswordRefused::HoldsName)
        );
        assert_eq!(
            check_new("ada", &"x".repeat(300)),
            Err(PasswordRefused::TooLong)
        );
        assert_eq!(check_new("ada", "spindle warm-up at six"), Ok(()));
    }
}
