/* Reading tokenizer.json and tokenizer_config.json into a fipsc_tokenizer (tokenizer_internal.h).
 *
 * cJSON parses the file (Gemma-3's is 33 MB: 262,144 tokens, 514,906 merges); every string the
 * tokenizer keeps is copied into one arena, and the tree is freed. Every component is checked
 * against what src/text/ implements, and anything else is refused by name ("pre_tokenizer type
 * 'Metaspace' is not supported"), never ignored: a tokenizer that silently skipped a step would
 * give plausible but wrong ids. */
#include <cjson/cJSON.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/file.h"
#include "core/path.h"
#include "core/utf8.h"
#include "text/tokenizer_internal.h"

#define MAX_IDS (1 << 24)

typedef struct loader {
    fipsc_tokenizer *t;
    const char *origin;
    fipsc_error *err;
    size_t merges_at, n_merges; /* where load_model put the merges' strings in the arena */
    bool has_unk;
} loader;

static fipsc_status bad(loader *L, const char *what)
{
    return fipsc_fail(L->err, FIPSC_ERR_FORMAT, "%s: %s", L->origin, what);
}

static fipsc_status unsupported(loader *L, const char *part, const char *type)
{
    return fipsc_fail(L->err, FIPSC_ERR_UNSUPPORTED, "%s: %s type '%s' is not supported (fipsc implements "
                      "BPE models with NFC/NFD/NFKC/NFKD, Replace, Prepend, Lowercase normalizers, Split and "
                      "ByteLevel pre-tokenizers, TemplateProcessing and ByteLevel post-processors, ByteLevel, "
                      "Replace, ByteFallback, Fuse and Strip decoders)", L->origin, part, type);
}

/* Copies a string into the arena; the span is fixed up (arena offset -> pointer) by finish_spans
 * once the arena has stopped moving. Until then span.p holds the offset. */
static fipsc_span keep(fipsc_tokenizer *t, const char *s, size_t len)
{
    size_t off = t->arena.len;
    fipsc_bytes_put(&t->arena, s, len);
    fipsc_bytes_put(&t->arena, "", 1);
    return (fipsc_span){(const char *)(uintptr_t)off, len};
}

static void fix(const fipsc_tokenizer *t, fipsc_span *s)
{
    if (s->len || s->p) s->p = t->arena.p + (uintptr_t)s->p;
}

static const char *type_of(const cJSON *obj)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(obj, "type");
    return cJSON_IsString(type) ? type->valuestring : NULL;
}

static bool flag(const cJSON *obj, const char *key, bool dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

/* A pattern object {"String": s} or {"Regex": r}: *is_regex tells which. */
static fipsc_status pattern_of(loader *L, const cJSON *obj, const char *part, const char **s, bool *is_regex)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(obj, "pattern");
    const cJSON *str = cJSON_GetObjectItemCaseSensitive(p, "String");
    const cJSON *re = cJSON_GetObjectItemCaseSensitive(p, "Regex");
    if (cJSON_IsString(str)) *s = str->valuestring, *is_regex = false;
    else if (cJSON_IsString(re)) *s = re->valuestring, *is_regex = true;
    else return fipsc_fail(L->err, FIPSC_ERR_FORMAT, "%s: %s has no pattern {\"String\"|\"Regex\": ...}", L->origin, part);
    return FIPSC_OK;
}

