/* The Universal Sentence Encoder Lite's SentencePiece unigram tokenizer (see
 * src/formats/sentencepiece.h for the algorithm and the client's quirks it reproduces).
 *
 * The vocabulary lives in a trie over code points. Its edges are one open-addressing hash table
 * keyed by (parent node, code point), so a prefix search costs one probe per code point. */
#include "formats/sentencepiece.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <unicode/utf8.h>

#include "formats/nfkc.h"

#define SEPARATOR 0x2581u /* ▁ LOWER ONE EIGHTH BLOCK: SentencePiece's word-boundary mark */

typedef struct trie_node {
    bool end;     /* a piece ends here */
    int id;       /* its id (the last vocabulary entry with this text) */
    double score; /* its score (null in the JSON -> 0) */
} trie_node;

typedef struct trie_edge {
    uint64_t key; /* (parent << 21 | code point) + 1; 0 = empty slot */
    int child;
} trie_edge;

struct fipsc_sp_tokenizer {
    int n_pieces;
    char **pieces;    /* UTF-8 text of every id */
    int *utf16_len;   /* String.length of every piece in JavaScript */
    trie_node *nodes; /* nodes[0] is the root */
    int n_nodes, cap_nodes;
    trie_edge *edges; /* hash table, capacity a power of two */
    size_t cap_edges, n_edges;
};

/* ------------------------------------------------------------------ the trie */

static uint64_t edge_key(int parent, uint32_t cp) { return (((uint64_t)parent << 21) | cp) + 1; }

static size_t edge_slot(uint64_t key, size_t cap)
{
    /* splitmix64 finaliser: spreads consecutive code points over the table */
    uint64_t h = key;
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return (size_t)h & (cap - 1);
}

static int trie_child(const fipsc_sp_tokenizer *t, int parent, uint32_t cp)
{
    uint64_t key = edge_key(parent, cp);
    for (size_t i = edge_slot(key, t->cap_edges);; i = (i + 1) & (t->cap_edges - 1)) {
        if (t->edges[i].key == key) return t->edges[i].child;
        if (t->edges[i].key == 0) return -1;
    }
}

static fipsc_status trie_grow_edges(fipsc_sp_tokenizer *t, fipsc_error *err)
{
    size_t cap = t->cap_edges ? 2 * t->cap_edges : 1024;
    trie_edge *e = calloc(cap, sizeof *e);
    if (!e) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory building the vocabulary trie");
    for (size_t i = 0; i < t->cap_edges; i++) {
        if (!t->edges[i].key) continue;
        size_t j = edge_slot(t->edges[i].key, cap);
        while (e[j].key) j = (j + 1) & (cap - 1);
        e[j] = t->edges[i];
    }
    free(t->edges);
    t->edges = e;
    t->cap_edges = cap;
    return FIPSC_OK;
}

static fipsc_status trie_new_node(fipsc_sp_tokenizer *t, int *out, fipsc_error *err)
{
    if (t->n_nodes == t->cap_nodes) {
        int cap = t->cap_nodes ? 2 * t->cap_nodes : 1024;
        trie_node *n = realloc(t->nodes, (size_t)cap * sizeof *n);
        if (!n) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory building the vocabulary trie");
        t->nodes = n;
        t->cap_nodes = cap;
    }
    t->nodes[t->n_nodes] = (trie_node){false, 0, 0.0};
    *out = t->n_nodes++;
    return FIPSC_OK;
}

/* Inserts a piece given as code points; a repeated piece takes the later id and score. */
static fipsc_status trie_insert(fipsc_sp_tokenizer *t, const uint32_t *cps, int n, int id,
                                double score, fipsc_error *err)
{
    int node = 0;
    fipsc_status st;
    for (int i = 0; i < n; i++) {
        int child = trie_child(t, node, cps[i]);
        if (child < 0) {
            if ((t->n_edges + 1) * 2 > t->cap_edges && (st = trie_grow_edges(t, err))) return st;
            if ((st = trie_new_node(t, &child, err))) return st;
            uint64_t key = edge_key(node, cps[i]);
            size_t j = edge_slot(key, t->cap_edges);
            while (t->edges[j].key) j = (j + 1) & (t->cap_edges - 1);
            t->edges[j] = (trie_edge){key, child};
            t->n_edges++;
        }
        node = child;
    }
    if (n > 0) t->nodes[node] = (trie_node){true, id, score};
    return FIPSC_OK;
}

/* ------------------------------------------------------------------ loading */

/* Code points of a UTF-8 piece; false when it is not well-formed UTF-8. */
static bool decode_piece(const char *s, uint32_t *cps, int *n, int *utf16)
{
    int32_t len = (int32_t)strlen(s), i = 0;
    *n = 0;
    *utf16 = 0;
    while (i < len) {
        UChar32 c;
        U8_NEXT(s, i, len, c);
        if (c < 0) return false;
        cps[(*n)++] = (uint32_t)c;
        *utf16 += c > 0xFFFF ? 2 : 1;
    }
    return true;
}

