/* A whole compression of a loaded model: see compress_model.h. */
#include "compress/compress_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/calibration_source.h"
#include "compress/compress_internal.h"
#include "core/clock.h"
#include "core/memory.h"
#include "model/compressed.h"

/* What a run decides before any work: its options (the family's defaults for every training option
 * not given), the group plans, the memory plan and where the calibration rows will live. */
typedef struct run_plan {
    fipsc_compress_options options;
    fipsc_group_plan *plans; /* [n_plans], malloc'ed */
    int n_plans;
    fipsc_memory_plan mem;
    int64_t budget;
    fipsc_calib_source calib; /* s->calib, spilled when the plan says */
} run_plan;

/* One group's rows at a time, captured when the pipeline reaches the group, into the run's
 * calibration `cal`:
 *   streamed (the default): one pass of the residual stream over the blocks after the previous
 *     pass, on the original model (the pipeline refreshes before it changes a group), so the rows
 *     are teacher-forced, the same bits as one forward over every block would give;
 *   sequential: one forward from the inputs over the model as it is then (earlier groups
 *     compressed). */
typedef struct group_rows {
    fipsc_calib_source source; /* the run's, with .stream and .sampled when streaming */
    uint64_t seed;
    fipsc_residual_stream *stream; /* NULL: sequential */
    fipsc_calibration *cal;  /* the run's: its blocks point at `held`'s rows */
    fipsc_calibration held;  /* the current group's rows */
    fipsc_capture held_cap;  /* ... when `held` borrows them */
    int held_first, held_last; /* the blocks held (-1: none) */
    double seconds;          /* spent capturing, every pass */
} group_rows;

/* Captures blocks first..last into s->cal, after dropping the previous group's rows (one group's
 * rows in memory at a time); streaming, nothing to do when they are the ones held. */
static fipsc_status group_rows_capture(group_rows *s, const fipsc_model *m, int first, int last,
                                       fipsc_calib_note_fn note, void *note_user, char *desc, size_t desc_cap,
                                       fipsc_error *err)
{
    if (s->stream && first == s->held_first && last == s->held_last) return FIPSC_OK;
    const double t0 = fipsc_seconds_now();
    for (int l = 0; l < s->cal->n_blocks; l++) s->cal->blocks[l] = (fipsc_fips_calib){0, NULL, NULL};
    fipsc_calibration_free(&s->held);
    fipsc_capture_free(&s->held_cap);
    s->held_first = s->held_last = -1;
    int *blocks = malloc((size_t)(last - first + 1) * sizeof *blocks);
    if (!blocks) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    for (int l = first; l <= last; l++) blocks[l - first] = l;
    char unused[512];
    fipsc_status st = FIPSC_OK;
    if (s->stream) st = fipsc_residual_stream_begin(s->stream, last, err);
    if (!st)
        st = fipsc_calibrate(m, &s->source, s->seed, blocks, last - first + 1, note, note_user, &s->held, &s->held_cap,
                             desc ? desc : unused, desc ? desc_cap : sizeof unused, err);
    if (!st && s->stream) st = fipsc_residual_stream_end(s->stream, err);
    free(blocks);
    s->seconds += fipsc_seconds_now() - t0;
    if (st) return st;
    for (int l = first; l <= last; l++) s->cal->blocks[l] = s->held.blocks[l];
    s->cal->n_sequences = s->held.n_sequences;
    s->cal->spilled = s->held.spilled;
    s->held_first = first;
    s->held_last = last;
    return FIPSC_OK;
}

static fipsc_status refresh_rows(void *user, const fipsc_model *m, int first, int last, fipsc_error *err)
{
    return group_rows_capture(user, m, first, last, NULL, NULL, NULL, 0, err);
}

/* r->mem, the rows in memory or spilled. With --v-products auto (auto_sparse), a plan whose
 * V-sparse step's lists exceed the budget is made again with dense training products: slower
 * steps, the same maths, tried before spilling rows (and again once the rows are spilled, which
 * may leave room for them). */
