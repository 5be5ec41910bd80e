/* The shipped DeiT-MNIST model (../shared/models/deit-mnist, DeiTForImageClassificationWithTeacher)
 * against PyTorch: the logits of hold-out images 0000-0007 within 1e-4 of reference-logits.json
 * (decoded, preprocessed and run in uneven batches), and accuracy on the first hold-out images. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "families/registry.h"
#include "eval/classify.h"
#include "core/file.h"
#include "families/vit/vit.h"
#include "testutil.h"

int main(void)
{
    char model_dir[4096], ref_path[4096], holdout[4096], labels[4200];
    test_path(model_dir, sizeof model_dir, "FIPSC_SHARED_DIR", "models/deit-mnist");
    test_path(ref_path, sizeof ref_path, "FIPSC_SHARED_DIR", "models/deit-mnist/reference-logits.json");
    test_path(holdout, sizeof holdout, "FIPSC_SHARED_DIR", "data/deit-mnist-holdout");
    test_pathf(labels, sizeof labels, "%s/labels.tsv", holdout);

    fipsc_error err = {0};
    fipsc_model *m = NULL;
    CHECK_OK(fipsc_model_load(model_dir, &m, &err), &err);
    if (!m) return test_summary("test_vit_reference");
    const fipsc_vit *v = fipsc_model_vit(m);
    CHECK(v && v->kind == FIPSC_VIT_DEIT_TEACHER && v->n_tokens == 18 && v->channels == 1 && v->n_labels == 10);
    CHECK(m->n_mlps == 4 && m->mlps[0]->d == 96 && m->mlps[0]->f == 384);

    char *text;
    CHECK_OK(fipsc_read_file(ref_path, &text, NULL, &err), &err);
    cJSON *ref = cJSON_Parse(text);
    free(text);
    const cJSON *images = cJSON_GetObjectItem(ref, "images"), *logits = cJSON_GetObjectItem(ref, "logits");
    const cJSON *acc = cJSON_GetObjectItem(ref, "holdout_acc");
    int n = cJSON_GetArraySize(images);
    CHECK(n == 8 && cJSON_GetArraySize(logits) == n && cJSON_IsNumber(acc));

    /* the eight reference images, through the full path: decode, preprocess, forward */
    char paths_buf[8][4300];
    const char *paths[8];
    for (int i = 0; i < n && i < 8; i++) {
        test_pathf(paths_buf[i], sizeof paths_buf[i], "%s/%s", holdout, cJSON_GetArrayItem(images, i)->valuestring);
        paths[i] = paths_buf[i];
    }
    float out[8 * 10];
    CHECK_OK(fipsc_classify_files(m, paths, n, 3, out, &err), &err); /* batches of 3, 3, 2 */
    double worst = 0;
    for (int i = 0; i < n; i++) {
        const cJSON *row = cJSON_GetArrayItem(logits, i);
        CHECK(cJSON_GetArraySize(row) == 10);
        for (int c = 0; c < 10; c++) {
            double want = cJSON_GetArrayItem(row, c)->valuedouble;
            worst = fmax(worst, fabs(out[i * 10 + c] - want));
            CHECK_NEAR(out[i * 10 + c], want, 1e-4);
        }
    }
    printf("reference logits: max |fipsc - PyTorch| = %.3g over %d images\n", worst, n);

    /* The first 200 hold-out images through fipsc_eval_images. The accuracy over all 2,000, to
     * compare with the recorded holdout_acc, is checked through the CLI (test_vit_cli.sh). */
    fipsc_labelled_image *items;
    int n_items;
    CHECK_OK(fipsc_read_image_labels(m, labels, holdout, &items, &n_items, &err), &err);
    CHECK(n_items == 2000);
    fipsc_image_eval res;
    CHECK_OK(fipsc_eval_images(m, items, n_items, 0, 200, &res, &err), &err);
    printf("first 200 hold-out images: top-1 %.4f (%d), top-5 %.4f (%d); recorded top-1 over 2000: %.6f\n",
           res.top1_accuracy, res.top1, res.top5_accuracy, res.top5, acc->valuedouble);
    CHECK(res.n == 200 && res.top1_accuracy >= 0.95 && res.top5 >= res.top1);
    fipsc_labelled_images_free(items, n_items);
    cJSON_Delete(ref);
    fipsc_model_free(m);
    return test_summary("test_vit_reference");
}
