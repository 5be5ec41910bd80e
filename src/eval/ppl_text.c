/* Perplexity and bits per byte of a text (see fipsc_eval_text in src/eval/eval.h). */
#include <math.h>
#include <stdlib.h>

#include "eval/eval.h"
#include "model/family.h"
#include "model/text_corpus.h"

#define DEFAULT_MAX_CONTEXT 1024

fipsc_status fipsc_eval_text(const fipsc_model *m, const fipsc_tokenizer *t, const char *text, size_t len,
                             int context, int stride, const fipsc_eval_options *opt, fipsc_eval_result *out,
                             fipsc_text_eval *tx, fipsc_error *err)
{
    const fipsc_lm_ops *lm;
    fipsc_status st = fipsc_model_need_lm(m, &lm, err);
    if (st) return st;
    fipsc_lm_info info;
    lm->info(m, &info);
    if (context == 0) context = info.context > 0 && info.context < DEFAULT_MAX_CONTEXT ? info.context : DEFAULT_MAX_CONTEXT;
    if (info.context > 0 && context > info.context)
        return fipsc_fail(err, FIPSC_ERR_ARG, "a context of %d tokens exceeds the model's %d", context, info.context);
    if (stride == 0) stride = context / 2 > 0 ? context / 2 : 1;
    int32_t *stream = NULL;
    size_t n = 0;
    fipsc_corpus *windows = NULL;
    int *skip = NULL;
    if ((st = fipsc_text_stream(m, t, text, len, &stream, &n, err))) return st;
    st = fipsc_text_windows(stream, n, context, stride, info.vocab_size, &windows, &skip, err);
    if (!st) {
        fipsc_eval_options o = opt ? *opt : (fipsc_eval_options){0};
        o.skip_rows = skip;
        st = fipsc_eval_corpus(m, windows, &o, out, err);
    }
    if (!st) {
        *tx = (fipsc_text_eval){.bytes = len, .tokens = n, .context = context, .stride = stride,
                                .windows = windows->n_seqs};
        tx->bits_per_byte = len ? out->nll * (double)out->n_predicted / log(2.0) / (double)len : NAN;
    }
    free(stream);
    free(skip);
    fipsc_corpus_free(windows);
    return st;
}
