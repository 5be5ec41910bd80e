/* Calibration rows from a stated source (see src/compress/calibration_source.h). */
#include "compress/calibration_source.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "compress/calibration_list.h"
#include "compress/compress_internal.h"
#include "core/file.h"
#include "core/rng.h"
#include "formats/corpus.h"
#include "formats/image_list.h"
#include "formats/sentences.h"
#include "model/family.h"
#include "model/generate.h"
#include "model/text_corpus.h"

/* Sampled calibration corpora and sentence draws use a seed derived from the run's seed and this
 * tag, so that they never repeat `fipsc sample --seed S` (typically the evaluation corpus). */
#define CALIB_SEED_TAG 0x63616c6962ULL /* "calib" */

void fipsc_calib_source_init(fipsc_calib_source *s)
{
    memset(s, 0, sizeof *s);
    s->rows = -1;
}

static bool tokens_given(const fipsc_calib_source *s)
{
    return s->corpus || s->text || s->tokenizer || s->samples > 0 || s->len > 0;
}
static bool images_given(const fipsc_calib_source *s)
{
    return s->images_dir || s->idx_path || s->exclude_dir || s->count > 0;
}
static bool sentences_given(const fipsc_calib_source *s) { return s->sentences || s->rows >= 0; }

const char *fipsc_calib_source_problem(const fipsc_calib_source *s, const fipsc_model *m)
{
    if (s->corpus && (s->samples > 0 || s->len > 0))
        return "--calib-corpus and --calib-samples/--calib-len exclude each other";
    if (s->corpus && s->text) return "--calib-corpus and --calib-text exclude each other";
    if (s->tokenizer && !s->text) return "--tokenizer applies to --calib-text only";
    if (s->images_dir && s->idx_path) return "--calib-images and --calib-idx exclude each other";
    if (!m) return NULL;
    const bool image = fipsc_model_image(m), encoder = fipsc_model_encoder(m), lm = fipsc_model_lm(m);
    if (!image && images_given(s))
        return "--calib-images, --calib-idx, --calib-exclude and --calib-count apply to image classifiers only";
    if (!encoder && sentences_given(s)) return "--calib-sentences and --calib-rows apply to sentence encoders only";
    if (image && tokens_given(s))
        return "--calib-corpus, --calib-text, --calib-samples and --calib-len apply to language models; an image classifier "
               "calibrates on --calib-images or --calib-idx";
    if (encoder && tokens_given(s))
        return "--calib-corpus, --calib-text, --calib-samples and --calib-len apply to language models; a sentence encoder "
               "calibrates on --calib-sentences";
    if (image && !s->images_dir && !s->idx_path)
        return "an image classifier calibrates on images: give --calib-images DIR or --calib-idx FILE";
    if (encoder && !s->sentences)
        return "a sentence encoder calibrates on sentences: give --calib-sentences FILE.tsv (an STS file, e.g. "
               "sts-b-train.tsv) or FILE.txt (one sentence a line)";
    if (!image && !encoder && !lm)
        return "the model is no language model, image classifier or sentence encoder: nothing to calibrate it on";
    return NULL;
}

/* The last component of a path ("dir/" names "dir"), into a static buffer. */
static const char *base_name(const char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    const char *end = path + n, *s = end;
    while (s > path && s[-1] != '/') s--;
    static _Thread_local char buf[256];
    snprintf(buf, sizeof buf, "%.*s", (int)(end - s), s);
    return buf;
}

static void say(fipsc_calib_note_fn note, void *user, const char *text)
{
    if (note) note(user, text);
}

typedef struct sampling_note {
    fipsc_calib_note_fn note;
    void *user;
} sampling_note;

static void on_sampled(void *ctx, long long done, long long total, double elapsed)
{
    const sampling_note *sn = ctx;
    char text[128];
    const double rate = elapsed > 0 ? (double)done / elapsed : 0.0;
    if (rate > 0)
        snprintf(text, sizeof text, "calibration: sampled %lld/%lld tokens, %.1f tok/s, ETA %.0fs", done, total, rate,
                 (double)(total - done) / rate);
    else snprintf(text, sizeof text, "calibration: sampled %lld/%lld tokens", done, total);
    sn->note(sn->user, text);
}

