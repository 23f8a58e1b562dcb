//! Events of offline experiments, as the storage and API tests send them.

use serde_json::{Map, Value, json};

/// The properties of an `$ai_evaluation` of `experiment` for `item` (metric `accuracy`
/// v`1`, numeric 0..1, dataset `dataset-1`), with `extra` on top.
pub fn experiment_result_properties(experiment: &str, item: &str, extra: &Value) -> Map<String, Value> {
    let base = json!({
        "$ai_experiment_id": experiment,
        "$ai_experiment_name": "Support bot regression",
        "$ai_experiment_item_id": item,
        "$ai_experiment_item_name": format!("case {item}"),
        "$ai_metric_name": "accuracy",
        "$ai_metric_version": "1",
        "$ai_status": "ok",
        "$ai_result_type": "numeric",
        "$ai_score_min": 0,
        "$ai_score_max": 1,
        "$ai_dataset_id": "dataset-1",
    });
    let mut properties = base.as_object().cloned().unwrap_or_default();
    if let Some(extra) = extra.as_object() {
        properties.extend(extra.clone());
    }
    properties
}