static const char *string_key(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static fipsc_status load_normalizer(loader *L, const cJSON *n)
{
    fipsc_tokenizer *t = L->t;
    if (!n || cJSON_IsNull(n)) return FIPSC_OK;
    const char *type = type_of(n);
    if (!type) return bad(L, "a normalizer without a type");
    if (!strcmp(type, "Sequence")) {
        const cJSON *item;
        cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(n, "normalizers")) {
            fipsc_status st = load_normalizer(L, item);
            if (st) return st;
        }
        return FIPSC_OK;
    }
    if (t->n_norm == FIPSC_MAX_STEPS) return bad(L, "more normalizer steps than fipsc supports (16)");
    fipsc_norm_step *s = &t->norm[t->n_norm];
    *s = (fipsc_norm_step){0};
    if (!strcmp(type, "NFC")) s->kind = FIPSC_NORM_NFC;
    else if (!strcmp(type, "NFD")) s->kind = FIPSC_NORM_NFD;
    else if (!strcmp(type, "NFKC")) s->kind = FIPSC_NORM_NFKC;
    else if (!strcmp(type, "NFKD")) s->kind = FIPSC_NORM_NFKD;
    else if (!strcmp(type, "Lowercase")) s->kind = FIPSC_NORM_LOWERCASE;
    else if (!strcmp(type, "Prepend")) {
        const char *p = string_key(n, "prepend");
        if (!p) return bad(L, "normalizer Prepend without a 'prepend' string");
        s->kind = FIPSC_NORM_PREPEND;
        s->to = keep(t, p, strlen(p));
    } else if (!strcmp(type, "Replace")) {
        const char *p = NULL, *content = string_key(n, "content");
        bool is_regex = false;
        fipsc_status st = pattern_of(L, n, "normalizer Replace", &p, &is_regex);
        if (st) return st;
        if (is_regex) return unsupported(L, "normalizer Replace with a Regex pattern: normalizer", "Replace/Regex");
        if (!content) return bad(L, "normalizer Replace without a 'content' string");
        if (!*p) return bad(L, "normalizer Replace with an empty pattern");
        s->kind = FIPSC_NORM_REPLACE;
        s->from = keep(t, p, strlen(p));
        s->to = keep(t, content, strlen(content));
    } else {
        return unsupported(L, "normalizer", type);
    }
    t->n_norm++;
    return FIPSC_OK;
}

static fipsc_status load_pre_tokenizer(loader *L, const cJSON *n)
{
    fipsc_tokenizer *t = L->t;
    if (!n || cJSON_IsNull(n)) return FIPSC_OK;
    const char *type = type_of(n);
    if (!type) return bad(L, "a pre_tokenizer without a type");
    if (!strcmp(type, "Sequence")) {
        const cJSON *item;
        cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(n, "pretokenizers")) {
            fipsc_status st = load_pre_tokenizer(L, item);
            if (st) return st;
        }
        return FIPSC_OK;
    }
    if (t->n_pre == FIPSC_MAX_STEPS) return bad(L, "more pre_tokenizer steps than fipsc supports (16)");
    fipsc_pre_step *s = &t->pre[t->n_pre];
    *s = (fipsc_pre_step){0};
    fipsc_status st = FIPSC_OK;
    if (!strcmp(type, "Split")) {
        const char *p = NULL;
        bool is_regex = false;
        st = pattern_of(L, n, "pre_tokenizer Split", &p, &is_regex);
        if (st) return st;
        if (is_regex && !t->split_regex.len) t->split_regex = keep(t, p, strlen(p));
        const char *behavior = string_key(n, "behavior");
        s->kind = FIPSC_PRE_SPLIT;
        s->mode = flag(n, "invert", false) ? FIPSC_SPLIT_INVERT
                  : behavior && !strcasecmp(behavior, "removed") ? FIPSC_SPLIT_REMOVED
                                                                  : FIPSC_SPLIT_ISOLATED;
        st = fipsc_pre_compile(p, strlen(p), !is_regex, &s->regex, L->err);
    } else if (!strcmp(type, "ByteLevel")) {
        s->kind = FIPSC_PRE_BYTE_LEVEL;
        s->add_prefix_space = flag(n, "add_prefix_space", false);
        if (flag(n, "use_regex", true)) {
            static const char gpt2[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
            st = fipsc_pre_compile(gpt2, sizeof gpt2 - 1, false, &s->regex, L->err);
        }
    } else {
        return unsupported(L, "pre_tokenizer", type);
    }
    if (st) return fipsc_fail_context(L->err, "%s: pre_tokenizer %s", L->origin, type);
    t->n_pre++;
    return FIPSC_OK;
}