/* The tokenizer as "DIR/tokenizer.json": its directory tells which model's it is. */
static void tokenizer_name(const fipsc_tokenizer *tok, char *out, size_t cap)
{
    const char *tp = fipsc_tokenizer_path(tok), *slash = strrchr(tp, '/');
    if (slash && slash > tp) {
        char dir[256];
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - tp), tp);
        snprintf(out, cap, "%s/%s", base_name(dir), slash + 1);
    } else {
        snprintf(out, cap, "%s", tp);
    }
}

/* One text's sequences (text_corpus.h), described into desc. */
static fipsc_status one_text(const fipsc_model *m, fipsc_tokenizer *tok, const calib_item *file, bool several, int n,
                             int len, fipsc_corpus **corpus, char *desc, size_t desc_cap, fipsc_error *err)
{
    const fipsc_lm_ops *lm = fipsc_model_lm(m);
    fipsc_lm_info info;
    lm->info(m, &info);
    char *text = NULL;
    size_t text_len = 0, n_ids = 0;
    int32_t *ids = NULL;
    int available = 0;
    fipsc_status st = fipsc_read_file(file->path, &text, &text_len, err);
    if (!st && !(st = fipsc_text_stream(m, tok, text, text_len, &ids, &n_ids, err)) &&
        !(st = fipsc_text_calibration(ids, n_ids, info.bos_token, len, n, info.vocab_size, corpus, &available, err))) {
        char tok_name[300], weight[48] = "";
        tokenizer_name(tok, tok_name, sizeof tok_name);
        if (several) snprintf(weight, sizeof weight, " (weight %g)", file->weight);
        snprintf(desc, desc_cap, "text %s%s (%zu bytes, %zu tokens by %s): %d of its %d sequences of %d tokens%s",
                 base_name(file->path), weight, text_len, n_ids, tok_name, (*corpus)->n_seqs, available, len,
                 (*corpus)->n_seqs < available ? ", spread evenly" : "");
    }
    if (st) fipsc_fail_context(err, "--calib-text %s: ", base_name(file->path));
    free(ids);
    free(text);
    return st;
}

/* The calibration corpus of one or several texts (calibration_list.h): each text's stream cut into
 * its share of the sequences, the texts' sequences interleaved evenly. */
