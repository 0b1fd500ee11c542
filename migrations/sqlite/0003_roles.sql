-- Roles are advisory on SQLite (from config); nothing to create.
SELECT 1;
