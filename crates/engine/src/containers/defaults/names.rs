//! Container names and ids as Docker makes them: `adjective_surname` names
//! (with a digit appended once a name has collided), the name rule
//! `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, and 64-hex-digit random ids.

use std::fmt::Write as _;

use rand::{Rng, RngCore};

use super::name_words::{ADJECTIVES, SURNAMES};

/// The characters Docker allows in a name, as its error message spells them.
pub const VALID_NAME_CHARS: &str = "[a-zA-Z0-9][a-zA-Z0-9_.-]";

/// How many generated names Docker tries before falling back to the short id.
pub const NAME_ATTEMPTS: usize = 6;

#[derive(Debug, thiserror::Error)]
pub enum NameError {
    /// Docker's message, word for word.
    #[error("Invalid container name ({name}), only {VALID_NAME_CHARS} are allowed")]
    Invalid { name: String },
}

/// A random `adjective_surname` name. Never `boring_wozniak`, as in Docker.
pub fn random_name(rng: &mut impl Rng) -> String {
    loop {
        let adjective = ADJECTIVES[rng.random_range(0..ADJECTIVES.len())];
        let surname = SURNAMES[rng.random_range(0..SURNAMES.len())];
        if (adjective, surname) == ("boring", "wozniak") {
            continue;
        }
        return format!("{adjective}_{surname}");
    }
}

/// The name for attempt `retry` (0-based): after a collision Docker appends
/// a random digit (`focused_turing3`) to widen the space.
pub fn random_name_with_suffix(rng: &mut impl Rng, retry: usize) -> String {
    let mut name = random_name(rng);
    if retry > 0 {
        let digit: u8 = rng.random_range(0..10);
        let _ = write!(name, "{digit}");
    }
    name
}

/// A generated name that `is_taken` does not report as used, trying
/// [`NAME_ATTEMPTS`] names like Docker and then the container's short id.
/// `None` when even the short id is taken (the caller reports the conflict).
pub fn generate_unique_name(
    rng: &mut impl Rng,
    container_id: &str,
    mut is_taken: impl FnMut(&str) -> bool,
) -> Option<String> {
    for retry in 0..NAME_ATTEMPTS {
        let name = random_name_with_suffix(rng, retry);
        if !is_taken(&name) {
            return Some(name);
        }
    }
    let short = short_id(container_id).to_string();
    (!is_taken(&short)).then_some(short)
}

/// Checks a user-given name. A leading `/` (the API's form) is allowed and
/// not part of the name.
pub fn validate_name(name: &str) -> Result<(), NameError> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    let bytes = bare.as_bytes();
    let valid = bytes.len() >= 2
        && bytes[0].is_ascii_alphanumeric()
        && bytes[1..]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(NameError::Invalid {
            name: name.to_string(),
        })
    }
}

