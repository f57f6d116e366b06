/* json_out.c: JSON string escaping with UTF-8 validation. */
#include "json_out.h"

#include <string.h>

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if invalid. Rejects
 * overlong forms, surrogates and code points above U+10FFFF. */
static size_t
utf8_seq(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return n >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if (n < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
			return 0;
		if (c == 0xe0 && p[1] < 0xa0)
			return 0;  /* overlong */
		if (c == 0xed && p[1] >= 0xa0)
			return 0;  /* surrogate */
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if (n < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 ||
		    (p[3] & 0xc0) != 0x80)
			return 0;
		if (c == 0xf0 && p[1] < 0x90)
			return 0;  /* overlong */
		if (c == 0xf4 && p[1] >= 0x90)
			return 0;  /* above U+10FFFF */
		return 4;
	}
	return 0;
}

bool
utf8_valid(const char *p, size_t n)
{
	const unsigned char *s = (const unsigned char *)p;
	size_t i = 0, k;

	while (i < n) {
		if (s[i] == 0 || (k = utf8_seq(s + i, n - i)) == 0)
			return false;
		i += k;
	}
	return true;
}

bool
utf8_sanitize(struct buf *b, const char *p, size_t n)
{
	const unsigned char *s = (const unsigned char *)p;
	size_t i = 0, run = 0, k;

	while (i < n) {
		if (s[i] != 0 && (k = utf8_seq(s + i, n - i)) != 0) {
			i += k;
			run += k;
			continue;
		}
		if (run > 0 && !buf_append(b, s + i - run, run))
			return false;
		run = 0;
		if (s[i] != 0 && !buf_append(b, "\xef\xbf\xbd", 3))
			return false;
		i++;
	}
	return run == 0 || buf_append(b, s + n - run, run);
}

size_t
utf8_complete_prefix(const char *p, size_t n)
{
	const unsigned char *s = (const unsigned char *)p;
	size_t i, lead, need;

	/* Look back at most 3 bytes for the start of the last sequence. */
	for (i = n; i > 0 && n - i < 4; i--) {
		if ((s[i - 1] & 0xc0) != 0x80)
			break;
	}
	if (i == 0)
		return n;
	lead = i - 1;
	if (s[lead] < 0x80)
		return n;
	need = s[lead] >= 0xf0 ? 4 : s[lead] >= 0xe0 ? 3 : s[lead] >= 0xc0 ? 2 : 1;
	return n - lead >= need ? n : lead;
}

bool
json_put_string(struct buf *b, const char *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)p;
	size_t i = 0, run = 0, k;

	if (!buf_appendc(b, '"'))
		return false;
	while (i < n) {
		unsigned char c = s[i];
		char esc[6];
		size_t elen = 0;

		if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
			i++;
			run++;
			continue;
		}
		if (c >= 0x80) {
			if ((k = utf8_seq(s + i, n - i)) != 0) {
				i += k;
				run += k;
				continue;
			}
		}
		/* Flush the plain run, then the escape for s[i]. */
		if (run > 0 && !buf_append(b, s + i - run, run))
			return false;
		run = 0;
		switch (c) {
		case '"':  memcpy(esc, "\\\"", 2); elen = 2; break;
		case '\\': memcpy(esc, "\\\\", 2); elen = 2; break;
		case '\n': memcpy(esc, "\\n", 2); elen = 2; break;
		case '\r': memcpy(esc, "\\r", 2); elen = 2; break;
		case '\t': memcpy(esc, "\\t", 2); elen = 2; break;
		default:
			if (c < 0x20) {
				memcpy(esc, "\\u00", 4);
				esc[4] = hex[c >> 4];
				esc[5] = hex[c & 0xf];
				elen = 6;
			} else {
				/* Invalid UTF-8 byte: U+FFFD. */
				memcpy(esc, "\xef\xbf\xbd", 3);
				elen = 3;
			}
		}
		if (!buf_append(b, esc, elen))
			return false;
		i++;
	}
	if (run > 0 && !buf_append(b, s + n - run, run))
		return false;
	return buf_appendc(b, '"');
}

bool
json_put_stringz(struct buf *b, const char *s)
{
	if (s == NULL)
		return buf_append(b, "null", 4);
	return json_put_string(b, s, strlen(s));
}

bool
json_put_key(struct buf *b, const char *key)
{
	return buf_appendc(b, '"') && buf_appendz(b, key) && buf_append(b, "\":", 2);
}

size_t
json_compact(char *s, size_t n)
{
	size_t in, out = 0;
	bool in_string = false, escaped = false;

	for (in = 0; in < n; in++) {
		char c = s[in];

		if (in_string) {
			if (escaped)
				escaped = false;
			else if (c == '\\')
				escaped = true;
			else if (c == '"')
				in_string = false;
		} else if (c == '"') {
			in_string = true;
		} else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			continue;
		}
		s[out++] = c;
	}
	if (out < n)
		s[out] = '\0';
	return out;
}
