/* Two string helpers of the tokenizer's steps (tokenizer_internal.h): a list of strings in one
 * store, which the pre-tokenizers produce and the decoders transform, and replacing every
 * occurrence of a string, which the Replace normalizer and decoder and the clean-up share. */
#include <stdlib.h>
#include <string.h>

#include "text/tokenizer_internal.h"

void fipsc_str_list_add(fipsc_str_list *l, const char *p, size_t len)
{
    if (l->oom) return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        size_t *at = realloc(l->at, cap * 2 * sizeof *at);
        if (!at) {
            l->oom = true;
            return;
        }
        l->at = at;
        l->cap = cap;
    }
    l->at[2 * l->n] = l->store.len;
    l->at[2 * l->n + 1] = len;
    l->n++;
    fipsc_bytes_put(&l->store, p, len);
    l->oom |= l->store.oom;
}

fipsc_span fipsc_str_list_item(const fipsc_str_list *l, size_t i)
{
    return (fipsc_span){l->store.p + l->at[2 * i], l->at[2 * i + 1]};
}

void fipsc_str_list_clear(fipsc_str_list *l)
{
    l->n = 0;
    l->store.len = 0;
}

void fipsc_str_list_free(fipsc_str_list *l)
{
    free(l->store.p);
    free(l->at);
    *l = (fipsc_str_list){0};
}

void fipsc_text_replace(fipsc_span in, fipsc_span from, fipsc_span to, fipsc_bytes *out)
{
    size_t i = 0, run = 0;
    while (from.len && i + from.len <= in.len) {
        if (!memcmp(in.p + i, from.p, from.len)) {
            fipsc_bytes_put(out, in.p + run, i - run);
            fipsc_bytes_put(out, to.p, to.len);
            i += from.len;
            run = i;
        } else {
            i++;
        }
    }
    fipsc_bytes_put(out, in.p + run, in.len - run);
}
