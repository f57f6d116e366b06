/* samples.c: latency samples with a bounded reservoir. */
#include "samples.h"

#include <math.h>
#include <stdlib.h>

void
samples_init(struct samples *s, size_t cap)
{
	*s = (struct samples){ .cap = cap > 0 ? cap : 1, .rng = 0x9e3779b97f4a7c15ull,
	    .sorted = true };
}

void
samples_free(struct samples *s)
{
	if (s == NULL)
		return;
	free(s->v);
	s->v = NULL;
	s->n = s->alloc = 0;
}

static uint64_t
samples_rand(struct samples *s)
{
	uint64_t x = s->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return s->rng = x;
}

void
samples_add(struct samples *s, int64_t us)
{
	uint32_t v = us < 0 ? 0 : us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;

	s->seen++;
	s->sum += v;
	if (v > s->max)
		s->max = v;
	if (s->n < s->cap) {
		if (s->n == s->alloc) {
			size_t na = s->alloc == 0 ? 1024 : s->alloc * 2;
			uint32_t *nv;

			if (na > s->cap)
				na = s->cap;
			if ((nv = realloc(s->v, na * sizeof(*nv))) == NULL)
				return;
			s->v = nv;
			s->alloc = na;
		}
		s->v[s->n++] = v;
		s->sorted = false;
		return;
	}
	/* Algorithm R: the i-th sample replaces a kept one with probability
	 * cap / i. */
	uint64_t j = samples_rand(s) % s->seen;
	if (j < s->cap) {
		s->v[j] = v;
		s->sorted = false;
	}
}

static int
samples_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

uint32_t
samples_pct(struct samples *s, double p)
{
	size_t rank;

	if (s->n == 0)
		return 0;
	if (!s->sorted) {
		qsort(s->v, s->n, sizeof(*s->v), samples_cmp);
		s->sorted = true;
	}
	if (p >= 100)
		return s->max;
	rank = (size_t)ceil(p / 100.0 * (double)s->n);
	if (rank < 1)
		rank = 1;
	if (rank > s->n)
		rank = s->n;
	return s->v[rank - 1];
}

double
samples_mean(const struct samples *s)
{
	return s->seen > 0 ? s->sum / (double)s->seen : 0;
}
