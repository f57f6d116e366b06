/* samples.h: latency samples in microseconds, for percentiles.
 *
 * Count, sum and maximum are exact. The samples themselves are kept up to a
 * cap; beyond it a reservoir (Vitter's algorithm R) keeps a uniform random
 * subset, so memory stays bounded however long a run lasts while the
 * percentiles stay unbiased. */
#ifndef LOAD_SAMPLES_H
#define LOAD_SAMPLES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct samples {
	uint32_t *v;        /* owned: the kept samples (µs) */
	size_t    n;        /* kept */
	size_t    alloc;    /* allocated slots */
	size_t    cap;      /* never keep more than this many */
	uint64_t  seen;     /* samples added in total */
	uint32_t  max;      /* exact maximum */
	double    sum;      /* exact sum, for the mean */
	uint64_t  rng;      /* reservoir's xorshift64 state */
	bool      sorted;
};

/* Prepares an empty set keeping at most cap samples. Allocates nothing. */
void samples_init(struct samples *s, size_t cap);

/* Frees the storage; s may be initialised again. NULL-safe. */
void samples_free(struct samples *s);

/* Adds one sample (negative values count as 0, huge ones saturate). An
 * allocation failure only costs the sample its place in the percentiles. */
void samples_add(struct samples *s, int64_t us);

/* The p-th percentile (0 < p <= 100, nearest rank) in microseconds; 0 for an
 * empty set. Sorts the kept samples on first use after an add. */
uint32_t samples_pct(struct samples *s, double p);

/* The mean in microseconds; 0 for an empty set. */
double samples_mean(const struct samples *s);

#endif
