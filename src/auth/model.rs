//! Plain account types and their rules: usernames, roles, passwords, users,
//! sessions and API tokens. No I/O.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::domain::ValidationError;

pub type UserId = i64;
pub type SessionId = i64;
pub type TokenId = i64;

pub const MAX_USERNAME_CHARS: usize = 64;
/// Longer passwords add nothing but hashing time an attacker could ask for.
pub const MAX_PASSWORD_CHARS: usize = 1024;
pub const MAX_TOKEN_NAME_CHARS: usize = 100;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything, including managing users.
    Admin,
    /// Reads everything, changes nothing but their own password and API tokens.
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "admin" => Some(Role::Admin),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A username as typed (trimmed), 1–64 characters without control characters.
/// Two names that differ only in case are the same user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(ValidationError::new("username", "the username is empty"));
        }
        if name.chars().count() > MAX_USERNAME_CHARS {
            return Err(ValidationError::new(
                "username",
                format!("the username is longer than {MAX_USERNAME_CHARS} characters"),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(ValidationError::new(
                "username",
                "the username contains control characters",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-insensitive identity of the name, which the database keeps unique.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

/// A new password that meets the policy. Its `Debug` hides it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn parse(raw: &str, min_chars: usize) -> Result<Self, ValidationError> {
        let chars = raw.chars().count();
        if chars < min_chars {
            return Err(ValidationError::new(
                "password",
                format!("the password must have at least {min_chars} characters"),
            ));
        }
        if chars > MAX_PASSWORD_CHARS {
            return Err(ValidationError::new(
                "password",
                format!("the password must have at most {MAX_PASSWORD_CHARS} characters"),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

impl User {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// A user as stored, with the hash their password is verified against.
#[derive(Clone)]
pub struct StoredUser {
    pub user: User,
    pub password_hash: String,
}

/// What a user record is created from; the hash is computed beforehand.
#[derive(Clone)]
pub struct NewUser {
    pub username: Username,
    pub password_hash: String,
    pub role: Role,
}

/// A valid session with the user it belongs to.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: SessionId,
    pub user: User,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

/// An API token as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: TokenId,
    pub user_id: UserId,
    pub name: String,
    /// The secret's last characters, to tell tokens apart.
    pub hint: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A token name: 1–100 characters, trimmed.
pub fn parse_token_name(raw: &str) -> Result<String, ValidationError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(ValidationError::new("name", "the token needs a name"));
    }
    if name.chars().count() > MAX_TOKEN_NAME_CHARS {
        return Err(ValidationError::new(
            "name",
            format!("the name is longer than {MAX_TOKEN_NAME_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(ValidationError::new(
            "name",
            "the name contains control characters",
        ));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_case_insensitive_and_bounded() {
        let name = Username::parse("  Ada.Lovelace ").unwrap();
        assert_eq!(name.as_str(), "Ada.Lovelace");
        assert_eq!(name.key(), "ada.lovelace");
        assert_eq!(Username::parse("ÄRGER").unwrap().key(), "ärger");
        assert!(Username::parse("   ").is_err());
        assert!(Username::parse(&"x".repeat(64)).is_ok());
        assert!(Username::parse(&"x".repeat(65)).is_err());
        assert!(Username::parse("a\u{0}b").is_err());
    }

    #[test]
    fn passwords_follow_the_policy_and_hide_in_debug() {
        assert!(Password::parse("short", 12).is_err());
        assert!(Password::parse("twelve chars", 12).is_ok());
        // Characters, not bytes: twelve umlauts are twelve characters.
        assert!(Password::parse(&"ü".repeat(12), 12).is_ok());
        assert!(Password::parse(&"x".repeat(MAX_PASSWORD_CHARS + 1), 12).is_err());
        let p = Password::parse("correct horse battery", 12).unwrap();
        assert!(!format!("{p:?}").contains("horse"));
    }

    #[test]
    fn roles_round_trip() {
        for role in [Role::Admin, Role::Viewer] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
