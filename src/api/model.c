/* The public API's model handle (include/fipsc.h): loading, what a model is and can do, export. */
#include "fipsc.h"

#include "families/registry.h"
#include "model/compressed.h"
#include "model/family.h"
#include "model/model.h"
#include "model/text_corpus.h"

fipsc_status fipsc_load(const char *path, fipsc_model **out, fipsc_error *err)
{
    *out = NULL;
    if (!path) return fipsc_fail(err, FIPSC_ERR_ARG, "fipsc_load: no path");
    return fipsc_model_load(path, out, err);
}

void fipsc_free(fipsc_model *m) { fipsc_model_free(m); }

const char *fipsc_family_name(const fipsc_model *m) { return m->family ? m->family->name : ""; }

const char *fipsc_architecture(const fipsc_model *m) { return m->arch_name; }

unsigned fipsc_capabilities(const fipsc_model *m)
{
    return (fipsc_model_lm(m) ? FIPSC_CAN_GENERATE : 0u) | (fipsc_model_image(m) ? FIPSC_CAN_CLASSIFY : 0u) |
           (fipsc_model_encoder(m) ? FIPSC_CAN_EMBED : 0u);
}

bool fipsc_is_compressed(const fipsc_model *m) { return fipsc_model_group_count(m) > 0; }

fipsc_status fipsc_export(fipsc_model *m, const char *path, bool overwrite, fipsc_error *err)
{
    fipsc_status st = fipsc_model_densify(m, err);
    if (st) return st;
    if (!m->family || !m->family->export_dense)
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "%s: fipsc cannot write this architecture as a standard checkpoint",
                          m->arch_name[0] ? m->arch_name : "the model");
    return m->family->export_dense(m, path, overwrite, err);
}

fipsc_status fipsc_export_gguf(fipsc_model *m, const char *path, const char *type, const char *vocab_from,
                               bool overwrite, fipsc_error *err)
{
    fipsc_ggml_type t;
    if (!type || !fipsc_ggml_type_parse(type, &t))
        return fipsc_fail(err, FIPSC_ERR_ARG, "unknown GGUF type '%s' (expected f32, f16, bf16, q8_0 or q4_0)",
                          type ? type : "(null)");
    if (!m->family || !m->family->export_gguf)
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "%s: fipsc cannot write this architecture as GGUF (llama.cpp "
                          "architectures: the Llama family)", m->arch_name[0] ? m->arch_name : "the model");
    /* the vocabulary: a GGUF file's tokenizer copied, or a tokenizer.json written out (named, or
     * beside the model), or the placeholder when the model has none */
    fipsc_gguf *vocab = NULL;
    fipsc_tokenizer *tok = NULL;
    fipsc_status st = FIPSC_OK;
    if (vocab_from && fipsc_gguf_is_file(vocab_from)) {
        st = fipsc_gguf_open(vocab_from, &vocab, err);
    } else if (vocab_from) {
        st = fipsc_tokenizer_load(vocab_from, &tok, err);
    } else if (fipsc_model_lm(m)) {
        st = fipsc_model_tokenizer(m, NULL, &tok, err);
        if (st == FIPSC_ERR_NOT_FOUND) { /* no tokenizer beside the model: the placeholder */
            st = FIPSC_OK;
            fipsc_error_clear(err);
        }
    }
    if (!st) st = fipsc_model_densify(m, err);
    if (!st) st = m->family->export_gguf(m, path, t, vocab, tok, overwrite, err);
    fipsc_gguf_close(vocab);
    fipsc_tokenizer_free(tok);
    return st;
}

int fipsc_vocab_size(const fipsc_model *m)
{
    const fipsc_lm_ops *lm = fipsc_model_lm(m);
    if (!lm) return 0;
    fipsc_lm_info info;
    lm->info(m, &info);
    return info.vocab_size;
}

int fipsc_label_count(const fipsc_model *m)
{
    const fipsc_image_ops *image = fipsc_model_image(m);
    if (!image) return 0;
    fipsc_image_info info;
    image->info(m, &info);
    return info.n_labels;
}

const char *fipsc_label_name(const fipsc_model *m, int label)
{
    const fipsc_image_ops *image = fipsc_model_image(m);
    if (!image) return NULL;
    fipsc_image_info info;
    image->info(m, &info);
    return label >= 0 && label < info.n_labels ? info.labels[label] : NULL;
}

int fipsc_embedding_dim(const fipsc_model *m)
{
    const fipsc_encoder_ops *enc = fipsc_model_encoder(m);
    if (!enc) return 0;
    fipsc_encoder_info info;
    enc->info(m, &info);
    return info.dim;
}
