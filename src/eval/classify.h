/* Image classification with any image classifier (a family with the image capability,
 * src/model/family.h): image files -> preprocessed pixels -> logits -> ranked classes, and top-1 /
 * top-5 accuracy over a labelled set of images.
 *
 * Images are decoded and preprocessed with the model's preprocessing (fipsc_image_info.preproc:
 * a ViT's preprocessor_config.json, or the defaults), batch by batch, decoding on OpenMP threads;
 * the forward is the family's. Results do not depend on the batch size or the thread count. */
#ifndef FIPSC_CLASSIFY_H
#define FIPSC_CLASSIFY_H

#include "model/model.h"
#include "core/status.h"

/* Default number of images per forward pass. */
#define FIPSC_CLASSIFY_BATCH 64

/* Decodes path and preprocesses it for m into pixels [C, H, W] (the model's input size). */
fipsc_status fipsc_classify_load_image(const fipsc_model *m, const char *path, float *pixels,
                                       fipsc_error *err);

/* logits [n, n_labels] for n image files, `batch` images per forward pass (<= 0: the default).
 * The first failing file (in the given order) is named in the error. */
fipsc_status fipsc_classify_files(const fipsc_model *m, const char *const *paths, int n, int batch,
                                  float *logits, fipsc_error *err);

/* The k highest of n_labels logits, best first (ties: the lower class index first); k is
 * clipped to n_labels. Writes the class indices into top[0 .. k). Returns the k used. */
int fipsc_top_k(const float *logits, int n_labels, int k, int *top);

/* softmax(logits)[i], computed stably. */
void fipsc_softmax(const float *logits, int n, float *probs);

/* One labelled image: path (joined with the directory) and class index. */
typedef struct fipsc_labelled_image {
    char *path;
    int label;
} fipsc_labelled_image;

/* Reads a labels file: one image per line, `relative/path<TAB>class`, where class is a class
 * index in [0, n_labels) or, failing that, a label name of the model (id2label). Empty lines are
 * skipped, a trailing CR is ignored. Paths are joined to dir (unless absolute). Errors name the
 * file and line. Free the result with fipsc_labelled_images_free. */
fipsc_status fipsc_read_image_labels(const fipsc_model *m, const char *labels_path, const char *dir,
                                     fipsc_labelled_image **out, int *n_out, fipsc_error *err);
void fipsc_labelled_images_free(fipsc_labelled_image *items, int n);

/* Accuracy over a labelled set. */
typedef struct fipsc_image_eval {
    int n;          /* images evaluated */
    int top1, top5; /* images whose class is the best / among the best 5 */
    double top1_accuracy, top5_accuracy; /* top1 / n, top5 / n */
} fipsc_image_eval;

/* Classifies every listed image (the first `limit` when limit > 0) and counts hits. */
fipsc_status fipsc_eval_images(const fipsc_model *m, const fipsc_labelled_image *items, int n,
                               int batch, int limit, fipsc_image_eval *res, fipsc_error *err);

#endif
