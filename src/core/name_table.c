/* Name -> index hash table (see name_table.h). */
#include "core/name_table.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t hash_name(const char *s)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a, 64-bit */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

/* Slot holding key, or the empty slot where it would go. cap must be a non-zero power of two
 * with at least one empty slot (the load factor stays below 1/2). */
static size_t find_slot(const char *const *keys, size_t cap, const char *key)
{
    size_t i = (size_t)hash_name(key) & (cap - 1);
    while (keys[i] && strcmp(keys[i], key) != 0) i = (i + 1) & (cap - 1);
    return i;
}

int fipsc_name_table_get(const fipsc_name_table *t, const char *key)
{
    if (t->cap == 0) return -1;
    size_t i = find_slot(t->keys, t->cap, key);
    return t->keys[i] ? t->values[i] : -1;
}

static bool grow(fipsc_name_table *t)
{
    size_t cap = t->cap ? t->cap * 2 : 16;
    const char **keys = calloc(cap, sizeof *keys);
    int *values = calloc(cap, sizeof *values);
    if (!keys || !values) {
        free(keys);
        free(values);
        return false;
    }
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->keys[i]) continue;
        size_t j = find_slot(keys, cap, t->keys[i]);
        keys[j] = t->keys[i];
        values[j] = t->values[i];
    }
    free(t->keys);
    free(t->values);
    t->keys = keys;
    t->values = values;
    t->cap = cap;
    return true;
}

bool fipsc_name_table_insert(fipsc_name_table *t, const char *key, int value, int *existing)
{
    if ((t->count + 1) * 2 > t->cap && !grow(t)) {
        *existing = -1;
        return false;
    }
    size_t i = find_slot(t->keys, t->cap, key);
    if (t->keys[i]) {
        *existing = t->values[i];
        return false;
    }
    t->keys[i] = key;
    t->values[i] = value;
    t->count++;
    return true;
}

void fipsc_name_table_free(fipsc_name_table *t)
{
    free(t->keys);
    free(t->values);
    memset(t, 0, sizeof *t);
}
