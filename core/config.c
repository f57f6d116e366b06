/* config.c: table-driven settings: defaults, `key = value` file, environment. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spend.h"

enum opt_type { OPT_STR, OPT_INT, OPT_BOOL, OPT_DOUBLE, OPT_MODE };

struct option {
	const char    *name;
	const char    *env;
	enum opt_type  type;
	size_t         offset;
	const char    *defval;
	double         min, max;     /* numeric range */
	bool           secret;
	const char    *help;
};

#define O(field) offsetof(struct config, field)

static const struct option options[] = {
	{ "listen", "CHAT_LISTEN", OPT_STR, O(listen), "/run/chatd/chatd.sock", 0, 0, false,
	  "FastCGI socket nginx connects to: a unix socket path, or host:port for TCP" },
	{ "socket_mode", "CHAT_SOCKET_MODE", OPT_MODE, O(socket_mode), "0660", 0, 0777, false,
	  "permissions of the unix socket (octal); nginx's user needs read+write" },
	{ "workers", "CHAT_WORKERS", OPT_INT, O(workers), "4", 1, 256, false,
	  "worker processes forked by the master" },
	{ "threads", "CHAT_THREADS", OPT_INT, O(threads), "64", 1, 4096, false,
	  "accept threads per worker, for the short part of requests and one-piece answers (streams run on the worker's event loop)" },
	{ "max_requests", "CHAT_MAX_REQUESTS", OPT_INT, O(max_requests), "100000", 0, 1e9, false,
	  "a worker is recycled after this many requests (0: never)" },
	{ "drain_timeout", "CHAT_DRAIN_TIMEOUT", OPT_INT, O(drain_timeout), "60", 0, 3600, false,
	  "seconds in-flight streams may run on after SIGTERM or SIGHUP before workers are killed" },
	{ "pid_file", "CHAT_PID_FILE", OPT_STR, O(pid_file), "", 0, 0, false,
	  "file the master writes its pid to (empty: none)" },
	{ "spool_dir", "CHAT_SPOOL_DIR", OPT_STR, O(spool_dir), "/var/lib/chatd/spool", 0, 0, false,
	  "where a process that exits while PostgreSQL is down leaves its reply endings for the sweep" },
	{ "log_file", "CHAT_LOG_FILE", OPT_STR, O(log_file), "", 0, 0, false,
	  "log file (empty: stderr)" },
	{ "log_level", "CHAT_LOG_LEVEL", OPT_STR, O(log_level), "info", 0, 0, false,
	  "error, warn, info or debug" },
	{ "dev_mode", "CHAT_DEV_MODE", OPT_BOOL, O(dev_mode), "0", 0, 0, false,
	  "development mode: allows cors_origins = *; never enable in production" },
	{ "max_body_size", "CHAT_MAX_BODY_SIZE", OPT_INT, O(max_body_size), "1048576", 1024, 64 << 20, false,
	  "largest request body accepted, in bytes (413 above)" },
	{ "cors_origins", "CHAT_CORS_ORIGINS", OPT_STR, O(cors_origins), "", 0, 0, false,
	  "comma-separated origins allowed to call the API from a browser (empty: same origin only)" },
	{ "gateway_listen", "CHAT_GATEWAY_LISTEN", OPT_STR, O(gateway_listen), "127.0.0.1:8091", 0, 0, false,
	  "address the Socket.IO gateway listens on (nginx proxies /socket.io/ to it)" },
	{ "gateway_sessions_per_address", "CHAT_GATEWAY_SESSIONS_PER_ADDRESS", OPT_INT, O(gateway_sessions_per_address), "32", 0, 1000000, false,
	  "Socket.IO (Engine.IO) sessions one client address may have open in a gateway process; more are refused with 429 (0: unlimited)" },
	{ "gateway_session_queue", "CHAT_GATEWAY_SESSION_QUEUE", OPT_INT, O(gateway_session_queue), "1048576", 65536, 1073741824, false,
	  "bytes the gateway queues for one client that reads too slowly before closing it (one event larger than this still goes to an empty queue)" },
	{ "gateway_queue_total", "CHAT_GATEWAY_QUEUE_TOTAL", OPT_INT, O(gateway_queue_total), "134217728", 1048576, 2147483647, false,
	  "bytes queued for all clients of one gateway process; past it the clients with the most queued are closed" },
	{ "trusted_proxies", "CHAT_TRUSTED_PROXIES", OPT_STR, O(trusted_proxies), "", 0, 0, false,
	  "comma-separated addresses of proxies in front of nginx whose X-Forwarded-For is believed" },
	{ "ratelimit_window", "CHAT_RATELIMIT_WINDOW", OPT_INT, O(ratelimit_window), "900", 1, 86400, false,
	  "length of a rate-limit window in seconds" },
	{ "ratelimit_chat_user", "CHAT_RATELIMIT_CHAT_USER", OPT_INT, O(ratelimit_chat_user), "100", 0, 1000000000, false,
	  "chat requests (generations) per user per window (0: unlimited)" },
	{ "ratelimit_chat_anon", "CHAT_RATELIMIT_CHAT_ANON", OPT_INT, O(ratelimit_chat_anon), "20", 0, 1000000000, false,
	  "chat requests per anonymous client address per window (0: unlimited)" },
	{ "ratelimit_auth_ip", "CHAT_RATELIMIT_AUTH_IP", OPT_INT, O(ratelimit_auth_ip), "30", 0, 1000000000, false,
	  "logins and registrations per client address per window (0: unlimited)" },
	{ "streams_per_user", "CHAT_STREAMS_PER_USER", OPT_INT, O(streams_per_user), "20", 0, 1000000, false,
	  "streams (new replies and resumes) one user may have open at once, on all hosts (0: unlimited)" },
	{ "streams_per_anon", "CHAT_STREAMS_PER_ANON", OPT_INT, O(streams_per_anon), "5", 0, 1000000, false,
	  "streams one anonymous client address may have open at once (0: unlimited)" },
	{ "ratelimit_api_user", "CHAT_RATELIMIT_API_USER", OPT_INT, O(ratelimit_api_user), "0", 0, 1000000000, false,
	  "other authenticated requests per user per window (0: unlimited)" },
	{ "database_url", "DATABASE_URL", OPT_STR, O(database_url), "postgresql:///chat", 0, 0, false,
	  "libpq connection string or URI" },
	{ "db_pool_size", "CHAT_DB_POOL_SIZE", OPT_INT, O(db_pool_size), "8", 1, 256, false,
	  "PostgreSQL connections per worker process" },
	{ "metrics_retention_days", "CHAT_METRICS_RETENTION_DAYS", OPT_INT, O(metrics_retention_days), "30", 1, 36500, false,
	  "days of stream_metrics rows kept (whole UTC days; the master drops older daily partitions hourly; usage_by_user keeps its daily totals)" },
	{ "database_pooled", "CHAT_DATABASE_POOLED", OPT_BOOL, O(database_pooled), "0", 0, 0, false,
	  "database_url goes through a pooler in transaction mode (PgBouncer): statements are not prepared across transactions" },
	{ "listen_database_url", "CHAT_LISTEN_DATABASE_URL", OPT_STR, O(listen_database_url), "", 0, 0, false,
	  "direct PostgreSQL connection for LISTEN (cancel, resume, rooms); needed when database_url is pooled (empty: database_url)" },
	{ "host_id", "CHAT_HOST_ID", OPT_STR, O(host_id), "", 0, 0, false,
	  "this host's name in reply owners (host:pid) and heartbeats; unique per host (empty: the system host name)" },
	{ "jwt_secret", "JWT_SECRET", OPT_STR, O(jwt_secret), "", 0, 0, true,
	  "HS256 secret for access tokens (at least 32 bytes); prefer jwt_secret_file" },
	{ "jwt_secret_file", "JWT_SECRET_FILE", OPT_STR, O(jwt_secret_file), "", 0, 0, false,
	  "file holding the JWT secret (used when jwt_secret is empty)" },
	{ "jwt_issuer", "CHAT_JWT_ISSUER", OPT_STR, O(jwt_issuer), "chatd", 0, 0, false,
	  "iss claim written into and required in access tokens" },
	{ "jwt_ttl", "CHAT_JWT_TTL", OPT_INT, O(jwt_ttl), "86400", 60, 31536000, false,
	  "lifetime of access tokens in seconds" },
	{ "registration", "CHAT_REGISTRATION", OPT_STR, O(registration), "open", 0, 0, false,
	  "open, or closed: POST /api/auth/register answers 403 and `chatd --create-user NAME` creates users" },
	{ "openai_base_url", "OPENAI_BASE_URL", OPT_STR, O(openai_base_url), "https://api.openai.com/v1", 0, 0, false,
	  "OpenAI-compatible API base URL" },
	{ "openai_api_key", "OPENAI_API_KEY", OPT_STR, O(openai_api_key), "", 0, 0, true,
	  "upstream API key; never sent to clients or logged" },
	{ "model", "CHAT_MODEL", OPT_STR, O(model), "gpt-4o-mini", 0, 0, false,
	  "default chat model (users may override it in /api/settings)" },
	{ "temperature", "CHAT_TEMPERATURE", OPT_DOUBLE, O(temperature), "0.7", 0, 2, false,
	  "default sampling temperature, 0 to 2" },
	{ "max_tokens", "CHAT_MAX_TOKENS", OPT_INT, O(max_tokens), "2000", 1, 1000000, false,
	  "max_tokens sent upstream per reply" },
	{ "max_tokens_ceiling", "CHAT_MAX_TOKENS_CEILING", OPT_INT, O(max_tokens_ceiling), "4096", 1, 1000000, false,
	  "largest max_tokens a client may ask for (/v1/chat/completions; 400 above); max_tokens must not exceed it" },
	{ "allowed_models", "CHAT_ALLOWED_MODELS", OPT_STR, O(allowed_models), SPEND_DEFAULT_MODELS, 0, 0, false,
	  "comma-separated models clients may ask for in /v1/chat/completions and /api/settings, besides model and realtime_model (others: 400)" },
	{ "daily_token_budget", "CHAT_DAILY_TOKEN_BUDGET", OPT_INT, O(daily_token_budget), "0", 0, 2000000000, false,
	  "tokens (prompt + completion) one user may spend per UTC day, on every route that generates; past it 429 until midnight UTC (0: no budget)" },
	{ "history_messages", "CHAT_HISTORY_MESSAGES", OPT_INT, O(history_messages), "10", 0, 1000, false,
	  "earlier messages of a session sent with each new one" },
	{ "system_prompt", "CHAT_SYSTEM_PROMPT", OPT_STR, O(system_prompt), "You are a helpful assistant.", 0, 0, false,
	  "default system prompt (users may override it in /api/settings)" },
	{ "realtime_model", "CHAT_REALTIME_MODEL", OPT_STR, O(realtime_model), "gpt-realtime", 0, 0, false,
	  "default model for voice sessions" },
	{ "voice", "CHAT_VOICE", OPT_STR, O(voice), "marin", 0, 0, false,
	  "default voice for voice sessions" },
	{ "realtime_api", "CHAT_REALTIME_API", OPT_STR, O(realtime_api), "client_secrets", 0, 0, false,
	  "client_secrets (current OpenAI API), sessions (retired beta, for compatible servers), or off: no voice (the UI hides it, /api/session answers 503)" },
	{ "upstream_connect_timeout", "CHAT_UPSTREAM_CONNECT_TIMEOUT", OPT_INT, O(upstream_connect_timeout), "10", 1, 600, false,
	  "seconds to connect to the upstream" },
	{ "upstream_first_token_timeout", "CHAT_UPSTREAM_FIRST_TOKEN_TIMEOUT", OPT_INT, O(upstream_first_token_timeout), "60", 1, 3600, false,
	  "seconds from the request to the first token" },
	{ "upstream_idle_timeout", "CHAT_UPSTREAM_IDLE_TIMEOUT", OPT_INT, O(upstream_idle_timeout), "60", 1, 3600, false,
	  "seconds allowed between two tokens" },
	{ "upstream_retries", "CHAT_UPSTREAM_RETRIES", OPT_INT, O(upstream_retries), "2", 0, 10, false,
	  "retries of connect failures, 429 and 5xx, before the first token only" },
	{ "stream_max_duration", "CHAT_STREAM_MAX_DURATION", OPT_INT, O(stream_max_duration), "300", 1, 86400, false,
	  "a stream is closed after this many seconds" },
	{ "heartbeat_interval", "CHAT_HEARTBEAT_INTERVAL", OPT_INT, O(heartbeat_interval), "15", 1, 300, false,
	  "seconds between SSE comment heartbeats on a quiet stream" },
	{ "livekit_api_key", "LIVEKIT_API_KEY", OPT_STR, O(livekit_api_key), "", 0, 0, false,
	  "LiveKit API key for /api/livekit/token (empty: the route answers 503)" },
	{ "livekit_api_secret", "LIVEKIT_API_SECRET", OPT_STR, O(livekit_api_secret), "", 0, 0, true,
	  "LiveKit API secret" },
	{ "livekit_url", "LIVEKIT_URL", OPT_STR, O(livekit_url), "", 0, 0, false,
	  "LiveKit server URL handed to clients with their token (optional)" },
};

