//! `PgIdentityRepository`: projects, users with their first membership, and the grant
//! behind a personal API key.

use domain::identity::{
    ApiKeyGrant, CreateUserOutcome, IdentityRepository, MembershipLevel, NewApiKey, NewUser, PersonalApiToken, Scopes,
    TokenHash,
};
use domain::{ApiKeyId, ProjectId, UserId};

use crate::support::{TestApp, unique_email};

/// Stores a personal API key of `user` and returns it with the hash it is found by.
async fn api_key(app: &TestApp, user: UserId, scopes: &str, projects: Option<Vec<ProjectId>>) -> NewApiKey {
    let key = NewApiKey {
        id: ApiKeyId::generate(),
        user,
        label: "ci".to_owned(),
        scopes: Scopes::parse(scopes).unwrap(),
        projects,
        hash: PersonalApiToken::generate().hash(),
    };
    app.identity.create_api_key(&key).await.unwrap();
    key
}

async fn user_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(app.pool()).await.unwrap()
}

async fn memberships_of(app: &TestApp, user: UserId) -> Vec<(i64, String)> {
    sqlx::query_as("SELECT project_id, level FROM memberships WHERE user_id = $1 ORDER BY project_id")
        .bind(user.0)
        .fetch_all(app.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn create_project_returns_the_stored_project() {
    let app = TestApp::migrated().await;

    let project = app.identity.create_project("Checkout", "phc_checkout_token").await.unwrap();

    assert_eq!(project.name, "Checkout");
    assert_eq!(project.api_token, "phc_checkout_token");
    let stored: (String, String) = sqlx::query_as("SELECT name, api_token FROM projects WHERE id = $1")
        .bind(project.id.0)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(stored, ("Checkout".to_owned(), "phc_checkout_token".to_owned()));
}

#[tokio::test]
async fn create_project_refuses_a_public_token_already_in_use() {
    let app = TestApp::migrated().await;
    app.identity.create_project("First", "phc_shared").await.unwrap();

    assert!(app.identity.create_project("Second", "phc_shared").await.is_err());
}

#[tokio::test]
async fn create_user_with_membership_stores_the_user_and_the_level() {
    let app = TestApp::migrated().await;
    let project = app.project().await;

    let outcome = app
        .identity
        .create_user(&NewUser {
            email: "Ada@Example.com".to_owned(),
            membership: Some((project.id, MembershipLevel::Admin)),
        })
        .await
        .unwrap();

    let CreateUserOutcome::Created(user) = outcome else { panic!("expected Created, got {outcome:?}") };
    assert_eq!(user.email, "Ada@Example.com");
    assert_eq!(memberships_of(&app, user.id).await, [(project.id.0, "admin".to_owned())]);
    assert_eq!(app.identity.find_user_by_email("Ada@Example.com").await.unwrap(), Some(user));
}

#[tokio::test]
async fn create_user_without_membership_joins_no_project() {
    let app = TestApp::migrated().await;
    app.project().await;

    let outcome = app.identity.create_user(&NewUser { email: unique_email(), membership: None }).await.unwrap();

    let CreateUserOutcome::Created(user) = outcome else { panic!("expected Created, got {outcome:?}") };
    assert!(memberships_of(&app, user.id).await.is_empty());
}

#[tokio::test]
async fn create_user_refuses_an_email_taken_in_another_case() {
    let app = TestApp::migrated().await;
    let project = app.project().await;
    let first = NewUser { email: "grace@example.com".to_owned(), membership: None };
    app.identity.create_user(&first).await.unwrap();

    let again =
        NewUser { email: "GRACE@Example.COM".to_owned(), membership: Some((project.id, MembershipLevel::Member)) };
    let outcome = app.identity.create_user(&again).await.unwrap();

    assert_eq!(outcome, CreateUserOutcome::EmailTaken);
    assert_eq!(user_count(&app).await, 1);
    let memberships: i64 = sqlx::query_scalar("SELECT count(*) FROM memberships").fetch_one(app.pool()).await.unwrap();
    assert_eq!(memberships, 0, "the refused user's membership must not be written");
}

#[tokio::test]
async fn create_user_in_a_missing_project_writes_no_user() {
    let app = TestApp::migrated().await;
    let project = app.project().await;
    let missing = ProjectId(project.id.0 + 1000);

    let outcome = app
        .identity
        .create_user(&NewUser {
            email: "lin@example.com".to_owned(),
            membership: Some((missing, MembershipLevel::Admin)),
        })
        .await
        .unwrap();

    assert_eq!(outcome, CreateUserOutcome::ProjectNotFound);
    assert_eq!(user_count(&app).await, 0);
    assert_eq!(app.identity.find_user_by_email("lin@example.com").await.unwrap(), None);
}

#[tokio::test]
async fn find_user_by_email_ignores_case() {
    let app = TestApp::migrated().await;
    let outcome = app
        .identity
        .create_user(&NewUser { email: "Mixed.Case@Example.com".to_owned(), membership: None })
        .await
        .unwrap();
    let CreateUserOutcome::Created(user) = outcome else { panic!("expected Created, got {outcome:?}") };

    assert_eq!(app.identity.find_user_by_email("mixed.case@example.COM").await.unwrap(), Some(user));
    assert_eq!(app.identity.find_user_by_email("someone.else@example.com").await.unwrap(), None);
}

#[tokio::test]
async fn projects_exist_only_when_every_id_exists() {
    let app = TestApp::migrated().await;
    let first = app.project().await;
    let second = app.project().await;
    let missing = ProjectId(second.id.0 + 1000);

    assert!(app.identity.projects_exist(&[first.id, second.id]).await.unwrap());
    assert!(app.identity.projects_exist(&[first.id, first.id]).await.unwrap());
    assert!(!app.identity.projects_exist(&[first.id, missing]).await.unwrap());
    assert!(!app.identity.projects_exist(&[missing]).await.unwrap());
    assert!(app.identity.projects_exist(&[]).await.unwrap(), "no ids: nothing is missing");
}

#[tokio::test]
async fn find_grant_round_trips_scopes_and_project_restriction() {
    let (app, tenant) = TestApp::with_tenant().await;
    let other = app.project().await;
    let key =
        api_key(&app, tenant.admin.id, "llm_provider_key:write,evaluation:read", Some(vec![tenant.id(), other.id]))
            .await;

    let grant = app.identity.find_grant(&key.hash, tenant.id()).await.unwrap();

    assert_eq!(
        grant,
        Some(ApiKeyGrant {
            api_key_id: key.id,
            user: tenant.admin.id,
            scopes: Scopes::parse("llm_provider_key:write,evaluation:read").unwrap(),
            projects: Some(vec![tenant.id(), other.id]),
            level: Some(MembershipLevel::Admin),
        })
    );
}

#[tokio::test]
async fn find_grant_of_an_unrestricted_key_has_no_project_list() {
    let (app, tenant) = TestApp::with_tenant().await;
    let key = api_key(&app, tenant.admin.id, "*", None).await;

    let grant = app.identity.find_grant(&key.hash, tenant.id()).await.unwrap().unwrap();

    assert_eq!(grant.projects, None);
    assert_eq!(grant.scopes, Scopes::parse("*").unwrap());
}

#[tokio::test]
async fn find_grant_level_is_the_owners_level_in_the_asked_project() {
    let (app, tenant) = TestApp::with_tenant().await;
    let member = app.user_in(tenant.id(), MembershipLevel::Member).await;
    let admin_key = api_key(&app, tenant.admin.id, "*", None).await;
    let member_key = api_key(&app, member.id, "*", None).await;

    let admin_grant = app.identity.find_grant(&admin_key.hash, tenant.id()).await.unwrap().unwrap();
    let member_grant = app.identity.find_grant(&member_key.hash, tenant.id()).await.unwrap().unwrap();

    assert_eq!(admin_grant.level, Some(MembershipLevel::Admin));
    assert_eq!(member_grant.level, Some(MembershipLevel::Member));
    assert_eq!(member_grant.user, member.id);
}

#[tokio::test]
async fn find_grant_level_is_none_in_a_project_the_owner_is_not_a_member_of() {
    let (app, tenant) = TestApp::with_tenant().await;
    let stranger = app.project_with_admin().await;
    let key = api_key(&app, tenant.admin.id, "*", None).await;

    let in_other_project = app.identity.find_grant(&key.hash, stranger.id()).await.unwrap().unwrap();
    let in_missing_project =
        app.identity.find_grant(&key.hash, ProjectId(stranger.id().0 + 1000)).await.unwrap().unwrap();

    assert_eq!(in_other_project.level, None);
    assert_eq!(in_other_project.user, tenant.admin.id);
    assert_eq!(in_missing_project.level, None);
}

#[tokio::test]
async fn find_grant_is_none_for_an_unknown_hash() {
    let (app, tenant) = TestApp::with_tenant().await;
    api_key(&app, tenant.admin.id, "*", None).await;

    let unknown = TokenHash::of("phx_never_issued");

    assert_eq!(app.identity.find_grant(&unknown, tenant.id()).await.unwrap(), None);
}

#[tokio::test]
async fn create_api_key_refuses_a_token_hash_already_stored() {
    let (app, tenant) = TestApp::with_tenant().await;
    let key = api_key(&app, tenant.admin.id, "*", None).await;

    let duplicate = NewApiKey { id: ApiKeyId::generate(), ..key };

    assert!(app.identity.create_api_key(&duplicate).await.is_err());
}

fn remembering_grants_for(app: &TestApp, ttl: std::time::Duration) -> adapters_postgres::PgIdentityRepository {
    let reads = adapters_postgres::ReadConnections::new(app.pool(), 1);
    adapters_postgres::PgIdentityRepository::remembering_grants_for(app.pool().clone(), reads, ttl)
}

async fn set_scopes(app: &TestApp, key: &NewApiKey, scopes: &[&str]) {
    sqlx::query("UPDATE personal_api_keys SET scopes = $2 WHERE id = $1")
        .bind(key.id.0)
        .bind(scopes.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
        .execute(app.pool())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_members_grant_is_reused_within_its_ttl_and_read_again_after() {
    let (app, tenant) = TestApp::with_tenant().await;
    let key = api_key(&app, tenant.admin.id, "evaluation:read", None).await;
    let remembering = remembering_grants_for(&app, std::time::Duration::from_secs(3_600));
    let forgetting = remembering_grants_for(&app, std::time::Duration::ZERO);
    let scopes_of = |grant: Option<ApiKeyGrant>| grant.expect("a grant").scopes;
    let read = Scopes::parse("evaluation:read").unwrap();
    assert_eq!(scopes_of(remembering.find_grant(&key.hash, tenant.id()).await.unwrap()), read);

    set_scopes(&app, &key, &["evaluation:write"]).await;

    assert_eq!(
        scopes_of(remembering.find_grant(&key.hash, tenant.id()).await.unwrap()),
        read,
        "within the TTL the grant read before is reused"
    );
    assert_eq!(
        scopes_of(forgetting.find_grant(&key.hash, tenant.id()).await.unwrap()),
        Scopes::parse("evaluation:write").unwrap(),
        "past the TTL the grant is read again"
    );
}

#[tokio::test]
async fn the_grant_of_a_caller_who_is_no_member_is_not_reused() {
    let (app, tenant) = TestApp::with_tenant().await;
    let other = app.project().await;
    let key = api_key(&app, tenant.admin.id, "*", None).await;
    let remembering = remembering_grants_for(&app, std::time::Duration::from_secs(3_600));
    let level = |grant: Option<ApiKeyGrant>| grant.expect("a grant").level;
    assert_eq!(level(remembering.find_grant(&key.hash, other.id).await.unwrap()), None);

    sqlx::query("INSERT INTO memberships (user_id, project_id, level) VALUES ($1, $2, 'member')")
        .bind(tenant.admin.id.0)
        .bind(other.id.0)
        .execute(app.pool())
        .await
        .unwrap();

    assert_eq!(
        level(remembering.find_grant(&key.hash, other.id).await.unwrap()),
        Some(MembershipLevel::Member),
        "a refusal is not remembered: the membership shows at once"
    );
}

#[tokio::test]
async fn an_unknown_token_is_looked_up_every_time() {
    let (app, tenant) = TestApp::with_tenant().await;
    let unknown = PersonalApiToken::generate().hash();
    assert_eq!(app.identity.find_grant(&unknown, tenant.id()).await.unwrap(), None);
    let key = NewApiKey {
        id: ApiKeyId::generate(),
        user: tenant.admin.id,
        label: "late".to_owned(),
        scopes: Scopes::parse("*").unwrap(),
        projects: None,
        hash: unknown.clone(),
    };
    app.identity.create_api_key(&key).await.unwrap();

    assert!(app.identity.find_grant(&unknown, tenant.id()).await.unwrap().is_some());
}
