/* What a loaded tokenizer is: its vocabulary, special tokens and components, for the commands and
 * for writing it in another form (see tokenizer.h). */
#include <string.h>

#include "text/tokenizer_internal.h"

int fipsc_tokenizer_vocab_size(const fipsc_tokenizer *t) { return t->n_ids; }

void fipsc_tokenizer_describe(const fipsc_tokenizer *t, fipsc_tokenizer_info *out)
{
    *out = (fipsc_tokenizer_info){.byte_fallback = t->byte_fallback, .n_merges = t->n_merges, .unk_id = t->unk_id,
                                  .split_regex = t->split_regex.len ? t->split_regex.p : NULL};
    for (int i = 0; i < t->n_pre; i++) out->byte_level |= t->pre[i].kind == FIPSC_PRE_BYTE_LEVEL;
    for (int i = 0; i < t->n_norm; i++)
        out->prefix_space |= t->norm[i].kind == FIPSC_NORM_PREPEND && t->norm[i].to.len == 3 &&
                             !memcmp(t->norm[i].to.p, "\xe2\x96\x81", 3);
    out->adds_bos = t->bos_id >= 0 && t->n_post_before > 0 && t->post_before[0] == t->bos_id;
    out->adds_eos = t->eos_id >= 0 && t->n_post_after > 0 && t->post_after[t->n_post_after - 1] == t->eos_id;
}

void fipsc_tokenizer_merge(const fipsc_tokenizer *t, int rank, int32_t *left, int32_t *right, int32_t *merged)
{
    *left = t->merge_list[2 * rank];
    *right = t->merge_list[2 * rank + 1];
    int32_t r;
    if (!fipsc_merge_map_get(&t->merges, *left, *right, &r, merged)) *merged = -1;
}

bool fipsc_tokenizer_is_added(const fipsc_tokenizer *t, int id) { return id >= 0 && id < t->n_ids && t->is_added[id]; }
bool fipsc_tokenizer_is_special(const fipsc_tokenizer *t, int id) { return id >= 0 && id < t->n_ids && t->is_special[id]; }
int fipsc_tokenizer_bos(const fipsc_tokenizer *t) { return t->bos_id; }
int fipsc_tokenizer_eos(const fipsc_tokenizer *t) { return t->eos_id; }
const char *fipsc_tokenizer_path(const fipsc_tokenizer *t) { return t->path; }

const char *fipsc_tokenizer_token(const fipsc_tokenizer *t, int id, size_t *len)
{
    if (id < 0 || id >= t->n_ids || !t->token_of[id].p) return NULL;
    *len = t->token_of[id].len;
    return t->token_of[id].p;
}
