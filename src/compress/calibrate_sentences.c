/* Calibration rows of a sentence encoder (see src/compress/calibration.h): the original encoder
 * embeds the calibration sentences once, before any MLP is touched, and its forward records every
 * listed MLP's input and output rows: the compressed MLPs are later trained on the original inputs
 * (teacher forcing, ALGORITHM.md §6). */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "compress/calibration_list.h"
#include "compress/compress_internal.h"
#include "core/rng.h"
#include "model/family.h"
#include "ops/sample.h"

/* Sentences per encode call: bounds the embedding buffer, not the capture. */
#define SENTENCES_PER_PASS 1024

/* Marks in `use` (all false on entry) the sentences to record: all, or whole sentences in a seeded random order
 * (Fisher-Yates) while their kept tokens fit in max_rows. Returns the rows selected. */
static int64_t select_sentences(int n, const int *kept, int64_t max_rows, uint64_t seed, bool *use,
                                int *order)
{
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += kept[i];
    if (max_rows <= 0 || total <= max_rows) {
        for (int i = 0; i < n; i++) use[i] = true;
        return total;
    }
    fipsc_rng rng;
    fipsc_rng_seed(&rng, seed);
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(fipsc_rng_uniform(&rng) * (double)(i + 1));
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    int64_t rows = 0;
    for (int k = 0; k < n; k++) {
        int i = order[k];
        if (rows + kept[i] > max_rows) break; /* the draw ends at the first sentence that does not fit */
        use[i] = true;
        rows += kept[i];
    }
    return rows;
}

fipsc_status fipsc_calibration_capture_sentences(const fipsc_model *m, const fipsc_sentences *s, const char *what,
                                                 const int *blocks, int n_blocks, int64_t max_rows, uint64_t seed,
                                                 fipsc_capture *cap, fipsc_calibration *out, fipsc_error *err)
{
    return calibration_capture_sentences(m, s, 1, what, NULL, blocks, n_blocks, &max_rows, seed, NULL, cap, out, NULL,
                                         err);
}

