/* map.h: a string map to int64 (fail-first counters, minted ephemeral keys). */
#ifndef FAKE_UPSTREAM_MAP_H
#define FAKE_UPSTREAM_MAP_H

#include <stddef.h>
#include <stdint.h>

#define MAP_SLOTS	16384u
#define MAP_MAX		10000u			/* entries per map */

struct map_entry {
	struct map_entry	*next;
	int64_t			 value;
	size_t			 klen;
	char			 key[];
};

struct map {
	struct map_entry	*slots[MAP_SLOTS];
	size_t			 count;
};

/* Frees every entry; m is empty and reusable. */
void	map_clear(struct map *m);

/* The entry for k[0, n) (borrowed from m until the next change), or NULL. */
struct map_entry	*map_get(struct map *m, const char *k, size_t n);

/* Returns the entry for k, adding it with value v if absent. A full map is
 * cleared first: a test fake forgets rather than grows. NULL on OOM. */
struct map_entry	*map_put(struct map *m, const char *k, size_t n, int64_t v);

#endif
