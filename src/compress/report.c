/* The compression report (src/compress/compress.h) as JSON and as a human-readable table.
 *
 * Errors: per matrix ‖W − Ŵ‖_F/‖W‖_F (weights, model orientation); per MLP ‖ŷ − y‖_F/‖y‖_F over
 * its calibration rows (outputs; "before" = the initialisation pruned to the final mask, for the
 * trained method only). Parameters are the paper's count (Σ d·r + nnz(V)); bytes are the real
 * storage of U, the V values and their indices and column pointers. NaN becomes JSON null. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/compress_internal.h"
#include "core/memory.h"
#include "ops/factored.h"

static const char *role_name(fipsc_mlp_role role, bool gated)
{
    switch (role) {
    case FIPSC_ROLE_GATE: return "gate";
    case FIPSC_ROLE_UP: return gated ? "up" : "fc1";
    case FIPSC_ROLE_DOWN: return gated ? "down" : "fc2";
    }
    return "?";
}

/* True when the group's MLPs are gated (they have a gate matrix). */
static bool group_gated(const fipsc_group_report *g)
{
    for (int i = 0; i < g->n_matrices; i++)
        if (g->matrices[i].role == FIPSC_ROLE_GATE) return true;
    return false;
}

static cJSON *number_or_null(double x)
{
    return isfinite(x) ? cJSON_CreateNumber(x) : cJSON_CreateNull();
}

static void add_num(cJSON *o, const char *key, double x)
{
    cJSON_AddItemToObject(o, key, number_or_null(x));
}

/* A float option as the decimal it was given as (7 significant digits), not its binary
 * expansion (3e-3f would print as 0.0030000000260770321). */
static double float_value(float x)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%.7g", (double)x);
    return strtod(buf, NULL);
}

static bool trains(const fipsc_compress_options *o)
{
    return o->method == FIPSC_METHOD_FIPS;
}

static cJSON *options_json(const fipsc_compress_options *o)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "method", fipsc_compress_method_name(o->method));
    add_num(j, "budget", o->budget);
    add_num(j, "sparsity", o->sparsity);
    if (o->nm_m > 0) {
        char nm[32];
        snprintf(nm, sizeof nm, "%d:%d", o->nm_n, o->nm_m);
        cJSON_AddStringToObject(j, "nm", nm);
    } else {
        cJSON_AddNullToObject(j, "nm");
    }
    if (o->rank > 0) add_num(j, "rank", o->rank);
    else cJSON_AddNullToObject(j, "rank");
    cJSON_AddStringToObject(j, "groups", o->groups ? o->groups : "");
    if (trains(o)) {
        cJSON_AddStringToObject(j, "schedule", o->nm_m > 0 ? "n:m" : fipsc_compress_schedule_name(o->schedule));
        cJSON_AddStringToObject(j, "mode", o->mode == FIPSC_FIPS_JOINT ? "joint" : "local");
        add_num(j, "steps", o->steps);
        add_num(j, "batch", o->batch_rows);
        add_num(j, "lr", float_value(o->lr));
        add_num(j, "lr_min", float_value(o->lr_min));
        add_num(j, "weight_decay", float_value(o->weight_decay));
        add_num(j, "holdout", o->holdout);
    }
    add_num(j, "seed", (double)o->seed);
    cJSON_AddStringToObject(j, "u_dtype", o->u_dtype == FIPSC_COMPRESS_DTYPE_AUTO ? "auto" : fipsc_dtype_name(o->u_dtype));
    cJSON_AddStringToObject(j, "v_dtype", o->v_dtype == FIPSC_COMPRESS_DTYPE_AUTO ? "auto" : fipsc_dtype_name(o->v_dtype));
    cJSON_AddStringToObject(j, "storage", o->storage == FIPSC_COMPRESS_STORAGE_AUTO ? "auto" : fipsc_v_storage_name(o->storage));
    if (o->sequential) cJSON_AddTrueToObject(j, "sequential"); /* absent (teacher forcing): files as before */
    if (o->bf16_moments) cJSON_AddStringToObject(j, "adam_moments", "bf16"); /* absent: f32 */
    if (o->v_products != FIPSC_FIPS_V_AUTO) /* absent: auto */
        cJSON_AddStringToObject(j, "v_products", fipsc_compress_v_products_name(o->v_products));
    if (o->init == FIPSC_INIT_WHITENED) { /* absent: svd */
        cJSON_AddStringToObject(j, "init", "whitened");
        add_num(j, "whiten_alpha", o->whiten_alpha);
    }
    return j;
}

