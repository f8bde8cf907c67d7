//! Roles, principals, region scopes and API tokens.
//!
//! A token is `gd_` followed by 64 hex digits (32 random bytes from the operating system).
//! Only its SHA-256 digest is stored; the token itself is shown once, when created.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

use crate::error::{Result, ServiceError};

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything.
    Admin,
    /// The monitoring centre: farmland layers, batches, every change (read), statistics.
    Centre,
    /// A county / township inspector: reads and verifies the changes of one administrative
    /// unit and every unit below it.
    Inspector,
    /// Reads changes (no verdicts) and models.
    Researcher,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [Role::Admin, Role::Centre, Role::Inspector, Role::Researcher];

    /// The name used in JSON, the CLI and the store.
    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Centre => "centre",
            Role::Inspector => "inspector",
            Role::Researcher => "researcher",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Role {
    type Err = ServiceError;
    fn from_str(s: &str) -> Result<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| {
                ServiceError::Invalid(format!(
                    "unknown role {s:?}; roles: admin, centre, inspector, researcher"
                ))
            })
    }
}

/// Which patches a query may see: all, or those of one administrative unit and the units
/// below it (patches whose location code starts with the unit's code). Every patch query of
/// the store takes one, so a scoped caller cannot even count patches outside its unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every patch.
    All,
    /// Patches whose location code starts with this administrative code.
    Region(String),
}

/// An administrative code as ZLDWDM spells it and its prefixes: 1 to 19 ASCII digits
/// (6 = county, 9 = township, 12 = village, 19 = village group).
pub fn check_region_code(code: &str) -> Result<()> {
    if code.is_empty() || code.len() > 19 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ServiceError::Invalid(format!(
            "region {code:?}: an administrative code is 1 to 19 digits (ZLDWDM: county 6, township 9, village 12)"
        )));
    }
    Ok(())
}

/// Who is calling: the token's id, name, role and (for inspectors) region.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub token_id: i64,
    pub name: String,
    pub role: Role,
    pub region: Option<String>,
}

impl Principal {
    /// The patches this principal may see. An inspector without a region sees none
    /// (`gengdi token create` refuses to make one; the scope below matches no code).
    pub fn scope(&self) -> Scope {
        match (self.role, &self.region) {
            (Role::Inspector, Some(r)) => Scope::Region(r.clone()),
            (Role::Inspector, None) => Scope::Region("-".into()),
            _ => Scope::All,
        }
    }
}

/// A new random token.
pub fn new_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ServiceError::Random(e.to_string()))?;
    Ok(format!("gd_{}", hex::encode(bytes)))
}

/// The digest a token is stored and looked up by (SHA-256, hex).
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_prefixed_hex_and_its_digest_is_sha256() {
        let t = new_token().unwrap();
        assert_eq!(t.len(), 67);
        assert!(t.starts_with("gd_"));
        assert_eq!(
            token_digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn region_codes_are_digits_up_to_nineteen() {
        assert!(check_region_code("640502").is_ok());
        assert!(check_region_code("6405021010010010000").is_ok());
        assert!(check_region_code("").is_err());
        assert!(check_region_code("64050%").is_err());
        assert!(check_region_code("64050210100100100001").is_err());
    }
}
