/* The sentence encoder's forward and its driver share these (internal to src/families/use/):
 * the weights prepared once per encode call, one thread's activations for a chunk of sentences,
 * and the forward of one chunk. encoder.c is the forward, encoder_batch.c the entry points that
 * cut the sentences into chunks and run them on threads. */
#ifndef FIPSC_USE_ENCODER_INTERNAL_H
#define FIPSC_USE_ENCODER_INTERNAL_H

#include <stdint.h>

#include "core/status.h"
#include "families/use/use.h"
#include "ops/linear.h"

/* Weights rearranged once per encode call (so weights replaced since, e.g. by a compressor, are
 * picked up), shared read-only by the threads. */
typedef struct prepared {
    float **down_t;      /* [n_layers] fc2 transposed [f, d] for sparse_down, or NULL */
    fipsc_linear *qkv;   /* [n_layers] q | k | v stacked: [3·d_in, d_in] and bias, when all three are
                            dense with biases (one GEMM instead of three); else .w == NULL */
} prepared;

/* One thread's activations for a chunk of at most `rows` tokens and `sentences` sentences. */
typedef struct workspace {
    float *x;        /* [rows, max(E, d)] the hidden state */
    float *x2;       /* [rows, d] layer 0 writes its output here (the width changes) */
    float *h;        /* [rows, d] normalised rows */
    float *qkv;      /* [rows, 3·d] q | k | v of each row */
    float *a;        /* [rows, d] attention output, heads concatenated */
    float *y;        /* [rows, d] MLP output */
    float *mlp;      /* MLP scratch */
    float *pooled;   /* [sentences, d] */
    float *hmean;    /* [sentences, f] mean MLP hidden activations (last layer) */
    int *offset;     /* [sentences + 1] first row of each sentence */
    const prepared *prep; /* shared */
    /* capture: the chunk's MLP rows of each captured layer, appended to the capture in chunk order */
    int n_cap;
    const int *cap_layer; /* [n_cap] layer of each record (shared) */
    float **cap_x, **cap_y; /* [n_cap] each [rows, d] */
    int *cap_rows;          /* [n_cap] */
    /* streaming (model/residual_stream.h): the chunk runs the stream's blocks only, its rows of the
       residual at stream_at (NULL: from the embeddings through the pooled embedding) */
    fipsc_residual_stream *stream;
    int64_t stream_at;
} workspace;

/* Rearranges u's weights into p for this encode call (on failure p is left empty). */
fipsc_status use_encode_prepare(const fipsc_use *u, prepared *p, fipsc_error *err);
void use_encode_prepared_free(const fipsc_use *u, prepared *p);

/* Embeds sentences [0, n) of the chunk into out [n, d] (unit rows) on workspace w, sized for the
 * chunk; the captured layers' rows stay in w for the caller to append. */
fipsc_status use_encode_chunk(const fipsc_use *u, int n, const int32_t *const *ids, const int *lens,
                              float *out, workspace *w, fipsc_error *err);

#endif
