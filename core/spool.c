/* spool.c: reply endings written to files at exit, stored by the sweep. */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "chat_limits.h"
#include "log.h"
#include "store.h"

#define SPOOL_SUFFIX ".json"
/* The largest file spool_put writes: the text and chunk list at JSON's
 * worst escaping (\u00XX, 6 bytes a byte), and room for the rest. */
#define SPOOL_FILE_MAX ((size_t)6 * (LIMIT_REPLY_BYTES + LIMIT_CHUNK_ENDS_BYTES) + 4096)

/* Reply ids are uuids: anything else could name a path outside dir. */
static bool
id_safe(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f') ||
		    (id[i] >= 'A' && id[i] <= 'F') || id[i] == '-'))
			return false;
	return true;
}

static bool
add_string(json_object *o, const char *key, const char *s, size_t len)
{
	json_object *v;

	if (s == NULL)
		return true;
	return (v = json_object_new_string_len(s, (int)len)) != NULL &&
	    json_object_object_add(o, key, v) == 0;
}

static bool
add_long(json_object *o, const char *key, long n)
{
	json_object *v;

	return (v = json_object_new_int64(n)) != NULL && json_object_object_add(o, key, v) == 0;
}

/* end as one JSON object; NULL when out of memory. */
static json_object *
end_to_json(const struct reply_end *end)
{
	json_object *o = json_object_new_object();
	const char *status = reply_status_name(end->status);

	if (o == NULL)
		return NULL;
	if (!add_string(o, "reply_id", end->reply_id, strlen(end->reply_id)) ||
	    !add_string(o, "status", status, strlen(status)) ||
	    (end->text != NULL && (!add_string(o, "text", end->text, end->len) ||
	    !add_string(o, "chunk_ends", end->chunk_ends, strlen(end->chunk_ends)))) ||
	    (end->model != NULL && !add_string(o, "model", end->model, strlen(end->model))) ||
	    (end->error_code != NULL && !add_string(o, "error", end->error_code, strlen(end->error_code))) ||
	    !add_long(o, "prompt_tokens", end->prompt_tokens) ||
	    !add_long(o, "completion_tokens", end->completion_tokens)) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static bool
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

bool
spool_put(const char *dir, const struct reply_end *end)
{
	char tmp[4096], path[4096];
	json_object *o;
	const char *text;
	size_t len;
	bool ok;
	int fd;

	if (dir == NULL || dir[0] == '\0') {
		log_error("reply %s: no spool_dir to hand its ending to", end->reply_id);
		return false;
	}
	if (!id_safe(end->reply_id) ||
	    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, end->reply_id) >= (int)sizeof(tmp) ||
	    snprintf(path, sizeof(path), "%s/%s" SPOOL_SUFFIX, dir, end->reply_id) >= (int)sizeof(path)) {
		log_error("reply %s: cannot name its spool file in %s", end->reply_id, dir);
		return false;
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		log_error("spool directory %s: %s", dir, strerror(errno));
		return false;
	}
	if ((o = end_to_json(end)) == NULL)
		return false;
	text = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
		log_error("spool file %s: %s", tmp, strerror(errno));
		json_object_put(o);
		return false;
	}
	/* fsync before the rename: after a crash the name never points at a
	 * file whose content did not reach the disk. */
	ok = text != NULL && write_all(fd, text, len) && fsync(fd) == 0;
	if (close(fd) != 0)
		ok = false;
	json_object_put(o);
	if (!ok || rename(tmp, path) != 0) {
		log_error("spool file %s: %s", path, strerror(errno));
		(void)unlink(tmp);
		return false;
	}
	return true;
}

/* Reads path whole into a NUL-terminated string of at most max bytes;
 * NULL when it cannot. The caller frees it. */
static char *
read_file(const char *path, size_t max, size_t *len_out)
{
	char *data = NULL;
	size_t len = 0, cap = 0;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return NULL;
	for (;;) {
		ssize_t r;

		if (len == cap) {
			char *bigger;

			if (len > max) {
				errno = EFBIG;
				goto fail;
			}
			cap = cap == 0 ? 8192 : cap * 2;
			if (cap > max + 1)
				cap = max + 1;   /* room to see that a file is larger than max */
			if ((bigger = realloc(data, cap + 1)) == NULL)
				goto fail;
			data = bigger;
		}
		if ((r = read(fd, data + len, cap - len)) < 0 && errno == EINTR)
			continue;
		if (r < 0)
			goto fail;
		if (r == 0)
			break;
		len += (size_t)r;
	}
	(void)close(fd);
	data[len] = '\0';
	*len_out = len;
	return data;
fail:
	{
		int saved = errno;   /* what the caller reports, not close's */

		(void)close(fd);
		free(data);
		errno = saved;
	}
	return NULL;
}