/// The first 12 hex digits, as `docker ps` shows ids.
pub fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// A new container id: 32 random bytes from the OS-seeded CSPRNG, in hex.
/// Ids whose short form is all digits are drawn again, as older Docker
/// releases did: such a short id reads like a number and would be
/// ambiguous where a number is also accepted.
pub fn new_container_id() -> String {
    let mut rng = rand::rng();
    loop {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        let id = hex(&bytes);
        if !short_id(&id).bytes().all(|b| b.is_ascii_digit()) {
            return id;
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn word_lists_are_large_unique_and_valid() {
        assert!(ADJECTIVES.len() >= 90, "{}", ADJECTIVES.len());
        assert!(SURNAMES.len() >= 200, "{}", SURNAMES.len());
        for list in [ADJECTIVES, SURNAMES] {
            let unique: HashSet<_> = list.iter().collect();
            assert_eq!(unique.len(), list.len(), "duplicates");
            for w in list {
                assert!(
                    w.len() >= 2 && w.bytes().all(|b| b.is_ascii_lowercase()),
                    "{w:?}"
                );
            }
        }
        assert!(ADJECTIVES.contains(&"boring") && SURNAMES.contains(&"wozniak"));
    }

    #[test]
    fn random_names_look_like_docker_ones() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut seen = HashSet::new();
        for _ in 0..5000 {
            let name = random_name(&mut rng);
            let (adjective, surname) = name.split_once('_').unwrap();
            assert!(ADJECTIVES.contains(&adjective) && SURNAMES.contains(&surname));
            assert_ne!(name, "boring_wozniak");
            validate_name(&name).unwrap();
            seen.insert(name);
        }
        assert!(seen.len() > 4500, "only {} distinct names", seen.len());
    }

    #[test]
    fn boring_wozniak_is_never_generated() {
        // An rng that would pick boring and wozniak first.
        struct Scripted(Vec<u64>);
        impl RngCore for Scripted {
            fn next_u32(&mut self) -> u32 {
                self.next_u64() as u32
            }
            fn next_u64(&mut self) -> u64 {
                self.0.remove(0)
            }
            fn fill_bytes(&mut self, dest: &mut [u8]) {
                rand::rand_core::impls::fill_bytes_via_next(self, dest)
            }
        }
        let pos = |list: &[&str], w: &str| list.iter().position(|x| *x == w).unwrap() as u64;
        // random_range over n maps the full u32 range evenly onto 0..n.
        let pick = |i: u64, n: usize| ((i << 32) / n as u64 + 1) as u32 as u64;
        let b = pick(pos(ADJECTIVES, "boring"), ADJECTIVES.len());
        let w = pick(pos(SURNAMES, "wozniak"), SURNAMES.len());
        let mut first = Scripted(vec![b, w]);
        let a = first.random_range(0..ADJECTIVES.len());
        let s = first.random_range(0..SURNAMES.len());
        assert_eq!((ADJECTIVES[a], SURNAMES[s]), ("boring", "wozniak"));
        let mut rng = Scripted(vec![b, w, b, pick(0, SURNAMES.len())]);
        assert_eq!(random_name(&mut rng), format!("boring_{}", SURNAMES[0]));
    }

    #[test]
    fn retries_append_a_digit_then_fall_back_to_the_short_id() {
        let mut rng = StdRng::seed_from_u64(1);
        let first = random_name_with_suffix(&mut rng, 0);
        assert!(!first.ends_with(|c: char| c.is_ascii_digit()));
        for retry in 1..5 {
            let name = random_name_with_suffix(&mut rng, retry);
            assert!(name.ends_with(|c: char| c.is_ascii_digit()), "{name}");
        }

        let id = new_container_id();
        let mut tried = Vec::new();
        let name = generate_unique_name(&mut rng, &id, |n| {
            tried.push(n.to_string());
            tried.len() <= 3
        })
        .unwrap();
        assert_eq!(tried.len(), 4);
        assert!(name.ends_with(|c: char| c.is_ascii_digit()));
        assert_eq!(
            generate_unique_name(&mut rng, &id, |n| n.contains('_')).as_deref(),
            Some(short_id(&id))
        );
        assert_eq!(generate_unique_name(&mut rng, &id, |_| true), None);
    }

    #[test]
    fn name_validation_follows_docker() {
        for ok in ["ab", "/web", "my_app-1.2", "0x", "A.b-c_d", "nginx"] {
            validate_name(ok).unwrap();
        }
        for bad in [
            "", "a", "/", "/a", "_web", "-web", ".web", "my app", "x/y", "naïve", "a:b",
        ] {
            let err = validate_name(bad).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "Invalid container name ({bad}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                )
            );
        }
    }

    #[test]
    fn container_ids_are_random_hex() {
        let ids: HashSet<String> = (0..200).map(|_| new_container_id()).collect();
        assert_eq!(ids.len(), 200);
        for id in &ids {
            assert_eq!(id.len(), 64);
            assert!(id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
            assert!(!short_id(id).bytes().all(|b| b.is_ascii_digit()));
        }
        assert_eq!(short_id("abc"), "abc");
    }
}
