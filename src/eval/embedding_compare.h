/* How far a sentence encoder (typically a compressed one) is from its original, measured on
 * sentences: how much the embeddings moved, and how well each MLP reproduces the original MLP.
 *
 *   cosine        cos(e_ref(s), e_m(s)) per sentence s, e = the L2-normalised embeddings; the
 *                 mean and the minimum over the sentences
 *   MLP error     for every block l: ‖MLP_m,l(x) − y‖_F / ‖y‖_F over the rows (x, y) the
 *                 REFERENCE's block-l MLP sees and produces on the sentences (one row per kept
 *                 token): the compressed MLP on the original inputs, as it was trained (teacher
 *                 forcing), but on sentences that were not its calibration data.
 * Both models must be sentence encoders of one family and shape (src/model/family.h); m's MLPs may be
 * dense or factored (they run as they are, nothing is densified). */
#ifndef FIPSC_EVAL_EMBEDDING_COMPARE_H
#define FIPSC_EVAL_EMBEDDING_COMPARE_H

#include <stdint.h>

#include "model/model.h"
#include "core/status.h"

typedef struct fipsc_embedding_comparison {
    int sentences;
    int64_t rows;          /* MLP rows (kept tokens) over all sentences, per block */
    double mean_cosine, min_cosine;
    int n_mlps;
    double *mlp_rel_err;   /* [n_mlps], malloc'ed: block l's relative output error */
} fipsc_embedding_comparison;

/* Compares m with its reference ref on n texts (NUL-terminated UTF-8). m_embeddings: NULL, or
 * m's embeddings of the texts [n, d] when the caller has them already (then m only runs its
 * MLPs on the reference's rows). Results do not depend on the thread count. */
fipsc_status fipsc_embedding_compare(const fipsc_model *ref, const fipsc_model *m, int n,
                               const char *const *texts, const float *m_embeddings,
                               fipsc_embedding_comparison *out, fipsc_error *err);

void fipsc_embedding_comparison_free(fipsc_embedding_comparison *c);

#endif
