/* The compression pipeline on the shipped stories260K: calibration capture (teacher forcing),
 * every method through fipsc_compress_run, the report's numbers against independent
 * computations, the compressed (attached) model against the dense reconstruction, and
 * determinism for a given seed. */
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "families/llama/llama.h"
#include "families/registry.h"
#include "compress/compress.h"
#include "model/compressed.h"
#include "model/generate.h"
#include "ops/mlp_forward.h"
#include "families/llama/runtime.h"
#include "testutil.h"

#define CAL_SEQS 8
#define CAL_LEN 64

static char model_path[4096];

static fipsc_model *load(void)
{
    fipsc_error err = {0};
    fipsc_model *m = NULL;
    CHECK_OK(fipsc_model_load(model_path, &m, &err), &err);
    return m;
}

static fipsc_corpus *sample_corpus(const fipsc_model *m, int n, int len, uint64_t seed)
{
    fipsc_error err = {0};
    int32_t *ids = malloc((size_t)n * len * sizeof *ids);
    fipsc_corpus *c = NULL;
    CHECK_OK(fipsc_lm_sample_sequences(m, n, len, 1.0f, 1.0f, seed, ids, NULL, NULL, &err), &err);
    CHECK_OK(fipsc_corpus_from_ids(ids, n, len, fipsc_model_llama(m)->cfg.vocab_size, &c, &err), &err);
    free(ids);
    return c;
}

/* Captured rows are what the original MLP computes on the captured inputs. */
static void test_capture(const fipsc_model *m, const fipsc_corpus *c)
{
    fipsc_error err = {0};
    fipsc_calibration cal;
    int blocks[] = {1, 3};
    CHECK_OK(fipsc_calibration_capture_tokens(m, c, "test corpus", blocks, 2, &cal, &err), &err);
    CHECK(cal.n_blocks == 5 && cal.n_sequences == CAL_SEQS);
    CHECK(cal.blocks[0].n == 0 && cal.blocks[2].n == 0 && cal.blocks[4].n == 0);
    for (int b = 1; b <= 3; b += 2) {
        const fipsc_fips_calib *k = &cal.blocks[b];
        CHECK(k->n == CAL_SEQS * CAL_LEN);
        float *y = malloc((size_t)k->n * 64 * sizeof *y);
        CHECK_OK(fipsc_mlp_forward(m->mlps[b], (int)k->n, k->x, y, NULL, &err), &err);
        double worst = 0;
        for (int64_t e = 0; e < k->n * 64; e++) worst = fmax(worst, fabs(y[e] - k->y[e]));
        CHECK_MSG(worst < 1e-5, "block %d: captured y differs from MLP(x) by %g", b, worst);
        free(y);
    }
    fipsc_calibration_free(&cal);

    /* A corpus from another vocabulary: an id beyond the model's, or another header vocab. */
    int32_t ids[4] = {1, 5, 600, 7};
    fipsc_corpus *bad;
    CHECK_OK(fipsc_corpus_from_ids(ids, 1, 4, 1000, &bad, &err), &err);
    CHECK_FAILS(fipsc_calibration_capture_tokens(m, bad, "bad.tok", NULL, 0, &cal, &err), FIPSC_ERR_ARG,
                "vocabulary of 1000 tokens, but the model has 512", &err);
    bad->vocab_size = 0; /* as a text corpus: caught by the ids */
    CHECK_FAILS(fipsc_calibration_capture_tokens(m, bad, "bad.txt", NULL, 0, &cal, &err), FIPSC_ERR_ARG,
                "token id 600", &err);
    fipsc_corpus_free(bad);
}

/* Logits of m on the first two sequences of c. */
static float *logits_of(const fipsc_model *m, const fipsc_corpus *c)
{
    fipsc_error err = {0};
    float *lg = malloc((size_t)2 * CAL_LEN * 512 * sizeof *lg);
    CHECK_OK(fipsc_llama_forward(m, fipsc_corpus_seq(c, 0), 2, CAL_LEN, lg, NULL, &err), &err);
    return lg;
}