/* Fills end from o's members (borrowed from o); false when o is not an
 * ending spool_put wrote. */
static bool
end_from_json(json_object *o, struct reply_end *end)
{
	json_object *v;

	memset(end, 0, sizeof(*end));
	end->prompt_tokens = end->completion_tokens = -1;
	if (!json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "reply_id", &v) || !json_object_is_type(v, json_type_string) ||
	    !id_safe(end->reply_id = json_object_get_string(v)) ||
	    !json_object_object_get_ex(o, "status", &v) || !json_object_is_type(v, json_type_string) ||
	    !reply_status_parse(json_object_get_string(v), &end->status) ||
	    end->status == REPLY_STREAMING)
		return false;
	if (json_object_object_get_ex(o, "text", &v)) {
		if (!json_object_is_type(v, json_type_string))
			return false;
		end->text = json_object_get_string(v);
		end->len = (size_t)json_object_get_string_len(v);
		if (!json_object_object_get_ex(o, "chunk_ends", &v) || !json_object_is_type(v, json_type_string))
			return false;
		end->chunk_ends = json_object_get_string(v);
	}
	if (json_object_object_get_ex(o, "model", &v) && json_object_is_type(v, json_type_string))
		end->model = json_object_get_string(v);
	if (json_object_object_get_ex(o, "error", &v) && json_object_is_type(v, json_type_string))
		end->error_code = json_object_get_string(v);
	if (json_object_object_get_ex(o, "prompt_tokens", &v) && json_object_is_type(v, json_type_int))
		end->prompt_tokens = (long)json_object_get_int64(v);
	if (json_object_object_get_ex(o, "completion_tokens", &v) && json_object_is_type(v, json_type_int))
		end->completion_tokens = (long)json_object_get_int64(v);
	return true;
}

static void
set_aside(const char *path, const char *why)
{
	char bad[4096];

	log_error("spool file %s: %s; renamed *.bad", path, why);
	if (snprintf(bad, sizeof(bad), "%s.bad", path) >= (int)sizeof(bad) || rename(path, bad) != 0)
		log_error("spool file %s: cannot rename it: %s", path, strerror(errno));
}

/* Stores the ending in path: 1 stored (file removed), 0 set aside or gone,
 * -1 the database did not take it. */
static int
apply_one(const char *path, struct store *st)
{
	struct json_tokener *tok;
	json_object *o = NULL;
	struct reply_end end;
	enum store_rc rc;
	size_t len;
	char *data;

	if ((data = read_file(path, SPOOL_FILE_MAX, &len)) == NULL) {
		if (errno != ENOENT)   /* gone: another sweep took it */
			set_aside(path, "unreadable or too large");
		return 0;
	}
	if ((tok = json_tokener_new()) != NULL) {
		o = json_tokener_parse_ex(tok, data, (int)len);
		json_tokener_free(tok);
	}
	if (o == NULL || !end_from_json(o, &end)) {
		set_aside(path, "not a reply ending");
		json_object_put(o);
		free(data);
		return 0;
	}
	if ((rc = store_reply_end(st, &end)) == STORE_OK) {
		log_info("reply %s: spooled ending stored (%s, %zu bytes of text)", end.reply_id,
		    reply_status_name(end.status), end.len);
		if (unlink(path) != 0 && errno != ENOENT)
			log_error("spool file %s: %s", path, strerror(errno));
	} else if (rc == STORE_INVALID || rc == STORE_NOT_FOUND || rc == STORE_CONFLICT) {
		/* The database refused this one's values (not a uuid, bad text):
		 * trying again would fail the same way. */
		set_aside(path, "refused by the database");
	} else if (rc == STORE_ERROR) {
		/* Maybe transient (a deadlock): kept for the next sweep, which
		 * it must not hold up meanwhile. */
		log_error("spool file %s: not stored this time", path);
	}
	json_object_put(o);
	free(data);
	return rc == STORE_OK ? 1 : rc == STORE_UNAVAILABLE ? -1 : 0;
}

static bool
is_spool_name(const char *name)
{
	size_t n = strlen(name), s = strlen(SPOOL_SUFFIX);

	return name[0] != '.' && n > s && strcmp(name + n - s, SPOOL_SUFFIX) == 0;
}

long
spool_apply(const char *dir, struct store *st)
{
	char path[4096];
	struct dirent *e;
	long stored = 0;
	DIR *d;

	if (dir == NULL || dir[0] == '\0' || (d = opendir(dir)) == NULL)
		return 0;   /* nothing was ever spooled */
	while ((e = readdir(d)) != NULL) {
		int r;

		if (!is_spool_name(e->d_name) ||
		    snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path))
			continue;
		if ((r = apply_one(path, st)) < 0) {
			stored = -1;
			break;
		}
		stored += r;
	}
	(void)closedir(d);
	return stored;
}
