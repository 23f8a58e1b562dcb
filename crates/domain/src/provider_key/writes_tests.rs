use mockall::predicate::eq;
use serde_json::json;

use super::*;
use crate::evaluation::{EvaluationState, EvaluationStatus, StatusReason};
use crate::provider_key::testing::stored_key;
use crate::provider_key::{KeyState, Provider};
use crate::unit_of_work::testing::{MockTransaction, unit_of_work};

const PROJECT: ProjectId = ProjectId(7);
const ACTOR: UserId = UserId(3);

fn transactions(tx: MockTransaction) -> (KeyTransactions, crate::unit_of_work::testing::Commits) {
    let (unit_of_work, commits) = unit_of_work(tx);
    (KeyTransactions::new(Arc::new(unit_of_work)), commits)
}

#[tokio::test]
async fn a_delete_without_replacement_stops_the_active_users_frees_their_configurations_and_is_audited() {
    let key = stored_key(PROJECT);
    let id = key.id;
    let mut tx = MockTransaction::default();
    let locked = key.clone();
    tx.keys.expect_lock().with(eq(PROJECT), eq(id), eq(RowLock::Update)).return_once(move |_, _, _| Ok(Some(locked)));
    tx.evaluations
        .expect_set_state_of_key_users()
        .with(
            eq(PROJECT),
            eq(id),
            eq(EvaluationStatus::Active),
            eq(EvaluationState::Error(StatusReason::ProviderKeyDeleted)),
        )
        .times(1)
        .returning(|_, _, _, _| Ok(2));
    tx.evaluations.expect_move_configurations().with(eq(PROJECT), eq(id), eq(None)).times(1).returning(|_, _, _| Ok(3));
    tx.keys.expect_delete().with(eq(PROJECT), eq(id)).times(1).returning(|_, _| Ok(()));
    tx.keys
        .expect_record_activity()
        .withf(move |entry| {
            entry.key == id
                && entry.key_name == "prod"
                && entry.action == KeyAction::Deleted
                && entry.actor == Some(ACTOR)
                && entry.changes
                    == vec![
                        FieldChange::outcome("replacement_key_id", json!(null)),
                        FieldChange::outcome("configurations_moved", json!(3)),
                        FieldChange::outcome("evaluations_disabled", json!(2)),
                    ]
        })
        .times(1)
        .returning(|_| Ok(()));
    let (writes, commits) = transactions(tx);

    let outcome = writes.delete(PROJECT, id, KeyRemoval { replacement: None, actor: Some(ACTOR) }).await.unwrap();

    assert_eq!(outcome, DeleteOutcome::Deleted { moved: 3, disabled: 2 });
    assert_eq!(commits.count(), 1);
}

#[tokio::test]
async fn a_replacement_of_another_provider_changes_nothing() {
    let key = stored_key(PROJECT);
    let replacement = ProviderKey { provider: Provider::Anthropic, ..stored_key(PROJECT) };
    let (id, replacement_id) = (key.id, replacement.id);
    let mut tx = MockTransaction::default();
    tx.keys.expect_lock().with(eq(PROJECT), eq(id), eq(RowLock::Update)).return_once(move |_, _, _| Ok(Some(key)));
    tx.keys
        .expect_lock()
        .with(eq(PROJECT), eq(replacement_id), eq(RowLock::Share))
        .return_once(move |_, _, _| Ok(Some(replacement)));
    tx.keys.expect_delete().never();
    let (writes, commits) = transactions(tx);

    let outcome =
        writes.delete(PROJECT, id, KeyRemoval { replacement: Some(replacement_id), actor: Some(ACTOR) }).await.unwrap();

    assert_eq!(outcome, DeleteOutcome::ReplacementProviderMismatch);
    assert_eq!(commits.count(), 0, "the transaction is rolled back");
}

#[tokio::test]
async fn an_audited_update_records_what_changed_between_the_locked_and_the_written_key() {
    let before = stored_key(PROJECT);
    let id = before.id;
    let after = ProviderKey { state: KeyState::Invalid, error_message: Some("rejected".into()), ..before.clone() };
    let mut tx = MockTransaction::default();
    tx.keys.expect_lock().return_once(move |_, _, _| Ok(Some(before)));
    tx.keys.expect_update().times(1).returning(|_, _, _| Ok(true));
    tx.keys.expect_fetch().return_once(move |_, _| Ok(Some(after)));
    tx.keys
        .expect_record_activity()
        .withf(|entry| {
            entry.action == KeyAction::Validated
                && entry.actor.is_none()
                && entry.changes
                    == vec![
                        FieldChange::new("state", json!("ok"), json!("invalid")),
                        FieldChange::new("error_message", json!(null), json!("rejected")),
                    ]
        })
        .times(1)
        .returning(|_| Ok(()));
    let (writes, commits) = transactions(tx);
    let changes = ProviderKeyChanges {
        state: Some(KeyState::Invalid),
        error_message: Some(Some("rejected".into())),
        audit: Some(super::super::AuditNote::system(KeyAction::Validated)),
        ..ProviderKeyChanges::default()
    };

    let updated = writes.update(PROJECT, id, &changes).await.unwrap();

    assert_eq!(updated.map(|k| k.state), Some(KeyState::Invalid));
    assert_eq!(commits.count(), 1);
}

#[tokio::test]
async fn an_update_of_a_missing_key_commits_nothing() {
    let mut tx = MockTransaction::default();
    tx.keys.expect_update().returning(|_, _, _| Ok(false));
    tx.keys.expect_record_activity().never();
    let (writes, commits) = transactions(tx);
    let changes = ProviderKeyChanges { name: Some(super::super::KeyName::parse("x").unwrap()), ..Default::default() };

    assert_eq!(writes.update(PROJECT, ProviderKeyId::generate(), &changes).await.unwrap(), None);
    assert_eq!(commits.count(), 0);
}