static fipsc_status load_decoder(loader *L, const cJSON *n)
{
    fipsc_tokenizer *t = L->t;
    if (!n || cJSON_IsNull(n)) return FIPSC_OK;
    t->has_decoder = true;
    const char *type = type_of(n);
    if (!type) return bad(L, "a decoder without a type");
    if (!strcmp(type, "Sequence")) {
        const cJSON *item;
        cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(n, "decoders")) {
            fipsc_status st = load_decoder(L, item);
            if (st) return st;
        }
        return FIPSC_OK;
    }
    if (t->n_dec == FIPSC_MAX_STEPS) return bad(L, "more decoder steps than fipsc supports (16)");
    fipsc_dec_step *s = &t->dec[t->n_dec];
    *s = (fipsc_dec_step){0};
    if (!strcmp(type, "ByteLevel")) s->kind = FIPSC_DEC_BYTE_LEVEL;
    else if (!strcmp(type, "ByteFallback")) s->kind = FIPSC_DEC_BYTE_FALLBACK;
    else if (!strcmp(type, "Fuse")) s->kind = FIPSC_DEC_FUSE;
    else if (!strcmp(type, "Replace")) {
        const char *p = NULL, *content = string_key(n, "content");
        bool is_regex = false;
        fipsc_status st = pattern_of(L, n, "decoder Replace", &p, &is_regex);
        if (st) return st;
        if (is_regex) return unsupported(L, "decoder", "Replace/Regex");
        if (!content || !*p) return bad(L, "decoder Replace needs a non-empty pattern and a 'content' string");
        s->kind = FIPSC_DEC_REPLACE;
        s->from = keep(t, p, strlen(p));
        s->to = keep(t, content, strlen(content));
    } else if (!strcmp(type, "Strip")) {
        const char *content = string_key(n, "content");
        const cJSON *start = cJSON_GetObjectItemCaseSensitive(n, "start");
        const cJSON *stop = cJSON_GetObjectItemCaseSensitive(n, "stop");
        if (!content || strlen(content) != 1 || !cJSON_IsNumber(start) || !cJSON_IsNumber(stop) ||
            start->valuedouble < 0 || stop->valuedouble < 0 || start->valuedouble > 1e6 || stop->valuedouble > 1e6)
            return bad(L, "decoder Strip needs a one-character ASCII 'content' and counts 'start', 'stop'");
        s->kind = FIPSC_DEC_STRIP;
        s->strip_char = content[0];
        s->strip_start = start->valueint;
        s->strip_stop = stop->valueint;
    } else {
        return unsupported(L, "decoder", type);
    }
    t->n_dec++;
    return FIPSC_OK;
}

/* An id in a tokenizer file: an integer in [0, MAX_IDS). */
static bool id_ok(const cJSON *v, int32_t *id)
{
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble >= MAX_IDS || v->valuedouble != (int32_t)v->valuedouble)
        return false;
    *id = (int32_t)v->valuedouble;
    return true;
}

static fipsc_status set_token(loader *L, const char *s, size_t len, int32_t id)
{
    fipsc_tokenizer *t = L->t;
    if (id >= t->n_ids) return bad(L, "token id beyond the counted range");
    t->token_of[id] = keep(t, s, len);
    return FIPSC_OK;
}

