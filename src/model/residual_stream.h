/* The residual stream carried from one forward pass to the next: streaming calibration.
 *
 * Calibration runs the ORIGINAL model over the calibration inputs and records each compressed
 * block's MLP rows (model/capture.h). Recording every block's rows in one forward holds
 * 2·rows·d floats per block at once — 17 GB for an 8B model. Streaming runs the blocks a range at
 * a time instead, and keeps between ranges only the residual stream x (rows·d floats, one
 * block's worth): group k's blocks run when the compressor reaches group k (its rows captured
 * then, used, freed), starting from the residual where the previous range stopped.
 *
 * A pass over blocks from..to calls the family's forward on the same inputs, in the same
 * batches, as the first pass did; each call takes its rows of the stream in order:
 *
 *   pass 1 (from = 0):  x = embed(inputs); blocks 0..to;          stream[rows] = x
 *   pass j (from > 0):  x = stream[rows];  blocks from..to;       stream[rows] = x
 *
 * Each block computes exactly what it computes inside one long forward (the same rows, the same
 * batch shapes, the same kernels), so the captured rows are the same bits.
 *
 * A forward that finds fipsc_capture.stream set runs blocks stream->from..stream->to and neither
 * embeds (unless from is 0) nor computes logits. */
#ifndef FIPSC_MODEL_RESIDUAL_STREAM_H
#define FIPSC_MODEL_RESIDUAL_STREAM_H

#include <stdint.h>

#include "core/status.h"

typedef struct fipsc_residual_stream {
    int from, to;     /* the blocks of this pass; from = 0: the pass starts from the embeddings */
    int d;            /* the residual's width (set by the first claim) */
    float *rows;      /* [n_rows, d]: after a pass, the residual after block `to` of every row */
    int64_t n_rows;   /* rows the first pass produced (every later pass must take the same) */
    int64_t cap_rows; /* rows allocated */
    int64_t at;       /* rows claimed in this pass so far */
} fipsc_residual_stream;

/* Starts a pass that runs blocks from where the previous pass stopped (block 0 for the first)
 * through block `to`. */
fipsc_status fipsc_residual_stream_begin(fipsc_residual_stream *s, int to, fipsc_error *err);

/* Claims the next `rows` rows of width d for one forward call (serially, in input order) and
 * returns their first row in *offset. The first pass grows the stream; a later pass that claims
 * more rows than the first produced, or another width, is refused (inputs changed). */
fipsc_status fipsc_residual_stream_claim(fipsc_residual_stream *s, int64_t rows, int d, int64_t *offset,
                                         fipsc_error *err);

/* Copies claimed rows [offset, offset + rows) out of / into the stream, d floats each; calls on
 * disjoint claimed ranges may run in parallel. */
void fipsc_residual_stream_load(const fipsc_residual_stream *s, int64_t offset, int64_t rows, float *x);
void fipsc_residual_stream_store(fipsc_residual_stream *s, int64_t offset, int64_t rows, const float *x);

/* Ends a pass: every row of the first pass must have been claimed again. */
fipsc_status fipsc_residual_stream_end(fipsc_residual_stream *s, fipsc_error *err);

void fipsc_residual_stream_free(fipsc_residual_stream *s);

#endif
