//! jsonwebtoken's crypto, HS256 only, over the `hmac` and `sha2` crates.
//!
//! jsonwebtoken is built without a crypto backend (see `shared/Cargo.toml`):
//! [`super::TokenConfig::new`] installs this provider, which knows HS256 and
//! nothing else — every other algorithm is refused before any key is used —
//! so the components carry no RSA, ECDSA or EdDSA code.

use hmac::{Hmac, Mac};
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::signature::{self, Signer, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The provider: JWKs are never used here, so their helpers stay unimplemented.
static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory,
    verifier_factory,
    key_utils: KeyUtils::new_unimplemented(),
};

/// Makes [`PROVIDER`] jsonwebtoken's process-wide default. Idempotent: a
/// second call finds it installed (jsonwebtoken keeps the first, and no
/// other provider exists in this build), so the result is ignored.
pub(super) fn install() {
    let _ = PROVIDER.install_default();
}

/// A MAC keyed with an HMAC secret, for HS256 only: any other algorithm
/// or key kind is refused, so a token naming RS256 or `none` cannot be
/// checked against the secret as if it were a public key.
fn keyed(alg: &Algorithm, family: AlgorithmFamily, secret: &[u8]) -> Result<HmacSha256> {
    if *alg != Algorithm::HS256 || family != AlgorithmFamily::Hmac {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    HmacSha256::new_from_slice(secret).map_err(|_| ErrorKind::InvalidKeyFormat.into())
}

fn signer_factory(alg: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    Ok(Box::new(Hs256(keyed(alg, key.family(), key.as_bytes())?)))
}

fn verifier_factory(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    Ok(Box::new(Hs256(keyed(
        alg,
        key.family(),
        key.try_get_as_bytes()?,
    )?)))
}

/// HS256 with its key already absorbed; cloned per message.
struct Hs256(HmacSha256);

impl Signer<Vec<u8>> for Hs256 {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        let mut mac = self.0.clone();
        mac.update(msg);
        Ok(mac.finalize().into_bytes().to_vec())
    }
}

impl Verifier<Vec<u8>> for Hs256 {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        let mut mac = self.0.clone();
        mac.update(msg);
        // `verify_slice` compares in constant time.
        mac.verify_slice(signature)
            .map_err(signature::Error::from_source)
    }
}

impl JwtSigner for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

impl JwtVerifier for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

#[cfg(test)]
mod tests;
