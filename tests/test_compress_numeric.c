/* Numeric failures of the compression run on the shipped stories260K (issue 7, part 4): NaN/Inf in
 * a weight of a group's MLP, in a weight outside every group and in the calibration rows stop the
 * run before any work with a message naming the group, block or tensor and the position; a
 * diverging training (an absurd learning rate) stops with the group, MLP and step named, or,
 * with divergence_retries, restarts with the learning rate halved and then equals a direct run at
 * that learning rate bit for bit; and the compressed writer refuses any non-finite value (or one
 * that F16 cannot hold) without leaving a file. */
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "families/llama/llama.h"
#include "families/registry.h"
#include "compress/compress.h"
#include "model/compressed.h"
#include "ops/factored.h"
#include "model/generate.h"
#include "families/llama/runtime.h"
#include "testutil.h"

static char model_path[4096];

static fipsc_model *load(void)
{
    fipsc_error err = {0};
    fipsc_model *m = NULL;
    CHECK_OK(fipsc_model_load(model_path, &m, &err), &err);
    return m;
}

static float *weight(fipsc_model *m, const char *name)
{
    const fipsc_tensor *t = fipsc_model_find(m, name);
    CHECK_MSG(t != NULL, "no tensor %s", name);
    return t->data;
}

static void quick_options(fipsc_compress_options *o)
{
    fipsc_compress_defaults(o);
    o->groups = "0-1,2-4";
    o->steps = 20;
    o->batch_rows = 64;
    o->lr = 3e-3f;
    o->lr_min = 3e-5f;
}

/* Runs the compression and expects a numeric failure whose message holds every needle; the
 * model must be left without any compressed group. */
static void expect_numeric(fipsc_model *m, const fipsc_calibration *cal, const fipsc_compress_options *o,
                           const char *const *needles)
{
    fipsc_error err = {0};
    fipsc_compress_report *rep = NULL;
    fipsc_status st = fipsc_compress_run(m, cal, o, NULL, NULL, &rep, &err);
    CHECK_MSG(st == FIPSC_ERR_NUMERIC, "expected a numeric error, got %d: %s", (int)st, err.message);
    CHECK(rep == NULL);
    for (int i = 0; needles[i]; i++)
        CHECK_MSG(strstr(err.message, needles[i]) != NULL, "'%s' not in '%s'", needles[i], err.message);
    CHECK_MSG(fipsc_model_group_count(m) == 0, "a group was compressed before the failure");
}

static void test_bad_weights(const fipsc_calibration *cal)
{
    fipsc_compress_options o;
    quick_options(&o);

    /* NaN in a weight of group 1's MLP: the group, block, role, tensor and [row, column]. */
    fipsc_model *m = load();
    weight(m, "model.layers.3.mlp.up_proj.weight")[2 * 64 + 5] = NAN;
    expect_numeric(m, cal, &o, (const char *const[]){"group 1 (blocks 2-4): block 3's up weight "
                   "'model.layers.3.mlp.up_proj.weight' holds a non-finite value (nan) at [2, 5]", NULL});
    fipsc_model_free(m);

    /* Inf outside every MLP (attention): it feeds the calibration and would be written. */
    m = load();
    weight(m, "model.layers.2.self_attn.q_proj.weight")[64 + 3] = -INFINITY;
    expect_numeric(m, cal, &o, (const char *const[]){"tensor 'model.layers.2.self_attn.q_proj.weight' "
                   "holds a non-finite value (-inf) at [1, 3]; it is in no compressed group", NULL});
    fipsc_model_free(m);

    /* NaN in the MLP of a block that no group compresses: outside every group, still refused. */
    m = load();
    weight(m, "model.layers.4.mlp.down_proj.weight")[0] = NAN;
    o.groups = "0-1";
    expect_numeric(m, cal, &o, (const char *const[]){"'model.layers.4.mlp.down_proj.weight'",
                   "in no compressed group", NULL});
    fipsc_model_free(m);
}