#define NOPTIONS (sizeof(options) / sizeof(options[0]))

static void __attribute__((format(printf, 3, 4)))
config_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Parses value into the field of opt. Returns false with err set. */
static bool
config_set(struct config *cfg, const struct option *opt, const char *value,
    const char *where, char *err, size_t errlen)
{
	char *field = (char *)cfg + opt->offset;
	char *end;
	double d;
	long l;

	switch (opt->type) {
	case OPT_STR: {
		char *copy = strdup(value);
		if (copy == NULL) {
			config_error(err, errlen, "out of memory");
			return false;
		}
		free(*(char **)field);
		*(char **)field = copy;
		return true;
	}
	case OPT_BOOL:
		if (strcmp(value, "1") == 0 || strcasecmp(value, "yes") == 0 ||
		    strcasecmp(value, "true") == 0 || strcasecmp(value, "on") == 0)
			*(bool *)field = true;
		else if (strcmp(value, "0") == 0 || strcasecmp(value, "no") == 0 ||
		    strcasecmp(value, "false") == 0 || strcasecmp(value, "off") == 0 || value[0] == '\0')
			*(bool *)field = false;
		else {
			config_error(err, errlen, "%s: %s: expected a boolean", where, opt->name);
			return false;
		}
		return true;
	case OPT_INT:
	case OPT_MODE:
		errno = 0;
		l = strtol(value, &end, opt->type == OPT_MODE ? 8 : 10);
		if (errno != 0 || end == value || *end != '\0' || l < opt->min || l > opt->max) {
			config_error(err, errlen, "%s: %s: expected %s from %g to %g", where,
			    opt->name, opt->type == OPT_MODE ? "an octal mode" : "an integer",
			    opt->min, opt->max);
			return false;
		}
		*(int *)field = (int)l;
		return true;
	case OPT_DOUBLE:
		errno = 0;
		d = strtod(value, &end);
		if (errno != 0 || end == value || *end != '\0' || !(d >= opt->min && d <= opt->max)) {
			config_error(err, errlen, "%s: %s: expected a number from %g to %g",
			    where, opt->name, opt->min, opt->max);
			return false;
		}
		*(double *)field = d;
		return true;
	}
	return false;
}

