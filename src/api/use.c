/* The public API's uses of a model (include/fipsc.h): perplexity and generation for language
 * models, classification for image classifiers, embeddings and STS for sentence encoders. Each
 * is the library's own evaluation (src/eval/, src/model/generate.c), as the commands run it. */
#include <math.h>
#include <stdlib.h>

#include "eval/classify.h"
#include "eval/eval.h"
#include "eval/sts.h"
#include "fipsc.h"
#include "formats/corpus.h"
#include "formats/sts_file.h"
#include "model/family.h"
#include "model/generate.h"
#include "ops/sample.h"

fipsc_status fipsc_perplexity(const fipsc_model *m, const char *corpus_path, const fipsc_model *ref,
                              fipsc_lm_scores *out, fipsc_error *err)
{
    const fipsc_lm_ops *lm;
    fipsc_status st = fipsc_model_need_lm(m, &lm, err);
    if (st) return st;
    fipsc_corpus *corpus = NULL;
    if ((st = fipsc_corpus_load(corpus_path, &corpus, err))) return st;
    fipsc_eval_options opt = {.ref = ref};
    fipsc_eval_result res;
    st = fipsc_eval_corpus(m, corpus, &opt, &res, err);
    fipsc_corpus_free(corpus);
    if (st) return st;
    *out = (fipsc_lm_scores){.sequences = res.n_sequences,
                             .predicted = res.n_predicted,
                             .nll = res.nll,
                             .ppl = res.ppl,
                             .ref_ppl = res.has_ref ? res.ref_ppl : NAN,
                             .kl_mean = res.has_ref ? res.kl_mean : NAN,
                             .kl_max = res.has_ref ? res.kl_max : NAN,
                             .top1_agreement = res.has_ref ? res.top1_agreement : NAN};
    return FIPSC_OK;
}

fipsc_status fipsc_generate(const fipsc_model *m, const int32_t *prompt, int n_prompt, int n_new, float temperature,
                            float top_p, uint64_t seed, int32_t *out, int *n_out, fipsc_error *err)
{
    *n_out = 0;
    const fipsc_lm_ops *lm;
    fipsc_status st = fipsc_model_need_lm(m, &lm, err);
    if (st) return st;
    if (n_new < 0 || n_prompt < 0 || (n_prompt > 0 && !prompt))
        return fipsc_fail(err, FIPSC_ERR_ARG, "fipsc_generate: %d prompt tokens, %d new", n_prompt, n_new);
    fipsc_lm_info info;
    lm->info(m, &info);
    const int32_t bos = info.bos_token;
    if (n_prompt == 0) {
        prompt = &bos;
        n_prompt = 1;
    }
    fipsc_sampler sampler = {0};
    if (!(st = fipsc_sampler_init(&sampler, info.vocab_size, temperature, top_p, seed, err)))
        st = fipsc_lm_generate(m, prompt, n_prompt, n_new, &sampler, true, out, n_out, err);
    fipsc_sampler_free(&sampler);
    return st;
}

fipsc_status fipsc_classify(const fipsc_model *m, const char *image_path, int *label, float *probs,
                            fipsc_error *err)
{
    const fipsc_image_ops *image;
    fipsc_status st = fipsc_model_need_image(m, &image, err);
    if (st) return st;
    fipsc_image_info info;
    image->info(m, &info);
    float *logits = malloc((size_t)info.n_labels * sizeof *logits);
    if (!logits) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    if (!(st = fipsc_classify_files(m, &image_path, 1, 1, logits, err))) {
        fipsc_top_k(logits, info.n_labels, 1, label);
        if (probs) fipsc_softmax(logits, info.n_labels, probs);
    }
    free(logits);
    return st;
}

fipsc_status fipsc_embed(const fipsc_model *m, const char *sentence, float *out, fipsc_error *err)
{
    const fipsc_encoder_ops *enc;
    fipsc_status st = fipsc_model_need_encoder(m, &enc, err);
    if (st) return st;
    return enc->embed(m, 1, &sentence, NULL, out, err);
}

fipsc_status fipsc_eval_sts(const fipsc_model *m, const char *tsv_path, double *spearman, double *pearson,
                            fipsc_error *err)
{
    const fipsc_encoder_ops *enc;
    fipsc_status st = fipsc_model_need_encoder(m, &enc, err);
    if (st) return st;
    fipsc_sts_set set = {0};
    if ((st = fipsc_sts_read(tsv_path, &set, err))) return st;
    fipsc_sts_result res = {0};
    st = fipsc_sts_evaluate(m, &set, &res, NULL, NULL, err);
    fipsc_sts_free(&set);
    if (st) return st;
    if (spearman) *spearman = res.spearman;
    if (pearson) *pearson = res.pearson;
    return FIPSC_OK;
}