/* A calibration whose rows are copies of cal's, block `bad_block`'s x or y poisoned at one entry. */
static void test_bad_calibration(const fipsc_calibration *cal)
{
    fipsc_compress_options o;
    quick_options(&o);
    fipsc_error err = {0};
    for (int which = 0; which < 2; which++) {
        fipsc_calibration bad;
        CHECK_OK(fipsc_calibration_init(&bad, cal->n_blocks, &err), &err);
        bad.n_sequences = cal->n_sequences;
        const int64_t n = cal->blocks[3].n;
        float *rows = malloc((size_t)n * 64 * sizeof *rows);
        memcpy(rows, which ? cal->blocks[3].y : cal->blocks[3].x, (size_t)n * 64 * sizeof *rows);
        rows[7 * 64 + 2] = which ? INFINITY : NAN;
        for (int l = 0; l < cal->n_blocks; l++) bad.blocks[l] = cal->blocks[l];
        if (which) bad.blocks[3].y = rows;
        else bad.blocks[3].x = rows;
        fipsc_model *m = load();
        expect_numeric(m, &bad, &o, (const char *const[]){
            which ? "group 1 (blocks 2-4): the calibration MLP output y of block 3 is inf at row 7, column 2"
                  : "group 1 (blocks 2-4): the calibration MLP input x of block 3 is nan at row 7, column 2",
            NULL});
        fipsc_model_free(m);
        fipsc_calibration_free(&bad);
        free(rows);
    }
}

typedef struct retry_log {
    int count;
    float lr[64];
    int group[64];
} retry_log;

static void on_progress(void *user, const fipsc_compress_progress *p)
{
    retry_log *log = user;
    if (p->event != FIPSC_COMPRESS_RETRY || log->count >= 64) return;
    CHECK(p->retry >= 1 && p->message && strstr(p->message, "FiPS training: the loss of MLP"));
    log->lr[log->count] = (float)p->lr;
    log->group[log->count++] = p->group;
}

static void test_divergence(const fipsc_calibration *cal)
{
    fipsc_error err = {0};
    fipsc_compress_options o;
    quick_options(&o);
    o.groups = "0-1";
    o.lr = 1e6f; /* Adam moves every weight by about lr at the first step: the MLP overflows */
    o.lr_min = o.lr / 100.0f;

    /* No retries: stop, naming the group, the MLP, the step and the learning rate. */
    fipsc_model *m = load();
    expect_numeric(m, cal, &o, (const char *const[]){"group 0 (blocks 0-1): FiPS training: the loss of MLP",
                   "at step", "lower the learning rate", NULL});
    fipsc_model_free(m);

    /* Too few retries: each one announced with its halved learning rate, then the failure. */
    o.divergence_retries = 2;
    retry_log log = {0};
    m = load();
    fipsc_compress_report *rep = NULL;
    CHECK_FAILS(fipsc_compress_run(m, cal, &o, on_progress, &log, &rep, &err), FIPSC_ERR_NUMERIC,
                "group 0 (blocks 0-1): training diverged again after 2 retries with the learning rate "
                "halved each time (last 250000): FiPS training: the loss of MLP", &err);
    CHECK(log.count == 2 && log.lr[0] == 5e5f && log.lr[1] == 2.5e5f);
    CHECK(fipsc_model_group_count(m) == 0);
    fipsc_model_free(m);

    /* Enough retries: the group succeeds at lr / 2^R ... */
    o.divergence_retries = 40;
    memset(&log, 0, sizeof log);
    m = load();
    CHECK_OK(fipsc_compress_run(m, cal, &o, on_progress, &log, &rep, &err), &err);
    const fipsc_group_report *g = &rep->groups[0];
    const int R = g->retries;
    printf("lr 1e6: training ran without diverging after %d retries, at lr %g (final loss %g)\n", R, g->lr, g->final_loss);
    CHECK(R >= 1 && R <= 40 && log.count == R);
    CHECK(g->lr == (double)ldexpf(1e6f, -R) && log.lr[R - 1] == (float)g->lr);
    CHECK(isfinite(g->final_loss) && isfinite(g->mlps[0].out_err_after) && isfinite(g->mlps[1].out_err_after));
    char *json = NULL;
    CHECK_OK(fipsc_compress_report_json(rep, "m", "o", NULL, &json, &err), &err);
    char want[64];
    snprintf(want, sizeof want, "\"retries\":\t%d,", R);
    CHECK_MSG(json && strstr(json, want) && strstr(json, "\"lr\":\t"), "report JSON lacks %s", want);
    free(json);

    /* ... and is bit for bit the run made directly at that learning rate (same start and seed). */
    fipsc_compress_options direct = o;
    direct.divergence_retries = 0;
    direct.lr = ldexpf(1e6f, -R);
    direct.lr_min = direct.lr / 100.0f;
    fipsc_model *m2 = load();
    fipsc_compress_report *rep2 = NULL;
    CHECK_OK(fipsc_compress_run(m2, cal, &direct, NULL, NULL, &rep2, &err), &err);
    const fipsc_group_report *g2 = &rep2->groups[0];
    CHECK(g2->retries == 0 && g2->lr == g->lr);
    CHECK_MSG(g2->final_loss == g->final_loss, "final loss %.17g vs %.17g", g2->final_loss, g->final_loss);
    for (int j = 0; j < 2; j++) CHECK(g2->mlps[j].out_err_after == g->mlps[j].out_err_after);
    for (int i = 0; i < g->n_matrices; i++) CHECK(g2->matrices[i].weight_rel_err == g->matrices[i].weight_rel_err);
    fipsc_compress_report_free(rep2);
    fipsc_model_free(m2);
    fipsc_compress_report_free(rep);
    fipsc_model_free(m);
}

