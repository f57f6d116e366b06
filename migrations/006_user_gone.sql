-- 006_user_gone.sql: deleting a user tells every chatd process at once, so
-- the tokens it issued stop working although workers no longer look the
-- user up on every request (core/authcache.c).
CREATE FUNCTION chat_user_gone() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('chat_user_gone', OLD.id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER users_gone AFTER DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION chat_user_gone();
