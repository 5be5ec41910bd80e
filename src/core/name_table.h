/* A hash table from borrowed NUL-terminated names to int indices (open addressing, linear
 * probing, FNV-1a). Used to detect duplicate names and to look tensors up by name in O(1).
 * The table never copies keys: they must outlive it. Library-internal. */
#ifndef FIPSC_IO_NAME_TABLE_H
#define FIPSC_IO_NAME_TABLE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct fipsc_name_table {
    const char **keys; /* NULL = empty slot */
    int *values;
    size_t cap;        /* a power of two, or 0 before the first insertion */
    size_t count;
} fipsc_name_table;

/* Returns the value stored under key, or -1. */
int fipsc_name_table_get(const fipsc_name_table *t, const char *key);

/* Inserts key -> value (value >= 0) unless key is present. Returns true on insertion; false when
 * the key exists (*existing gets its value) or memory ran out (*existing = -1). */
bool fipsc_name_table_insert(fipsc_name_table *t, const char *key, int value, int *existing);

void fipsc_name_table_free(fipsc_name_table *t);

#endif
