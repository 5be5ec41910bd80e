/* Byte-pair encoding of one pre-tokenized piece, as the client does it (and Rust's tokenizers):
 *
 *   symbols = the piece's characters, each with its vocabulary id (-1 when not in it);
 *   repeat: among adjacent pairs (a, b) listed in the merges, take the one of lowest rank, the
 *           leftmost on a tie; replace it by the merged token; until no pair is listed.
 *
 * Done with a priority queue of candidate pairs over a doubly linked list of symbols, as the
 * client does: each merge costs O(log n) instead of a rescan of the piece, which matters for
 * SentencePiece-style tokenizers (Llama-2, Gemma) whose pieces are whole paragraphs. A merged
 * symbol keeps the left one's slot, so "leftmost" is the slot index; queue entries that a later
 * merge made stale are recognised by the ids they were made for and skipped.
 *
 * Then each symbol is emitted: its id when it has one; else, with byte fallback, the <0xXX>
 * tokens of its UTF-8 bytes (all of them must exist), else the unknown token.
 * ignore_merges (Llama-3): a piece that is itself a token is emitted whole, unmerged. */
#include <stdlib.h>

#include "core/utf8.h"
#include "text/tokenizer_internal.h"

struct bpe_symbol {
    size_t start, len; /* bytes of the piece */
    int32_t id, prev, next;
    bool alive;
};

struct bpe_candidate {
    int32_t rank, left, right, left_id, right_id, merged;
};

void fipsc_id_push(fipsc_id_list *l, int32_t id)
{
    if (l->oom) return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        int32_t *v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            l->oom = true;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = id;
}

void fipsc_bpe_work_free(fipsc_bpe_work *w)
{
    free(w->sym);
    free(w->heap);
    *w = (fipsc_bpe_work){0};
}

static bool before(const struct bpe_candidate *a, const struct bpe_candidate *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

/* Min-heap of candidates in w->heap[0..*n). */
static bool heap_push(fipsc_bpe_work *w, size_t *n, struct bpe_candidate c)
{
    if (*n == w->heap_cap) {
        size_t cap = w->heap_cap ? w->heap_cap * 2 : 256;
        struct bpe_candidate *h = realloc(w->heap, cap * sizeof *h);
        if (!h) return false;
        w->heap = h;
        w->heap_cap = cap;
    }
    size_t i = (*n)++;
    while (i > 0 && before(&c, &w->heap[(i - 1) / 2])) {
        w->heap[i] = w->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    w->heap[i] = c;
    return true;
}

static struct bpe_candidate heap_pop(fipsc_bpe_work *w, size_t *n)
{
    struct bpe_candidate top = w->heap[0], last = w->heap[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && before(&w->heap[c + 1], &w->heap[c])) c++;
        if (!before(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (*n) w->heap[i] = last;
    return top;
}

/* Queues the pair (left, its next) when the merges list it. */
static bool consider(const fipsc_tokenizer *t, fipsc_bpe_work *w, size_t *n, int32_t left)
{
    if (left < 0) return true;
    const struct bpe_symbol *a = &w->sym[left];
    if (a->next < 0) return true;
    const struct bpe_symbol *b = &w->sym[a->next];
    int32_t rank, merged;
    if (!fipsc_merge_map_get(&t->merges, a->id, b->id, &rank, &merged)) return true;
    return heap_push(w, n, (struct bpe_candidate){rank, left, a->next, a->id, b->id, merged});
}

/* Emits a symbol that is not a token: byte fallback or the unknown token. */
static fipsc_status emit_unknown(const fipsc_tokenizer *t, const char *p, size_t len, fipsc_id_list *ids, fipsc_error *err)
{
    if (t->byte_fallback) {
        bool all = true;
        for (size_t i = 0; i < len; i++) all = all && t->byte_token[(unsigned char)p[i]] >= 0;
        if (all) {
            for (size_t i = 0; i < len; i++) fipsc_id_push(ids, t->byte_token[(unsigned char)p[i]]);
            return FIPSC_OK;
        }
    }
    if (t->unk_id < 0)
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "%s: '%.*s' is not in the vocabulary and the tokenizer has no unknown token",
                          t->path, (int)(len < 40 ? len : 40), p);
    fipsc_id_push(ids, t->unk_id);
    return FIPSC_OK;
}

fipsc_status fipsc_bpe_piece(const fipsc_tokenizer *t, fipsc_span piece, fipsc_bpe_work *w, fipsc_id_list *ids,
                             fipsc_error *err)
{
    if (t->ignore_merges) {
        int32_t id = fipsc_token_map_get(&t->ids, piece.p, piece.len);
        if (id >= 0) {
            fipsc_id_push(ids, id);
            return FIPSC_OK;
        }
    }
    if (piece.len > (size_t)INT32_MAX / 2) return fipsc_fail(err, FIPSC_ERR_ARG, "a piece of %zu bytes is too long for BPE", piece.len);
    if (w->sym_cap < piece.len) { /* at most one symbol per byte */
        free(w->sym);
        w->sym = malloc(piece.len * sizeof *w->sym);
        w->sym_cap = w->sym ? piece.len : 0;
        if (!w->sym) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for BPE on %zu bytes", piece.len);
    }
    int32_t n_sym = 0;
    for (size_t i = 0; i < piece.len;) {
        size_t start = i;
        fipsc_utf8_next((const unsigned char *)piece.p, piece.len, &i);
        w->sym[n_sym] = (struct bpe_symbol){start, i - start, fipsc_token_map_get(&t->ids, piece.p + start, i - start),
                                            n_sym - 1, -1, true};
        if (n_sym > 0) w->sym[n_sym - 1].next = n_sym;
        n_sym++;
    }
    size_t queued = 0;
    bool ok = true;
    for (int32_t s = 0; s + 1 < n_sym && ok; s++) ok = consider(t, w, &queued, s);
    while (ok && queued) {
        struct bpe_candidate c = heap_pop(w, &queued);
        struct bpe_symbol *a = &w->sym[c.left], *b = &w->sym[c.right];
        if (!a->alive || !b->alive || a->next != c.right || a->id != c.left_id || b->id != c.right_id) continue;
        a->id = c.merged;
        a->len += b->len;
        b->alive = false;
        a->next = b->next;
        if (b->next >= 0) w->sym[b->next].prev = c.left;
        ok = consider(t, w, &queued, a->prev) && consider(t, w, &queued, c.left);
    }
    if (!ok) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for BPE on %zu bytes", piece.len);
    for (int32_t s = 0; s >= 0 && s < n_sym; s = w->sym[s].next) {
        const struct bpe_symbol *y = &w->sym[s];
        if (y->id >= 0) fipsc_id_push(ids, y->id);
        else {
            fipsc_status st = emit_unknown(t, piece.p + y->start, y->len, ids, err);
            if (st) return st;
        }
    }
    return FIPSC_OK;
}
