-- `ai_events_target` (project_id, target_event_id) served no statement: the runs' filter
-- by judged generation compares `lower(target_event_id)` (ids as sent, matched without
-- case), which this index cannot answer, and a result's generation is found through
-- `ai_event_ids` by its uuid. Each `$ai_evaluation` stored paid a random B-tree insert for
-- it, ~6 µs, a tenth of the database's work per code judgement.
DROP INDEX ai_events_target;