static void plan_memory(const fipsc_model *m, run_plan *r, bool auto_sparse, int64_t rows_bound, int64_t sampling,
                        bool spill)
{
    if (auto_sparse) r->options.v_products = FIPSC_FIPS_V_AUTO;
    fipsc_compress_memory_plan(m, &r->options, r->plans, r->n_plans, rows_bound, sampling, spill, &r->mem);
    if (auto_sparse && r->mem.sparse_step && r->budget >= 0 && r->mem.total > r->budget) {
        r->options.v_products = FIPSC_FIPS_V_DENSE;
        fipsc_compress_memory_plan(m, &r->options, r->plans, r->n_plans, rows_bound, sampling, spill, &r->mem);
        r->mem.sparse_step_dropped = true;
    }
}

/* Fails (nothing done) on a calibration source the model cannot use, bad options, an impossible
 * plan, checkpoints that do not fit (ck, may be NULL), or a memory plan over the budget. */
static fipsc_status plan_run(const fipsc_model *m, const fipsc_compress_settings *s, const fipsc_compress_checkpoint *ck,
                             run_plan *r, fipsc_error *err)
{
    memset(r, 0, sizeof *r);
    /* What the model can do decides what it calibrates on: images, sentences or a token corpus. */
    const char *calib_problem = fipsc_calib_source_problem(&s->calib, m);
    if (calib_problem) return fipsc_fail(err, FIPSC_ERR_ARG, "%s", calib_problem);
    fipsc_settings_resolve(s, m, &r->options);
    const fipsc_compress_options *o = &r->options;
    fipsc_status st = fipsc_compress_options_check(o, err);
    if (st) return st;
    if (o->sequential && o->capture_all)
        return fipsc_fail(err, FIPSC_ERR_ARG, "--sequential captures each group's rows just before it, on the partly "
                          "compressed model: it cannot capture every group's rows first (--capture-all)");
    if (o->sequential && compress_shared_ranks(o))
        return fipsc_fail(err, FIPSC_ERR_ARG, "--sequential calibrates each group on the model with every "
                          "earlier group compressed: it runs in one process, not shared among %d ranks",
                          o->ranks->size);
    if (o->sequential && fipsc_calibration_sampling_bytes(m, &s->calib) > 0) /* sampled from the model */
        return fipsc_fail(err, FIPSC_ERR_ARG, "--sequential needs calibration tokens that do not depend on the "
                          "model (--calib-corpus or --calib-text): a sampled corpus would be sampled again from "
                          "the partly compressed model (sample one first: fipsc sample MODEL -o calib.tok)");

    /* Plan first: bad groups, budgets or n:m fail before calibration; so do checkpoints that do
     * not fit this run (the calibration rows are checked after they are captured). */
    if ((st = fipsc_compress_plan(m, o, &r->plans, &r->n_plans, err))) return st;
    if (ck && (st = fipsc_compress_checkpoint_prepare(ck, m, o, err))) return st;
    /* The memory plan: refuse now, not hours into calibration, a run that cannot fit. Calibration
     * rows in memory, or (when only that fits, or when asked) in a scratch file. */
    int64_t rows_bound = 0;
    r->budget = fipsc_compress_memory_budget(o);
    if ((st = fipsc_calibration_rows_bound(m, &s->calib, &rows_bound, err))) return st;
    const int64_t sampling = fipsc_calibration_sampling_bytes(m, &s->calib);
    const bool auto_sparse = o->v_products == FIPSC_FIPS_V_AUTO;
    plan_memory(m, r, auto_sparse, rows_bound, sampling, false);
    const bool spill = o->spill == FIPSC_SPILL_ALWAYS ||
                       (o->spill == FIPSC_SPILL_AUTO && r->budget >= 0 && r->mem.total > r->budget);
    const char *tmpdir = getenv("TMPDIR");
    const char *scratch = o->scratch_dir ? o->scratch_dir : tmpdir && *tmpdir ? tmpdir : "/tmp";
    if (spill) plan_memory(m, r, auto_sparse, rows_bound, sampling, true);
    if ((st = fipsc_compress_memory_check(&r->mem, r->budget, err)) ||
        (spill && (st = fipsc_scratch_check(scratch, r->mem.spill_bytes, err))))
        return st;
    r->calib = s->calib;
    if (spill) r->calib.spill_dir = scratch, r->calib.spill_rows = rows_bound;
    return FIPSC_OK;
}