/* The model: vocabulary, merges and flags. First pass (count) sizes the id table. */
static fipsc_status load_model(loader *L, const cJSON *model, const cJSON *added)
{
    fipsc_tokenizer *t = L->t;
    const char *type = type_of(model);
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (!type && cJSON_IsObject(vocab) && cJSON_IsArray(merges)) type = "BPE";
    if (!type) return bad(L, "the model has no type");
    if (strcmp(type, "BPE")) return unsupported(L, "model", type);
    if (!cJSON_IsObject(vocab) || !cJSON_IsArray(merges)) return bad(L, "BPE model without a 'vocab' object and a 'merges' array");
    const char *eow = string_key(model, "end_of_word_suffix");
    if (eow && *eow) return unsupported(L, "model BPE with end_of_word_suffix: model", "BPE/end_of_word_suffix");
    if (string_key(model, "continuing_subword_suffix")) return unsupported(L, "model", "BPE/continuing_subword_suffix");

    int32_t max_id = -1, id;
    const cJSON *item;
    cJSON_ArrayForEach(item, vocab) {
        if (!id_ok(item, &id)) return fipsc_fail(L->err, FIPSC_ERR_FORMAT, "%s: vocab entry '%.40s' has no valid id", L->origin, item->string);
        if (id > max_id) max_id = id;
    }
    cJSON_ArrayForEach(item, added) {
        if (!id_ok(cJSON_GetObjectItemCaseSensitive(item, "id"), &id) || !string_key(item, "content"))
            return bad(L, "an added_tokens entry without a valid id and content");
        if (id > max_id) max_id = id;
    }
    t->n_ids = max_id + 1;
    t->token_of = calloc((size_t)t->n_ids + 1, sizeof *t->token_of);
    t->is_special = calloc((size_t)t->n_ids + 1, sizeof *t->is_special);
    t->is_added = calloc((size_t)t->n_ids + 1, sizeof *t->is_added);
    t->n_added = (size_t)cJSON_GetArraySize(added);
    t->added = calloc(t->n_added + 1, sizeof *t->added);
    if (!t->token_of || !t->is_special || !t->is_added || !t->added) return fipsc_fail(L->err, FIPSC_ERR_NOMEM, "out of memory for %d tokens", t->n_ids);
    cJSON_ArrayForEach(item, vocab) {
        fipsc_status st = set_token(L, item->string, strlen(item->string), (int32_t)item->valuedouble);
        if (st) return st;
    }
    size_t k = 0;
    cJSON_ArrayForEach(item, added) {
        const char *content = string_key(item, "content");
        if (!*content) return bad(L, "an added token with empty content");
        fipsc_added_token *a = &t->added[k++];
        a->id = (int32_t)cJSON_GetObjectItemCaseSensitive(item, "id")->valuedouble;
        a->special = flag(item, "special", false);
        a->lstrip = flag(item, "lstrip", false);
        a->rstrip = flag(item, "rstrip", false);
        a->content = keep(t, content, strlen(content));
        t->token_of[a->id] = a->content; /* the client's vocab[id] = content */
        t->is_added[a->id] = true;
        if (a->special) t->is_special[a->id] = true;
    }
    const char *unk = string_key(model, "unk_token");
    t->byte_fallback = flag(model, "byte_fallback", false);
    t->ignore_merges = flag(model, "ignore_merges", false);
    t->fuse_unk = flag(model, "fuse_unk", false);

    /* Merges are kept as strings until the arena is final (finish below); here only counted and
     * checked, and split: "a b" (older files; the client keeps the first two space-separated
     * parts) or ["a", "b"]. The two parts and their concatenation go to the arena in a row. */
    size_t m = 0;
    L->merges_at = t->arena.len;
    cJSON_ArrayForEach(item, merges) {
        const char *a, *b;
        size_t la, lb;
        if (cJSON_IsString(item)) {
            a = item->valuestring;
            const char *sp = strchr(a, ' ');
            if (!sp) return fipsc_fail(L->err, FIPSC_ERR_FORMAT, "%s: merge %zu ('%.40s') has no space", L->origin, m, a);
            la = (size_t)(sp - a);
            b = sp + 1;
            const char *sp2 = strchr(b, ' ');
            lb = sp2 ? (size_t)(sp2 - b) : strlen(b);
        } else if (cJSON_IsArray(item) && cJSON_GetArraySize(item) == 2 && cJSON_IsString(item->child) &&
                   cJSON_IsString(item->child->next)) {
            a = item->child->valuestring, b = item->child->next->valuestring;
            la = strlen(a), lb = strlen(b);
        } else {
            return fipsc_fail(L->err, FIPSC_ERR_FORMAT, "%s: merge %zu is neither \"a b\" nor [\"a\", \"b\"]", L->origin, m);
        }
        keep(t, a, la);
        keep(t, b, lb);
        m++;
    }
    L->n_merges = m;
    /* unk goes to the arena right after the merges, where finish() looks for it */
    L->has_unk = unk != NULL;
    if (unk) keep(t, unk, strlen(unk));
    return FIPSC_OK;
}