static double max_rel_diff(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num = fmax(num, fabs((double)a[i] - b[i]));
        den = fmax(den, fabs((double)b[i]));
    }
    return num / den;
}

/* Compresses a fresh model with o (dense or attached); returns it and the report. */
static fipsc_model *compress(const fipsc_calibration *cal, const fipsc_compress_options *o,
                             fipsc_compress_report **rep)
{
    fipsc_error err = {0};
    fipsc_model *m = load();
    *rep = NULL;
    if (!m) return NULL;
    CHECK_OK(fipsc_compress_run(m, cal, o, NULL, NULL, rep, &err), &err);
    if (!*rep) {
        fipsc_model_free(m);
        return NULL;
    }
    return m;
}

/* The truncation error of the best rank-k approximation of w [rows, cols]:
 * sqrt(Σ_{i ≥ k} σ_i²) / sqrt(Σ σ_i²). */
static double svd_truncation_error(const float *w, int rows, int cols, int k)
{
    int mn = rows < cols ? rows : cols;
    float *a = malloc((size_t)rows * cols * sizeof *a), *s = malloc((size_t)mn * sizeof *s);
    float *superb = malloc((size_t)mn * sizeof *superb);
    memcpy(a, w, (size_t)rows * cols * sizeof *a);
    LAPACKE_sgesvd(LAPACK_ROW_MAJOR, 'N', 'N', rows, cols, a, cols, s, NULL, 1, NULL, 1, superb);
    double tail = 0, all = 0;
    for (int i = 0; i < mn; i++) {
        all += (double)s[i] * s[i];
        if (i >= k) tail += (double)s[i] * s[i];
    }
    free(a);
    free(s);
    free(superb);
    return sqrt(tail / all);
}

static void check_totals(const fipsc_model *m, const fipsc_compress_report *rep, double budget)
{
    int64_t kept = 0, bytes = 0;
    for (int k = 0; k < rep->n_groups; k++) {
        kept += rep->groups[k].kept_params;
        bytes += rep->groups[k].stored_bytes;
        CHECK_MSG(rep->groups[k].kept_params <= budget * rep->groups[k].plan.dense_params + 1e-6,
                  "%s group %d keeps %lld of %lld", fipsc_compress_method_name(rep->options.method),
                  k, (long long)rep->groups[k].kept_params, (long long)rep->groups[k].plan.dense_params);
    }
    CHECK(rep->mlp_dense_params == 165120 && rep->mlp_dense_bytes == 4 * 165120);
    CHECK(kept == rep->mlp_kept_params && bytes == rep->mlp_stored_bytes); /* every block compressed */
    if (!rep->options.dense_reconstruction) {
        fipsc_mlp_footprint fp = fipsc_model_mlp_footprint(m);
        CHECK_MSG(fp.kept_params == rep->mlp_kept_params && fp.stored_bytes == rep->mlp_stored_bytes,
                  "%s: model footprint %lld params %lld bytes, report %lld / %lld",
                  fipsc_compress_method_name(rep->options.method), fp.kept_params, fp.stored_bytes,
                  (long long)rep->mlp_kept_params, (long long)rep->mlp_stored_bytes);
    }
}

