/* workq.c: a job queue served by a few threads. */
#include "workq.h"

#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>

#include "log.h"

struct workq_job {
	void            (*work)(void *arg);
	void            (*work_many)(void **args, size_t n);  /* or this, batched */
	void            (*done)(void *arg);
	void             *arg;
	struct workq_job *next;
};

struct workq {
	pthread_mutex_t   mu;
	pthread_cond_t    cv;
	struct workq_job *head, *tail;
	bool              stopping;
	workq_post_fn     post;
	pthread_t        *threads;
	int               nthreads;
};

/* Unlinks job (whose predecessor is prev, NULL for the head). Locked. */
static void
workq_unlink(struct workq *q, struct workq_job *prev, struct workq_job *job)
{
	if (prev != NULL)
		prev->next = job->next;
	else
		q->head = job->next;
	if (q->tail == job)
		q->tail = prev;
}

/* Takes the head job and, when it is a batched one, up to WORKQ_BATCH_MAX
 * queued jobs of the same work_many into batch. Locked. */
static size_t
workq_take(struct workq *q, struct workq_job **batch)
{
	struct workq_job *first = q->head, *prev, *job;
	size_t n = 1;

	workq_unlink(q, NULL, first);
	batch[0] = first;
	if (first->work_many == NULL)
		return 1;
	for (job = q->head, prev = NULL; job != NULL && n < WORKQ_BATCH_MAX;) {
		struct workq_job *next = job->next;

		if (job->work_many == first->work_many) {
			workq_unlink(q, prev, job);
			batch[n++] = job;
		} else
			prev = job;
		job = next;
	}
	return n;
}

static void
workq_run(struct workq *q, struct workq_job **batch, size_t n)
{
	void *args[WORKQ_BATCH_MAX];

	if (batch[0]->work_many != NULL) {
		for (size_t i = 0; i < n; i++)
			args[i] = batch[i]->arg;
		batch[0]->work_many(args, n);
	} else
		batch[0]->work(batch[0]->arg);
	for (size_t i = 0; i < n; i++) {
		if (batch[i]->done != NULL && !q->post(batch[i]->done, batch[i]->arg)) {
			/* XXX: the loop cannot take it (out of memory); its owner
			 * never hears back and its memory stays. */
			log_error("workq: cannot hand a finished job back to the loop");
		}
		free(batch[i]);
	}
}

static void *
workq_main(void *arg)
{
	struct workq *q = arg;
	struct workq_job *batch[WORKQ_BATCH_MAX];

	pthread_mutex_lock(&q->mu);
	for (;;) {
		size_t n;

		while (q->head == NULL && !q->stopping)
			pthread_cond_wait(&q->cv, &q->mu);
		if (q->head == NULL)
			break;  /* stopping, and nothing left */
		n = workq_take(q, batch);
		pthread_mutex_unlock(&q->mu);
		workq_run(q, batch, n);
		pthread_mutex_lock(&q->mu);
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

struct workq *
workq_new(int nthreads, workq_post_fn post)
{
	struct workq *q = calloc(1, sizeof(*q));

	if (q == NULL || (q->threads = calloc((size_t)nthreads, sizeof(*q->threads))) == NULL) {
		log_error("workq: out of memory");
		free(q);
		return NULL;
	}
	q->post = post;
	if (pthread_mutex_init(&q->mu, NULL) != 0 || pthread_cond_init(&q->cv, NULL) != 0) {
		log_error("workq: cannot initialise its lock");
		free(q->threads);
		free(q);
		return NULL;
	}
	for (; q->nthreads < nthreads; q->nthreads++)
		if (pthread_create(&q->threads[q->nthreads], NULL, workq_main, q) != 0) {
			log_error("workq: pthread_create failed after %d threads", q->nthreads);
			break;
		}
	if (q->nthreads == 0) {
		workq_free(q);
		return NULL;
	}
	return q;
}

static bool
workq_enqueue(struct workq *q, void (*work)(void *arg), void (*work_many)(void **args, size_t n),
    void (*done)(void *arg), void *arg)
{
	struct workq_job *job = malloc(sizeof(*job));

	if (job == NULL)
		return false;
	job->work = work;
	job->work_many = work_many;
	job->done = done;
	job->arg = arg;
	job->next = NULL;
	pthread_mutex_lock(&q->mu);
	if (q->tail != NULL)
		q->tail->next = job;
	else
		q->head = job;
	q->tail = job;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	return true;
}

bool
workq_submit(struct workq *q, void (*work)(void *arg), void (*done)(void *arg), void *arg)
{
	return workq_enqueue(q, work, NULL, done, arg);
}

bool
workq_submit_batched(struct workq *q, void (*work_many)(void **args, size_t n),
    void (*done)(void *arg), void *arg)
{
	return workq_enqueue(q, NULL, work_many, done, arg);
}

void
workq_free(struct workq *q)
{
	if (q == NULL)
		return;
	pthread_mutex_lock(&q->mu);
	q->stopping = true;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
	for (int i = 0; i < q->nthreads; i++)
		(void)pthread_join(q->threads[i], NULL);
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->cv);
	free(q->threads);
	free(q);
}
