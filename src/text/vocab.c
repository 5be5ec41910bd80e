/* The tokenizer's two lookup tables: token string -> id (Llama-3: 128,256 entries; Gemma-3:
 * 262,145) and BPE merge (left id, right id) -> (rank, merged id) (Gemma-3: 514,906). Both are
 * open-addressing tables with linear probing at a load factor of at most 1/2, grown by
 * doubling. */
#include <stdlib.h>
#include <string.h>

#include "text/tokenizer_internal.h"

/* FNV-1a, 64-bit: token strings are short, and this is fast and well spread for them. */
uint64_t fipsc_text_hash(const char *p, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ull;
    }
    return h;
}

int32_t fipsc_token_map_get(const fipsc_token_map *m, const char *p, size_t len)
{
    if (!m->slots) return -1;
    uint64_t h = fipsc_text_hash(p, len);
    for (size_t i = h & m->mask;; i = (i + 1) & m->mask) {
        const struct token_slot *s = &m->slots[i];
        if (s->id < 0) return -1;
        if (s->hash == h && s->key.len == len && memcmp(s->key.p, p, len) == 0) return s->id;
    }
}

static fipsc_status token_map_grow(fipsc_token_map *m, fipsc_error *err)
{
    size_t cap = m->slots ? (m->mask + 1) * 2 : 1024;
    struct token_slot *slots = malloc(cap * sizeof *slots);
    if (!slots) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for a vocabulary of %zu tokens", m->count);
    for (size_t i = 0; i < cap; i++) slots[i].id = -1;
    if (m->slots)
        for (size_t j = 0; j <= m->mask; j++) {
            if (m->slots[j].id < 0) continue;
            size_t i = m->slots[j].hash & (cap - 1);
            while (slots[i].id >= 0) i = (i + 1) & (cap - 1);
            slots[i] = m->slots[j];
        }
    free(m->slots);
    m->slots = slots;
    m->mask = cap - 1;
    return FIPSC_OK;
}

fipsc_status fipsc_token_map_set(fipsc_token_map *m, fipsc_span key, int32_t id, fipsc_error *err)
{
    if (!m->slots || 2 * (m->count + 1) > m->mask + 1) {
        fipsc_status st = token_map_grow(m, err);
        if (st) return st;
    }
    uint64_t h = fipsc_text_hash(key.p, key.len);
    size_t i = h & m->mask;
    for (; m->slots[i].id >= 0; i = (i + 1) & m->mask) {
        struct token_slot *s = &m->slots[i];
        if (s->hash == h && s->key.len == key.len && memcmp(s->key.p, key.p, key.len) == 0) {
            s->id = id;
            return FIPSC_OK;
        }
    }
    m->slots[i] = (struct token_slot){.hash = h, .key = key, .id = id};
    m->count++;
    return FIPSC_OK;
}

void fipsc_token_map_free(fipsc_token_map *m)
{
    free(m->slots);
    *m = (fipsc_token_map){0};
}

/* A 64-bit mix (splitmix64's finaliser): pair keys are dense small integers. */
static uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t pair_key(int32_t left, int32_t right) { return (uint64_t)(uint32_t)left << 32 | (uint32_t)right; }

bool fipsc_merge_map_get(const fipsc_merge_map *m, int32_t left, int32_t right, int32_t *rank, int32_t *merged)
{
    if (!m->slots || left < 0 || right < 0) return false;
    uint64_t key = pair_key(left, right);
    for (size_t i = mix(key) & m->mask;; i = (i + 1) & m->mask) {
        const struct merge_slot *s = &m->slots[i];
        if (s->key == UINT64_MAX) return false;
        if (s->key == key) {
            *rank = s->rank;
            *merged = s->merged;
            return true;
        }
    }
}

static fipsc_status merge_map_grow(fipsc_merge_map *m, fipsc_error *err)
{
    size_t cap = m->slots ? (m->mask + 1) * 2 : 1024;
    struct merge_slot *slots = malloc(cap * sizeof *slots);
    if (!slots) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for %zu BPE merges", m->count);
    for (size_t i = 0; i < cap; i++) slots[i].key = UINT64_MAX;
    if (m->slots)
        for (size_t j = 0; j <= m->mask; j++) {
            if (m->slots[j].key == UINT64_MAX) continue;
            size_t i = mix(m->slots[j].key) & (cap - 1);
            while (slots[i].key != UINT64_MAX) i = (i + 1) & (cap - 1);
            slots[i] = m->slots[j];
        }
    free(m->slots);
    m->slots = slots;
    m->mask = cap - 1;
    return FIPSC_OK;
}

fipsc_status fipsc_merge_map_add(fipsc_merge_map *m, int32_t left, int32_t right, int32_t rank, int32_t merged,
                                 fipsc_error *err)
{
    if (!m->slots || 2 * (m->count + 1) > m->mask + 1) {
        fipsc_status st = merge_map_grow(m, err);
        if (st) return st;
    }
    uint64_t key = pair_key(left, right);
    size_t i = mix(key) & m->mask;
    for (; m->slots[i].key != UINT64_MAX; i = (i + 1) & m->mask)
        if (m->slots[i].key == key) { /* listed twice: the later rank wins, as in the client's Map */
            m->slots[i].rank = rank;
            m->slots[i].merged = merged;
            return FIPSC_OK;
        }
    m->slots[i] = (struct merge_slot){.key = key, .rank = rank, .merged = merged};
    m->count++;
    return FIPSC_OK;
}

void fipsc_merge_map_free(fipsc_merge_map *m)
{
    free(m->slots);
    *m = (fipsc_merge_map){0};
}
