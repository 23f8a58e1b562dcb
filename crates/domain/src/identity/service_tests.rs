use std::sync::Arc;

use secrecy::ExposeSecret;

use super::*;
use crate::identity::{ApiKeyGrant, MockIdentityRepository};

const PROJECT: ProjectId = ProjectId(1);

fn token() -> String {
    PersonalApiToken::generate().secret().expose_secret().to_owned()
}

fn grant(scopes: &str, projects: Option<Vec<ProjectId>>, level: Option<MembershipLevel>) -> ApiKeyGrant {
    ApiKeyGrant {
        api_key_id: ApiKeyId::generate(),
        user: crate::UserId(9),
        scopes: Scopes::parse(scopes).unwrap(),
        projects,
        level,
    }
}

fn access_with(found: Option<ApiKeyGrant>) -> AccessService {
    let mut repo = MockIdentityRepository::new();
    repo.expect_find_grant().returning(move |_, _| Ok(found.clone()));
    AccessService::new(Arc::new(repo))
}

#[tokio::test]
async fn a_found_grant_is_reused_within_the_ttl_per_project() {
    let mut repo = MockIdentityRepository::new();
    repo.expect_find_grant().times(2).returning(|_, _| Ok(Some(grant("*", None, Some(MembershipLevel::Admin)))));
    let service = AccessService::new(Arc::new(repo));
    let raw = token();

    for _ in 0..3 {
        service.authorize(Some(&raw), PROJECT, Scope::EVALUATION_READ).await.unwrap();
    }
    // Another project is another lookup (membership differs per project).
    service.authorize(Some(&raw), ProjectId(2), Scope::EVALUATION_READ).await.unwrap();
}

#[tokio::test]
async fn unknown_tokens_are_looked_up_every_time_and_a_zero_ttl_disables_reuse() {
    let mut repo = MockIdentityRepository::new();
    repo.expect_find_grant().times(2).returning(|_, _| Ok(None));
    let service = AccessService::new(Arc::new(repo));
    let raw = token();
    for _ in 0..2 {
        assert!(service.authorize(Some(&raw), PROJECT, Scope::EVALUATION_READ).await.is_err());
    }

    let mut repo = MockIdentityRepository::new();
    repo.expect_find_grant().times(2).returning(|_, _| Ok(Some(grant("*", None, Some(MembershipLevel::Admin)))));
    let uncached = AccessService::with_grant_ttl(Arc::new(repo), std::time::Duration::ZERO);
    for _ in 0..2 {
        uncached.authorize(Some(&raw), PROJECT, Scope::EVALUATION_READ).await.unwrap();
    }
}

#[tokio::test]
async fn missing_malformed_or_unknown_tokens_are_unauthenticated() {
    let mut repo = MockIdentityRepository::new();
    repo.expect_find_grant().times(1).returning(|_, _| Ok(None));
    let service = AccessService::new(Arc::new(repo));

    for bearer in [None, Some("phx_short"), Some(token().as_str())] {
        let error = service.authorize(bearer, PROJECT, Scope::PROVIDER_KEY_READ).await.unwrap_err();
        assert!(matches!(error, AccessError::Unauthenticated(_)), "{bearer:?} gave {error:?}");
    }
}

#[tokio::test]
async fn the_token_is_looked_up_by_its_hash() {
    let raw = token();
    let expected = TokenHash::of(&raw);
    let mut repo = MockIdentityRepository::new();
    repo.expect_find_grant()
        .withf(move |hash, project| *hash == expected && *project == PROJECT)
        .returning(|_, _| Ok(Some(grant("*", None, Some(MembershipLevel::Member)))));
    let service = AccessService::new(Arc::new(repo));

    let access = service.authorize(Some(&raw), PROJECT, Scope::EVALUATION_READ).await.unwrap();
    assert_eq!(access.level, MembershipLevel::Member);
}

#[tokio::test]
async fn a_missing_scope_is_forbidden_and_named() {
    let service = access_with(Some(grant("evaluation:read", None, Some(MembershipLevel::Admin))));

    let error = service.authorize(Some(&token()), PROJECT, Scope::PROVIDER_KEY_WRITE).await.unwrap_err();

    assert!(matches!(error, AccessError::MissingScope(scope) if scope == Scope::PROVIDER_KEY_WRITE), "{error:?}");
}

