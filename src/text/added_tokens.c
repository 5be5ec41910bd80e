/* Finding added tokens in text: the client cuts the text at every added token before anything
 * else (a trie over their contents, longest match at each position, scanning left to right), so
 * "<s>" in a text is the BOS token and no normalizer or BPE ever sees it.
 *
 * The trie works on bytes; the client's works on UTF-16 code units. The two find the same
 * matches: a token's content is whole characters, so a byte match can only start where a
 * character starts. */
#include <stdlib.h>

#include "text/tokenizer_internal.h"

static int32_t trie_add_node(fipsc_added_trie *trie, unsigned char byte)
{
    if (trie->n == trie->cap) {
        size_t cap = trie->cap ? trie->cap * 2 : 256;
        struct trie_node *nodes = realloc(trie->nodes, cap * sizeof *nodes);
        if (!nodes) return -1;
        trie->nodes = nodes;
        trie->cap = cap;
    }
    trie->nodes[trie->n] = (struct trie_node){.child = -1, .sibling = -1, .token = -1, .byte = byte};
    return (int32_t)trie->n++;
}

static int32_t trie_child(const fipsc_added_trie *trie, int32_t node, unsigned char byte)
{
    for (int32_t c = trie->nodes[node].child; c >= 0; c = trie->nodes[c].sibling)
        if (trie->nodes[c].byte == byte) return c;
    return -1;
}

fipsc_status fipsc_added_trie_build(fipsc_tokenizer *t, fipsc_error *err)
{
    fipsc_added_trie *trie = &t->trie;
    if (trie_add_node(trie, 0) < 0) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for added tokens");
    for (size_t k = 0; k < t->n_added; k++) {
        const fipsc_span c = t->added[k].content;
        int32_t node = 0;
        for (size_t i = 0; i < c.len; i++) {
            unsigned char b = (unsigned char)c.p[i];
            int32_t next = trie_child(trie, node, b);
            if (next < 0) {
                if ((next = trie_add_node(trie, b)) < 0)
                    return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for added tokens");
                trie->nodes[next].sibling = trie->nodes[node].child;
                trie->nodes[node].child = next;
            }
            node = next;
        }
        trie->nodes[node].token = (int32_t)k; /* a later duplicate wins, as in the client's Map */
    }
    return FIPSC_OK;
}

int fipsc_added_match(const fipsc_tokenizer *t, const char *text, size_t n, size_t i, size_t *len)
{
    const fipsc_added_trie *trie = &t->trie;
    int found = -1;
    int32_t node = 0;
    for (size_t j = i; j < n; j++) {
        node = trie_child(trie, node, (unsigned char)text[j]);
        if (node < 0) break;
        if (trie->nodes[node].token >= 0) {
            found = trie->nodes[node].token;
            *len = j + 1 - i;
        }
    }
    return found;
}
