-- Database roles that enforce the console's roles: a viewer's connection cannot change
-- calls or jobs even with raw SQL. Roles are cluster-wide, so creation is guarded; grants
-- are per database. Log-in users are made members of one of these.
DO $$
DECLARE r TEXT;
BEGIN
    FOREACH r IN ARRAY ARRAY['callops_viewer', 'callops_support', 'callops_admin'] LOOP
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- another database's migration created it at the same moment
        END;
    END LOOP;
END
$$;

GRANT USAGE ON SCHEMA public TO callops_viewer, callops_support, callops_admin;

-- viewer (on-call): read everything.
GRANT SELECT ON ALL TABLES IN SCHEMA public TO callops_viewer;

-- support: read everything; review, QC and leads — calls, customers, leads, their trace,
-- the audit log, and publishing jobs on the database broker. No DLQ changes.
GRANT SELECT ON ALL TABLES IN SCHEMA public TO callops_support;
GRANT INSERT, UPDATE ON calls, customers, leads TO callops_support;
GRANT INSERT ON call_events, audit_log, jobs TO callops_support;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO callops_support;

-- admin: everything.
GRANT ALL ON ALL TABLES IN SCHEMA public TO callops_admin;
GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO callops_admin;