static cJSON *group_json(const fipsc_group_report *g, int index)
{
    bool gated = group_gated(g);
    cJSON *j = cJSON_CreateObject();
    add_num(j, "index", index);
    cJSON *blocks = cJSON_AddArrayToObject(j, "blocks");
    cJSON_AddItemToArray(blocks, cJSON_CreateNumber(g->plan.blocks.first));
    cJSON_AddItemToArray(blocks, cJSON_CreateNumber(g->plan.blocks.last));
    add_num(j, "d", g->plan.d);
    add_num(j, "P", (double)g->plan.P);
    add_num(j, "rank", g->plan.r);
    cJSON_AddStringToObject(j, "storage", fipsc_v_storage_name(g->plan.storage));
    cJSON_AddStringToObject(j, "u_dtype", fipsc_dtype_name(g->plan.u_dtype));
    cJSON_AddStringToObject(j, "v_dtype", fipsc_dtype_name(g->plan.v_dtype));
    add_num(j, "sparsity", g->sparsity);
    add_num(j, "nnz", (double)g->nnz);
    add_num(j, "dense_params", (double)g->plan.dense_params);
    add_num(j, "kept_params", (double)g->kept_params);
    add_num(j, "dense_bytes", (double)g->plan.dense_bytes);
    add_num(j, "stored_bytes", (double)g->stored_bytes);
    add_num(j, "steps", g->steps);
    add_num(j, "final_loss", g->final_loss);
    if (isfinite(g->lr)) { /* trained: the learning rate used, lower after divergence retries */
        add_num(j, "lr", float_value((float)g->lr));
        add_num(j, "retries", g->retries);
        /* What was kept, and what training reached (fipsc_fips_holdout_score). */
        add_num(j, "score_init", g->score_init);
        add_num(j, "score_trained", g->score_trained);
        add_num(j, "score_kept", g->score_kept);
        add_num(j, "kept_step", g->kept_step);
        add_num(j, "v_sparse_steps", g->sparse_steps);
    }
    add_num(j, "seconds", g->seconds);
    add_num(j, "peak_rss_bytes", (double)g->peak_rss);
    add_num(j, "computed_by_rank", g->computed_by);
    cJSON *mlps = cJSON_AddArrayToObject(j, "mlps");
    for (int k = 0; k < g->n_mlps; k++) {
        const fipsc_mlp_report *m = &g->mlps[k];
        cJSON *o = cJSON_CreateObject();
        add_num(o, "block", m->block);
        add_num(o, "calibration_rows", (double)m->rows);
        add_num(o, "output_rel_err_before", m->out_err_before);
        add_num(o, "output_rel_err_after", m->out_err_after);
        add_num(o, "holdout_rows", (double)m->holdout_rows);
        add_num(o, "holdout_rel_err_before", m->holdout_err_before);
        add_num(o, "holdout_rel_err_after", m->holdout_err_after);
        cJSON_AddItemToArray(mlps, o);
    }
    cJSON *mats = cJSON_AddArrayToObject(j, "matrices");
    for (int i = 0; i < g->n_matrices; i++) {
        const fipsc_matrix_report *m = &g->matrices[i];
        cJSON *o = cJSON_CreateObject();
        add_num(o, "block", m->block);
        cJSON_AddStringToObject(o, "role", role_name(m->role, gated));
        cJSON *shape = cJSON_AddArrayToObject(o, "shape");
        cJSON_AddItemToArray(shape, cJSON_CreateNumber(m->out));
        cJSON_AddItemToArray(shape, cJSON_CreateNumber(m->in));
        add_num(o, "rank", m->rank);
        add_num(o, "dense_params", (double)m->dense_params);
        add_num(o, "nnz", (double)m->nnz);
        add_num(o, "weight_rel_err", m->weight_rel_err);
        cJSON_AddItemToArray(mats, o);
    }
    return j;
}

