-- The trace index no longer holds `$ai_evaluation` events that carry neither `$ai_input`
-- nor `$ai_output`: every result this service's judges store (they copy their generation's
-- `$ai_trace_id`, with random keys, so each paid a random B-tree insert, ~6 µs) and most
-- results sent by clients. Reads of a trace's or session's events leave results aside
-- (`event <> '$ai_evaluation'`), and section 8's input/output of a trace reads only results
-- carrying one of the two, so every statement that used the index still can.
DROP INDEX ai_events_trace;
CREATE INDEX ai_events_trace ON ai_events (project_id, trace_id, timestamp DESC)
    WHERE trace_id IS NOT NULL
      AND (event <> '$ai_evaluation' OR properties ? '$ai_input' OR properties ? '$ai_output');
