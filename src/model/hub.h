/* Models by name: Hugging Face Hub ids ("org/name", or a bare "name" tried as
 * "sentence-transformers/name" first), found in and downloaded into the cache
 * that huggingface_hub writes, so that Python and ember share one copy:
 *
 *   <cache>/models--org--name/refs/<revision>          the commit a branch or tag points at
 *   <cache>/models--org--name/snapshots/<commit>/<file> -> ../../blobs/<etag>
 *   <cache>/models--org--name/blobs/<etag>             the content (etag: sha256 for LFS files)
 *   <cache>/.locks/models--org--name/<etag>.lock       held (flock) while a blob is written
 *
 * <cache> is $HF_HUB_CACHE, else $HF_HOME/hub, else
 * ${XDG_CACHE_HOME:-~/.cache}/huggingface/hub. The public entry points are
 * ember_hub_resolve and ember_hub_pull (include/ember.h). */
#ifndef EMBER_MODEL_HUB_H
#define EMBER_MODEL_HUB_H

#include <stddef.h>

#include "ember.h"

/* Whether s reads as a hub id ("org/name" or "name": letters, digits, '-',
 * '_', '.', no "--" or "..") rather than as a path. */
int hub_is_id(const char *s);

typedef enum {
    HUB_CACHE_ONLY,      /* never connect */
    HUB_PULL,            /* ask the hub what the revision is now, download what is missing */
    HUB_CACHE_THEN_PULL, /* the cache when it has the model, else as HUB_PULL (unless offline) */
} hub_mode;

/* The snapshot directory of `id` at `revision` (NULL or "": "main") into
 * dir[cap], and the repository it was found as (a bare name expanded) into
 * repo[repo_cap] (repo may be NULL). With HF_HUB_OFFLINE set every mode is
 * HUB_CACHE_ONLY. Errors name the id, the revision, the cache directory and
 * what to run. */
ember_status hub_locate(const char *id, const char *revision, hub_mode mode, ember_hub_progress_fn progress,
                        void *user, char *dir, size_t cap, char *repo, size_t repo_cap);

#endif
