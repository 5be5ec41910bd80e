/* Image classification and accuracy (see src/eval/classify.h). */
#include "eval/classify.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "formats/image.h"
#include "model/family.h"
#include "core/path.h"

/* m's image-classifier capability and facts, or an error saying m is not one. */
typedef struct classifier {
    const fipsc_image_ops *ops;
    fipsc_image_info info;
} classifier;

static fipsc_status get_classifier(const fipsc_model *m, classifier *c, fipsc_error *err)
{
    fipsc_status st = fipsc_model_need_image(m, &c->ops, err);
    if (!st) c->ops->info(m, &c->info);
    return st;
}

fipsc_status fipsc_classify_load_image(const fipsc_model *m, const char *path, float *pixels,
                                       fipsc_error *err)
{
    classifier cl;
    fipsc_status st = get_classifier(m, &cl, err);
    const fipsc_image_info *v = &cl.info;
    if (st) return st;
    fipsc_image img;
    if ((st = fipsc_image_read(path, &img, err))) return st;
    st = fipsc_image_preprocess(&img, v->preproc, v->height, v->width, pixels, path, err);
    fipsc_image_free(&img);
    return st;
}

fipsc_status fipsc_classify_files(const fipsc_model *m, const char *const *paths, int n, int batch,
                                  float *logits, fipsc_error *err)
{
    classifier cl;
    fipsc_status st = get_classifier(m, &cl, err);
    const fipsc_image_info *v = &cl.info;
    if (st) return st;
    if (n < 0) return fipsc_fail(err, FIPSC_ERR_ARG, "cannot classify %d images", n);
    if (batch <= 0) batch = FIPSC_CLASSIFY_BATCH;
    if (batch > n) batch = n > 0 ? n : 1;
    size_t per_image = (size_t)v->channels * v->height * v->width;
    float *pixels = malloc((size_t)batch * per_image * sizeof *pixels);
    fipsc_error *errors = calloc((size_t)batch, sizeof *errors);
    fipsc_status *status = calloc((size_t)batch, sizeof *status);
    if (!pixels || !errors || !status) {
        st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for a batch of %d images", batch);
        goto done;
    }
    for (int start = 0; start < n && !st; start += batch) {
        int count = n - start < batch ? n - start : batch;
        /* Decoding is independent per image; errors are reported in file order. */
#pragma omp parallel for schedule(dynamic, 1)
        for (int i = 0; i < count; i++)
            status[i] = fipsc_classify_load_image(m, paths[start + i], pixels + (size_t)i * per_image,
                                                  &errors[i]);
        for (int i = 0; i < count && !st; i++)
            if (status[i]) {
                st = status[i];
                if (err) *err = errors[i];
            }
        if (!st)
            st = cl.ops->forward(m, pixels, count, logits + (size_t)start * v->n_labels, NULL, err);
    }
done:
    free(pixels);
    free(errors);
    free(status);
    return st;
}

int fipsc_top_k(const float *logits, int n_labels, int k, int *top)
{
    if (k > n_labels) k = n_labels;
    if (k < 0) k = 0;
    /* selection: k passes, each taking the best remaining (k is small) */
    for (int r = 0; r < k; r++) {
        int best = -1;
        for (int c = 0; c < n_labels; c++) {
            bool taken = false;
            for (int j = 0; j < r && !taken; j++) taken = top[j] == c;
            if (taken) continue;
            if (best < 0 || logits[c] > logits[best]) best = c;
        }
        top[r] = best;
    }
    return k;
}

void fipsc_softmax(const float *logits, int n, float *probs)
{
    float mx = -INFINITY;
    for (int i = 0; i < n; i++)
        if (logits[i] > mx) mx = logits[i];
    double total = 0.0;
    for (int i = 0; i < n; i++) total += exp((double)logits[i] - mx);
    for (int i = 0; i < n; i++) probs[i] = (float)(exp((double)logits[i] - mx) / total);
}

void fipsc_labelled_images_free(fipsc_labelled_image *items, int n)
{
    if (!items) return;
    for (int i = 0; i < n; i++) free(items[i].path);
    free(items);
}

/* The class named by text: an index in [0, n_labels), else a label of the model. */
static bool parse_class(const fipsc_image_info *v, const char *text, int *out)
{
    char *end;
    errno = 0;
    long c = strtol(text, &end, 10);
    if (end != text && *end == '\0' && errno == 0 && c >= 0 && c < v->n_labels) {
        *out = (int)c;
        return true;
    }
    for (int i = 0; i < v->n_labels; i++)
        if (strcmp(v->labels[i], text) == 0) {
            *out = i;
            return true;
        }
    return false;
}