void fipsc_sp_free(fipsc_sp_tokenizer *t)
{
    if (!t) return;
    for (int i = 0; i < t->n_pieces; i++) free(t->pieces[i]);
    free(t->pieces);
    free(t->utf16_len);
    free(t->nodes);
    free(t->edges);
    free(t);
}

fipsc_status fipsc_sp_load_vocab(const char *json_text, size_t len, const char *origin,
                                 int reserved, fipsc_sp_tokenizer **out, fipsc_error *err)
{
    *out = NULL;
    cJSON *root = cJSON_ParseWithLength(json_text, len);
    if (!root) return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: not valid JSON", origin);
    fipsc_status st = FIPSC_OK;
    fipsc_sp_tokenizer *t = calloc(1, sizeof *t);
    uint32_t *cps = NULL;
    int n = cJSON_IsArray(root) ? cJSON_GetArraySize(root) : -1;
    if (!t) {
        st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory loading %s", origin);
        goto done;
    }
    if (n < 0) {
        st = fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: expected a JSON array of [piece, score] pairs", origin);
        goto done;
    }
    if (reserved < 0 || n <= reserved) {
        st = fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: %d entries, but %d are reserved: no pieces to tokenize with",
                        origin, n, reserved);
        goto done;
    }
    t->pieces = calloc((size_t)n, sizeof *t->pieces);
    t->utf16_len = calloc((size_t)n, sizeof *t->utf16_len);
    if (!t->pieces || !t->utf16_len || (st = trie_grow_edges(t, err))) {
        if (!st) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory loading %s", origin);
        goto done;
    }
    int root_node;
    if ((st = trie_new_node(t, &root_node, err))) goto done;
    t->n_pieces = n;
    int i = 0;
    const cJSON *entry;
    cJSON_ArrayForEach(entry, root) {
        const cJSON *piece = cJSON_GetArrayItem(entry, 0), *score = cJSON_GetArrayItem(entry, 1);
        if (!cJSON_IsArray(entry) || cJSON_GetArraySize(entry) != 2 || !cJSON_IsString(piece) ||
            !(cJSON_IsNumber(score) || cJSON_IsNull(score))) {
            st = fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: entry %d is not a [piece, score] pair", origin, i);
            goto done;
        }
        const char *text = cJSON_GetStringValue(piece);
        if (!(t->pieces[i] = strdup(text))) {
            st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory loading %s", origin);
            goto done;
        }
        free(cps);
        if (!(cps = malloc((strlen(text) + 1) * sizeof *cps))) {
            st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory loading %s", origin);
            goto done;
        }
        int ncp;
        if (!decode_piece(text, cps, &ncp, &t->utf16_len[i])) {
            st = fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: piece %d is not valid UTF-8", origin, i);
            goto done;
        }
        if (i >= reserved &&
            (st = trie_insert(t, cps, ncp, i, cJSON_IsNull(score) ? 0.0 : score->valuedouble, err)))
            goto done;
        i++;
    }
    /* Backtracking steps back by the unknown piece's length: zero would never terminate. */
    if (t->utf16_len[FIPSC_SP_UNKNOWN_ID] == 0)
        st = fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: the unknown piece (entry 0) is empty", origin);
done:
    free(cps);
    cJSON_Delete(root);
    if (st) {
        fipsc_sp_free(t);
        return st;
    }
    *out = t;
    return FIPSC_OK;
}

int fipsc_sp_vocab_size(const fipsc_sp_tokenizer *t) { return t->n_pieces; }

const char *fipsc_sp_piece(const fipsc_sp_tokenizer *t, int id)
{
    return id >= 0 && id < t->n_pieces ? t->pieces[id] : NULL;
}

/* ------------------------------------------------------------------ encoding */

/* Step 1: NFKC, then "▁" + text with spaces turned into "▁" (nothing for an empty result). */
static fipsc_status normalize_symbols(const char *text, size_t len, uint32_t **out, size_t *n,
                                      fipsc_error *err)
{
    uint32_t *cps;
    size_t k;
    fipsc_status st = fipsc_nfkc_codepoints(text, len, &cps, &k, err);
    if (st) return st;
    uint32_t *sym = malloc((k + 1) * sizeof *sym);
    if (!sym) {
        free(cps);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory tokenizing %zu bytes", len);
    }
    size_t m = 0;
    if (k > 0) sym[m++] = SEPARATOR;
    for (size_t i = 0; i < k; i++) sym[m++] = cps[i] == 0x20 ? SEPARATOR : cps[i];
    free(cps);
    *out = sym;
    *n = m;
    return FIPSC_OK;
}

fipsc_status fipsc_sp_normalize(const char *text, size_t len, char **out, fipsc_error *err)
{
    uint32_t *sym;
    size_t n;
    fipsc_status st = normalize_symbols(text, len, &sym, &n, err);
    if (st) return st;
    char *s = malloc(4 * n + 1);
    if (!s) {
        free(sym);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory normalising text");
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) U8_APPEND_UNSAFE(s, k, sym[i]);
    s[k] = '\0';
    free(sym);
    *out = s;
    return FIPSC_OK;
}