fipsc_status fipsc_compress_dry_run(const fipsc_model *m, const fipsc_compress_settings *s, char **text,
                                    fipsc_error *err)
{
    *text = NULL;
    run_plan r;
    fipsc_status st = plan_run(m, s, NULL, &r, err);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = st ? NULL : open_memstream(&buf, &len);
    if (!st && !f) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    if (!st) {
        const fipsc_memory_plan *mp = &r.mem;
        char t[6][32];
        fprintf(f, "%d group%s, %s:\n", r.n_plans, r.n_plans == 1 ? "" : "s",
                fipsc_compress_method_name(r.options.method));
        for (int k = 0; k < r.n_plans; k++) {
            const fipsc_group_plan *g = &r.plans[k];
            fprintf(f, "  group %d: blocks %d-%d, d %d, P %lld, rank %d, params %lld of %lld, bytes %s of %s\n", k,
                    g->blocks.first, g->blocks.last, g->d, (long long)g->P, g->r, (long long)g->kept_params,
                    (long long)g->dense_params, fipsc_bytes_text(g->stored_bytes, t[0], 32),
                    fipsc_bytes_text(g->dense_bytes, t[1], 32));
        }
        fprintf(f, "memory plan: %s (model %s, calibration rows %s for at most %lld rows per block%s, then the "
                "largest group (group %d) %s or the calibration forward or sampling %s)", fipsc_bytes_text(mp->total, t[0], 32),
                fipsc_bytes_text(mp->model, t[1], 32), fipsc_bytes_text(mp->calibration, t[2], 32),
                (long long)mp->rows_per_block, mp->spilled     ? ", spilled: the largest group's in memory"
                : mp->streamed ? ", streamed: the largest group's and the residual stream"
                               : "",
                mp->group_index, fipsc_bytes_text(mp->group, t[3], 32), fipsc_bytes_text(mp->forward, t[4], 32));
        if (r.budget > 0) fprintf(f, " of a budget of %s", fipsc_bytes_text(r.budget, t[0], 32));
        if (mp->spilled)
            fprintf(f, "; a %s scratch file in %s", fipsc_bytes_text(mp->spill_bytes, t[5], 32), r.calib.spill_dir);
        if (mp->sparse_step) fprintf(f, "; training multiplies by V's kept entries only (V-sparse step)");
        if (mp->sparse_step_dropped)
            fprintf(f, "; training multiplies by the masked V densely: the V-sparse step's lists would exceed the budget");
        fprintf(f, "\n");
        if (fclose(f) != 0 || !buf) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    }
    free(r.plans);
    if (st) {
        free(buf);
        return st;
    }
    *text = buf;
    return FIPSC_OK;
}