static fipsc_status text_corpus(const fipsc_model *m, const fipsc_calib_source *s, fipsc_corpus **corpus, char *desc,
                                size_t desc_cap, fipsc_error *err)
{
    const int n = s->samples > 0 ? s->samples : FIPSC_CALIB_SAMPLES, len = s->len > 0 ? s->len : FIPSC_CALIB_LEN;
    const fipsc_lm_ops *lm = fipsc_model_lm(m);
    fipsc_lm_info info;
    lm->info(m, &info);
    if (info.context > 0 && len > info.context)
        return fipsc_fail(err, FIPSC_ERR_ARG, "--calib-len %d exceeds the model's context of %d tokens", len, info.context);
    calib_list files;
    fipsc_status st = calib_list_parse("--calib-text", s->text, &files, err);
    if (st) return st;
    if (files.n > n) {
        const int n_files = files.n;
        calib_list_free(&files);
        return fipsc_fail(err, FIPSC_ERR_ARG, "--calib-text: %d texts share %d sequences (--calib-samples): give at "
                          "least one per text", n_files, n);
    }
    int64_t shares[CALIB_LIST_MAX];
    calib_list_shares(&files, n, shares);
    for (int k = 0; k < files.n && !st; k++)
        if (shares[k] == 0)
            st = fipsc_fail(err, FIPSC_ERR_ARG, "--calib-text %s: its weight gives it none of the %d sequences "
                            "(raise --calib-samples or its weight)", base_name(files.items[k].path), n);
    fipsc_corpus *parts[CALIB_LIST_MAX] = {0};
    fipsc_tokenizer *tok = NULL;
    if (!st && (st = fipsc_model_tokenizer(m, s->tokenizer, &tok, err))) fipsc_fail_context(err, "--calib-text: ");
    size_t at = 0;
    for (int k = 0; k < files.n && !st; k++) {
        if (k) at += (size_t)snprintf(desc + at, desc_cap - at, "; ");
        if (at >= desc_cap) at = desc_cap - 1;
        st = one_text(m, tok, &files.items[k], files.n > 1, (int)shares[k], len, &parts[k], desc + at, desc_cap - at, err);
        at += strlen(desc + at);
    }
    if (!st && files.n == 1) {
        *corpus = parts[0];
        parts[0] = NULL;
    } else if (!st) { /* the texts' sequences interleaved evenly */
        int counts[CALIB_LIST_MAX], next[CALIB_LIST_MAX] = {0}, total = 0;
        int64_t ids = 0;
        for (int k = 0; k < files.n; k++) {
            counts[k] = parts[k]->n_seqs;
            total += counts[k];
            ids += parts[k]->offsets[parts[k]->n_seqs];
        }
        int *source = malloc((size_t)total * sizeof *source);
        fipsc_corpus *c = fipsc_corpus_alloc(total, ids);
        if (!source || !c) {
            st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for %lld calibration tokens", (long long)ids);
            fipsc_corpus_free(c);
        } else {
            calib_interleave(counts, files.n, source);
            c->vocab_size = parts[0]->vocab_size;
            for (int pos = 0; pos < total; pos++) {
                const fipsc_corpus *p = parts[source[pos]];
                const int i = next[source[pos]]++;
                const int64_t from = p->offsets[i], cnt = p->offsets[i + 1] - from;
                memcpy(c->ids + c->offsets[pos], p->ids + from, (size_t)cnt * sizeof *c->ids);
                c->offsets[pos + 1] = c->offsets[pos] + cnt;
            }
            c->n_seqs = total;
            *corpus = c;
        }
        free(source);
    }
    for (int k = 0; k < files.n; k++) fipsc_corpus_free(parts[k]);
    fipsc_tokenizer_free(tok);
    calib_list_free(&files);
    return st;
}

/* What sampling from the model means for source s and run seed `seed`, for reports. */
static void sampling_desc(const fipsc_calib_source *s, uint64_t seed, char *desc, size_t desc_cap)
{
    const long long n = s->samples > 0 ? s->samples : FIPSC_CALIB_SAMPLES, len = s->len > 0 ? s->len : FIPSC_CALIB_LEN;
    snprintf(desc, desc_cap,
             "sampled from the model: %lld sequences of %lld tokens, temperature 1, seed %llu derived from --seed %llu",
             n, len, (unsigned long long)fipsc_seed_derive(seed, CALIB_SEED_TAG), (unsigned long long)seed);
}

fipsc_status fipsc_calibration_sample(const fipsc_model *m, const fipsc_calib_source *s, uint64_t seed,
                                      fipsc_calib_note_fn note, void *user, fipsc_corpus **out, fipsc_error *err)
{
    *out = NULL;
    const long long n = s->samples > 0 ? s->samples : FIPSC_CALIB_SAMPLES, len = s->len > 0 ? s->len : FIPSC_CALIB_LEN;
    const fipsc_lm_ops *lm;
    fipsc_status st = fipsc_model_need_lm(m, &lm, err);
    if (st) return st;
    fipsc_lm_info info;
    lm->info(m, &info);
    int32_t *ids = NULL;
    if (info.context > 0 && len > info.context)
        st = fipsc_fail(err, FIPSC_ERR_ARG, "--calib-len %lld exceeds the model's context of %d tokens", len,
                        info.context);
    else if (!(ids = malloc((size_t)n * (size_t)len * sizeof *ids)))
        st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for %lld calibration tokens", n * len);
    sampling_note sn = {note, user};
    if (!st)
        st = fipsc_lm_sample_sequences(m, (int)n, (int)len, 1.0f, 1.0f, fipsc_seed_derive(seed, CALIB_SEED_TAG), ids,
                                       note ? on_sampled : NULL, &sn, err);
    if (!st) st = fipsc_corpus_from_ids(ids, (int)n, (int)len, info.vocab_size, out, err);
    free(ids);
    say(note, user, NULL);
    if (st) fipsc_fail_context(err, "sampling the calibration corpus: ");
    return st;
}