static const struct option *
config_find(const char *name)
{
	for (size_t i = 0; i < NOPTIONS; i++)
		if (strcmp(options[i].name, name) == 0)
			return &options[i];
	return NULL;
}

static char *
trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* Reads `key = value` lines; `#` starts a comment line; a value in double
 * quotes keeps its spaces (and may hold `#`). */
static bool
config_read_file(struct config *cfg, const char *path, char *err, size_t errlen)
{
	char line[4096], where[512];
	unsigned lineno = 0;
	FILE *f;
	bool ok = true;

	if ((f = fopen(path, "re")) == NULL) {
		config_error(err, errlen, "%s: %s", path, strerror(errno));
		return false;
	}
	while (ok && fgets(line, sizeof(line), f) != NULL) {
		char *key, *value, *eq;
		const struct option *opt;
		size_t vlen;

		lineno++;
		(void)snprintf(where, sizeof(where), "%s:%u", path, lineno);
		if (strchr(line, '\n') == NULL && !feof(f)) {
			config_error(err, errlen, "%s: line too long", where);
			ok = false;
			break;
		}
		key = trim(line);
		if (*key == '\0' || *key == '#')
			continue;
		if ((eq = strchr(key, '=')) == NULL) {
			config_error(err, errlen, "%s: expected `name = value`", where);
			ok = false;
			break;
		}
		*eq = '\0';
		key = trim(key);
		value = trim(eq + 1);
		vlen = strlen(value);
		if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
			value[vlen - 1] = '\0';
			value++;
		}
		if ((opt = config_find(key)) == NULL) {
			config_error(err, errlen, "%s: unknown setting `%s`", where, key);
			ok = false;
			break;
		}
		ok = config_set(cfg, opt, value, where, err, errlen);
	}
	if (ok && ferror(f)) {
		config_error(err, errlen, "%s: read error", path);
		ok = false;
	}
	fclose(f);
	return ok;
}