static void test_methods(const fipsc_model *orig, const fipsc_calibration *cal, const fipsc_corpus *ev)
{
    float *ref_logits = logits_of(orig, ev);
    double fips_init_after[5] = {0}, fips_before[5] = {0};
    for (int meth = 0; meth < FIPSC_METHOD_COUNT; meth++) {
        fipsc_compress_options o;
        fipsc_compress_defaults(&o);
        o.method = (fipsc_compress_method)meth;
        o.groups = "0-1,2-4";
        o.budget = 0.6;
        o.sparsity = 0.6;
        o.steps = 40;
        o.batch_rows = 128;
        o.lr = 3e-3f; /* the default 1e-2 suits the default 4000 steps, not 40 */
        o.lr_min = 3e-5f;
        const char *name = fipsc_compress_method_name(o.method);

        fipsc_compress_report *rd, *ra;
        o.dense_reconstruction = true;
        fipsc_model *dense = compress(cal, &o, &rd);
        o.dense_reconstruction = false;
        fipsc_model *attached = compress(cal, &o, &ra);
        if (!dense || !attached) {
            fipsc_model_free(dense);
            fipsc_model_free(attached);
            fipsc_compress_report_free(rd);
            fipsc_compress_report_free(ra);
            continue;
        }
        check_totals(dense, rd, 0.6);
        check_totals(attached, ra, 0.6);
        CHECK(rd->n_groups == 2 && rd->groups[0].n_mlps == 2 && rd->groups[1].n_mlps == 3);

        /* The attached (sparse-kernel) model computes what the dense reconstruction computes. */
        float *ld = logits_of(dense, ev), *la = logits_of(attached, ev);
        double diff = max_rel_diff(la, ld, (size_t)2 * CAL_LEN * 512);
        CHECK_MSG(diff < 1e-4, "%s: compressed and dense-reconstruction logits differ by %g", name, diff);
        CHECK_MSG(max_rel_diff(ld, ref_logits, (size_t)2 * CAL_LEN * 512) > 1e-3,
                  "%s: the compressed model computes the original's logits", name);
        free(ld);
        free(la);

        /* Reports of the two runs agree (same seed, same work). */
        for (int k = 0; k < rd->n_groups; k++)
            for (int i = 0; i < rd->groups[k].n_matrices; i++)
                CHECK(rd->groups[k].matrices[i].weight_rel_err == ra->groups[k].matrices[i].weight_rel_err &&
                      rd->groups[k].matrices[i].nnz == ra->groups[k].matrices[i].nnz);

        for (int k = 0; k < rd->n_groups; k++) {
            const fipsc_group_report *g = &rd->groups[k];
            for (int j = 0; j < g->n_mlps; j++) {
                const fipsc_mlp_report *mr = &g->mlps[j];
                CHECK(mr->rows == CAL_SEQS * CAL_LEN);
                CHECK(isfinite(mr->out_err_after) && mr->out_err_after > 0 && mr->out_err_after < 1.5);
                if (o.method == FIPSC_METHOD_FIPS) {
                    printf("fips block %d: error %.4f -> %.4f\n", mr->block, mr->out_err_before, mr->out_err_after);
                    CHECK_MSG(mr->out_err_after < mr->out_err_before, "fips block %d: error %g -> %g",
                              mr->block, mr->out_err_before, mr->out_err_after);
                    fips_before[mr->block] = mr->out_err_before;
                } else {
                    CHECK(isnan(mr->out_err_before));
                }
                if (o.method == FIPSC_METHOD_FIPS_INIT) fips_init_after[mr->block] = mr->out_err_after;
            }
            for (int i = 0; i < g->n_matrices; i++) {
                const fipsc_matrix_report *mx = &g->matrices[i];
                const fipsc_linear *lin = mx->role == FIPSC_ROLE_GATE ? &orig->mlps[mx->block]->gate
                                          : mx->role == FIPSC_ROLE_UP ? &orig->mlps[mx->block]->up
                                                                      : &orig->mlps[mx->block]->down;
                CHECK(mx->out == lin->out && mx->in == lin->in);
                if (o.method == FIPSC_METHOD_SVD) {
                    /* per-matrix rank k = floor(0.6·64·172 / 236) = 27: the Eckart–Young error */
                    CHECK(mx->rank == 27 && mx->nnz == 27 * 172);
                    double want = svd_truncation_error(lin->w, lin->out, lin->in, 27);
                    CHECK_MSG(fabs(mx->weight_rel_err - want) < 1e-4, "svd block %d: error %g, expected %g",
                              mx->block, mx->weight_rel_err, want);
                } else if (o.method == FIPSC_METHOD_MAGNITUDE) {
                    CHECK_MSG(mx->nnz == 6604, "magnitude nnz %lld", (long long)mx->nnz); /* floor(0.6·11008) */
                    /* dropping the smallest 40%: error = ‖dropped‖/‖W‖, below the error of
                     * dropping a random 40%, sqrt(0.4) */
                    CHECK(mx->weight_rel_err > 0 && mx->weight_rel_err < sqrt(0.4));
                } else if (o.method == FIPSC_METHOD_SHARED_SVD) {
                    CHECK(mx->nnz == (int64_t)g->plan.r * 172);
                }
            }
            if (o.method == FIPSC_METHOD_FIPS || o.method == FIPSC_METHOD_FIPS_INIT)
                CHECK_MSG(fabs(g->sparsity - 0.6) < 0.01, "%s sparsity %g", name, g->sparsity);
        }
        fipsc_compress_report_free(rd);
        fipsc_compress_report_free(ra);
        fipsc_model_free(dense);
        fipsc_model_free(attached);
    }
    /* fips's "before training" is exactly what fips-init delivers. */
    for (int b = 0; b < 5; b++)
        CHECK_MSG(fips_before[b] == fips_init_after[b], "block %d: fips before %.9g, fips-init %.9g", b,
                  fips_before[b], fips_init_after[b]);
    free(ref_logits);
}