/* Once the arena no longer moves: spans to pointers, the id map, the merges. */
static fipsc_status finish(loader *L)
{
    size_t merges_at = L->merges_at, n_merges = L->n_merges;
    bool has_unk = L->has_unk;
    fipsc_tokenizer *t = L->t;
    if (t->arena.oom) return fipsc_fail(L->err, FIPSC_ERR_NOMEM, "out of memory reading %s", L->origin);
    for (int i = 0; i < t->n_ids; i++) fix(t, &t->token_of[i]);
    for (size_t i = 0; i < t->n_added; i++) fix(t, &t->added[i].content);
    for (int i = 0; i < t->n_norm; i++) fix(t, &t->norm[i].from), fix(t, &t->norm[i].to);
    for (int i = 0; i < t->n_dec; i++) fix(t, &t->dec[i].from), fix(t, &t->dec[i].to);
    fix(t, &t->split_regex);
    t->merge_list = malloc((n_merges ? n_merges : 1) * 2 * sizeof *t->merge_list);
    if (!t->merge_list) return fipsc_fail(L->err, FIPSC_ERR_NOMEM, "out of memory for %zu merges", n_merges);
    t->n_merges = (int)n_merges;
    fipsc_status st;
    /* the vocabulary first, then the added tokens over it (client: tokens_to_ids.set) */
    for (int i = 0; i < t->n_ids; i++)
        if (t->token_of[i].p && (st = fipsc_token_map_set(&t->ids, t->token_of[i], i, L->err))) return st;
    for (size_t i = 0; i < t->n_added; i++)
        if ((st = fipsc_token_map_set(&t->ids, t->added[i].content, t->added[i].id, L->err))) return st;
    const char *p = t->arena.p + merges_at;
    fipsc_bytes joined = {0};
    for (size_t r = 0; r < n_merges; r++) {
        size_t la = strlen(p);
        const char *a = p;
        p += la + 1;
        size_t lb = strlen(p);
        const char *b = p;
        p += lb + 1;
        int32_t ia = fipsc_token_map_get(&t->ids, a, la), ib = fipsc_token_map_get(&t->ids, b, lb);
        joined.len = 0;
        fipsc_bytes_put(&joined, a, la);
        fipsc_bytes_put(&joined, b, lb);
        int32_t im = joined.oom ? -1 : fipsc_token_map_get(&t->ids, joined.p, joined.len);
        if (ia < 0 || ib < 0 || im < 0) {
            st = fipsc_fail(L->err, FIPSC_ERR_UNSUPPORTED, "%s: merge %zu ('%.30s' '%.30s'): %s is not in the vocabulary "
                            "(fipsc needs both parts and their merge in it)", L->origin, r, a, b,
                            ia < 0 ? "the left part" : ib < 0 ? "the right part" : "the merged token");
            free(joined.p);
            return st;
        }
        t->merge_list[2 * r] = ia;
        t->merge_list[2 * r + 1] = ib;
        if ((st = fipsc_merge_map_add(&t->merges, ia, ib, (int32_t)r, im, L->err))) {
            free(joined.p);
            return st;
        }
    }
    free(joined.p);
    t->unk_id = -1;
    if (has_unk) {
        t->unk_id = fipsc_token_map_get(&t->ids, p, strlen(p));
        if (t->unk_id < 0) return fipsc_fail(L->err, FIPSC_ERR_FORMAT, "%s: unk_token '%.40s' is not in the vocabulary", L->origin, p);
    }
    char name[8];
    for (int b = 0; b < 256; b++) {
        snprintf(name, sizeof name, "<0x%02X>", b);
        t->byte_token[b] = fipsc_token_map_get(&t->ids, name, 6);
    }
    return fipsc_added_trie_build(t, L->err);
}