/* Reads a secret file, dropping one trailing newline. */
static bool
config_read_secret(const char *path, char **out, char *err, size_t errlen)
{
	char secret[1024];
	size_t n;
	FILE *f;

	if ((f = fopen(path, "re")) == NULL) {
		config_error(err, errlen, "jwt_secret_file %s: %s", path, strerror(errno));
		return false;
	}
	n = fread(secret, 1, sizeof(secret) - 1, f);
	fclose(f);
	secret[n] = '\0';
	while (n > 0 && (secret[n - 1] == '\n' || secret[n - 1] == '\r'))
		secret[--n] = '\0';
	free(*out);
	if ((*out = strdup(secret)) == NULL) {
		config_error(err, errlen, "out of memory");
		return false;
	}
	explicit_bzero(secret, sizeof(secret));
	return true;
}

/* A host id goes into owner ids ("host:pid", "gw:host:pid"), parsed back at
 * the last colons: none allowed, and nothing a log line could be fooled by. */
static bool
config_host_id_valid(const char *id)
{
	size_t n = strlen(id);

	if (n > 63)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)id[i]) && id[i] != '.' && id[i] != '-' && id[i] != '_')
			return false;
	return true;
}

bool
config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
	const char *problem = NULL;

	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < NOPTIONS; i++)
		if (!config_set(cfg, &options[i], options[i].defval, "default", err, errlen))
			goto failed;
	if (path != NULL && !config_read_file(cfg, path, err, errlen))
		goto failed;
	for (size_t i = 0; i < NOPTIONS; i++) {
		const char *v = getenv(options[i].env);
		char where[128];

		if (v == NULL)
			continue;
		(void)snprintf(where, sizeof(where), "environment %s", options[i].env);
		if (!config_set(cfg, &options[i], v, where, err, errlen))
			goto failed;
	}
	if (cfg->jwt_secret[0] == '\0' && cfg->jwt_secret_file[0] != '\0' &&
	    !config_read_secret(cfg->jwt_secret_file, &cfg->jwt_secret, err, errlen))
		goto failed;
	if (!cfg->dev_mode && strstr(cfg->cors_origins, "*") != NULL) {
		config_error(err, errlen, "cors_origins: `*` is refused outside dev_mode; list the origins");
		goto failed;
	}
	if (strcmp(cfg->realtime_api, "client_secrets") != 0 &&
	    strcmp(cfg->realtime_api, "sessions") != 0 && strcmp(cfg->realtime_api, "off") != 0) {
		config_error(err, errlen, "realtime_api: expected client_secrets, sessions or off");
		goto failed;
	}
	if (strcmp(cfg->registration, "open") != 0 && strcmp(cfg->registration, "closed") != 0) {
		config_error(err, errlen, "registration: expected open or closed");
		goto failed;
	}
	if (cfg->max_tokens > cfg->max_tokens_ceiling) {
		config_error(err, errlen, "max_tokens: %d is above max_tokens_ceiling (%d)",
		    cfg->max_tokens, cfg->max_tokens_ceiling);
		goto failed;
	}
	if (!config_host_id_valid(cfg->host_id)) {
		config_error(err, errlen, "host_id: up to 63 letters, digits, '.', '-' or '_'");
		goto failed;
	}
	if (!spend_models_valid(cfg->allowed_models, &problem)) {
		config_error(err, errlen, "allowed_models: %s", problem);
		goto failed;
	}
	return true;