static void test_determinism(const fipsc_calibration *cal)
{
    fipsc_compress_options o;
    fipsc_compress_defaults(&o);
    o.steps = 25;
    o.batch_rows = 100;
    o.lr = 3e-3f; /* 25 steps at the default 1e-2 end worse than their start: fips-init is kept */
    o.lr_min = 3e-5f;
    o.dense_reconstruction = true;
    fipsc_compress_report *r1, *r2, *r3;
    fipsc_model *a = compress(cal, &o, &r1), *b = compress(cal, &o, &r2);
    o.seed = 2;
    fipsc_model *c = compress(cal, &o, &r3);
    if (a && b && c) {
        size_t bytes = 172 * 64 * sizeof(float);
        bool same = true, differs = false;
        for (int l = 0; l < 5; l++) {
            same &= memcmp(a->mlps[l]->up.w, b->mlps[l]->up.w, bytes) == 0;
            same &= memcmp(a->mlps[l]->down.w, b->mlps[l]->down.w, bytes) == 0;
            differs |= memcmp(a->mlps[l]->up.w, c->mlps[l]->up.w, bytes) != 0;
        }
        CHECK_MSG(same, "two runs with seed 1 differ");
        CHECK_MSG(differs, "seeds 1 and 2 give the same weights (kept steps %d, %d)", r1->groups[0].kept_step,
                  r3->groups[0].kept_step);
        CHECK(r1->groups[0].final_loss == r2->groups[0].final_loss);
    }
    fipsc_compress_report_free(r1);
    fipsc_compress_report_free(r2);
    fipsc_compress_report_free(r3);
    fipsc_model_free(a);
    fipsc_model_free(b);
    fipsc_model_free(c);
}

/* The report renders as JSON (parsable numbers, null for NaN) and as a table. */
static void test_report_text(const fipsc_calibration *cal)
{
    fipsc_compress_options o;
    fipsc_compress_defaults(&o);
    o.method = FIPSC_METHOD_FIPS_INIT;
    fipsc_compress_report *rep;
    fipsc_model *m = compress(cal, &o, &rep);
    if (!m) return;
    fipsc_error err = {0};
    char *json = NULL, *table = NULL;
    CHECK_OK(fipsc_compress_report_json(rep, "in.bin", "out.safetensors", "test", &json, &err), &err);
    CHECK_OK(fipsc_compress_report_table(rep, &table, &err), &err);
    if (json) {
        CHECK(strstr(json, "\"method\":\t\"fips-init\""));
        CHECK(strstr(json, "\"output_rel_err_before\":\tnull"));
        CHECK(strstr(json, "\"mlp_kept_params\""));
        CHECK(!strstr(json, "nan") && !strstr(json, "inf"));
    }
    if (table) {
        CHECK(strstr(table, "method fips-init, budget 0.5, sparsity 0.75, groups 2"));
        CHECK(strstr(table, "MLP total: parameters"));
    }
    free(json);
    free(table);
    fipsc_compress_report_free(rep);
    fipsc_model_free(m);
}

