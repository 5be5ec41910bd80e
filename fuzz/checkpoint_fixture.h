/* What fuzz_checkpoint's inputs are made for, shared by the harness (fuzz/fuzz_checkpoint.c) and
 * the seed generator (fuzz/make_seeds_models.c): a checkpoint is accepted only for the model and
 * the options it was made with (its recorded inputs: the options and the hash of the group's
 * weights), so both sides build the same tiny llama2.c model and the same settings.
 *
 * The model: dim 8, hidden 16, 2 layers, 2 heads, vocab 16, context 16, shared classifier, every
 * float from a fixed pattern. The run: one group of both blocks (--groups 2), 4 steps of 8 rows,
 * calibrated on 2 sampled sequences of 6 tokens; the rest the llama family's defaults. */
#ifndef FIPSC_FUZZ_CHECKPOINT_FIXTURE_H
#define FIPSC_FUZZ_CHECKPOINT_FIXTURE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/settings.h"

/* Writes the model as a llama2.c file at path; false when that fails. */
static inline bool checkpoint_fixture_write_model(const char *path)
{
    const int32_t header[7] = {8, 16, 2, 2, 2, 16, 16}; /* dim hidden layers heads kv vocab seq */
    const int dim = 8, hidden = 16, layers = 2, vocab = 16, seq = 16, hs = dim / 2;
    /* embedding, per layer: attention norm, wq wk wv wo, ffn norm, w1 w2 w3; final norm, RoPE
       tables (seq × hs/2 twice) */
    const long n = (long)vocab * dim + layers * (dim + 4L * dim * dim + dim + 3L * hidden * dim) + dim +
                   (long)seq * hs;
    FILE *fp = fopen(path, "wb");
    if (!fp) return false;
    bool ok = fwrite(header, sizeof header, 1, fp) == 1;
    for (long i = 0; i < n && ok; i++) {
        const float v = (float)((i * 7) % 17 - 8) / 16.0f;
        ok = fwrite(&v, sizeof v, 1, fp) == 1;
    }
    return fclose(fp) == 0 && ok;
}

/* The run's settings (fipsc_settings_init first; free with fipsc_settings_free). */
static inline bool checkpoint_fixture_settings(fipsc_compress_settings *s)
{
    const char *set[][2] = {{"groups", "2"}, {"steps", "4"}, {"batch", "8"}, {"calib-samples", "2"},
                            {"calib-len", "6"}};
    fipsc_error err;
    for (size_t i = 0; i < sizeof set / sizeof set[0]; i++)
        if (fipsc_settings_set(s, set[i][0], set[i][1], &err) != FIPSC_OK) return false;
    return true;
}

#endif
