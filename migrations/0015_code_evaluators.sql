-- Code evaluators (spec section 4.4): evaluation_type 'hog', whose source is kept where a
-- judge's prompt is (the evaluation's text).
ALTER TABLE evaluations DROP CONSTRAINT evaluations_evaluation_type_check;
ALTER TABLE evaluations ADD CONSTRAINT evaluations_evaluation_type_check
    CHECK (evaluation_type IN ('llm_judge', 'hog'));