fipsc_status calibration_capture_sentences(const fipsc_model *m, const fipsc_sentences *sets, int n_sets,
                                           const char *what, const char *const *names, const int *blocks,
                                           int n_blocks, const int64_t *max_rows,
                                           uint64_t seed, const capture_setup *setup, fipsc_capture *cap,
                                           fipsc_calibration *out, sentence_draw *draws, fipsc_error *err)
{
    memset(out, 0, sizeof *out);
    memset(cap, 0, sizeof *cap);
    if (!what) what = "calibration sentences";
    const fipsc_encoder_ops *enc;
    if (fipsc_model_need_encoder(m, &enc, err)) return fipsc_fail_context(err, "calibration from sentences: ");
    fipsc_encoder_info u;
    enc->info(m, &u);
    if (n_sets < 1 || n_sets > CALIB_LIST_MAX)
        return fipsc_fail(err, FIPSC_ERR_ARG, "calibration on %s: %d sets of sentences", what, n_sets);
    /* The sets side by side: set k holds sentences [first[k], first[k + 1]) of the flat arrays. */
    int first[CALIB_LIST_MAX + 1];
    first[0] = 0;
    for (int k = 0; k < n_sets; k++) {
        if (sets[k].n < 1) return fipsc_fail(err, FIPSC_ERR_ARG, "calibration on %s: no sentences", what);
        if (sets[k].n > INT32_MAX - first[k]) return fipsc_fail(err, FIPSC_ERR_ARG, "calibration on %s: too many sentences", what);
        first[k + 1] = first[k] + sets[k].n;
    }
    const int n = first[n_sets];

    int32_t **ids = calloc((size_t)n, sizeof *ids);
    int *lens = calloc((size_t)n, sizeof *lens), *kept = calloc((size_t)n, sizeof *kept);
    int *order = malloc((size_t)n * sizeof *order), *chosen = malloc((size_t)n * sizeof *chosen);
    int *source = malloc((size_t)n * sizeof *source);
    bool *use = calloc((size_t)n, sizeof *use);
    float *emb = malloc((size_t)SENTENCES_PER_PASS * (size_t)u.dim * sizeof *emb);
    int *all = NULL;
    fipsc_status st = FIPSC_OK;
    if (!ids || !lens || !kept || !order || !chosen || !source || !use || !emb)
        st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory tokenizing %d calibration sentences", n);
    for (int k = 0; k < n_sets && !st; k++)
        for (int i = 0; i < sets[k].n && !st; i++) {
            const int g = first[k] + i;
            const fipsc_sentences *s = &sets[k];
            if ((st = enc->tokenize(m, s->text[i], strlen(s->text[i]), &ids[g], &lens[g], err))) {
                if (s->line && s->line[i] > 0) fipsc_fail_context(err, "line %d: ", s->line[i]);
                else fipsc_fail_context(err, "sentence %d: ", i + 1);
            }
            kept[g] = lens[g] < u.max_tokens ? lens[g] : u.max_tokens;
        }
    /* Each set draws its own share with its own seed (set 0: the run's, as a single file does); a
     * set with a budget must get a sentence, before anything is encoded. */
    int64_t rows = 0;
    int counts[CALIB_LIST_MAX] = {0};
    for (int k = 0; k < n_sets && !st; k++) {
        const int64_t got = select_sentences(sets[k].n, kept + first[k], max_rows[k], calib_file_seed(seed, k),
                                             use + first[k], order);
        for (int i = first[k]; i < first[k + 1]; i++) counts[k] += use[i];
        if (draws) draws[k] = (sentence_draw){counts[k], got};
        rows += got;
        if (max_rows[k] > 0 && got == 0)
            st = n_sets == 1 ? fipsc_fail(err, FIPSC_ERR_ARG, "no sentence fits in %lld calibration rows",
                                          (long long)max_rows[k])
                             : fipsc_fail(err, FIPSC_ERR_ARG, "no sentence of %s fits in its share of %lld rows "
                                          "(raise --calib-rows or its weight)", names ? names[k] : what,
                                          (long long)max_rows[k]);
    }
    if (!st && rows == 0)
        st = fipsc_fail(err, FIPSC_ERR_ARG, "the calibration sentences hold no tokens");
    if (!st) st = calibration_blocks(m, &blocks, &n_blocks, &all, err);
    /* the rows are known: the capture allocates them once (and can drop none) */
    if (!st) st = fipsc_capture_init(cap, m, blocks, n_blocks, rows, err);
    if (!st && setup && setup->dir) st = fipsc_capture_spill(cap, setup->dir, rows, err);
    if (!st && setup) cap->stream = setup->stream;

    /* The chosen sentences, each set's in file order, the sets interleaved evenly (one set: file
     * order), a pass of them at a time. */
    int n_chosen = 0;
    if (!st) {
        int next[CALIB_LIST_MAX];
        for (int k = 0; k < n_sets; k++) next[k] = first[k];
        calib_interleave(counts, n_sets, source);
        for (int k = 0; k < n_sets; k++) n_chosen += counts[k];
        for (int pos = 0; pos < n_chosen; pos++) {
            const int k = source[pos];
            while (!use[next[k]]) next[k]++;
            chosen[pos] = next[k]++;
        }
    }
    const int32_t **pass_ids = malloc((size_t)SENTENCES_PER_PASS * sizeof *pass_ids);
    int *pass_lens = malloc((size_t)SENTENCES_PER_PASS * sizeof *pass_lens);
    if (!st && (!pass_ids || !pass_lens)) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    for (int k0 = 0; !st && k0 < n_chosen; k0 += SENTENCES_PER_PASS) {
        int cnt = n_chosen - k0 < SENTENCES_PER_PASS ? n_chosen - k0 : SENTENCES_PER_PASS;
        for (int k = 0; k < cnt; k++) {
            pass_ids[k] = ids[chosen[k0 + k]];
            pass_lens[k] = lens[chosen[k0 + k]];
        }
        st = enc->encode(m, cnt, pass_ids, pass_lens, emb, cap, err);
    }
    if (!st) st = calibration_from_capture(m, cap, n_chosen, false, out, err);
    free(pass_ids);
    free(pass_lens);
    for (int i = 0; ids && i < n; i++) free(ids[i]);
    free(ids);
    free(lens);
    free(kept);
    free(order);
    free(chosen);
    free(source);
    free(use);
    free(emb);
    free(all);
    if (st) {
        fipsc_calibration_free(out);
        fipsc_capture_free(cap);
        return fipsc_fail_context(err, "calibration on %s: ", what);
    }
    return FIPSC_OK;
}
