-- Keys of OpenAI-compatible endpoints: the endpoint and its headers are sealed with the key
-- (the sealed copy is what calls use); what responses show of them is kept beside it, like
-- the Azure display values, so reads never decrypt.
ALTER TABLE provider_keys DROP CONSTRAINT provider_keys_provider_check;
ALTER TABLE provider_keys ADD CONSTRAINT provider_keys_provider_check CHECK (provider IN
    ('openai', 'anthropic', 'gemini', 'azure_openai', 'fireworks', 'openrouter', 'together_ai',
     'openai_compatible'));

ALTER TABLE provider_keys
    ADD COLUMN base_url              TEXT CHECK (length(base_url) <= 2048),
    ADD COLUMN extra_headers_masked  JSONB,
    ADD COLUMN custom_models         JSONB;
