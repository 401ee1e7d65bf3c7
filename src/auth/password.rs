//! argon2id password hashing off the async runtime.
//!
//! One hash costs tens of milliseconds of CPU and 19 MiB of memory, on purpose. It
//! runs on the blocking pool behind a semaphore, so a burst of sign-ins queues up
//! instead of taking every core (and gigabytes of memory) from pages and the API.

use std::sync::Arc;

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::{OnceCell, Semaphore};

/// The parameters OWASP recommends for argon2id: 19 MiB, 2 passes, 1 lane.
pub const MEMORY_KIB: u32 = 19 * 1024;
pub const ITERATIONS: u32 = 2;
pub const LANES: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing failed: {0}")]
    Argon2(String),
    #[error("password hashing was cancelled")]
    Cancelled,
}

#[derive(Clone)]
pub struct PasswordHasher {
    argon: Argon2<'static>,
    permits: Arc<Semaphore>,
    /// Verified against when a username does not exist, so that answering takes
    /// as long as for a wrong password and does not reveal which names exist.
    dummy: Arc<OnceCell<String>>,
}

impl PasswordHasher {
    /// At most `concurrency` hashes run at the same time.
    pub fn new(concurrency: usize) -> Self {
        let params = Params::new(MEMORY_KIB, ITERATIONS, LANES, None)
            .expect("the argon2 parameters are valid");
        Self {
            argon: Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy: Arc::new(OnceCell::new()),
        }
    }

    /// The default cap: leave one core for everything else.
    pub fn default_concurrency() -> usize {
        std::thread::available_parallelism()
            .map(|n| n.get().saturating_sub(1))
            .unwrap_or(1)
            .max(1)
    }

    /// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) with a fresh salt.
    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let argon = self.argon.clone();
        let password = password.to_owned();
        self.run(move || {
            argon
                .hash_password(password.as_bytes())
                .map(|hash| hash.to_string())
                .map_err(|e| HashError::Argon2(e.to_string()))
        })
        .await?
    }

    /// Whether `password` matches `hash`; `None` verifies against a dummy hash and
    /// is always false, at the same cost.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, HashError> {
        let hash = match hash {
            Some(hash) => hash.to_owned(),
            None => self.dummy_hash().await?.to_owned(),
        };
        let argon = self.argon.clone();
        let password = password.to_owned();
        let matches = self
            .run(move || {
                argon
                    .verify_password(password.as_bytes(), hash.as_str())
                    .is_ok()
            })
            .await?;
        Ok(matches)
    }

    async fn dummy_hash(&self) -> Result<&str, HashError> {
        self.dummy
            .get_or_try_init(|| async {
                let random = super::secret::random_text(24);
                self.hash(&random).await
            })
            .await
            .map(String::as_str)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| HashError::Cancelled)?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|_| HashError::Cancelled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_use_owasp_parameters() {
        let hasher = PasswordHasher::new(2);
        let hash = hasher.hash("correct horse battery").await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(!hash.contains("horse"));
        assert!(
            hasher
                .verify("correct horse battery", Some(&hash))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify("wrong horse battery", Some(&hash))
                .await
                .unwrap()
        );
        assert!(!hasher.verify("correct horse battery", None).await.unwrap());
        // A corrupt hash never matches and never panics.
        assert!(!hasher.verify("x", Some("$argon2id$garbage")).await.unwrap());
        // Same password, fresh salt.
        assert_ne!(hash, hasher.hash("correct horse battery").await.unwrap());
    }
}
