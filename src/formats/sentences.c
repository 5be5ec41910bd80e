/* Sentences from a file (see src/formats/sentences.h). */
#include "formats/sentences.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "formats/sts_file.h"

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
