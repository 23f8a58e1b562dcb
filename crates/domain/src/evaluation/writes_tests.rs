use std::sync::{Arc, Mutex};

use mockall::predicate::eq;
use serde_json::json;

use super::*;
use crate::evaluation::{EvaluationState, EvaluationTarget, LockedEvaluation, ModelName, StatusReason};
use crate::provider_key::testing::stored_key;
use crate::provider_key::{KeyAction, Provider, ProviderKey};
use crate::unit_of_work::testing::{Commits, MockTransaction, unit_of_work};

const PROJECT: ProjectId = ProjectId(7);

fn transactions(tx: MockTransaction) -> (EvaluationTransactions, Commits) {
    let (unit_of_work, commits) = unit_of_work(tx);
    (EvaluationTransactions::new(Arc::new(unit_of_work)), commits)
}

fn spec(provider: Provider, key: Option<ProviderKeyId>) -> ModelConfigurationSpec {
    ModelConfigurationSpec { provider, model: ModelName::parse("gpt-5-mini").unwrap(), provider_key: key }
}

#[tokio::test]
async fn assigning_a_key_repoints_its_providers_configurations_configures_the_rest_and_is_audited() {
    let key = stored_key(PROJECT);
    let key_id = key.id;
    let same_provider = (ModelConfigurationId::generate(), Provider::Openai);
    let other_provider = (ModelConfigurationId::generate(), Provider::Anthropic);
    let locked = vec![
        LockedEvaluation {
            id: EvaluationId::generate(),
            state: EvaluationState::Error(StatusReason::ProviderKeyDeleted),
            configuration: Some(same_provider),
            target: EvaluationTarget::Generation,
        },
        LockedEvaluation {
            id: EvaluationId::generate(),
            state: EvaluationState::Paused,
            configuration: None,
            target: EvaluationTarget::Generation,
        },
        LockedEvaluation {
            id: EvaluationId::generate(),
            state: EvaluationState::Active,
            configuration: Some(other_provider),
            target: EvaluationTarget::Generation,
        },
    ];
    let ids: Vec<EvaluationId> = locked.iter().map(|e| e.id).collect();
    let mut tx = MockTransaction::default();
    tx.keys.expect_lock().with(eq(PROJECT), eq(key_id), eq(RowLock::Share)).return_once(move |_, _, _| Ok(Some(key)));
    tx.evaluations.expect_lock().return_once(move |_, _| Ok(locked));
    tx.evaluations
        .expect_point_configurations_at()
        .with(eq(PROJECT), eq(vec![same_provider.0]), eq(key_id))
        .times(1)
        .returning(|_, ids, _| Ok(ids.len() as u64));
    let created = Arc::new(Mutex::new(Vec::new()));
    let seen = created.clone();
    tx.evaluations
        .expect_insert_configurations()
        .withf(move |_, _, spec| spec.provider == Provider::Openai && spec.provider_key == Some(key_id))
        .times(1)
        .returning(move |_, ids, _| {
            seen.lock().unwrap().extend_from_slice(ids);
            Ok(())
        });
    let states = Arc::new(Mutex::new(Vec::new()));
    let written = states.clone();
    tx.evaluations.expect_update_states().times(1).returning(move |_, updates| {
        written.lock().unwrap().extend_from_slice(updates);
        Ok(())
    });
    let audited = ids.iter().map(|id| id.0).collect::<Vec<_>>();
    tx.keys
        .expect_record_activity()
        .withf(move |entry| {
            entry.action == KeyAction::Assigned
                && entry.changes[0].after == json!(audited)
                && entry.changes[1].after == json!(2)
                && entry.changes[2].after == json!(0)
        })
        .times(1)
        .returning(|_| Ok(()));
    let (writes, commits) = transactions(tx);
    let assignment = KeyAssignment {
        evaluations: ids.clone(),
        enable: false,
        model_for_unconfigured: Some(ModelName::parse("gpt-5-mini").unwrap()),
        actor: None,
    };

    let outcome = writes.assign_key(PROJECT, key_id, &assignment).await.unwrap();

    assert_eq!(outcome, AssignOutcome::Assigned { configs_updated: 2, evals_enabled: 0 });
    let created = created.lock().unwrap().clone();
    assert_eq!(created.len(), 1);
    let states = states.lock().unwrap().clone();
    assert_eq!(
        states,
        vec![
            StateUpdate { id: ids[0], state: EvaluationState::Paused, configuration: None },
            StateUpdate { id: ids[1], state: EvaluationState::Paused, configuration: Some(created[0]) },
            StateUpdate { id: ids[2], state: EvaluationState::Active, configuration: None },
        ]
    );
    assert_eq!(commits.count(), 1);
}

#[tokio::test]
async fn a_configuration_with_a_key_of_another_provider_is_refused_before_the_evaluation_is_locked() {
    let key = ProviderKey { provider: Provider::Anthropic, ..stored_key(PROJECT) };
    let key_id = key.id;
    let mut tx = MockTransaction::default();
    tx.keys.expect_lock().return_once(move |_, _, _| Ok(Some(key)));
    tx.evaluations.expect_lock().never();
    let (writes, commits) = transactions(tx);
    let changes = EvaluationChanges {
        model_configuration: Some(Some(spec(Provider::Openai, Some(key_id)))),
        ..Default::default()
    };

    let outcome = writes.update(PROJECT, EvaluationId::generate(), &changes).await.unwrap();

    assert_eq!(outcome, SaveOutcome::KeyProviderMismatch { key_provider: Provider::Anthropic });
    assert_eq!(commits.count(), 0);
}

#[tokio::test]
async fn removing_the_model_configuration_clears_the_column_and_deletes_the_orphan() {
    let configuration = ModelConfigurationId::generate();
    let id = EvaluationId::generate();
    let mut tx = MockTransaction::default();
    tx.evaluations.expect_lock().return_once(move |_, _| {
        Ok(vec![LockedEvaluation {
            id,
            state: EvaluationState::Active,
            configuration: Some((configuration, Provider::Openai)),
            target: EvaluationTarget::Generation,
        }])
    });
    tx.evaluations
        .expect_update()
        .withf(move |_, written, _, state, column, _| {
            *written == id && *state == EvaluationState::Active && *column == Some(None)
        })
        .times(1)
        .returning(|_, _, _, _, _, _| Ok(()));
    tx.evaluations.expect_delete_configuration().with(eq(PROJECT), eq(configuration)).times(1).returning(|_, _| Ok(()));
    tx.evaluations.expect_fetch().returning(|_, _| Ok(Some(crate::evaluation::test_support::evaluation())));
    let (writes, commits) = transactions(tx);
    let changes = EvaluationChanges { model_configuration: Some(None), ..Default::default() };

    let outcome = writes.update(PROJECT, id, &changes).await.unwrap();

    assert!(matches!(outcome, SaveOutcome::Saved(_)));
    assert_eq!(commits.count(), 1);
}
