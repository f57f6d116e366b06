/* workq.h: blocking work (PostgreSQL writes) off the event loop.
 *
 * A few threads take jobs in order of submission; each job's done callback
 * then runs on the loop's thread, handed over by the post function the
 * queue was made with (loop_epoll_post). So the loop never waits for the
 * database, and what a job wrote is visible to the loop by the time its
 * done runs. */
#ifndef CHAT_WORKQ_H
#define CHAT_WORKQ_H

#include <stdbool.h>
#include <stddef.h>

struct workq;

/* How done callbacks reach the loop: runs fn(arg) there; false when it
 * cannot (out of memory). */
typedef bool (*workq_post_fn)(void (*fn)(void *arg), void *arg);

/* Starts nthreads threads. Returns NULL after logging why. */
struct workq *workq_new(int nthreads, workq_post_fn post);

/* Queues work(arg) for a thread, then done(arg) (may be NULL) on the loop.
 * Any thread may submit. arg stays the caller's until done ran (or work,
 * without done). False when out of memory: nothing will run. */
bool workq_submit(struct workq *q, void (*work)(void *arg), void (*done)(void *arg), void *arg);

#define WORKQ_BATCH_MAX 256   /* jobs one work_many call takes at most */

/* Like workq_submit, for work that is cheaper done many at a time (one SQL
 * statement for many rows): a thread takes this job together with every
 * other queued job of the same work_many (up to a few hundred) and calls
 * work_many(args, n) once; each done(arg) then runs on the loop. */
bool workq_submit_batched(struct workq *q, void (*work_many)(void **args, size_t n),
    void (*done)(void *arg), void *arg);

/* Runs every job still queued, stops the threads and frees q. The done
 * callbacks of those jobs are posted as usual: keep the loop running
 * until they ran. NULL-safe. */
void workq_free(struct workq *q);

#endif
