/* fail.h: misbehaviour on demand: [[status=CODE]] errors and [[fail-first=N]] buckets. */
#ifndef FAKE_UPSTREAM_FAIL_H
#define FAKE_UPSTREAM_FAIL_H

#include <stdbool.h>
#include <stddef.h>

struct conn;
struct directives;

/* Answers d's [[status=CODE]] error unless its [[fail-first=N]] bucket (the
 * key directive plus text) has already failed N times. *failed says whether
 * the error was sent. d and text are borrowed for the call. Returns false
 * if c must be destroyed. */
bool	fail_maybe(struct conn *c, const struct directives *d, const char *text,
    size_t text_len, bool *failed);

/* Forgets every bucket (POST /_fake/reset, exit). */
void	fail_reset(void);

#endif
