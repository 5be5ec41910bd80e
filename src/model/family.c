/* A model's capabilities through its family (see src/model/family.h). */
#include "model/family.h"

#include <string.h>

const fipsc_lm_ops *fipsc_model_lm(const fipsc_model *m) { return m && m->family ? m->family->lm : NULL; }

const fipsc_image_ops *fipsc_model_image(const fipsc_model *m) { return m && m->family ? m->family->image : NULL; }

const fipsc_encoder_ops *fipsc_model_encoder(const fipsc_model *m)
{
    return m && m->family ? m->family->encoder : NULL;
}

/* "stories260K.bin (llama2.c) is not an image classifier" */
static fipsc_status missing(const fipsc_model *m, const char *what, fipsc_error *err)
{
    const char *path = m && m->source_path[0] ? m->source_path : "the model";
    const char *arch = m && m->arch_name[0] ? m->arch_name : "no known architecture";
    return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "%s (%s) is not %s", path, arch, what);
}

fipsc_status fipsc_model_need_lm(const fipsc_model *m, const fipsc_lm_ops **ops, fipsc_error *err)
{
    return (*ops = fipsc_model_lm(m)) ? FIPSC_OK : missing(m, "a language model", err);
}

fipsc_status fipsc_model_need_image(const fipsc_model *m, const fipsc_image_ops **ops, fipsc_error *err)
{
    return (*ops = fipsc_model_image(m)) ? FIPSC_OK : missing(m, "an image classifier", err);
}

fipsc_status fipsc_model_need_encoder(const fipsc_model *m, const fipsc_encoder_ops **ops, fipsc_error *err)
{
    return (*ops = fipsc_model_encoder(m)) ? FIPSC_OK : missing(m, "a sentence encoder", err);
}

void fipsc_distill_defaults(fipsc_distill_opts *o)
{
    memset(o, 0, sizeof *o);
    o->steps = 400;
    o->batch = 128;
    o->lr = 3e-4f;
    o->lr_min = 1e-6f;
    o->relational = 10.0f;
    o->adamw = (fipsc_adamw){0.9f, 0.999f, 1e-8f, 0.0f};
    o->seed = 1;
    o->progress_every = 10;
}
