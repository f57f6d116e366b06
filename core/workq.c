/* workq.c: a job queue served by a few threads. */
#include "workq.h"

#include <pthread.h>
#include <stdlib.h>

#include "log.h"

struct workq_job {
	void            (*work)(void *arg);
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

static void *
workq_main(void *arg)
{
	struct workq *q = arg;

	pthread_mutex_lock(&q->mu);
	for (;;) {
		struct workq_job *job;

		while (q->head == NULL && !q->stopping)
			pthread_cond_wait(&q->cv, &q->mu);
		if ((job = q->head) == NULL)
			break;  /* stopping, and nothing left */
		q->head = job->next;
		if (q->head == NULL)
			q->tail = NULL;
		pthread_mutex_unlock(&q->mu);
		job->work(job->arg);
		if (job->done != NULL && !q->post(job->done, job->arg)) {
			/* XXX: the loop cannot take it (out of memory); its owner
			 * never hears back and its memory stays. */
			log_error("workq: cannot hand a finished job back to the loop");
		}
		free(job);
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

bool
workq_submit(struct workq *q, void (*work)(void *arg), void (*done)(void *arg), void *arg)
{
	struct workq_job *job = malloc(sizeof(*job));

	if (job == NULL)
		return false;
	job->work = work;
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
