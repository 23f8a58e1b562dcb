//! Re-sealing every stored key secret under the current encryption key (key rotation).

use super::ResealError;
use super::service::{ProviderKeyService, seal_context};

/// Rows read per batch.
const RESEAL_BATCH: i64 = 100;

/// How many secrets a rotation looked at and re-sealed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResealReport {
    pub examined: u64,
    pub resealed: u64,
}

impl ProviderKeyService {
    /// Re-seals every stored secret that is not under the current encryption key, in
    /// batches; safe to run while serving and to re-run after an interruption.
    pub async fn reseal_all(&self) -> Result<ResealReport, ResealError> {
        let mut report = ResealReport::default();
        let mut after = None;
        loop {
            let batch = self.repository.sealed_batch(after, RESEAL_BATCH).await?;
            let Some(last) = batch.last() else {
                return Ok(report);
            };
            after = Some(last.id);
            for row in &batch {
                report.examined += 1;
                if self.cipher.is_current(&row.sealed_secret) {
                    continue;
                }
                let context = seal_context(row.project, row.id);
                let plaintext = self
                    .cipher
                    .open(&row.sealed_secret, &context)
                    .map_err(|source| ResealError::CannotOpen { id: row.id, source })?;
                let resealed = self.cipher.seal(&plaintext, &context).map_err(anyhow::Error::from)?;
                if self.repository.replace_sealed(row, &resealed).await? {
                    report.resealed += 1;
                }
            }
        }
    }
}