fipsc_status fipsc_read_image_labels(const fipsc_model *m, const char *labels_path, const char *dir,
                                     fipsc_labelled_image **out, int *n_out, fipsc_error *err)
{
    *out = NULL;
    *n_out = 0;
    classifier cl;
    fipsc_status st = get_classifier(m, &cl, err);
    const fipsc_image_info *v = &cl.info;
    if (st) return st;
    char *text;
    if ((st = fipsc_read_file(labels_path, &text, NULL, err))) return st;
    fipsc_labelled_image *items = NULL;
    int n = 0, cap = 0, line_no = 0;
    char *line = text;
    while (line && *line && !st) {
        char *next = strchr(line, '\n');
        if (next) *next++ = '\0';
        line_no++;
        size_t len = strlen(line);
        if (len && line[len - 1] == '\r') line[--len] = '\0';
        if (len == 0) {
            line = next;
            continue;
        }
        char *tab = strchr(line, '\t');
        if (!tab || tab == line || !tab[1] || strchr(tab + 1, '\t')) {
            st = fipsc_fail(err, FIPSC_ERR_FORMAT, "%s:%d: expected 'relative/path<TAB>class', got '%.80s'",
                            labels_path, line_no, line);
            break;
        }
        *tab = '\0';
        int label;
        if (!parse_class(v, tab + 1, &label)) {
            st = fipsc_fail(err, FIPSC_ERR_FORMAT,
                            "%s:%d: class '%.80s' is neither a class index in [0, %d) nor a label of the model",
                            labels_path, line_no, tab + 1, v->n_labels);
            break;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            fipsc_labelled_image *grown = realloc(items, (size_t)cap * sizeof *grown);
            if (!grown) {
                st = fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", labels_path);
                break;
            }
            items = grown;
        }
        size_t plen = strlen(dir) + strlen(line) + 2;
        char *path = malloc(plen);
        if (!path) {
            st = fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", labels_path);
            break;
        }
        /* sized to fit: the join cannot fail */
        if (line[0] == '/' || !dir[0]) fipsc_path_format(path, plen, NULL, "%s", line);
        else fipsc_path_join(path, plen, dir, line, NULL);
        items[n].path = path;
        items[n].label = label;
        n++;
        line = next;
    }
    free(text);
    if (!st && n == 0) st = fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: lists no images", labels_path);
    if (st) {
        fipsc_labelled_images_free(items, n);
        return st;
    }
    *out = items;
    *n_out = n;
    return FIPSC_OK;
}

fipsc_status fipsc_eval_images(const fipsc_model *m, const fipsc_labelled_image *items, int n,
                               int batch, int limit, fipsc_image_eval *res, fipsc_error *err)
{
    memset(res, 0, sizeof *res);
    classifier cl;
    fipsc_status st = get_classifier(m, &cl, err);
    const fipsc_image_info *v = &cl.info;
    if (st) return st;
    if (limit > 0 && limit < n) n = limit;
    if (n <= 0) return fipsc_fail(err, FIPSC_ERR_ARG, "no images to evaluate");
    if (batch <= 0) batch = FIPSC_CLASSIFY_BATCH;
    int L = v->n_labels;
    const char **paths = malloc((size_t)batch * sizeof *paths);
    float *logits = malloc((size_t)batch * L * sizeof *logits);
    if (!paths || !logits) {
        st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int start = 0; start < n && !st; start += batch) {
        int count = n - start < batch ? n - start : batch;
        for (int i = 0; i < count; i++) paths[i] = items[start + i].path;
        if ((st = fipsc_classify_files(m, paths, count, batch, logits, err))) break;
        for (int i = 0; i < count; i++) {
            int top[5], k = fipsc_top_k(logits + (size_t)i * L, L, 5, top);
            int label = items[start + i].label;
            if (k > 0 && top[0] == label) res->top1++;
            for (int j = 0; j < k; j++)
                if (top[j] == label) res->top5++;
        }
    }
    if (!st) {
        res->n = n;
        res->top1_accuracy = (double)res->top1 / n;
        res->top5_accuracy = (double)res->top5 / n;
    }
done:
    free(paths);
    free(logits);
    return st;
}
