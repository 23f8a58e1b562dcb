//! The one way a handler learns who is calling: an extractor that authorizes the request
//! for its route's scope in the path's `{project_id}` before the handler runs, as the
//! reference's permission classes do (so a caller without access is answered 401, 403 or
//! 404 before its body is read).

use std::marker::PhantomData;

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use domain::identity::{Access, Scope};

use crate::error::ApiError;
use crate::state::AppState;

/// What a route requires: a scope, and for some writes project admin.
pub trait Requirement: Send + Sync + 'static {
    const SCOPE: Scope;
    const ADMIN: bool;
}

/// The caller's access to the path's project, checked against `R`.
pub struct Authorized<R: Requirement> {
    pub access: Access,
    requirement: PhantomData<R>,
}

impl<R: Requirement> std::ops::Deref for Authorized<R> {
    type Target = Access;

    fn deref(&self) -> &Access {
        &self.access
    }
}

impl<R: Requirement> FromRequestParts<AppState> for Authorized<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        // Every authorized route has `{project_id}`; one that could not be read reaches no
        // project (404 after authentication).
        let project = RawPathParams::from_request_parts(parts, app)
            .await
            .ok()
            .and_then(|params| params.iter().find(|(name, _)| *name == "project_id").map(|(_, v)| v.to_owned()))
            .unwrap_or_default();
        let access = if R::ADMIN {
            app.authorize_admin(&parts.headers, &project, R::SCOPE).await?
        } else {
            app.authorize(&parts.headers, &project, R::SCOPE).await?
        };
        Ok(Self { access, requirement: PhantomData })
    }
}

macro_rules! requirements {
    ($($(#[$doc:meta])* $name:ident = $scope:ident $(+ $admin:ident)?;)*) => {$(
        $(#[$doc])*
        pub struct $name;

        impl Requirement for $name {
            const SCOPE: Scope = Scope::$scope;
            const ADMIN: bool = requirements!(@admin $($admin)?);
        }
    )*};
    (@admin admin) => { true };
    (@admin) => { false };
}

requirements! {
    /// `evaluation:read`.
    EvaluationRead = EVALUATION_READ;
    /// `evaluation:write`.
    EvaluationWrite = EVALUATION_WRITE;
    /// `llm_analytics:read`.
    AnalyticsRead = LLM_ANALYTICS_READ;
    /// `llm_analytics:write`.
    AnalyticsWrite = LLM_ANALYTICS_WRITE;
    /// `llm_provider_key:read`.
    KeyRead = PROVIDER_KEY_READ;
    /// `llm_provider_key:write`, by a project admin.
    KeyAdmin = PROVIDER_KEY_WRITE + admin;
}