/* One lattice edge: the piece `id` covers symbols [start, end). */
typedef struct candidate {
    int start, end, id;
    double score;
} candidate;

/* Step 2: every piece starting at every position, in order of start then length; the unknown
 * piece where nothing starts. */
static fipsc_status build_lattice(const fipsc_sp_tokenizer *t, const uint32_t *sym, int n,
                                  candidate **out, int *n_out, fipsc_error *err)
{
    int cap = 4 * n + 16, k = 0;
    candidate *c = malloc((size_t)cap * sizeof *c);
    if (!c) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory tokenizing %d symbols", n);
    for (int i = 0; i < n; i++) {
        int found = 0;
        for (int j = i, node = trie_child(t, 0, sym[i]); node >= 0;) {
            if (t->nodes[node].end) {
                if (k == cap) {
                    cap *= 2;
                    candidate *g = realloc(c, (size_t)cap * sizeof *g);
                    if (!g) {
                        free(c);
                        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory tokenizing %d symbols", n);
                    }
                    c = g;
                }
                c[k++] = (candidate){i, j + 1, t->nodes[node].id, t->nodes[node].score};
                found = 1;
            }
            if (++j >= n) break;
            node = trie_child(t, node, sym[j]);
        }
        if (!found) {
            if (k == cap) {
                cap *= 2;
                candidate *g = realloc(c, (size_t)cap * sizeof *g);
                if (!g) {
                    free(c);
                    return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory tokenizing %d symbols", n);
                }
                c = g;
            }
            c[k++] = (candidate){i, i + 1, FIPSC_SP_UNKNOWN_ID, 0.0};
        }
    }
    *out = c;
    *n_out = k;
    return FIPSC_OK;
}

fipsc_status fipsc_sp_encode(const fipsc_sp_tokenizer *t, const char *text, size_t len,
                             int32_t **ids_out, int *n_ids, fipsc_error *err)
{
    *ids_out = NULL;
    *n_ids = 0;
    uint32_t *sym;
    size_t nsym;
    fipsc_status st = normalize_symbols(text, len, &sym, &nsym, err);
    if (st) return st;
    if (nsym > (size_t)INT32_MAX / 8) {
        free(sym);
        return fipsc_fail(err, FIPSC_ERR_ARG, "text of %zu symbols is too long to tokenize", nsym);
    }
    const int n = (int)nsym;
    candidate *cand = NULL, *by_end = NULL;
    int n_cand = 0;
    int *first = NULL, *fill = NULL, *words = NULL;
    double *best = NULL;
    int32_t *ids = NULL;
    if ((st = build_lattice(t, sym, n, &cand, &n_cand, err))) goto done;
    /* Stable counting sort of the edges by end: each end's edges stay in order of start. */
    first = calloc((size_t)n + 2, sizeof *first);
    fill = calloc((size_t)n + 1, sizeof *fill);
    by_end = malloc(((size_t)n_cand + 1) * sizeof *by_end);
    words = calloc((size_t)n + 1, sizeof *words);
    best = calloc((size_t)n + 1, sizeof *best);
    ids = malloc(((size_t)n + 1) * sizeof *ids);
    if (!first || !fill || !by_end || !words || !best || !ids) {
        st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory tokenizing %d symbols", n);
        goto done;
    }
    for (int i = 0; i < n_cand; i++) first[cand[i].end + 1]++;
    for (int e = 0; e <= n; e++) first[e + 1] += first[e];
    for (int i = 0; i < n_cand; i++) by_end[first[cand[i].end] + fill[cand[i].end]++] = cand[i];

    /* Step 3: Viterbi, exactly the client's comparison (0 = unset, ties to the later edge). */
    for (int e = 1; e <= n; e++) {
        for (int i = first[e]; i < first[e + 1]; i++) {
            double s = by_end[i].score + best[by_end[i].start];
            if (best[e] == 0.0 || s >= best[e]) {
                best[e] = s;
                words[e] = by_end[i].id;
            }
        }
    }
    /* Step 4: backtrack by the chosen pieces' UTF-16 lengths; step 5: merge unknown runs. */
    int k = 0;
    for (int pos = n; pos > 0; pos -= t->utf16_len[words[pos]]) {
        int id = words[pos];
        if (!(id == FIPSC_SP_UNKNOWN_ID && k > 0 && ids[k - 1] == FIPSC_SP_UNKNOWN_ID)) ids[k++] = id;
    }
    for (int i = 0; i < k / 2; i++) {
        int32_t tmp = ids[i];
        ids[i] = ids[k - 1 - i];
        ids[k - 1 - i] = tmp;
    }
    *ids_out = ids;
    *n_ids = k;
    ids = NULL;
done:
    free(sym);
    free(cand);
    free(by_end);
    free(first);
    free(fill);
    free(words);
    free(best);
    free(ids);
    return st;
}
