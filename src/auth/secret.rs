//! The random secrets clients hold (session and API tokens) and the hashes the
//! database keeps of them. A token has 256 random bits, so a fast hash is enough:
//! there is nothing to guess, and a stolen table reveals no usable token.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};

/// API tokens start with this, so they are easy to recognise (and to find when leaked).
pub const API_TOKEN_PREFIX: &str = "sp360_";

/// A secret token as handed to a client. Its `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A session token: 256 random bits, URL-safe base64.
    pub fn session() -> Self {
        Self(random_text(32))
    }

    /// An API token: the prefix and 256 random bits.
    pub fn api_token() -> Self {
        Self(format!("{API_TOKEN_PREFIX}{}", random_text(32)))
    }

    pub fn from_client(raw: &str) -> Self {
        Self(raw.trim().to_owned())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_api_token(&self) -> bool {
        self.0.starts_with(API_TOKEN_PREFIX)
    }

    /// What the database keeps: the SHA-256 of the token.
    pub fn hash(&self) -> Vec<u8> {
        digest::digest(&digest::SHA256, self.0.as_bytes())
            .as_ref()
            .to_vec()
    }

    /// The last four characters, shown in lists to tell tokens apart.
    pub fn hint(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        chars[chars.len().saturating_sub(4)..].iter().collect()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// `bytes` random bytes from the operating system, as URL-safe base64.
pub fn random_text(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    SystemRandom::new()
        .fill(&mut buf)
        .expect("the operating system's random number generator failed");
    URL_SAFE_NO_PAD.encode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_hashed() {
        let a = Secret::session();
        let b = Secret::session();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 43, "256 bits in base64");
        let t = Secret::api_token();
        assert!(t.is_api_token() && !a.is_api_token());
        assert_eq!(t.expose().len(), API_TOKEN_PREFIX.len() + 43);
        assert_eq!(t.hash().len(), 32);
        assert_eq!(t.hash(), Secret::from_client(t.expose()).hash());
        assert!(t.expose().ends_with(&t.hint()));
        assert!(!format!("{t:?}").contains(t.expose()));
    }
}
