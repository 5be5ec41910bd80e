/* Calibration capture: recording chosen MLPs' input and output rows during a forward pass.
 *
 * FiPS trains each compressed MLP to reproduce the original MLP on the original inputs (teacher
 * forcing), so the compressor runs the original model over calibration tokens and keeps, for
 * each MLP it will compress, every row x that entered the MLP (after the block's norm) and the
 * row y = MLP(x) that came out (before the residual add). Nothing else of the forward is kept.
 *
 * Usage:
 *   fipsc_capture cap;
 *   int layers[] = {0, 1};
 *   fipsc_capture_init(&cap, model, layers, 2, 0, &err);     // 0: no row limit
 *   lm->forward(model, tokens, batch, len, NULL, &cap, &err);   // NULL: no logits
 *   ... cap.layers[i].x / .y hold cap.layers[i].rows rows of d floats, row-major ...
 *   fipsc_capture_free(&cap);
 * Rows are appended in the order the forward produces them: sequence-major, then position. */
#ifndef FIPSC_CAPTURE_H
#define FIPSC_CAPTURE_H

#include <stdint.h>

#include "model/model.h"
#include "model/residual_stream.h"
#include "core/status.h"

typedef struct fipsc_capture_layer {
    int layer;          /* block index (index into fipsc_model.mlps) */
    int d;              /* row width: the MLP's d */
    float *x;           /* [rows, d] MLP inputs, row-major */
    float *y;           /* [rows, d] MLP outputs, row-major */
    int64_t rows;       /* rows recorded */
    int64_t cap_rows;   /* rows allocated */
    int64_t dropped;    /* rows offered after max_rows was reached (not recorded) */
} fipsc_capture_layer;

typedef struct fipsc_capture {
    int n_layers;
    fipsc_capture_layer *layers; /* in the order given to fipsc_capture_init */
    int64_t max_rows;            /* per layer; 0 = unlimited */
    void *map;                   /* spilled (fipsc_capture_spill): every layer's rows in one
                                    shared mapping of a scratch file; NULL: in memory */
    size_t map_bytes;
    fipsc_residual_stream *stream; /* NULL: the forward starts from the inputs' embeddings; else it
                                      runs blocks stream->from..to only (model/residual_stream.h) */
} fipsc_capture;

/* Prepares to record the MLPs of the listed blocks (distinct, each < m->n_mlps). */
fipsc_status fipsc_capture_init(fipsc_capture *cap, const fipsc_model *m, const int *layers,
                                int n_layers, int64_t max_rows, fipsc_error *err);

/* The blocks a forward that records into cap and computes no logits needs: with a stream,
 * stream->from..stream->to; else 0 to the deepest captured block (*last = -1: none; cap may be
 * NULL). */
void fipsc_capture_block_range(const fipsc_capture *cap, int *first, int *last);

/* What one forward call over `rows` rows of width d runs: blocks first..last and, when it
 * streams, its claimed rows of the stream (model/residual_stream.h). The forward starts from
 * the stream's rows at `at` when first > 0 (else from the embeddings) and stores its residual
 * there after block `last`. */
typedef struct fipsc_forward_span {
    int first, last;
    fipsc_residual_stream *stream; /* NULL: not streaming */
    int64_t at;
} fipsc_forward_span;

/* The span of a forward with capture cap (may be NULL): every one of n_blocks blocks from the
 * embeddings when `whole` (it computes logits or fills a cache), else
 * fipsc_capture_block_range's, claiming the call's rows when cap streams. */
fipsc_status fipsc_capture_forward_span(const fipsc_capture *cap, bool whole, int n_blocks, int64_t rows, int d,
                                        fipsc_forward_span *out, fipsc_error *err);

/* The record for block `layer`, or NULL when that block is not captured. */
fipsc_capture_layer *fipsc_capture_find(fipsc_capture *cap, int layer);

/* Appends n rows of x and y ([n, d] each), growing the arrays geometrically; rows beyond
 * max_rows are counted in `dropped`. Used by the runtimes. */
fipsc_status fipsc_capture_append(fipsc_capture *cap, fipsc_capture_layer *cl, const float *x,
                                  const float *y, int64_t n, fipsc_error *err);

/* Spills the capture: its rows live in a scratch file created in `dir` and unlinked at once (it
 * vanishes with the process), `rows` rows per layer, the space reserved on disk now (so a full
 * disk fails here with a clear error, not later inside the mapping), mapped shared. Rows beyond
 * `rows` are refused by fipsc_capture_append. Call right after fipsc_capture_init.
 *
 * Why: calibration rows of every block of an 8B model are ~13 GB for 12k tokens; in a file the
 * kernel keeps in memory only the pages in use (and fipsc_file_pages_release says when a phase is
 * done with them), so the run's memory is one group's rows, not all of them. */
fipsc_status fipsc_capture_spill(fipsc_capture *cap, const char *dir, int64_t rows, fipsc_error *err);

/* Forgets the recorded rows, keeping the memory. */
void fipsc_capture_clear(fipsc_capture *cap);

void fipsc_capture_free(fipsc_capture *cap);

#endif