fipsc_status fipsc_compress_report_json(const fipsc_compress_report *rep, const char *model_path,
                                        const char *output_path, const char *calibration_source,
                                        char **json, fipsc_error *err)
{
    *json = NULL;
    cJSON *root = cJSON_CreateObject();
    if (!root) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    if (model_path) cJSON_AddStringToObject(root, "model", model_path);
    if (output_path) cJSON_AddStringToObject(root, "output", output_path);
    cJSON_AddItemToObject(root, "options", options_json(&rep->options));
    cJSON *cal = cJSON_AddObjectToObject(root, "calibration");
    if (calibration_source) cJSON_AddStringToObject(cal, "source", calibration_source);
    add_num(cal, "sequences", rep->calibration_sequences);
    add_num(cal, "rows_per_block", (double)rep->calibration_rows);
    cJSON *groups = cJSON_AddArrayToObject(root, "groups");
    for (int k = 0; k < rep->n_groups; k++) cJSON_AddItemToArray(groups, group_json(&rep->groups[k], k));
    cJSON *t = cJSON_AddObjectToObject(root, "totals");
    add_num(t, "mlp_dense_params", (double)rep->mlp_dense_params);
    add_num(t, "mlp_kept_params", (double)rep->mlp_kept_params);
    add_num(t, "params_fraction", (double)rep->mlp_kept_params / (double)rep->mlp_dense_params);
    add_num(t, "mlp_dense_bytes", (double)rep->mlp_dense_bytes);
    add_num(t, "mlp_stored_bytes", (double)rep->mlp_stored_bytes);
    add_num(t, "bytes_fraction", (double)rep->mlp_stored_bytes / (double)rep->mlp_dense_bytes);
    add_num(t, "seconds", rep->seconds);
    add_num(t, "calibration_seconds", rep->calibration_seconds);
    /* The process's peak resident memory by the end of each phase (it only grows). */
    cJSON *mem = cJSON_AddObjectToObject(root, "peak_rss_bytes");
    add_num(mem, "loaded", (double)rep->peak_rss_loaded);
    add_num(mem, "calibrated", (double)rep->peak_rss_calibrated);
    cJSON *per_group = cJSON_AddArrayToObject(mem, "groups");
    for (int k = 0; k < rep->n_groups; k++) cJSON_AddItemToArray(per_group, cJSON_CreateNumber((double)rep->groups[k].peak_rss));
    if (rep->memory_plan.total > 0) { /* predicted before any work (fipsc_compress_memory_plan) */
        const fipsc_memory_plan *mp = &rep->memory_plan;
        cJSON *plan = cJSON_AddObjectToObject(root, "memory_plan_bytes");
        add_num(plan, "model", (double)mp->model);
        add_num(plan, "calibration", (double)mp->calibration);
        add_num(plan, "calibration_rows_per_block", (double)mp->rows_per_block);
        add_num(plan, "forward", (double)mp->forward);
        add_num(plan, "largest_group", (double)mp->group);
        add_num(plan, "largest_group_index", mp->group_index);
        add_num(plan, "total", (double)mp->total);
        add_num(plan, "budget", (double)rep->memory_budget);
        cJSON_AddBoolToObject(plan, "calibration_spilled", mp->spilled);
        cJSON_AddBoolToObject(plan, "calibration_streamed", mp->streamed);
        cJSON_AddBoolToObject(plan, "v_sparse_step", mp->sparse_step);
        if (mp->sparse_step_dropped) cJSON_AddTrueToObject(plan, "v_sparse_step_dropped_for_memory");
        add_num(plan, "spill_file", (double)mp->spill_bytes);
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory printing the report");
    /* Hand back memory the caller releases with free(), whatever cJSON's allocator is. */
    *json = strdup(text);
    cJSON_free(text);
    if (!*json) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory printing the report");
    return FIPSC_OK;
}

/* A value dtype as the command line spells it (f32, f16, bf16). */
static const char *dtype_word(fipsc_dtype dt)
{
    return dt == FIPSC_F16 ? "f16" : dt == FIPSC_BF16 ? "bf16" : "f32";
}

/* "0.1234" or "-" for NaN. */
static const char *fmt_err(char *buf, size_t cap, double x)
{
    if (isfinite(x)) snprintf(buf, cap, "%.4f", x);
    else snprintf(buf, cap, "-");
    return buf;
}

fipsc_status fipsc_compress_report_table(const fipsc_compress_report *rep, char **text,
                                         fipsc_error *err)
{
    *text = NULL;
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    const fipsc_compress_options *o = &rep->options;
    fprintf(f, "method %s, budget %g", fipsc_compress_method_name(o->method), o->budget);
    if (o->nm_m > 0) fprintf(f, ", n:m %d:%d", o->nm_n, o->nm_m);
    else if (o->method == FIPSC_METHOD_FIPS || o->method == FIPSC_METHOD_FIPS_INIT)
        fprintf(f, ", sparsity %g", o->sparsity);
    fprintf(f, ", groups %s", o->groups);
    if (trains(o))
        fprintf(f, ", %s, %s, %d steps of %d rows, lr %g", o->mode == FIPSC_FIPS_JOINT ? "joint" : "local",
                o->nm_m > 0 ? "n:m" : fipsc_compress_schedule_name(o->schedule), o->steps, o->batch_rows, (double)o->lr);
    fprintf(f, "; calibration %d inputs, %lld rows per block", rep->calibration_sequences,
            (long long)rep->calibration_rows);
    if (rep->calibration_seconds > 0) fprintf(f, ", captured in %.1f s", rep->calibration_seconds);
    fprintf(f, "\n\n");

    /* storage: V's layout, its values' dtype and U's ("csc f32/f32", "bitmap bf16/bf16") */
    fprintf(f, "group  blocks  rank  storage V/U       sparsity       nnz  params kept/dense        "
               "bytes stored/dense       time\n");
    for (int k = 0; k < rep->n_groups; k++) {
        const fipsc_group_report *g = &rep->groups[k];
        char blocks[32], storage[40];
        snprintf(blocks, sizeof blocks, "%d-%d", g->plan.blocks.first, g->plan.blocks.last);
        snprintf(storage, sizeof storage, "%s %s/%s", fipsc_v_storage_name(g->plan.storage),
                 dtype_word(g->plan.v_dtype), dtype_word(g->plan.u_dtype));
        fprintf(f, "%5d  %-6s  %4d  %-16s  %8.3f  %8lld  %8lld/%-8lld %5.1f%%  %8lld/%-8lld %5.1f%%  %7.2fs\n",
                k, blocks, g->plan.r, storage, g->sparsity, (long long)g->nnz,
                (long long)g->kept_params, (long long)g->plan.dense_params,
                100.0 * (double)g->kept_params / (double)g->plan.dense_params,
                (long long)g->stored_bytes, (long long)g->plan.dense_bytes,
                100.0 * (double)g->stored_bytes / (double)g->plan.dense_bytes, g->seconds);
    }
    fprintf(f, "\nblock  calib rows  output error before → after   held out  before → after   weight error per matrix\n");
    for (int k = 0; k < rep->n_groups; k++) {
        const fipsc_group_report *g = &rep->groups[k];
        bool gated = group_gated(g);
        for (int j = 0; j < g->n_mlps; j++) {
            const fipsc_mlp_report *m = &g->mlps[j];
            char b[32], a[32], hb[32], ha[32];
            fprintf(f, "%5d  %10lld  %18s → %-7s  %8lld  %6s → %-7s", m->block, (long long)m->rows,
                    fmt_err(b, sizeof b, m->out_err_before), fmt_err(a, sizeof a, m->out_err_after),
                    (long long)m->holdout_rows, fmt_err(hb, sizeof hb, m->holdout_err_before),
                    fmt_err(ha, sizeof ha, m->holdout_err_after));
            for (int i = 0; i < g->n_matrices; i++)
                if (g->matrices[i].block == m->block)
                    fprintf(f, "  %s %.4f", role_name(g->matrices[i].role, gated),
                            g->matrices[i].weight_rel_err);
            fprintf(f, "\n");
        }
    }
    if (trains(o)) {
        fprintf(f, "\ngroup  kept                            score: init → trained (kept)\n");
        for (int k = 0; k < rep->n_groups; k++) {
            const fipsc_group_report *g = &rep->groups[k];
            char kept[64];
            if (g->kept_step > 0)
                snprintf(kept, sizeof kept, "step %d of %d (%d V-sparse)", g->kept_step, g->steps, g->sparse_steps);
            else snprintf(kept, sizeof kept, "initialisation (training lost)");
            fprintf(f, "%5d  %-30s  %.6g → %.6g (%.6g)\n", k, kept, g->score_init, g->score_trained,
                    g->score_kept);
        }
        fprintf(f, "(score: Σ of squared relative output errors over the group's MLPs, on %s)\n",
                o->holdout > 0.0 ? "the held-out rows" : "the calibration rows");
    }
    fprintf(f, "\nMLP total: parameters %lld of %lld (%.1f%%), bytes %lld of %lld (%.1f%%), %.2f s\n",
            (long long)rep->mlp_kept_params, (long long)rep->mlp_dense_params,
            100.0 * (double)rep->mlp_kept_params / (double)rep->mlp_dense_params,
            (long long)rep->mlp_stored_bytes, (long long)rep->mlp_dense_bytes,
            100.0 * (double)rep->mlp_stored_bytes / (double)rep->mlp_dense_bytes, rep->seconds);
    if (rep->peak_rss_loaded > 0) {
        fprintf(f, "peak resident memory by the end of each phase: model loaded %.2f GB, calibrated %.2f GB",
                (double)rep->peak_rss_loaded / 1e9, (double)rep->peak_rss_calibrated / 1e9);
        for (int k = 0; k < rep->n_groups; k++)
        {
            fprintf(f, ", group %d %.2f GB", k, (double)rep->groups[k].peak_rss / 1e9);
            if (rep->groups[k].computed_by > 0) fprintf(f, " (rank %d)", rep->groups[k].computed_by);
        }
        fprintf(f, "\n");
    }
    if (rep->memory_plan.total > 0) {
        const fipsc_memory_plan *mp = &rep->memory_plan;
        char t[5][32];
        fprintf(f, "memory planned before the run: %s (model %s, calibration rows %s, then the largest group %s or "
                "the calibration forward or sampling %s)", fipsc_bytes_text(mp->total, t[0], 32), fipsc_bytes_text(mp->model, t[1], 32),
                fipsc_bytes_text(mp->calibration, t[2], 32), fipsc_bytes_text(mp->group, t[3], 32),
                fipsc_bytes_text(mp->forward, t[4], 32));
        if (rep->memory_budget > 0) fprintf(f, " of a budget of %s", fipsc_bytes_text(rep->memory_budget, t[0], 32));
        if (mp->spilled)
            fprintf(f, "; calibration rows spilled to a %s scratch file", fipsc_bytes_text(mp->spill_bytes, t[0], 32));
        fprintf(f, "\n");
    }
    if (fclose(f) != 0 || !buf) {
        free(buf);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory formatting the report");
    }
    *text = buf;
    return FIPSC_OK;
}

/* The run's settings as compact JSON for the output file's __metadata__ (no times, no
 * absolute paths: the same command gives the same bytes). */
char *fipsc_compress_report_metadata(const fipsc_compress_report *rep, const char *calib)
{
    char *full = NULL;
    if (fipsc_compress_report_json(rep, NULL, NULL, calib, &full, NULL)) return NULL;
    cJSON *root = cJSON_Parse(full);
    free(full);
    if (!root) return NULL;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "options", cJSON_DetachItemFromObject(root, "options"));
    cJSON_AddItemToObject(o, "calibration", cJSON_DetachItemFromObject(root, "calibration"));
    cJSON_Delete(root);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    char *copy = text ? strdup(text) : NULL;
    cJSON_free(text);
    return copy;
}