/* Files in dir whose name starts with prefix. */
static int count_files(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    if (d) closedir(d);
    return n;
}

static void expect_write_refused(const fipsc_model *m, const char *dir, const char *path,
                                 fipsc_dtype u_dtype, const char *needle)
{
    fipsc_error err = {0};
    fipsc_compressed_write_opts wo = {.u_dtype = u_dtype};
    CHECK_FAILS(fipsc_compressed_write_ex(m, path, NULL, &wo, &err), FIPSC_ERR_NUMERIC, needle, &err);
    CHECK_MSG(count_files(dir, "out.safetensors") == 0, "a file (or temporary) was left in %s", dir);
}

static void test_writer(const fipsc_calibration *cal)
{
    const char *dir = test_tmpdir("test_compress_numeric");
    char path[4200];
    test_pathf(path, sizeof path, "%s/out.safetensors", dir);
    fipsc_error err = {0};
    fipsc_compress_options o;
    quick_options(&o);
    o.method = FIPSC_METHOD_FIPS_INIT;
    fipsc_model *m = load();
    fipsc_compress_report *rep = NULL;
    CHECK_OK(fipsc_compress_run(m, cal, &o, NULL, NULL, &rep, &err), &err);
    fipsc_compress_report_free(rep);
    CHECK(fipsc_model_group_count(m) == 2);

    /* A U entry beyond F16's range (65504): fine as F32, refused as F16. */
    float *U = (float *)fipsc_model_group(m, 1)->U;
    const float keep = U[10];
    U[10] = 1e5f;
    expect_write_refused(m, dir, path, FIPSC_F16, "tensor 'fips.groups.1.U' holds 100000 at flat index 10, "
                                                  "beyond what F16 can hold: nothing written");
    fipsc_compressed_write_opts f32 = {.u_dtype = FIPSC_F32};
    CHECK_OK(fipsc_compressed_write_ex(m, path, NULL, &f32, &err), &err);
    CHECK(unlink(path) == 0);
    /* NaN in U, in a dense tensor: refused, no file. */
    U[10] = NAN;
    expect_write_refused(m, dir, path, FIPSC_F32, "tensor 'fips.groups.1.U' holds a non-finite value (nan) "
                                                  "at flat index 10: nothing written");
    U[10] = keep;
    float *norm = weight(m, "model.norm.weight");
    norm[3] = INFINITY;
    expect_write_refused(m, dir, path, FIPSC_F32, "tensor 'model.norm.weight' holds a non-finite value (inf) "
                                                  "at flat index 3: nothing written");
    norm[3] = 1.0f;
    CHECK_OK(fipsc_compressed_write_ex(m, path, NULL, &f32, &err), &err);
    CHECK(unlink(path) == 0);
    fipsc_model_free(m);
}

int main(void)
{
    test_path(model_path, sizeof model_path, "FIPSC_SOURCE_DIR", "models/stories260K.bin");
    fipsc_error err = {0};
    fipsc_model *m = load();
    int32_t ids[4 * 32];
    CHECK_OK(fipsc_lm_sample_sequences(m, 4, 32, 1.0f, 1.0f, 7, ids, NULL, NULL, &err), &err);
    fipsc_corpus *c = NULL;
    CHECK_OK(fipsc_corpus_from_ids(ids, 4, 32, fipsc_model_llama(m)->cfg.vocab_size, &c, &err), &err);
    fipsc_calibration cal;
    CHECK_OK(fipsc_calibration_capture_tokens(m, c, "sampled", NULL, 0, &cal, &err), &err);

    test_bad_weights(&cal);
    test_bad_calibration(&cal);
    test_divergence(&cal);
    test_writer(&cal);

    fipsc_calibration_free(&cal);
    fipsc_corpus_free(c);
    fipsc_model_free(m);
    return test_summary("test_compress_numeric");
}
