/* Calibration rows for compression: the container and the capture from a token corpus (see
 * src/compress/calibration.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compress/compress_internal.h"
#include "core/file.h"
#include "model/capture.h"
#include "model/family.h"

fipsc_status fipsc_calibration_init(fipsc_calibration *cal, int n_blocks, fipsc_error *err)
{
    memset(cal, 0, sizeof *cal);
    if (n_blocks < 1)
        return fipsc_fail(err, FIPSC_ERR_ARG, "calibration needs at least one block (got %d)", n_blocks);
    cal->blocks = calloc((size_t)n_blocks, sizeof *cal->blocks);
    if (!cal->blocks) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    cal->n_blocks = n_blocks;
    return FIPSC_OK;
}

void fipsc_calibration_free(fipsc_calibration *cal)
{
    if (!cal) return;
    if (cal->owned) {
        fipsc_capture_free(cal->owned);
        free(cal->owned);
    }
    free(cal->blocks);
    memset(cal, 0, sizeof *cal);
}

fipsc_status calibration_blocks(const fipsc_model *m, const int **blocks, int *n_blocks, int **all, fipsc_error *err)
{
    *all = NULL;
    if (*blocks && *n_blocks > 0) return FIPSC_OK;
    if (!(*all = malloc((size_t)(m->n_mlps > 0 ? m->n_mlps : 1) * sizeof **all)))
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    for (int l = 0; l < m->n_mlps; l++) (*all)[l] = l;
    *blocks = *all;
    *n_blocks = m->n_mlps;
    return FIPSC_OK;
}

fipsc_status calibration_new_capture(const fipsc_model *m, const int *blocks, int n_blocks,
                                     const capture_setup *setup, fipsc_capture **out, fipsc_error *err)
{
    *out = NULL;
    int *all;
    fipsc_status st = calibration_blocks(m, &blocks, &n_blocks, &all, err);
    if (st) return st;
    fipsc_capture *cap = calloc(1, sizeof *cap);
    if (!cap) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    else if ((st = fipsc_capture_init(cap, m, blocks, n_blocks, 0, err))) free(cap);
    else if (setup && setup->dir && (st = fipsc_capture_spill(cap, setup->dir, setup->rows, err))) {
        fipsc_capture_free(cap);
        free(cap);
    } else {
        cap->stream = setup ? setup->stream : NULL;
        *out = cap;
    }
    free(all);
    return st;
}

fipsc_status calibration_from_capture(const fipsc_model *m, fipsc_capture *cap, int n_sequences, bool own,
                                      fipsc_calibration *out, fipsc_error *err)
{
    fipsc_status st = fipsc_calibration_init(out, m->n_mlps, err);
    if (st) return st;
    for (int k = 0; k < cap->n_layers; k++) {
        const fipsc_capture_layer *cl = &cap->layers[k];
        out->blocks[cl->layer] = (fipsc_fips_calib){cl->rows, cl->x, cl->y};
    }
    out->n_sequences = n_sequences;
    if (own) out->owned = cap;
    if (cap->map) { /* spilled: out of memory until a group reads its rows */
        out->spilled = true;
        fipsc_file_pages_release(cap->map, cap->map_bytes);
    }
    return FIPSC_OK;
}

void fipsc_calibration_split(const fipsc_fips_calib *all, int d, int n_sequences, double fraction,
                             fipsc_fips_calib *train, fipsc_fips_calib *held)
{
    const int64_t n = all->n;
    int64_t h = 0;
    if (fraction > 0.0 && n >= 2) {
        if (n_sequences >= 2 && n % n_sequences == 0) {
            int64_t per = n / n_sequences, k = llround(fraction * n_sequences);
            h = (k < 1 ? 1 : k > n_sequences - 1 ? n_sequences - 1 : k) * per;
        } else {
            int64_t k = llround(fraction * (double)n);
            h = k < 1 ? 1 : k > n - 1 ? n - 1 : k;
        }
    }
    *train = (fipsc_fips_calib){n - h, all->x, all->y};
    *held = h > 0 ? (fipsc_fips_calib){h, all->x + (n - h) * d, all->y + (n - h) * d}
                  : (fipsc_fips_calib){0, NULL, NULL};
}

static fipsc_status check_corpus(const fipsc_lm_info *info, const fipsc_corpus *c, const char *what,
                                 fipsc_error *err)
{
    const int vocab = info->vocab_size;
    if (c->n_seqs < 1) return fipsc_fail(err, FIPSC_ERR_ARG, "%s: the calibration corpus is empty", what);
    if (c->vocab_size != 0 && c->vocab_size != vocab)
        return fipsc_fail(err, FIPSC_ERR_ARG,
                          "%s: the calibration corpus was made for a vocabulary of %d tokens, but "
                          "the model has %d: it belongs to another model", what, c->vocab_size, vocab);
    fipsc_status st = fipsc_corpus_check_vocab(c, vocab, "the model", err);
    if (st) return fipsc_fail_context(err, "%s: calibration corpus from another vocabulary? ", what);
    for (int i = 0; i < c->n_seqs; i++) {
        int len = fipsc_corpus_length(c, i);
        if (len < 1 || len > info->context)
            return fipsc_fail(err, FIPSC_ERR_ARG,
                              "%s: calibration sequence %d has %d tokens; the model's context holds "
                              "1 to %d", what, i, len, info->context);
    }
    return FIPSC_OK;
}

fipsc_status fipsc_calibration_capture_tokens(const fipsc_model *m, const fipsc_corpus *c, const char *what,
                                              const int *blocks, int n_blocks, fipsc_calibration *out,
                                              fipsc_error *err)
{
    return calibration_capture_tokens(m, c, what, blocks, n_blocks, NULL, out, err);
}

fipsc_status calibration_capture_tokens(const fipsc_model *m, const fipsc_corpus *c, const char *what,
                                        const int *blocks, int n_blocks, const capture_setup *setup,
                                        fipsc_calibration *out, fipsc_error *err)
{
    memset(out, 0, sizeof *out);
    if (!what) what = "calibration corpus";
    const fipsc_lm_ops *lm;
    fipsc_status st = fipsc_model_need_lm(m, &lm, err);
    if (st) return fipsc_fail_context(err, "calibration from a token corpus: ");
    fipsc_lm_info info;
    lm->info(m, &info);
    if ((st = check_corpus(&info, c, what, err))) return st;

    fipsc_capture *cap;
    if ((st = calibration_new_capture(m, blocks, n_blocks, setup, &cap, err))) return st;
    /* Consecutive sequences of one length are contiguous in c->ids: run them as one batch. */
    for (int i = 0; i < c->n_seqs && !st;) {
        int len = fipsc_corpus_length(c, i), batch = 1;
        int max_batch = CALIB_ROWS_PER_PASS / len > 1 ? CALIB_ROWS_PER_PASS / len : 1;
        while (i + batch < c->n_seqs && batch < max_batch && fipsc_corpus_length(c, i + batch) == len)
            batch++;
        st = lm->forward(m, fipsc_corpus_seq(c, i), batch, len, NULL, cap, err);
        i += batch;
    }
    if (!st) st = calibration_from_capture(m, cap, c->n_seqs, true, out, err);
    if (st) {
        fipsc_capture_free(cap);
        free(cap);
        return fipsc_fail_context(err, "calibration on %s: ", what);
    }
    return FIPSC_OK;
}
