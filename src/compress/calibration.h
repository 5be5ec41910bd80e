/* Calibration rows for compression (ALGORITHM.md §6): the ORIGINAL model's MLP inputs and outputs.
 *
 * The original model runs over calibration data with teacher forcing (a language model reads the
 * corpus tokens at every position, nothing is generated) and its forward records, for each block
 * to be compressed, the input x of its MLP and the MLP's output y. Every compressed MLP is later
 * trained to map those original x to those original y, so the capture runs the original blocks:
 * all of them before any block is touched, or (streaming, model/residual_stream.h) a group's
 * blocks at a time from the residual the earlier ones left, before that group is touched. What
 * the data is depends on what the model is (src/model/family.h):
 *
 *   language model     a token corpus                 fipsc_calibration_capture_tokens
 *   image classifier   images (files, IDX sets)       fipsc_calibration_capture_images
 *   sentence encoder   sentences (text or STS files)  fipsc_calibration_capture_sentences
 *
 * Rows are sequence-major, then position (token; for images: CLS, DIST, patches). */
#ifndef FIPSC_COMPRESS_CALIBRATION_H
#define FIPSC_COMPRESS_CALIBRATION_H

#include <stdint.h>

#include "core/status.h"
#include "fips/fips.h"
#include "formats/corpus.h"
#include "formats/image_list.h"
#include "formats/sentences.h"
#include "model/capture.h"
#include "model/model.h"

typedef struct fipsc_calibration {
    int n_blocks;             /* the model's number of MLP blocks (fipsc_model.n_mlps) */
    fipsc_fips_calib *blocks; /* [n_blocks]: block l's MLP inputs x and outputs y, [n, d] each,
                                 row-major; n = 0 for a block that was not captured */
    int n_sequences;          /* calibration sequences (or images, sentences) behind the rows */
    void *owned;              /* storage released by fipsc_calibration_free (NULL: borrowed) */
    bool spilled;             /* the rows live in a scratch file (fipsc_capture_spill): a phase done
                                 with them may release their pages (fipsc_file_pages_release) */
    /* Sequential calibration (fipsc_compress_options.sequential): captures the rows of blocks
       first..last again on m as it is now (earlier groups compressed) into this calibration (the
       one refresh_user was made for), replacing whatever rows it held; the pipeline calls it
       before each group after the first. NULL: the rows are fixed (teacher forcing). */
    fipsc_status (*refresh)(void *user, const fipsc_model *m, int first, int last, fipsc_error *err);
    void *refresh_user;
    /* Streaming calibration (fipsc_compress_options.capture_all false, not sequential): refresh
       captures the rows of blocks first..last from the ORIGINAL blocks, by one pass of the
       residual stream; the pipeline calls it before every group it puts into the model (computed,
       restored from a checkpoint or received from a rank), before changing the model. */
    bool streamed;
} fipsc_calibration;

/* An empty calibration for n_blocks blocks (every blocks[l].n = 0). The caller may point
 * blocks[l].x / .y at rows it owns and keeps alive; fipsc_calibration_free frees only `blocks`. */
fipsc_status fipsc_calibration_init(fipsc_calibration *cal, int n_blocks, fipsc_error *err);
void fipsc_calibration_free(fipsc_calibration *cal);

/* Splits one block's rows `all` ([n, d], from n_sequences inputs, sequence-major) into training
 * rows (the first) and held-out rows (the last), views into the same arrays: about
 * fraction·n held-out rows, whole inputs when every input gave the same number of rows (so no
 * sequence is seen in part by training), at least one row (or input) on each side when there are
 * two; fraction ≤ 0 or fewer than two rows hold nothing out. */
void fipsc_calibration_split(const fipsc_fips_calib *all, int d, int n_sequences, double fraction,
                             fipsc_fips_calib *train, fipsc_fips_calib *held);

/* A language model m over every sequence of corpus c (prefill, no logits), recording the MLP
 * rows of the listed blocks (NULL/0: every block). Refuses a corpus made for another vocabulary
 * (header vocabulary ≠ the model's, or an id ≥ the model's vocabulary) and sequences longer than
 * the model's context, naming `what` (e.g. the corpus path). */
fipsc_status fipsc_calibration_capture_tokens(const fipsc_model *m, const fipsc_corpus *c, const char *what,
                                              const int *blocks, int n_blocks, fipsc_calibration *out,
                                              fipsc_error *err);

/* Images per forward pass during image calibration (bounds the pixel and activation buffers). */
#define FIPSC_IMAGE_CALIB_BATCH 64

/* An image classifier m over every image of `images`, each preprocessed as the model says,
 * FIPSC_IMAGE_CALIB_BATCH at a time; rows image-major, then token. out->n_sequences = the number
 * of images. Errors name the image. */
fipsc_status fipsc_calibration_capture_images(const fipsc_model *m, const fipsc_image_list *images,
                                              const int *blocks, int n_blocks, fipsc_calibration *out,
                                              fipsc_error *err);

/* A sentence encoder m over sentences s, recording the MLP rows of the listed blocks (NULL/0:
 * every block) into cap (initialised here; free it with fipsc_capture_free after *out). *out
 * (free with fipsc_calibration_free) points at cap's rows. One row per kept token (the encoder
 * keeps the first max_tokens of a sentence), sentence-major, in file order.
 *
 * max_rows > 0 bounds the rows per block: when the sentences hold more kept tokens, whole
 * sentences are drawn in a random order (seeded by `seed`, so the choice is reproducible) while
 * they fit, and then encoded in file order; every drawn sentence is recorded whole. 0 takes
 * every sentence. `what` names the source in messages (e.g. the file). Fails on sentences that
 * yield no tokens at all. */
fipsc_status fipsc_calibration_capture_sentences(const fipsc_model *m, const fipsc_sentences *s, const char *what,
                                                 const int *blocks, int n_blocks, int64_t max_rows, uint64_t seed,
                                                 fipsc_capture *cap, fipsc_calibration *out, fipsc_error *err);

#endif