failed:
	config_free(cfg);
	return false;
}

void
config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < NOPTIONS; i++)
		if (options[i].type == OPT_STR) {
			char **field = (char **)((char *)cfg + options[i].offset);
			if (*field != NULL && options[i].secret)
				explicit_bzero(*field, strlen(*field));
			free(*field);
			*field = NULL;
		}
}

void
config_dump(const struct config *cfg, int fd)
{
	for (size_t i = 0; i < NOPTIONS; i++) {
		const struct option *o = &options[i];
		const char *field = (const char *)cfg + o->offset;

		switch (o->type) {
		case OPT_STR:
			dprintf(fd, "%s = %s\n", o->name,
			    o->secret && **(char *const *)field ? "(set)" : *(char *const *)field);
			break;
		case OPT_INT:
			dprintf(fd, "%s = %d\n", o->name, *(const int *)field);
			break;
		case OPT_MODE:
			dprintf(fd, "%s = %04o\n", o->name, (unsigned)*(const int *)field);
			break;
		case OPT_BOOL:
			dprintf(fd, "%s = %d\n", o->name, *(const bool *)field ? 1 : 0);
			break;
		case OPT_DOUBLE:
			dprintf(fd, "%s = %g\n", o->name, *(const double *)field);
			break;
		}
	}
}

bool
config_describe(size_t i, const char **name, const char **env, const char **defval,
    const char **help)
{
	if (i >= NOPTIONS)
		return false;
	*name = options[i].name;
	*env = options[i].env;
	*defval = options[i].defval;
	*help = options[i].help;
	return true;
}

bool
config_list_has(const char *list, const char *item)
{
	size_t n = strlen(item);
	const char *p = list;

	while (p != NULL && *p != '\0') {
		while (*p == ' ' || *p == ',')
			p++;
		const char *end = p;
		while (*end != '\0' && *end != ',' && *end != ' ')
			end++;
		if ((size_t)(end - p) == n && n > 0 && strncmp(p, item, n) == 0)
			return true;
		p = end;
	}
	return false;
}

const char *
config_listen_url(const struct config *cfg)
{
	return cfg->listen_database_url[0] != '\0' ? cfg->listen_database_url : cfg->database_url;
}