/* The held-out split: whole inputs when they are of one length, else a row cut; never empty on
 * either side when there are two rows; views into the same arrays. */
static void test_split(void)
{
    float x[40 * 2], y[40 * 2];
    fipsc_fips_calib all = {40, x, y}, tr, ho;
    fipsc_calibration_split(&all, 2, 8, 0.1, &tr, &ho); /* 8 inputs of 5 rows: round(0.8) = 1 input */
    CHECK(tr.n == 35 && ho.n == 5 && tr.x == x && ho.x == x + 70 && ho.y == y + 70);
    fipsc_calibration_split(&all, 2, 8, 0.3, &tr, &ho); /* round(2.4) = 2 inputs */
    CHECK(tr.n == 30 && ho.n == 10);
    fipsc_calibration_split(&all, 2, 8, 0.01, &tr, &ho); /* at least one input */
    CHECK(tr.n == 35 && ho.n == 5);
    fipsc_calibration_split(&all, 2, 7, 0.1, &tr, &ho); /* 40 rows from 7 inputs: a row cut */
    CHECK(tr.n == 36 && ho.n == 4);
    fipsc_calibration_split(&all, 2, 1, 0.5, &tr, &ho); /* one input: rows */
    CHECK(tr.n == 20 && ho.n == 20);
    fipsc_calibration_split(&all, 2, 8, 0.0, &tr, &ho);
    CHECK(tr.n == 40 && ho.n == 0 && ho.x == NULL);
    fipsc_fips_calib one = {1, x, y};
    fipsc_calibration_split(&one, 2, 1, 0.5, &tr, &ho);
    CHECK(tr.n == 1 && ho.n == 0);
    fipsc_fips_calib two = {2, x, y};
    fipsc_calibration_split(&two, 2, 2, 0.5, &tr, &ho);
    CHECK(tr.n == 1 && ho.n == 1);
}

int main(void)
{
    test_split();
    test_path(model_path, sizeof model_path, "FIPSC_SOURCE_DIR", "models/stories260K.bin");
    fipsc_model *orig = load();
    if (!orig) return test_summary("test_compress_pipeline");
    fipsc_corpus *calc = sample_corpus(orig, CAL_SEQS, CAL_LEN, 11);
    fipsc_corpus *ev = sample_corpus(orig, 2, CAL_LEN, 12);
    fipsc_error err = {0};
    fipsc_calibration cal = {0};
    if (calc && ev) {
        test_capture(orig, calc);
        CHECK_OK(fipsc_calibration_capture_tokens(orig, calc, "calibration", NULL, 0, &cal, &err), &err);
    }
    if (cal.blocks) {
        test_methods(orig, &cal, ev);
        test_determinism(&cal);
        test_report_text(&cal);

        /* Calibration that misses a block of a group is refused before any work. */
        fipsc_compress_options o;
        fipsc_compress_defaults(&o);
        fipsc_fips_calib saved = cal.blocks[3];
        cal.blocks[3].n = 0;
        fipsc_compress_report *rep;
        CHECK_FAILS(fipsc_compress_run(orig, &cal, &o, NULL, NULL, &rep, &err), FIPSC_ERR_ARG,
                    "no calibration rows for block 3", &err);
        cal.blocks[3] = saved;
    }
    fipsc_calibration_free(&cal);
    fipsc_corpus_free(calc);
    fipsc_corpus_free(ev);
    fipsc_model_free(orig);
    return test_summary("test_compress_pipeline");
}