#[tokio::test]
async fn unreachable_projects_are_not_found() {
    let restricted = access_with(Some(grant("*", Some(vec![ProjectId(2)]), Some(MembershipLevel::Admin))));
    let error = restricted.authorize(Some(&token()), PROJECT, Scope::PROVIDER_KEY_READ).await.unwrap_err();
    assert!(matches!(error, AccessError::ProjectNotFound));

    let not_member = access_with(Some(grant("*", None, None)));
    let error = not_member.authorize(Some(&token()), PROJECT, Scope::PROVIDER_KEY_READ).await.unwrap_err();
    assert!(matches!(error, AccessError::ProjectNotFound));
}

#[tokio::test]
async fn admin_actions_need_admin_membership() {
    let member = access_with(Some(grant("*", None, Some(MembershipLevel::Member))));
    let error = member.authorize_admin(Some(&token()), PROJECT, Scope::PROVIDER_KEY_WRITE).await.unwrap_err();
    assert!(matches!(error, AccessError::NotAdmin), "{error:?}");

    let admin = access_with(Some(grant("*", Some(vec![PROJECT]), Some(MembershipLevel::Admin))));
    assert!(admin.authorize_admin(Some(&token()), PROJECT, Scope::PROVIDER_KEY_WRITE).await.is_ok());
}

#[tokio::test]
async fn create_api_key_stores_only_the_hash_and_returns_the_token_once() {
    let mut repo = MockIdentityRepository::new();
    repo.expect_find_user_by_email()
        .withf(|email| email == "ada@example.com")
        .returning(|email| Ok(Some(User { id: crate::UserId(4), uuid: uuid::Uuid::nil(), email: email.to_owned() })));
    repo.expect_projects_exist().returning(|_| Ok(true));
    let stored = Arc::new(std::sync::Mutex::new(None));
    let sink = stored.clone();
    repo.expect_create_api_key().returning(move |key| {
        *sink.lock().unwrap() = Some(key.clone());
        Ok(())
    });
    let service = AdminService::new(Arc::new(repo));

    let created = service
        .create_api_key(" Ada@Example.com ", "llm_analytics:read", Some(vec![PROJECT]), Some("ci"))
        .await
        .unwrap();

    let stored = stored.lock().unwrap().clone().unwrap();
    assert_eq!(stored.hash, TokenHash::of(created.token.expose_secret()));
    assert_ne!(stored.hash.0, created.token.expose_secret());
    assert_eq!(stored.projects, Some(vec![PROJECT]));
    assert_eq!(created.scopes.to_strings(), vec!["llm_analytics:read"]);
}

#[tokio::test]
async fn create_api_key_refuses_unknown_scopes_users_and_projects() {
    let mut repo = MockIdentityRepository::new();
    repo.expect_find_user_by_email().returning(|email| {
        Ok((email == "ada@example.com").then(|| User {
            id: crate::UserId(4),
            uuid: uuid::Uuid::nil(),
            email: email.into(),
        }))
    });
    repo.expect_projects_exist().returning(|_| Ok(false));
    repo.expect_create_api_key().never();
    let service = AdminService::new(Arc::new(repo));

    assert!(matches!(
        service.create_api_key("ada@example.com", "billing:read", None, None).await,
        Err(AdminError::Invalid(_))
    ));
    assert!(matches!(
        service.create_api_key("bob@example.com", "*", None, None).await,
        Err(AdminError::UnknownUser(_))
    ));
    assert!(matches!(
        service.create_api_key("ada@example.com", "*", Some(vec![ProjectId(99)]), None).await,
        Err(AdminError::UnknownProject(_))
    ));
}

#[tokio::test]
async fn create_user_validates_email_and_level() {
    let mut repo = MockIdentityRepository::new();
    repo.expect_create_user().withf(|user| user.membership == Some((PROJECT, MembershipLevel::Member))).returning(
        |user| {
            Ok(CreateUserOutcome::Created(User {
                id: crate::UserId(1),
                uuid: uuid::Uuid::nil(),
                email: user.email.clone(),
            }))
        },
    );
    let service = AdminService::new(Arc::new(repo));

    assert!(matches!(service.create_user("not-an-email", None, None).await, Err(AdminError::Invalid(_))));
    assert!(matches!(service.create_user("a@b.io", None, Some("admin")).await, Err(AdminError::Invalid(_))));
    assert!(matches!(service.create_user("a@b.io", Some(PROJECT), Some("owner")).await, Err(AdminError::Invalid(_))));
    let user = service.create_user("A@B.io", Some(PROJECT), None).await.unwrap();
    assert_eq!(user.email, "a@b.io");
}
