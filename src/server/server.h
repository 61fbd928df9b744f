/* ember serve: an HTTP server speaking Hugging Face text-embeddings-inference's
 * routes and OpenAI's /v1/embeddings, over include/ember.h. */
#ifndef EMBER_SERVER_SERVER_H
#define EMBER_SERVER_SERVER_H

#include <stdint.h>

#include "ember.h"

typedef struct {
    const char *host;              /* address to bind (default 127.0.0.1) */
    int port;                      /* 0: any free port (printed when listening) */
    const char *served_model_name; /* model_id in /info and "model" in OpenAI answers */
    const char *api_key;           /* NULL: no authentication */
    int32_t max_concurrent_requests;
    int32_t max_batch_tokens;      /* the token budget of one forward pass */
    int32_t max_batch_requests;    /* inputs per forward pass; 0: no limit but the budget */
    int32_t max_client_batch_size; /* inputs per HTTP request */
    int32_t auto_truncate;         /* truncate over-long inputs unless a request says otherwise */
    int32_t tokenization_workers;
    int64_t payload_limit;         /* bytes of request body */
    int32_t idle_timeout;          /* seconds before an idle connection is closed; 0: never */
    int32_t shutdown_timeout;      /* seconds to finish in-flight requests after SIGTERM */
} server_config;

/*
 * Serve model until SIGTERM or SIGINT, then stop accepting connections,
 * finish the requests in flight and return 0 (or 1 when the server could not
 * start). The caller must have blocked SIGTERM and SIGINT in every thread
 * (server_block_signals, before the model starts threads of its own).
 */
int server_run(ember_model *model, const server_config *cfg);
void server_block_signals(void);

#endif
