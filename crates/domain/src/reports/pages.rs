//! The run page: its signed link, and its HTML for a link that is signed and not expired.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::error::ReportError;
use super::model::ReportRun;
use super::ports::{LinkSigner, ReportRepository, ReportRunStore};
use super::render::{self, RunView};
use crate::ReportRunId;
use crate::evaluation::EvaluationRepository;

/// How long a run page's link lives.
pub const LINK_LIFETIME: chrono::Duration = chrono::Duration::days(30);

/// Run pages and their links.
pub struct RunPages {
    pub(super) reports: Arc<dyn ReportRepository>,
    pub(super) runs: Arc<dyn ReportRunStore>,
    pub(super) evaluations: Arc<dyn EvaluationRepository>,
    pub(super) signer: Arc<dyn LinkSigner>,
    /// The base of the links (`LLMA_PUBLIC_URL`), without a trailing slash.
    pub(super) public_url: String,
}

impl RunPages {
    /// The run page's signed link.
    pub fn share_url(&self, run: &ReportRun) -> String {
        let expires = (run.created_at + LINK_LIFETIME).timestamp();
        let signature = self.signer.sign(&link_message(run.id, expires));
        format!("{}/reports/runs/{}?expires={expires}&signature={signature}", self.public_url, run.id.0)
    }

    /// The run page's HTML, when the link is signed and not expired (else not found).
    pub async fn page(
        &self,
        run: &str,
        expires: Option<&str>,
        signature: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<String, ReportError> {
        let (Ok(run_id), Some(Ok(expires)), Some(signature)) =
            (run.parse::<ReportRunId>(), expires.map(str::parse::<i64>), signature)
        else {
            return Err(ReportError::NotFound);
        };
        if expires < now.timestamp() || !self.signer.verify(&link_message(run_id, expires), signature) {
            return Err(ReportError::NotFound);
        }
        let run = self.runs.run(run_id).await?.ok_or(ReportError::NotFound)?;
        let name = self.evaluation_name(&run).await;
        let share_url = self.share_url(&run);
        Ok(render::page_html(RunView { evaluation_name: &name, run: &run, share_url: &share_url }, &run.trend))
    }

    pub(super) async fn evaluation_name(&self, run: &ReportRun) -> String {
        let evaluation = match self.reports.find(run.project, run.report).await {
            Ok(Some(report)) => self.evaluations.find(run.project, report.evaluation).await.ok().flatten(),
            _ => None,
        };
        evaluation.map_or_else(|| "Deleted evaluation".to_owned(), |e| e.name)
    }
}

fn link_message(run: ReportRunId, expires: i64) -> String {
    format!("{}.{expires}", run.0)
}
