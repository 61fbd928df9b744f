/* The worker threads: parsing and tokenizing requests, and writing answers,
 * off the HTTP thread and off the model thread. */
#include <stdlib.h>

#include "server_internal.h"

static void *worker_main(void *arg) {
    server *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->wlock);
        while (!s->jobs_head && !s->wstop) pthread_cond_wait(&s->wcv, &s->wlock);
        request *r = s->jobs_head;
        if (!r) { /* stopping, and nothing left */
            pthread_mutex_unlock(&s->wlock);
            return NULL;
        }
        s->jobs_head = r->next_job;
        if (!s->jobs_head) s->jobs_tail = NULL;
        pthread_mutex_unlock(&s->wlock);
        r->next_job = NULL;
        if (r->job == JOB_PARSE) api_parse(r);
        else api_respond(r);
    }
}

void workers_submit(server *s, request *r, job_kind job) {
    r->job = job;
    r->next_job = NULL;
    pthread_mutex_lock(&s->wlock);
    if (s->wstop) {
        /* only a request that came in as the server stopped */
        pthread_mutex_unlock(&s->wlock);
        request_fail(r, FAIL_UNHEALTHY, "the server is shutting down");
        return;
    }
    if (s->jobs_tail) s->jobs_tail->next_job = r;
    else s->jobs_head = r;
    s->jobs_tail = r;
    pthread_cond_signal(&s->wcv);
    pthread_mutex_unlock(&s->wlock);
}

int workers_start(server *s) {
    pthread_mutex_init(&s->wlock, NULL);
    pthread_cond_init(&s->wcv, NULL);
    s->workers = calloc((size_t)s->cfg.tokenization_workers, sizeof *s->workers);
    if (!s->workers) return 0;
    for (int i = 0; i < s->cfg.tokenization_workers; i++) {
        if (pthread_create(&s->workers[i], NULL, worker_main, s) != 0) {
            workers_stop(s);
            return 0;
        }
        s->n_workers++;
    }
    return 1;
}

/* Finish the jobs queued, then join the threads; later jobs are refused. */
void workers_stop(server *s) {
    pthread_mutex_lock(&s->wlock);
    s->wstop = 1;
    pthread_cond_broadcast(&s->wcv);
    pthread_mutex_unlock(&s->wlock);
    for (int i = 0; i < s->n_workers; i++) pthread_join(s->workers[i], NULL);
    s->n_workers = 0;
    free(s->workers);
    s->workers = NULL;
}
