/* config.h: the settings of chatd and the gateway, from a file and the environment.
 *
 * One table (config.c) lists every setting with its type, default, environment
 * variable and a one-line description; the file format, the environment
 * overrides and the documentation all come from it. */
#ifndef CHAT_CONFIG_H
#define CHAT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

struct config {
	/* process pool */
	char   *listen;                 /* FastCGI socket: a path or host:port */
	int     socket_mode;            /* permissions of a unix socket */
	int     workers;                /* worker processes */
	int     threads;                /* request threads per worker */
	int     max_requests;           /* recycle a worker after this many requests (0: never) */
	int     drain_timeout;          /* seconds to let streams finish on SIGTERM/SIGHUP */
	char   *pid_file;
	char   *spool_dir;              /* reply endings a process could not store before exit */
	char   *log_file;
	char   *log_level;
	bool    dev_mode;               /* relaxes CORS '*' refusal; never in production */
	int     max_body_size;          /* bytes */
	char   *cors_origins;           /* comma-separated list of allowed origins */
	char   *gateway_listen;         /* Socket.IO gateway: host:port */
	int     gateway_sessions_per_address; /* Engine.IO sessions per client address (0: unlimited) */
	int     gateway_session_queue;  /* bytes queued for one slow client before it is dropped */
	int     gateway_queue_total;    /* bytes queued for all clients of one gateway process */
	char   *trusted_proxies;        /* addresses whose X-Forwarded-For is believed */
	int     ratelimit_window;       /* seconds */
	int     ratelimit_chat_user;    /* generations per user per window */
	int     ratelimit_chat_anon;    /* generations per anonymous address per window */
	int     ratelimit_auth_ip;      /* logins/registrations per address per window */
	int     ratelimit_api_user;     /* other authenticated requests per user (0: off) */
	int     streams_per_user;       /* concurrent streams per user (0: unlimited) */
	int     streams_per_anon;       /* concurrent streams per anonymous address */

	/* storage and auth */
	char   *database_url;
	int     db_pool_size;           /* connections per worker process */
	int     metrics_retention_days; /* stream_metrics kept (daily partitions) */
	bool    database_pooled;        /* database_url is a transaction-mode pooler */
	char   *listen_database_url;    /* direct connection for LISTEN (empty: database_url) */
	char   *host_id;                /* this host in owner ids (empty: gethostname) */
	char   *jwt_secret;             /* secret: never logged */
	char   *jwt_secret_file;
	char   *jwt_issuer;
	int     jwt_ttl;                /* seconds */
	char   *registration;           /* "open" or "closed" (users made by chatd --create-user) */

	/* upstream */
	char   *openai_base_url;
	char   *openai_api_key;         /* secret: never logged */
	char   *model;
	double  temperature;
	int     max_tokens;
	int     max_tokens_ceiling;     /* largest max_tokens a client may ask for */
	char   *allowed_models;         /* models clients may ask for, besides model and realtime_model */
	int     daily_token_budget;     /* tokens per user per UTC day (0: no budget) */
	int     history_messages;
	char   *system_prompt;
	char   *realtime_model;
	char   *voice;
	char   *realtime_api;           /* "client_secrets" (current), "sessions" (beta) or "off" */
	int     upstream_connect_timeout;     /* seconds */
	int     upstream_first_token_timeout; /* seconds */
	int     upstream_idle_timeout;        /* seconds between tokens */
	int     upstream_retries;             /* attempts after the first, before the first token */
	int     stream_max_duration;          /* seconds */
	int     heartbeat_interval;           /* seconds */

	/* LiveKit (seed 001) */
	char   *livekit_api_key;
	char   *livekit_api_secret;     /* secret: never logged */
	char   *livekit_url;
};

/* Loads defaults, then path (if not NULL), then environment overrides, then
 * reads jwt_secret_file if jwt_secret is empty. On failure returns false and
 * writes a message naming the file, line and key into err. On success the
 * caller owns cfg and releases it with config_free(). */
/* The connection string for LISTEN: listen_database_url, else database_url. */
const char *config_listen_url(const struct config *cfg);

bool config_load(struct config *cfg, const char *path, char *err, size_t errlen);

/* Releases every string of cfg. NULL-safe. */
void config_free(struct config *cfg);

/* Writes every setting as `name = value` with secrets masked (chatd -t). */
void config_dump(const struct config *cfg, int fd);

/* Iterates over the documented settings: returns false past the last one.
 * Used by the documentation check test. */
bool config_describe(size_t i, const char **name, const char **env,
    const char **defval, const char **help);

/* True if item is one of the entries of list, a setting written as entries
 * separated by commas and/or spaces (cors_origins, trusted_proxies). Both
 * borrowed; list NULL or item "" never match. */
bool config_list_has(const char *list, const char *item);

#endif
