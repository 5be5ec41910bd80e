/* Text -> ids: the pipeline of tokenizer.h, step by step as the client's _encode_text runs it.
 *
 *   text ──repair──> sections (added tokens | text between them, lstrip/rstrip applied)
 *   each text section ──normalize──> ──pre-tokenize──> pieces ──BPE──> ids (unknowns fused)
 *   ids ──post-process──> [template tokens] ids [template tokens]  (when add_special) */
#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"
#include "text/tokenizer_internal.h"

/* JavaScript's String.trim set: WhiteSpace and LineTerminator. */
static bool js_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0d) || c == 0x20 || c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) ||
           c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000 || c == 0xfeff;
}

static fipsc_span trim_end(fipsc_span s)
{
    size_t keep = 0; /* bytes up to the end of the last non-space character */
    for (size_t i = 0; i < s.len;)
        if (!js_space(fipsc_utf8_next((const unsigned char *)s.p, s.len, &i))) keep = i;
    return (fipsc_span){s.p, keep};
}

static fipsc_span trim_start(fipsc_span s)
{
    size_t i = 0;
    while (i < s.len) {
        size_t j = i;
        if (!js_space(fipsc_utf8_next((const unsigned char *)s.p, s.len, &j))) break;
        i = j;
    }
    return (fipsc_span){s.p + i, s.len - i};
}

typedef struct section {
    fipsc_span text;
    int added; /* index into t->added, or -1 */
} section;

/* Cuts text at the added tokens (see added_tokens.c) and applies their lstrip/rstrip. */
static section *cut_sections(const fipsc_tokenizer *t, fipsc_span text, size_t *n_out)
{
    size_t n = 0, cap = 16;
    section *s = malloc(cap * sizeof *s);
    if (!s) return NULL;
    size_t start = 0;
    for (size_t i = 0; i <= text.len;) {
        size_t len = 0;
        int k = i < text.len && t->n_added ? fipsc_added_match(t, text.p, text.len, i, &len) : -1;
        if (k < 0 && i < text.len) {
            i++;
            continue;
        }
        if (n + 2 > cap) {
            section *grown = realloc(s, (cap *= 2) * sizeof *s);
            if (!grown) {
                free(s);
                return NULL;
            }
            s = grown;
        }
        if (i > start) s[n++] = (section){{text.p + start, i - start}, -1};
        if (k < 0) break; /* the end of the text */
        s[n++] = (section){{text.p + i, len}, k};
        i += len;
        start = i;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i].added < 0) continue;
        const fipsc_added_token *a = &t->added[s[i].added];
        if (a->lstrip && i > 0) s[i - 1].text = trim_end(s[i - 1].text);
        if (a->rstrip && i + 1 < n) s[i + 1].text = trim_start(s[i + 1].text);
    }
    *n_out = n;
    return s;
}

/* One text section: normalize, pre-tokenize, BPE, fuse unknowns. */
static fipsc_status encode_section(const fipsc_tokenizer *t, fipsc_span text, fipsc_bpe_work *w, fipsc_id_list *ids,
                                   fipsc_error *err)
{
    fipsc_bytes norm = {0};
    fipsc_str_list pieces = {0};
    fipsc_status st = fipsc_normalize(t, text, &norm, err);
    if (!st && norm.len > 0) st = fipsc_pretokenize(t, (fipsc_span){norm.p, norm.len}, &pieces, err);
    size_t first = ids->n;
    for (size_t i = 0; i < pieces.n && !st; i++) st = fipsc_bpe_piece(t, fipsc_str_list_item(&pieces, i), w, ids, err);
    if (!st && t->fuse_unk && t->unk_id >= 0) { /* runs of unknown tokens become one */
        size_t k = first;
        for (size_t i = first; i < ids->n; i++)
            if (!(ids->v[i] == t->unk_id && k > first && ids->v[k - 1] == t->unk_id)) ids->v[k++] = ids->v[i];
        ids->n = k;
    }
    free(norm.p);
    fipsc_str_list_free(&pieces);
    return st;
}

fipsc_status fipsc_tokenizer_encode(const fipsc_tokenizer *t, const char *text, size_t len, bool add_special,
                                    int32_t **ids_out, size_t *n_out, fipsc_error *err)
{
    *ids_out = NULL;
    *n_out = 0;
    fipsc_bytes repaired = {0};
    fipsc_utf8_repair((const unsigned char *)text, len, &repaired);
    fipsc_bytes_put(&repaired, NULL, 0);
    if (repaired.oom) {
        free(repaired.p);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory reading %zu bytes of text", len);
    }
    size_t n_sections = 0;
    section *sections = cut_sections(t, (fipsc_span){repaired.p, repaired.len}, &n_sections);
    fipsc_status st = sections ? FIPSC_OK : fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory tokenizing %zu bytes", len);
    fipsc_id_list ids = {0};
    fipsc_bpe_work w = {0};
    if (add_special)
        for (int i = 0; i < t->n_post_before; i++) fipsc_id_push(&ids, t->post_before[i]);
    for (size_t i = 0; i < n_sections && !st; i++) {
        const section *s = &sections[i];
        if (s->text.len == 0) continue;
        const fipsc_added_token *a = s->added >= 0 ? &t->added[s->added] : NULL;
        /* an added token is itself unless stripping (of a neighbour's token) changed it */
        if (a && s->text.len == a->content.len) fipsc_id_push(&ids, a->id);
        else st = encode_section(t, s->text, &w, &ids, err);
    }
    if (add_special)
        for (int i = 0; i < t->n_post_after; i++) fipsc_id_push(&ids, t->post_after[i]);
    if (!st && ids.oom) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory tokenizing %zu bytes", len);
    fipsc_bpe_work_free(&w);
    free(sections);
    free(repaired.p);
    if (st) {
        free(ids.v);
        return st;
    }
    if (!ids.v && !(ids.v = malloc(sizeof *ids.v))) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    *ids_out = ids.v;
    *n_out = ids.n;
    return FIPSC_OK;
}