fipsc_status fipsc_compress_model(fipsc_model *m, const fipsc_compress_settings *s, const fipsc_compress_checkpoint *ck,
                                  fipsc_calib_note_fn note, void *note_user, fipsc_compress_progress_fn progress,
                                  void *progress_user, fipsc_compress_report **report, char *calib_desc,
                                  size_t calib_desc_cap, fipsc_error *err)
{
    *report = NULL;
    const int64_t rss_loaded = fipsc_peak_rss_bytes();
    run_plan r;
    fipsc_status st = plan_run(m, s, ck, &r, err);
    if (st) {
        free(r.plans);
        return st;
    }
    const fipsc_compress_options *o = &r.options;
    const fipsc_group_plan *plans = r.plans;
    const int n_plans = r.n_plans;
    int *blocks = malloc((size_t)(m->n_mlps > 0 ? m->n_mlps : 1) * sizeof *blocks), n_blocks = 0;
    if (!blocks) {
        free(r.plans);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    }
    /* The blocks captured now. Captured all at once (--capture-all): the blocks of every group
     * this process computes (with o->ranks, its own groups only). One group at a time: the first
     * group's — sequential: group 0; streamed: the first group this process computes (rank 0
     * computes group 0; the groups it receives come after its own, so its stream never needs to
     * pass them). */
    const bool streamed = compress_streams(o);
    int first_group = -1;
    for (int k = 0; k < n_plans && first_group < 0 && (o->sequential || streamed); k++)
        if (compress_owns(o, k, n_plans)) first_group = k;
    for (int k = 0; k < n_plans; k++)
        for (int l = plans[k].blocks.first; l <= plans[k].blocks.last; l++)
            if (first_group >= 0 ? k == first_group : o->capture_all && compress_owns(o, k, n_plans))
                blocks[n_blocks++] = l;
    free(r.plans);

    fipsc_calibration cal = {0};
    fipsc_capture cap = {0}; /* the calibration rows, when cal borrows them */
    fipsc_residual_stream stream = {0};
    fipsc_corpus *sampled = NULL;
    group_rows rows = {.source = r.calib, .seed = o->seed, .stream = streamed ? &stream : NULL, .cal = &cal,
                       .held_first = -1, .held_last = -1};
    const double t_calibration = fipsc_seconds_now();
    if (n_blocks > 0 && first_group >= 0) {
        st = fipsc_calibration_init(&cal, m->n_mlps, err);
        /* streaming passes run on a model whose earlier groups are compressed: sample once, first */
        if (!st && streamed && fipsc_calibration_sampling_bytes(m, &r.calib) > 0 &&
            !(st = fipsc_calibration_sample(m, &r.calib, o->seed, note, note_user, &sampled, err))) {
            rows.source.sampled = sampled;
        }
        rows.source.stream = rows.stream;
        if (!st) st = group_rows_capture(&rows, m, blocks[0], blocks[n_blocks - 1], note, note_user, calib_desc,
                                         calib_desc_cap, err);
        rows.seconds = 0.0; /* from now on: the later groups' captures */
        cal.refresh = refresh_rows;
        cal.refresh_user = &rows;
        cal.streamed = streamed;
    } else if (n_blocks > 0) {
        st = fipsc_calibrate(m, &r.calib, o->seed, blocks, n_blocks, note, note_user, &cal, &cap, calib_desc,
                             calib_desc_cap, err);
    } else { /* a rank with no group: nothing to capture */
        st = fipsc_calibration_init(&cal, m->n_mlps, err);
        if (calib_desc_cap > 0) snprintf(calib_desc, calib_desc_cap, "none (this rank computes no group)");
    }
    free(blocks);
    const int64_t rss_calibrated = fipsc_peak_rss_bytes();
    const double calibration_seconds = fipsc_seconds_now() - t_calibration;
    if (!st) st = fipsc_compress_run_checkpointed(m, &cal, o, ck, progress, progress_user, report, err);
    if (!st) {
        (*report)->peak_rss_loaded = rss_loaded;
        (*report)->peak_rss_calibrated = rss_calibrated;
        /* one group at a time: the first group's capture and every later one (the pipeline's
         * group times do not include them) */
        (*report)->calibration_seconds = calibration_seconds + rows.seconds;
        (*report)->memory_plan = r.mem;
        (*report)->memory_budget = r.budget;
    }
    fipsc_calibration_free(&cal);
    fipsc_capture_free(&cap);
    fipsc_calibration_free(&rows.held);
    fipsc_capture_free(&rows.held_cap);
    fipsc_residual_stream_free(&stream);
    fipsc_corpus_free(sampled);
    return st;
}

fipsc_status fipsc_compress_write(const fipsc_model *m, const fipsc_compress_report *report,
                                  const char *calibration_source, const char *path, fipsc_error *err)
{
    char *meta = fipsc_compress_report_metadata(report, calibration_source);
    if (!meta) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    const char *extra[] = {"fipsc.compress", meta, NULL};
    /* each group is written in the dtypes its spec gave it (the run's u-dtype and v-dtype, resolved) */
    fipsc_status st = fipsc_compressed_write_ex(m, path, extra, NULL, err);
    free(meta);
    return st;
}
