/* Text for language models (see src/model/text_corpus.h). */
#include "model/text_corpus.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/path.h"
#include "model/family.h"

bool fipsc_model_tokenizer_file(const fipsc_model *m, char *file, size_t cap)
{
    char dir[PATH_MAX];
    struct stat st;
    const char *src = m->source_path, *slash = strrchr(src, '/');
    fipsc_status s;
    if (stat(src, &st) == 0 && S_ISDIR(st.st_mode)) s = fipsc_path_format(dir, sizeof dir, NULL, "%s", src);
    else if (!slash) s = fipsc_path_format(dir, sizeof dir, NULL, ".");
    else if (slash == src) s = fipsc_path_format(dir, sizeof dir, NULL, "/");
    else s = fipsc_path_format(dir, sizeof dir, NULL, "%.*s", (int)(slash - src), src);
    if (!s) s = fipsc_path_join(file, cap, dir, "tokenizer.json", NULL);
    return !s && stat(file, &st) == 0 && S_ISREG(st.st_mode);
}

fipsc_status fipsc_model_tokenizer(const fipsc_model *m, const char *path, fipsc_tokenizer **out, fipsc_error *err)
{
    *out = NULL;
    if (path) return fipsc_tokenizer_load(path, out, err);
    char file[PATH_MAX];
    if (!fipsc_model_tokenizer_file(m, file, sizeof file))
        return fipsc_fail(err, FIPSC_ERR_NOT_FOUND, "no tokenizer: %s does not exist; give the model's tokenizer.json "
                          "with --tokenizer", file);
    return fipsc_tokenizer_load(file, out, err);
}

fipsc_status fipsc_text_stream(const fipsc_model *m, const fipsc_tokenizer *t, const char *text, size_t len,
                               int32_t **ids_out, size_t *n_out, fipsc_error *err)
{
    *ids_out = NULL;
    *n_out = 0;
    const fipsc_lm_ops *lm;
    fipsc_status st = fipsc_model_need_lm(m, &lm, err);
    if (st) return st;
    fipsc_lm_info info;
    lm->info(m, &info);
    int32_t *ids = NULL;
    size_t n = 0;
    if ((st = fipsc_tokenizer_encode(t, text, len, true, &ids, &n, err))) return st;
    if (info.bos_token >= 0 && (n == 0 || ids[0] != info.bos_token)) {
        int32_t *grown = realloc(ids, (n + 1) * sizeof *ids);
        if (!grown) {
            free(ids);
            return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for %zu tokens", n + 1);
        }
        ids = grown;
        memmove(ids + 1, ids, n * sizeof *ids);
        ids[0] = info.bos_token;
        n++;
    }
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= info.vocab_size) {
            st = fipsc_fail(err, FIPSC_ERR_ARG, "the tokenizer %s gives token id %d, outside the model's vocabulary "
                            "of %d: it is not this model's tokenizer", fipsc_tokenizer_path(t), (int)ids[i],
                            info.vocab_size);
            free(ids);
            return st;
        }
    *ids_out = ids;
    *n_out = n;
    return FIPSC_OK;
}

fipsc_status fipsc_text_calibration(const int32_t *stream, size_t n, int bos, int seq_len, int max_seqs, int vocab,
                                    fipsc_corpus **out, int *available, fipsc_error *err)
{
    *out = NULL;
    *available = 0;
    const bool with_bos = bos >= 0 && n > 0 && stream[0] == bos;
    const size_t body = with_bos ? n - 1 : n;              /* text tokens after the BOS */
    const size_t per = with_bos ? (size_t)seq_len - 1 : (size_t)seq_len; /* text tokens per sequence */
    if (seq_len < 2 || max_seqs < 1) return fipsc_fail(err, FIPSC_ERR_ARG, "calibration sequences need at least 2 tokens");
    size_t chunks = body / per;
    if (chunks == 0)
        return fipsc_fail(err, FIPSC_ERR_ARG, "the text has %zu tokens: too short for one calibration sequence of %d",
                          n, seq_len);
    if (chunks > INT_MAX) chunks = INT_MAX;
    const int take = chunks < (size_t)max_seqs ? (int)chunks : max_seqs;
    fipsc_corpus *c = fipsc_corpus_alloc(take, (int64_t)take * seq_len);
    if (!c) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for %d calibration sequences", take);
    const int32_t *text = stream + (with_bos ? 1 : 0);
    for (int k = 0; k < take; k++) {
        size_t chunk = (size_t)((unsigned long long)k * chunks / (unsigned long long)take);
        int32_t *seq = c->ids + (size_t)k * seq_len;
        if (with_bos) *seq++ = bos;
        memcpy(seq, text + chunk * per, per * sizeof *seq);
        c->offsets[k + 1] = (int64_t)(k + 1) * seq_len;
    }
    c->n_seqs = take;
    c->vocab_size = vocab;
    *out = c;
    *available = (int)chunks;
    return FIPSC_OK;
}

fipsc_status fipsc_text_windows(const int32_t *stream, size_t n, int context, int stride, int vocab,
                                fipsc_corpus **out, int **skip_out, fipsc_error *err)
{
    *out = NULL;
    *skip_out = NULL;
    if (context < 2 || stride < 1 || stride > context)
        return fipsc_fail(err, FIPSC_ERR_ARG, "windows need a context of at least 2 tokens and a stride in [1, context] "
                          "(got %d and %d)", context, stride);
    if (n < 2) return fipsc_fail(err, FIPSC_ERR_ARG, "the text has %zu token(s): nothing to score", n);
    /* count the windows and their tokens first */
    size_t windows = 0, total = 0;
    for (size_t begin = 0;; begin += (size_t)stride) {
        size_t end = begin + (size_t)context < n ? begin + (size_t)context : n;
        windows++;
        total += end - begin;
        if (end == n) break;
    }
    if (windows > INT_MAX) return fipsc_fail(err, FIPSC_ERR_ARG, "the text needs more than 2^31 windows");
    fipsc_corpus *c = fipsc_corpus_alloc((int64_t)windows, (int64_t)total);
    int *skip = malloc(windows * sizeof *skip);
    if (!c || !skip) {
        fipsc_corpus_free(c);
        free(skip);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for %zu windows", windows);
    }
    size_t w = 0, at = 0, prev_end = 0;
    for (size_t begin = 0;; begin += (size_t)stride) {
        size_t end = begin + (size_t)context < n ? begin + (size_t)context : n;
        size_t len = end - begin, targets = end - prev_end; /* the targets no window scored yet */
        /* prediction row r scores target r + 1: rows before (len − targets) − 1 are context only */
        size_t first_target = len - targets < 1 ? 1 : len - targets;
        skip[w] = (int)(first_target - 1);
        memcpy(c->ids + at, stream + begin, len * sizeof *c->ids);
        at += len;
        c->offsets[++w] = (int64_t)at;
        prev_end = end;
        if (end == n) break;
    }
    c->n_seqs = (int)windows;
    c->vocab_size = vocab;
    *out = c;
    *skip_out = skip;
    return FIPSC_OK;
}