/* TemplateProcessing's "single" template: the special tokens before and after the sequence. */
static fipsc_status load_post_processor(loader *L, const cJSON *n)
{
    fipsc_tokenizer *t = L->t;
    if (!n || cJSON_IsNull(n)) return FIPSC_OK;
    const char *type = type_of(n);
    if (!type) return bad(L, "a post_processor without a type");
    if (!strcmp(type, "ByteLevel")) return FIPSC_OK; /* offsets only: no ids change */
    if (strcmp(type, "TemplateProcessing")) return unsupported(L, "post_processor", type);
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(n, "single");
    if (!cJSON_IsArray(single)) return bad(L, "TemplateProcessing without a 'single' template");
    bool after = false;
    const cJSON *item;
    cJSON_ArrayForEach(item, single) {
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(item, "SpecialToken");
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(item, "Sequence");
        if (seq) {
            if (after) return bad(L, "TemplateProcessing's 'single' template names the sequence twice");
            after = true;
            continue;
        }
        const char *name = string_key(sp, "id");
        if (!name) return bad(L, "TemplateProcessing item neither SpecialToken {id} nor Sequence");
        int32_t id = fipsc_token_map_get(&t->ids, name, strlen(name));
        if (id < 0) return fipsc_fail(L->err, FIPSC_ERR_FORMAT, "%s: TemplateProcessing's token '%.40s' is not in the vocabulary", L->origin, name);
        int *count = after ? &t->n_post_after : &t->n_post_before;
        int32_t *list = after ? t->post_after : t->post_before;
        if (*count == 8) return bad(L, "TemplateProcessing adds more than 8 tokens on one side");
        list[(*count)++] = id;
    }
    return FIPSC_OK;
}

/* A special token of tokenizer_config.json: "<s>" or {"__type": "AddedToken", "content": "<s>"}. */
static const char *config_token(const cJSON *cfg, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (cJSON_IsString(v)) return v->valuestring;
    return string_key(v, "content");
}

static fipsc_status load_config(loader *L, const cJSON *cfg)
{
    fipsc_tokenizer *t = L->t;
    t->clean_up_spaces = true; /* the client's default when the key is absent */
    t->bos_id = t->eos_id = -1;
    if (!cfg) return FIPSC_OK;
    const char *cls = string_key(cfg, "tokenizer_class");
    if (cls && !strncmp(cls, "LlamaTokenizer", 14) && !flag(cfg, "legacy", true))
        return fipsc_fail(L->err, FIPSC_ERR_UNSUPPORTED, "%s: %s with \"legacy\": false (a Metaspace pre-tokenizer "
                          "in place of the file's normalizer) is not supported", L->origin, cls);
    if (flag(cfg, "remove_space", false)) return unsupported(L, "tokenizer_config option", "remove_space");
    if (flag(cfg, "do_lowercase_and_remove_accent", false))
        return unsupported(L, "tokenizer_config option", "do_lowercase_and_remove_accent");
    const cJSON *clean = cJSON_GetObjectItemCaseSensitive(cfg, "clean_up_tokenization_spaces");
    if (cJSON_IsBool(clean)) t->clean_up_spaces = cJSON_IsTrue(clean);
    const char *bos = config_token(cfg, "bos_token"), *eos = config_token(cfg, "eos_token");
    if (bos) t->bos_id = fipsc_token_map_get(&t->ids, bos, strlen(bos));
    if (eos) t->eos_id = fipsc_token_map_get(&t->ids, eos, strlen(eos));
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(cfg, "additional_special_tokens")) {
        const char *s = cJSON_IsString(item) ? item->valuestring : string_key(item, "content");
        int32_t id = s ? fipsc_token_map_get(&t->ids, s, strlen(s)) : -1;
        if (id >= 0) t->is_special[id] = true;
    }
    return FIPSC_OK;
}

/* Parses text as a JSON object; origin names it in messages. The text must be UTF-8: cJSON passes
 * other bytes through into strings, and every later step (PCRE2, ICU, the byte trie) relies on
 * well-formed UTF-8; its \u escapes cJSON decodes to well-formed UTF-8 or refuses. */
