//! `POST /api/environments/{project_id}/evaluations/test_hog/` (spec section 4.4): a dry run
//! of a code evaluator on the project's newest matching generations; nothing is stored.

use axum::Json;
use axum::extract::State;
use domain::code::TestCode;
use domain::evaluation::{ConditionInput, Conditions};
use domain::{FieldError, Rule};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::authorized::{Authorized, EvaluationRead};
use crate::error::{ApiError, ErrorBody};
use crate::evaluations::ConditionBody;
use crate::extract::ApiJson;
use crate::state::AppState;

/// The code and what to try it on.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct TestHogBody {
    /// The Hog source; required.
    pub source: Option<String>,
    /// 1..=50 generations, default 5.
    #[schema(value_type = Option<i64>)]
    pub sample_count: Option<Value>,
    /// Whether `return null` (N/A) is a verdict; default false.
    pub allows_na: Option<bool>,
    /// Only generations these conditions match (as an evaluation's).
    pub conditions: Option<Vec<ConditionBody>>,
}

/// One generation's outcome.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestHogResultDto {
    pub event_uuid: uuid::Uuid,
    pub trace_id: Option<String>,
    /// true | false; null when not applicable or on error.
    pub result: Option<bool>,
    /// null on error.
    pub applicable: Option<bool>,
    /// The lines the code printed.
    pub reasoning: String,
    /// Why the code gave no verdict.
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// The answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestHogDto {
    pub results: Vec<TestHogResultDto>,
}

impl TestHogBody {
    fn into_domain(self) -> Result<TestCode, FieldError> {
        let source = match self.source {
            Some(source) if !source.trim().is_empty() => source,
            _ => return Err(FieldError::new("source", Rule::Required)),
        };
        let sample_count = match self.sample_count {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => {
                Some(n.as_i64().ok_or_else(|| FieldError::new("sample_count", Rule::NotAnInteger))?)
            }
            Some(_) => return Err(FieldError::new("sample_count", Rule::NotAnInteger)),
        };
        let conditions = self.conditions.unwrap_or_default();
        let conditions = Conditions::parse(&conditions.into_iter().map(ConditionInput::from).collect::<Vec<_>>())?;
        Ok(TestCode {
            source,
            sample_count: TestCode::sample_count(sample_count)?,
            allows_na: self.allows_na.unwrap_or(false),
            conditions,
        })
    }
}

/// Runs Hog code on the newest matching generations and says what it answered for each;
/// nothing is stored, no LLM is called.
#[utoipa::path(post, path = "/api/environments/{project_id}/evaluations/test_hog/", tag = "evaluations",
    params(("project_id" = i64, Path)), request_body = TestHogBody,
    responses((status = 200, body = TestHogDto),
        (status = 400, body = ErrorBody, description = "No source, a syntax error (line and column), a bad sample_count or condition."),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("personal_api_key" = ["evaluation:read"])))]
pub async fn test_hog(
    State(app): State<AppState>,
    access: Authorized<EvaluationRead>,
    ApiJson(body): ApiJson<TestHogBody>,
) -> Result<Json<TestHogDto>, ApiError> {
    let command = body.into_domain()?;
    let tested = app.code_trials.test(access.project, command).await?;
    let results = tested
        .into_iter()
        .map(|t| TestHogResultDto {
            event_uuid: t.event_uuid,
            trace_id: t.trace_id,
            result: t.result,
            applicable: t.applicable,
            reasoning: t.reasoning,
            error: t.error,
            duration_ms: t.duration_ms,
        })
        .collect();
    Ok(Json(TestHogDto { results }))
}