static fipsc_status from_tokens(const fipsc_model *m, const fipsc_calib_source *s, uint64_t seed, const int *blocks,
                                int n_blocks, fipsc_calib_note_fn note, void *user, fipsc_calibration *cal, char *desc,
                                size_t desc_cap, fipsc_error *err)
{
    fipsc_corpus *corpus = NULL;
    const fipsc_corpus *use = NULL;
    fipsc_status st;
    if (s->corpus) {
        snprintf(desc, desc_cap, "corpus %s", base_name(s->corpus));
        st = fipsc_corpus_load(s->corpus, &corpus, err);
    } else if (s->text) {
        say(note, user, "calibration: tokenizing the text...");
        st = text_corpus(m, s, &corpus, desc, desc_cap, err);
        say(note, user, NULL);
    } else {
        sampling_desc(s, seed, desc, desc_cap);
        st = s->sampled ? FIPSC_OK : fipsc_calibration_sample(m, s, seed, note, user, &corpus, err);
        use = s->sampled;
    }
    if (!use) use = corpus;
    if (!st) {
        say(note, user, "calibration: capturing MLP inputs and outputs...");
        const capture_setup setup = {s->spill_dir, s->spill_rows, s->stream};
        st = calibration_capture_tokens(m, use, s->corpus ? s->corpus : s->text ? s->text : "the sampled corpus",
                                        blocks, n_blocks, &setup, cal, err);
        say(note, user, NULL);
    }
    fipsc_corpus_free(corpus);
    return st;
}

static fipsc_status from_images(const fipsc_model *m, const fipsc_calib_source *c, const int *blocks, int n_blocks,
                                fipsc_calib_note_fn note, void *user, fipsc_calibration *cal, char *desc,
                                size_t desc_cap, fipsc_error *err)
{
    const int count = c->count > 0 ? c->count : FIPSC_CALIB_IMAGES;
    fipsc_image_list exclude = {0}, images = {0};
    int excluded = 0;
    fipsc_status st = FIPSC_OK;
    if (c->exclude_dir && (st = fipsc_image_list_read_dir(c->exclude_dir, NULL, 0, &exclude, NULL, err)))
        return fipsc_fail_context(err, "--calib-exclude: ");
    if (c->exclude_dir && exclude.n == 0) {
        fipsc_image_list_free(&exclude);
        return fipsc_fail(err, FIPSC_ERR_ARG, "--calib-exclude %s: the directory holds no images", c->exclude_dir);
    }
    say(note, user, "calibration: reading images...");
    const char *source = c->images_dir ? c->images_dir : c->idx_path;
    st = c->images_dir ? fipsc_image_list_read_dir(c->images_dir, &exclude, count, &images, &excluded, err)
                       : fipsc_image_list_read_idx(c->idx_path, &exclude, count, &images, &excluded, err);
    if (!st && images.n == 0)
        st = fipsc_fail(err, FIPSC_ERR_ARG, "%s: no calibration images%s", source,
                        excluded ? " left after --calib-exclude" : "");
    if (!st) {
        char what[300] = "";
        if (c->exclude_dir)
            snprintf(what, sizeof what, " that equal no image of %s (%d skipped)", base_name(c->exclude_dir), excluded);
        snprintf(desc, desc_cap, "the first %d images of %s %s%s%s", images.n, c->images_dir ? "directory" : "IDX file",
                 base_name(source), what, images.n < count ? " (all there are)" : "");
        char text[128];
        snprintf(text, sizeof text, "calibration: capturing MLP inputs and outputs on %d images...", images.n);
        say(note, user, text);
        const capture_setup setup = {c->spill_dir, c->spill_rows, c->stream};
        st = calibration_capture_images(m, &images, blocks, n_blocks, &setup, cal, err);
    }
    say(note, user, NULL);
    fipsc_image_list_free(&images);
    fipsc_image_list_free(&exclude);
    return st;
}

