/* A compression shared by several processes (src/compress/compress.h, fipsc_compress_ranks): who
 * computes which group, rank 0 receiving the others' groups, a resuming rank sending the groups it
 * read from its checkpoints. The pipeline (pipeline.c) calls these; the transport is the caller's. */
#include <stdlib.h>

#include "compress/compress_internal.h"

const fipsc_compress_ranks *compress_shared_ranks(const fipsc_compress_options *o)
{
    return o->ranks && o->ranks->size > 1 ? o->ranks : NULL;
}

bool compress_owns(const fipsc_compress_options *o, int k, int n)
{
    const fipsc_compress_ranks *ranks = compress_shared_ranks(o);
    return !ranks || fipsc_compress_group_owner(k, n, ranks->size) == ranks->rank;
}

int fipsc_compress_group_owner(int k, int n, int size)
{
    return n > 0 && size > 0 ? (int)((int64_t)k * size / n) : 0;
}

/* Rank 0: group k computed by another rank, received as its checkpoint image, verified and put
 * into m; reported as finished. */
fipsc_status compress_receive_group(fipsc_model *m, const fipsc_compress_options *o, const fipsc_group_plan *plan,
                                  int k, int n, fipsc_compress_progress_fn progress, void *progress_user,
                                  double elapsed, fipsc_group_report *gr, fipsc_error *err)
{
    const fipsc_compress_ranks *ranks = o->ranks;
    const int from = fipsc_compress_group_owner(k, n, ranks->size);
    void *bytes = NULL;
    size_t size = 0;
    compress_saved saved = {0};
    fipsc_status st = ranks->receive(ranks->user, k, from, &bytes, &size, err);
    if (!st) st = compress_checkpoint_from_bytes(m, o, plan, k, bytes, size, from, &saved, err);
    free(bytes);
    if (!st) st = compress_checkpoint_apply(m, &saved, gr, err);
    gr->computed_by = from;
    compress_saved_free_one(&saved);
    if (st) return fipsc_fail_context(err, "group %d (blocks %d-%d), computed by rank %d: ", k, plan->blocks.first,
                                      plan->blocks.last, from);
    if (progress) {
        fipsc_compress_progress cp = {.event = FIPSC_COMPRESS_GROUP_DONE, .group = k, .n_groups = n,
                                      .blocks = plan->blocks, .block = -1, .elapsed = elapsed, .eta = -1.0,
                                      .report = gr, .from_rank = from};
        progress(progress_user, &cp);
    }
    return FIPSC_OK;
}

/* A rank other than 0 resuming: its group k read from its checkpoint goes to rank 0 as the file's
 * bytes; the report entry stays here. */
fipsc_status compress_send_restored(const fipsc_compress_checkpoint *ck, const fipsc_compress_ranks *ranks, int k,
                                  compress_saved *s, fipsc_group_report *gr, fipsc_error *err)
{
    void *bytes = NULL;
    size_t size = 0;
    fipsc_status st = compress_checkpoint_read(ck, k, &bytes, &size, err);
    if (!st) st = ranks->send(ranks->user, k, bytes, size, err);
    else free(bytes);
    compress_saved_take_report(s, gr);
    return st;
}
