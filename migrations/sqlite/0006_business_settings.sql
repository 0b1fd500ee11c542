-- Issue 11: per-business pipeline settings. Each business has its own STT/LLM/CRM base URL,
-- model and default language next to the provider kinds it already had, and its credentials
-- as references only: `env:NAME` or `file:/path`, resolved by the worker that uses them. The
-- CHECKs make a key in clear text impossible to store, whatever writes the row.
-- settings_version is bumped by every change: workers key their cached clients by it and
-- rebuild when it moves. config_error is what the last worker to build the business's
-- clients found wrong (NULL = fine); the overview shows it.
ALTER TABLE businesses ADD COLUMN language TEXT;
ALTER TABLE businesses ADD COLUMN stt_base_url TEXT;
ALTER TABLE businesses ADD COLUMN stt_model TEXT;
ALTER TABLE businesses ADD COLUMN stt_key_ref TEXT
    CHECK (stt_key_ref IS NULL OR stt_key_ref LIKE 'env:%' OR stt_key_ref LIKE 'file:%');
ALTER TABLE businesses ADD COLUMN llm_base_url TEXT;
ALTER TABLE businesses ADD COLUMN llm_model TEXT;
ALTER TABLE businesses ADD COLUMN llm_key_ref TEXT
    CHECK (llm_key_ref IS NULL OR llm_key_ref LIKE 'env:%' OR llm_key_ref LIKE 'file:%');
ALTER TABLE businesses ADD COLUMN crm_base_url TEXT;
ALTER TABLE businesses ADD COLUMN crm_key_ref TEXT
    CHECK (crm_key_ref IS NULL OR crm_key_ref LIKE 'env:%' OR crm_key_ref LIKE 'file:%');
ALTER TABLE businesses ADD COLUMN crm_secret_ref TEXT
    CHECK (crm_secret_ref IS NULL OR crm_secret_ref LIKE 'env:%' OR crm_secret_ref LIKE 'file:%');
ALTER TABLE businesses ADD COLUMN settings_version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE businesses ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE businesses ADD COLUMN config_error TEXT;
ALTER TABLE businesses ADD COLUMN config_error_at BIGINT;