static fipsc_status parse_object(const char *text, size_t len, const char *origin, cJSON **out, fipsc_error *err)
{
    size_t bad = 0;
    *out = NULL;
    if (!fipsc_utf8_valid((const unsigned char *)text, len, &bad))
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: not valid UTF-8 (at byte %zu)", origin, bad);
    *out = cJSON_ParseWithLength(text, len);
    if (!*out) return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: not valid JSON", origin);
    if (!cJSON_IsObject(*out)) {
        cJSON_Delete(*out);
        *out = NULL;
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: not a JSON object", origin);
    }
    return FIPSC_OK;
}

fipsc_status fipsc_tokenizer_parse(const char *json, size_t len, const char *config, size_t config_len,
                                   const char *origin, fipsc_tokenizer **out, fipsc_error *err)
{
    *out = NULL;
    cJSON *root = NULL, *cfg = NULL;
    fipsc_status s = parse_object(json, len, origin, &root, err);
    if (s) return s;
    char config_origin[PATH_MAX + 40];
    snprintf(config_origin, sizeof config_origin, "the tokenizer_config.json beside %s", origin);
    if (config && (s = parse_object(config, config_len, config_origin, &cfg, err))) {
        cJSON_Delete(root);
        return s;
    }
    fipsc_tokenizer *t = calloc(1, sizeof *t);
    if (!t || !(t->path = strdup(origin))) {
        free(t);
        cJSON_Delete(root);
        cJSON_Delete(cfg);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory loading %s", origin);
    }
    loader L = {.t = t, .origin = origin, .err = err};
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (added && !cJSON_IsArray(added)) s = bad(&L, "'added_tokens' is not an array");
    else if (!cJSON_IsObject(model)) s = bad(&L, "no 'model' object");
    if (!s) s = load_normalizer(&L, cJSON_GetObjectItemCaseSensitive(root, "normalizer"));
    if (!s) s = load_pre_tokenizer(&L, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"));
    if (!s) s = load_decoder(&L, cJSON_GetObjectItemCaseSensitive(root, "decoder"));
    if (!s) s = load_model(&L, model, added);
    if (!s) s = finish(&L);
    if (!s) s = load_post_processor(&L, cJSON_GetObjectItemCaseSensitive(root, "post_processor"));
    if (!s) s = load_config(&L, cfg);
    cJSON_Delete(root);
    cJSON_Delete(cfg);
    if (s) {
        fipsc_tokenizer_free(t);
        return s;
    }
    *out = t;
    return FIPSC_OK;
}

fipsc_status fipsc_tokenizer_load(const char *path, fipsc_tokenizer **out, fipsc_error *err)
{
    *out = NULL;
    char file[PATH_MAX], config[PATH_MAX];
    struct stat st;
    fipsc_status s;
    const char *slash = strrchr(path, '/');
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        if ((s = fipsc_path_join(file, sizeof file, path, "tokenizer.json", err)) ||
            (s = fipsc_path_join(config, sizeof config, path, "tokenizer_config.json", err)))
            return s;
    } else {
        if ((s = fipsc_path_format(file, sizeof file, err, "%s", path))) return s;
        if (!slash) s = fipsc_path_format(config, sizeof config, err, "tokenizer_config.json");
        else s = fipsc_path_format(config, sizeof config, err, "%.*s/tokenizer_config.json", (int)(slash - path), path);
        if (s) return s;
    }
    char *json = NULL, *cfg = NULL;
    size_t len = 0, cfg_len = 0;
    if ((s = fipsc_read_file(file, &json, &len, err))) return s;
    if (stat(config, &st) == 0 && (s = fipsc_read_file(config, &cfg, &cfg_len, err))) {
        free(json);
        return s;
    }
    s = fipsc_tokenizer_parse(json, len, cfg, cfg_len, file, out, err);
    free(json);
    free(cfg);
    return s;
}

void fipsc_tokenizer_free(fipsc_tokenizer *t)
{
    if (!t) return;
    for (int i = 0; i < t->n_pre; i++) pcre2_code_free(t->pre[i].regex);
    fipsc_token_map_free(&t->ids);
    fipsc_merge_map_free(&t->merges);
    free(t->trie.nodes);
    free(t->token_of);
    free(t->is_special);
    free(t->is_added);
    free(t->merge_list);
    free(t->added);
    free(t->arena.p);
    free(t->path);
    free(t);
}
