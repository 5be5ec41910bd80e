/* The public API's compression (include/fipsc.h): options by name, the run, its report, saving.
 * Everything is the library's own compression (compress/compress_model.h), so a program using
 * this API writes the same bytes as `fipsc compress` with the same settings. */
#include <stdlib.h>
#include <string.h>

#include "api/handles.h"
#include "compress/compress_model.h"
#include "model/compressed.h"
#include "fipsc.h"

fipsc_options *fipsc_options_new(void)
{
    fipsc_options *o = calloc(1, sizeof *o);
    if (o) fipsc_settings_init(&o->settings);
    return o;
}

void fipsc_options_free(fipsc_options *o)
{
    if (!o) return;
    fipsc_settings_free(&o->settings);
    free(o->checkpoint_dir);
    free(o);
}

fipsc_status fipsc_options_set(fipsc_options *o, const char *name, const char *value, fipsc_error *err)
{
    if (!name || !value) return fipsc_fail(err, FIPSC_ERR_ARG, "fipsc_options_set: no name or no value");
    if (strcmp(name, "checkpoint-dir") == 0) {
        char *copy = strdup(value);
        if (!copy) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
        free(o->checkpoint_dir);
        o->checkpoint_dir = copy;
        return FIPSC_OK;
    }
    if (strcmp(name, "resume") == 0) {
        if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0)
            return fipsc_fail(err, FIPSC_ERR_ARG, "resume expects true or false, got '%s'", value);
        o->resume = strcmp(value, "true") == 0;
        return FIPSC_OK;
    }
    return fipsc_settings_set(&o->settings, name, value, err);
}

/* The library's progress events, as the public struct. */
typedef struct progress_bridge {
    fipsc_progress_callback fn;
    void *user;
} progress_bridge;

static void bridge_note(void *user, const char *text)
{
    const progress_bridge *b = user;
    if (!text) return; /* the end of a status line: nothing to say */
    fipsc_progress p = {.stage = "calibrate", .message = text, .eta = -1};
    b->fn(b->user, &p);
}

static void bridge_progress(void *user, const fipsc_compress_progress *q)
{
    const progress_bridge *b = user;
    static const char *const stage[] = {[FIPSC_COMPRESS_GROUP_START] = "group-start",
                                        [FIPSC_COMPRESS_STEP] = "step",
                                        [FIPSC_COMPRESS_GROUP_DONE] = "group-done",
                                        [FIPSC_COMPRESS_RETRY] = "retry"};
    fipsc_progress p = {.stage = stage[q->event], .message = q->message, .group = q->group,
                        .n_groups = q->n_groups, .step = q->step, .steps = q->steps, .loss = q->loss,
                        .elapsed = q->elapsed, .eta = q->eta};
    b->fn(b->user, &p);
}

fipsc_status fipsc_compress(fipsc_model *m, const fipsc_options *o, fipsc_progress_callback progress, void *user,
                            fipsc_report **report, fipsc_error *err)
{
    *report = NULL;
    if (!m || !o) return fipsc_fail(err, FIPSC_ERR_ARG, "fipsc_compress: no model or no options");
    if (o->resume && !o->checkpoint_dir)
        return fipsc_fail(err, FIPSC_ERR_ARG, "resume needs checkpoint-dir (where the run saved its groups)");
    fipsc_report *r = calloc(1, sizeof *r);
    if (!r) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    fipsc_compress_checkpoint ck = {.dir = o->checkpoint_dir, .resume = o->resume};
    progress_bridge bridge = {progress, user};
    fipsc_status st = fipsc_compress_model(m, &o->settings, o->checkpoint_dir ? &ck : NULL,
                                           progress ? bridge_note : NULL, &bridge, progress ? bridge_progress : NULL,
                                           &bridge, &r->run, r->calibration, sizeof r->calibration, err);
    if (st) {
        fipsc_report_free(r);
        return st;
    }
    *report = r;
    return FIPSC_OK;
}

fipsc_status fipsc_report_json(const fipsc_report *r, char **json, fipsc_error *err)
{
    return fipsc_compress_report_json(r->run, NULL, NULL, r->calibration, json, err);
}

fipsc_status fipsc_report_table(const fipsc_report *r, char **text, fipsc_error *err)
{
    return fipsc_compress_report_table(r->run, text, err);
}

void fipsc_report_totals(const fipsc_report *r, fipsc_totals *out)
{
    const fipsc_compress_report *run = r->run;
    *out = (fipsc_totals){.groups = run->n_groups,
                          .dense_params = run->mlp_dense_params,
                          .kept_params = run->mlp_kept_params,
                          .dense_bytes = run->mlp_dense_bytes,
                          .stored_bytes = run->mlp_stored_bytes,
                          .seconds = run->seconds};
}

void fipsc_report_free(fipsc_report *r)
{
    if (!r) return;
    fipsc_compress_report_free(r->run);
    free(r);
}

fipsc_status fipsc_save(const fipsc_model *m, const fipsc_report *r, const char *path, fipsc_error *err)
{
    if (!path) return fipsc_fail(err, FIPSC_ERR_ARG, "fipsc_save: no path");
    if (r) return fipsc_compress_write(m, r->run, r->calibration, path, err);
    return fipsc_compressed_write_ex(m, path, NULL, NULL, err);
}