static fipsc_status from_sentences(const fipsc_model *m, const fipsc_calib_source *c, uint64_t run_seed,
                                   const int *blocks, int n_blocks, fipsc_calib_note_fn note, void *user,
                                   fipsc_capture *cap, fipsc_calibration *cal, char *desc, size_t desc_cap,
                                   fipsc_error *err)
{
    const uint64_t seed = fipsc_seed_derive(run_seed, CALIB_SEED_TAG);
    const long long rows = c->rows >= 0 ? c->rows : FIPSC_CALIB_ROWS;
    calib_list files;
    fipsc_status st = calib_list_parse("--calib-sentences", c->sentences, &files, err);
    if (st) return st;
    bool weighted = false;
    for (int k = 0; k < files.n; k++) weighted |= files.items[k].weighted;
    if (weighted && rows == 0) {
        calib_list_free(&files);
        return fipsc_fail(err, FIPSC_ERR_ARG, "--calib-sentences: weights share the --calib-rows budget; "
                          "--calib-rows 0 takes every sentence of every file");
    }
    fipsc_sentences sets[CALIB_LIST_MAX] = {0};
    int64_t shares[CALIB_LIST_MAX] = {0};
    sentence_draw draws[CALIB_LIST_MAX] = {0};
    char names[CALIB_LIST_MAX][256];
    const char *name_of[CALIB_LIST_MAX];
    calib_list_shares(&files, rows, shares);
    for (int k = 0; k < files.n; k++) {
        snprintf(names[k], sizeof names[k], "%s", base_name(files.items[k].path));
        name_of[k] = names[k];
        if (rows > 0 && shares[k] == 0 && !st) /* a share of 0 would mean "every sentence" */
            st = fipsc_fail(err, FIPSC_ERR_ARG, "--calib-sentences %s: its weight gives it none of the %lld rows "
                            "(raise --calib-rows or its weight)", names[k], rows);
    }
    int n_read = 0, total = 0;
    for (; n_read < files.n && !st; n_read++) {
        if ((st = fipsc_sentences_read(files.items[n_read].path, &sets[n_read], err)))
            fipsc_fail_context(err, "--calib-sentences: ");
        else total += sets[n_read].n;
    }
    if (!st) {
        char text[512];
        snprintf(text, sizeof text, "calibration: encoding %d sentences of %s%s...", total, names[0],
                 files.n > 1 ? " and more" : "");
        say(note, user, text);
        const capture_setup setup = {c->spill_dir, c->spill_rows, c->stream};
        st = calibration_capture_sentences(m, sets, files.n, c->sentences, name_of, blocks, n_blocks, shares, seed,
                                           &setup, cap, cal, draws, err);
        say(note, user, NULL);
    }
    /* What was used, file by file. */
    size_t at = 0;
    for (int k = 0; k < files.n && !st; k++) {
        char weight[48] = "";
        if (files.n > 1) snprintf(weight, sizeof weight, " (weight %g)", files.items[k].weight);
        int w;
        if (rows > 0)
            w = snprintf(desc + at, desc_cap - at, "%ssentences %s%s: %d of %d sentences (%lld token rows, at most %lld "
                         "drawn with seed %llu)", k ? "; " : "", names[k], weight, draws[k].sentences, sets[k].n,
                         (long long)draws[k].rows, (long long)shares[k], (unsigned long long)calib_file_seed(seed, k));
        else
            w = snprintf(desc + at, desc_cap - at, "%ssentences %s: all %d sentences (%lld token rows)", k ? "; " : "",
                         names[k], sets[k].n, (long long)draws[k].rows);
        if (w < 0 || (size_t)w >= desc_cap - at) break; /* truncated: the report keeps what fits */
        at += (size_t)w;
    }
    for (int k = 0; k < n_read; k++) fipsc_sentences_free(&sets[k]);
    calib_list_free(&files);
    if (st) {
        fipsc_calibration_free(cal);
        fipsc_capture_free(cap);
    }
    return st;
}

