/* Calibration rows for compressing the sentence encoder (src/families/use/calibrate.h).
 *
 * The original encoder embeds the calibration sentences once, before any MLP is touched, and its
 * forward (fipsc_use_encode) records every listed MLP's input and output rows: the compressed
 * MLPs are later trained on the original inputs (teacher forcing, ALGORITHM.md §6). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "ops/sample.h"
#include "eval/sts.h"
#include "families/use/use.h"
#include "families/use/calibrate.h"

/* Sentences per fipsc_use_encode call: bounds the embedding buffer, not the capture. */
#define SENTENCES_PER_PASS 1024

void fipsc_compress_defaults_use(fipsc_compress_options *o)
{
    fipsc_compress_defaults(o);
    o->groups = "0-1";
    o->mode = FIPSC_FIPS_JOINT;
    o->sparsity = 0.75;
    o->steps = 400;
    o->batch_rows = 2048;
    o->lr = 1e-3f;
    o->lr_min = 1e-5f;
    o->weight_decay = 0.0f;
}

void fipsc_sentences_free(fipsc_sentences *s)
{
    if (!s) return;
    for (int i = 0; i < s->n; i++) free(s->text[i]);
    free(s->text);
    free(s->line);
    memset(s, 0, sizeof *s);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* 1-based numbers of the non-empty lines (ignoring a CR before LF) of text, in order: the STS
 * reader skips empty lines, so its pair k sits on the k-th of them. */
static int *nonempty_lines(const char *text, size_t size, int *n_out)
{
    int cap = 1;
    for (size_t i = 0; i < size; i++) cap += text[i] == '\n';
    int *lines = malloc((size_t)cap * sizeof *lines), n = 0, lineno = 1;
    if (!lines) return NULL;
    size_t len = 0; /* characters of the current line, CR excluded */
    for (size_t i = 0; i <= size; i++) {
        char c = i < size ? text[i] : '\n';
        if (c == '\n') {
            if (len > 0) lines[n++] = lineno;
            lineno++;
            len = 0;
        } else if (!(c == '\r' && (i + 1 == size || text[i + 1] == '\n'))) {
            len++;
        }
    }
    *n_out = n;
    return lines;
}

static fipsc_status read_sts(const char *path, fipsc_sentences *out, fipsc_error *err)
{
    fipsc_sts_set set;
    fipsc_status st = fipsc_sts_read(path, &set, err);
    if (st) return st;
    char *text = NULL;
    size_t size = 0;
    int *lines = NULL, n_lines = 0;
    if ((st = fipsc_read_file(path, &text, &size, err))) goto done;
    lines = nonempty_lines(text, size, &n_lines);
    out->text = calloc(2 * (size_t)set.n, sizeof *out->text);
    out->line = malloc(2 * (size_t)set.n * sizeof *out->line);
    if (!lines || !out->text || !out->line) {
        st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory reading %s", path);
        goto done;
    }
    for (int i = 0; i < set.n; i++) {
        /* the sentences move from the set into the list */
        out->text[2 * i] = set.s1[i];
        out->text[2 * i + 1] = set.s2[i];
        set.s1[i] = set.s2[i] = NULL;
        out->line[2 * i] = out->line[2 * i + 1] = i < n_lines ? lines[i] : 0;
    }
    out->n = 2 * set.n;
done:
    free(lines);
    free(text);
    fipsc_sts_free(&set);
    return st;
}

static fipsc_status read_lines(const char *path, fipsc_sentences *out, fipsc_error *err)
{
    char *text;
    size_t size;
    fipsc_status st = fipsc_read_file(path, &text, &size, err);
    if (st) return st;
    int cap = 1;
    for (size_t i = 0; i < size; i++) cap += text[i] == '\n';
    out->text = calloc((size_t)cap, sizeof *out->text);
    out->line = malloc((size_t)cap * sizeof *out->line);
    if (!out->text || !out->line) {
        free(text);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory reading %s", path);
    }
    size_t start = 0;
    for (int lineno = 1; start < size; lineno++) {
        const char *nl = memchr(text + start, '\n', size - start);
        size_t stop = nl ? (size_t)(nl - text) : size, len = stop - start;
        if (len > 0 && text[stop - 1] == '\r') len--;
        if (memchr(text + start, '\0', len)) {
            free(text);
            return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: line %d contains a NUL byte", path, lineno);
        }
        bool blank = true;
        for (size_t k = 0; k < len && blank; k++) blank = text[start + k] == ' ' || text[start + k] == '\t';
        if (!blank) {
            char *s = malloc(len + 1);
            if (!s) {
                free(text);
                return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory reading %s", path);
            }
            memcpy(s, text + start, len);
            s[len] = '\0';
            out->text[out->n] = s;
            out->line[out->n++] = lineno;
        }
        start = stop + 1;
    }
    free(text);
    return FIPSC_OK;
}

fipsc_status fipsc_sentences_read(const char *path, fipsc_sentences *out, fipsc_error *err)
{
    memset(out, 0, sizeof *out);
    fipsc_status st = ends_with(path, ".tsv") ? read_sts(path, out, err) : read_lines(path, out, err);
    if (!st && out->n == 0) st = fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: no sentences", path);
    if (st) fipsc_sentences_free(out);
    return st;
}

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

fipsc_status fipsc_calibration_capture_use(const fipsc_model *m, const fipsc_sentences *s,
                                           const char *what, const int *blocks, int n_blocks,
                                           int64_t max_rows, uint64_t seed, fipsc_capture *cap,
                                           fipsc_calibration *out, fipsc_error *err)
{
    memset(out, 0, sizeof *out);
    memset(cap, 0, sizeof *cap);
    if (!what) what = "calibration sentences";
    const fipsc_use *u = fipsc_model_use(m);
    if (!u)
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
                          "calibration from sentences needs a sentence encoder (%s); this model is '%s'",
                          FIPSC_USE_ARCH_NAME, m->cfg.arch_name);
    if (s->n < 1) return fipsc_fail(err, FIPSC_ERR_ARG, "calibration on %s: no sentences", what);

    int32_t **ids = calloc((size_t)s->n, sizeof *ids);
    int *lens = calloc((size_t)s->n, sizeof *lens), *kept = calloc((size_t)s->n, sizeof *kept);
    int *order = malloc((size_t)s->n * sizeof *order), *chosen = malloc((size_t)s->n * sizeof *chosen);
    bool *use = calloc((size_t)s->n, sizeof *use);
    float *emb = malloc((size_t)SENTENCES_PER_PASS * (size_t)u->dim * sizeof *emb);
    int *all = NULL;
    fipsc_status st = FIPSC_OK;
    if (!ids || !lens || !kept || !order || !chosen || !use || !emb)
        st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory tokenizing %d calibration sentences", s->n);
    for (int i = 0; i < s->n && !st; i++) {
        if ((st = fipsc_use_tokenize(m, s->text[i], strlen(s->text[i]), &ids[i], &lens[i], err))) {
            if (s->line && s->line[i] > 0) fipsc_fail_context(err, "line %d: ", s->line[i]);
            else fipsc_fail_context(err, "sentence %d: ", i + 1);
        }
        kept[i] = lens[i] < u->max_tokens ? lens[i] : u->max_tokens;
    }
    int64_t rows = st ? 0 : select_sentences(s->n, kept, max_rows, seed, use, order);
    if (!st && rows == 0 && max_rows > 0)
        st = fipsc_fail(err, FIPSC_ERR_ARG, "no sentence fits in %lld calibration rows", (long long)max_rows);
    else if (!st && rows == 0)
        st = fipsc_fail(err, FIPSC_ERR_ARG, "the calibration sentences hold no tokens");
    if (!st && (!blocks || n_blocks == 0)) {
        if (!(all = malloc((size_t)m->n_mlps * sizeof *all))) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
        for (int l = 0; !st && l < m->n_mlps; l++) all[l] = l;
        blocks = all;
        n_blocks = m->n_mlps;
    }
    /* the rows are known: the capture allocates them once (and can drop none) */
    if (!st) st = fipsc_capture_init(cap, m, blocks, n_blocks, rows, err);

    /* The chosen sentences in file order, a pass of them at a time. */
    int n_chosen = 0;
    for (int i = 0; !st && i < s->n; i++)
        if (use[i]) chosen[n_chosen++] = i;
    const int32_t **pass_ids = malloc((size_t)SENTENCES_PER_PASS * sizeof *pass_ids);
    int *pass_lens = malloc((size_t)SENTENCES_PER_PASS * sizeof *pass_lens);
    if (!st && (!pass_ids || !pass_lens)) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    for (int k0 = 0; !st && k0 < n_chosen; k0 += SENTENCES_PER_PASS) {
        int cnt = n_chosen - k0 < SENTENCES_PER_PASS ? n_chosen - k0 : SENTENCES_PER_PASS;
        for (int k = 0; k < cnt; k++) {
            pass_ids[k] = ids[chosen[k0 + k]];
            pass_lens[k] = lens[chosen[k0 + k]];
        }
        st = fipsc_use_encode(m, cnt, pass_ids, pass_lens, emb, cap, err);
    }
    if (!st) st = fipsc_calibration_init(out, m->n_mlps, err);
    if (!st) {
        for (int k = 0; k < cap->n_layers; k++) {
            const fipsc_capture_layer *cl = &cap->layers[k];
            out->blocks[cl->layer] = (fipsc_fips_calib){cl->rows, cl->x, cl->y};
        }
        out->n_sequences = n_chosen;
    }
    free(pass_ids);
    free(pass_lens);
    for (int i = 0; ids && i < s->n; i++) free(ids[i]);
    free(ids);
    free(lens);
    free(kept);
    free(order);
    free(chosen);
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
