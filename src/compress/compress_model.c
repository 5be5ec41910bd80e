/* A whole compression of a loaded model: see compress_model.h. */
#include "compress/compress_model.h"

#include <stdlib.h>

#include "compress/calibration_source.h"
#include "core/memory.h"
#include "model/compressed.h"

fipsc_status fipsc_compress_model(fipsc_model *m, const fipsc_compress_settings *s, const fipsc_compress_checkpoint *ck,
                                  fipsc_calib_note_fn note, void *note_user, fipsc_compress_progress_fn progress,
                                  void *progress_user, fipsc_compress_report **report, char *calib_desc,
                                  size_t calib_desc_cap, fipsc_error *err)
{
    *report = NULL;
    const int64_t rss_loaded = fipsc_peak_rss_bytes();
    /* What the model can do decides what it calibrates on: images, sentences or a token corpus. */
    const char *calib_problem = fipsc_calib_source_problem(&s->calib, m);
    if (calib_problem) return fipsc_fail(err, FIPSC_ERR_ARG, "%s", calib_problem);
    fipsc_compress_options options; /* the family's defaults for every training option not given */
    fipsc_settings_resolve(s, m, &options);
    const fipsc_compress_options *o = &options;
    fipsc_status st = fipsc_compress_options_check(o, err);
    if (st) return st;

    /* Plan first: bad groups, budgets or n:m fail before calibration; so do checkpoints that do
     * not fit this run (the calibration rows are checked after they are captured). */
    fipsc_group_plan *plans = NULL;
    int n_plans = 0;
    if ((st = fipsc_compress_plan(m, o, &plans, &n_plans, err))) return st;
    if (ck && (st = fipsc_compress_checkpoint_prepare(ck, m, o, err))) {
        free(plans);
        return st;
    }
    /* The memory plan: refuse now, not hours into calibration, a run that cannot fit. */
    fipsc_memory_plan mem;
    int64_t rows_bound = 0;
    const int64_t budget = fipsc_compress_memory_budget(o);
    if ((st = fipsc_calibration_rows_bound(m, &s->calib, &rows_bound, err))) {
        free(plans);
        return st;
    }
    /* Calibration rows in memory, or (when they would not fit, or asked) in a scratch file. */
    fipsc_compress_memory_plan(m, o, plans, n_plans, rows_bound, false, &mem);
    const bool spill = o->spill == FIPSC_SPILL_ALWAYS ||
                       (o->spill == FIPSC_SPILL_AUTO && budget >= 0 && mem.total > budget);
    const char *scratch = o->scratch_dir ? o->scratch_dir : getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    if (spill) fipsc_compress_memory_plan(m, o, plans, n_plans, rows_bound, true, &mem);
    if ((st = fipsc_compress_memory_check(&mem, budget, err)) || (spill && (st = fipsc_scratch_check(scratch, mem.spill_bytes, err)))) {
        free(plans);
        return st;
    }
    fipsc_calib_source calib = s->calib;
    if (spill) calib.spill_dir = scratch, calib.spill_rows = rows_bound;
    int *blocks = malloc((size_t)(m->n_mlps > 0 ? m->n_mlps : 1) * sizeof *blocks), n_blocks = 0;
    if (!blocks) {
        free(plans);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    }
    for (int k = 0; k < n_plans; k++)
        for (int l = plans[k].blocks.first; l <= plans[k].blocks.last; l++) blocks[n_blocks++] = l;
    free(plans);

    fipsc_calibration cal = {0};
    fipsc_capture cap = {0}; /* the calibration rows, when cal borrows them */
    st = fipsc_calibrate(m, &calib, o->seed, blocks, n_blocks, note, note_user, &cal, &cap, calib_desc,
                         calib_desc_cap, err);
    free(blocks);
    const int64_t rss_calibrated = fipsc_peak_rss_bytes();
    if (!st) st = fipsc_compress_run_checkpointed(m, &cal, o, ck, progress, progress_user, report, err);
    if (!st) {
        (*report)->peak_rss_loaded = rss_loaded;
        (*report)->peak_rss_calibrated = rss_calibrated;
        (*report)->memory_plan = mem;
        (*report)->memory_budget = budget;
    }
    fipsc_calibration_free(&cal);
    fipsc_capture_free(&cap);
    return st;
}

fipsc_status fipsc_compress_write(const fipsc_model *m, const fipsc_compress_report *report,
                                  const char *calibration_source, const char *path, fipsc_error *err)
{
    char *meta = fipsc_compress_report_metadata(report, calibration_source);
    if (!meta) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    const char *extra[] = {"fipsc.compress", meta, NULL};
    fipsc_compressed_write_opts wo = {.u_dtype = report->options.u_dtype};
    fipsc_status st = fipsc_compressed_write_ex(m, path, extra, &wo, err);
    free(meta);
    return st;
}