fipsc_status fipsc_calibrate(const fipsc_model *m, const fipsc_calib_source *s, uint64_t seed, const int *blocks,
                             int n_blocks, fipsc_calib_note_fn note, void *note_user, fipsc_calibration *cal,
                             fipsc_capture *cap, char *desc, size_t desc_cap, fipsc_error *err)
{
    memset(cal, 0, sizeof *cal);
    memset(cap, 0, sizeof *cap);
    const char *problem = fipsc_calib_source_problem(s, m);
    if (problem) return fipsc_fail(err, FIPSC_ERR_ARG, "%s", problem);
    if (fipsc_model_image(m)) return from_images(m, s, blocks, n_blocks, note, note_user, cal, desc, desc_cap, err);
    if (fipsc_model_encoder(m))
        return from_sentences(m, s, seed, blocks, n_blocks, note, note_user, cap, cal, desc, desc_cap, err);
    return from_tokens(m, s, seed, blocks, n_blocks, note, note_user, cal, desc, desc_cap, err);
}

fipsc_status fipsc_calibration_rows_bound(const fipsc_model *m, const fipsc_calib_source *s, int64_t *rows,
                                          fipsc_error *err)
{
    *rows = 0;
    if (fipsc_model_image(m)) {
        fipsc_image_info info;
        fipsc_model_image(m)->info(m, &info);
        *rows = (int64_t)(s->count > 0 ? s->count : FIPSC_CALIB_IMAGES) * info.tokens;
        return FIPSC_OK;
    }
    if (fipsc_model_encoder(m)) {
        if (s->rows > 0 || s->rows < 0) {
            *rows = s->rows > 0 ? s->rows : FIPSC_CALIB_ROWS;
            return FIPSC_OK;
        }
        /* every sentence: at most a token per byte, and a start and an end mark per line */
        calib_list files;
        fipsc_status st = calib_list_parse("--calib-sentences", s->sentences, &files, err);
        for (int k = 0; k < files.n && !st; k++) {
            struct stat sb;
            if (stat(files.items[k].path, &sb) != 0)
                st = fipsc_fail(err, FIPSC_ERR_IO, "--calib-sentences %s: cannot read it", files.items[k].path);
            else *rows += 3 * (int64_t)sb.st_size;
        }
        calib_list_free(&files);
        return st;
    }
    if (s->corpus) {
        fipsc_corpus *c = NULL;
        fipsc_status st = fipsc_corpus_load(s->corpus, &c, err);
        if (st) return fipsc_fail_context(err, "--calib-corpus: ");
        for (int i = 0; i < c->n_seqs; i++) *rows += fipsc_corpus_length(c, i);
        fipsc_corpus_free(c);
        return FIPSC_OK;
    }
    *rows = (int64_t)(s->samples > 0 ? s->samples : FIPSC_CALIB_SAMPLES) * (s->len > 0 ? s->len : FIPSC_CALIB_LEN);
    return FIPSC_OK;
}

int64_t fipsc_calibration_sampling_bytes(const fipsc_model *m, const fipsc_calib_source *s)
{
    if (fipsc_model_image(m) || fipsc_model_encoder(m) || !fipsc_model_lm(m) || s->corpus || s->text) return 0;
    return fipsc_lm_sample_memory_bytes(m, s->samples > 0 ? (int)s->samples : FIPSC_CALIB_SAMPLES,
                                        s->len > 0 ? (int)s->len : FIPSC_CALIB_LEN);
}
