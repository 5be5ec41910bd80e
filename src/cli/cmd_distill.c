/* fipsc distill: end-to-end distillation of a compressed model against the original (one trainer
 * for every family, src/model/distill.h): the compressed model's bases U and kept V entries are
 * trained so that a sentence encoder's embeddings of the calibration sentences point the way the
 * original's do (src/families/use/distill.h), or a language model's next-token distributions on
 * the calibration sequences match the original's (src/families/llama/distill.h). The result is a
 * compressed file like the input, with the same sparsity; its __metadata__ keeps the input's
 * "fipsc.compress" entry and adds "fipsc.distill" (options and the scores before and after). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "families/registry.h"
#include "cli/cli.h"
#include "model/compressed.h"
#include "ops/factored.h"
#include "formats/safetensors.h"
#include "core/threads.h"
#include "formats/image_list.h"
#include "formats/sentences.h"
#include "model/family.h"

#define CMD "distill"

static void usage(FILE *out)
{
    fipsc_distill_opts d;
    fipsc_distill_defaults(&d);
    fprintf(out,
            "Usage: fipsc distill COMPRESSED --original MODEL\n"
            "                     (--sentences FILE | --corpus FILE | --images PATH) -o OUT [options]\n\n"
            "Fine-tunes a compressed model end to end against the original (the paper's optional\n"
            "knowledge distillation): every basis U and every kept entry of V in COMPRESSED is\n"
            "trained (AdamW, cosine learning rate) with gradients through every layer above the\n"
            "first compressed MLP, towards\n"
            "  a sentence encoder: the original's embeddings of the sentences of FILE (--sentences),\n"
            "    minimising the mean of 1 - cos(compressed, original embedding);\n"
            "  a language model: the original's next-token distributions on the token sequences of\n"
            "    FILE (--corpus), minimising the mean KL(original || compressed) per position;\n"
            "  an image classifier: the original's logits on the images of PATH (--images),\n"
            "    minimising the mean KL(original || compressed) of their softmaxes per image.\n"
            "Pruned entries stay zero: OUT has COMPRESSED's sparsity and size. OUT is written\n"
            "atomically (nothing is left behind on failure).\n\n"
            "  --original MODEL      the uncompressed model COMPRESSED was made from\n"
            "  --sentences FILE      (sentence encoders) FILE.tsv: both sentences of every pair of an\n"
            "                        STS file (e.g. ../shared/data/sts-b-train.tsv); else one a line\n"
            "  --corpus FILE         (language models) a token corpus, as `fipsc sample` writes it or\n"
            "                        text with whitespace-separated ids, one sequence a line\n"
            "  --images PATH         (image classifiers) a directory of image files (name order) or\n"
            "                        an IDX file (e.g. ../shared/data/mnist/t10k-images-idx3-ubyte.gz)\n"
            "      --exclude DIR     (with --images) skip the images equal to one in DIR (a hold-out,\n"
            "                        a selection split; may be given several times)\n"
            "      --count N         (with --images) use the first N images (default: all)\n"
            "  -o, --output OUT      the compressed file to write\n"
            "      --steps N         optimiser steps (default: sentence encoders %d, Llama family and\n"
            "                        ViTs 1000)\n"
            "      --batch N         sentences, sequences or images per step (default %d, Llama\n"
            "                        family 8, ViTs 32)\n"
            "      --lr X            peak learning rate (default %g, Llama family 3e-3, ViTs 1e-3)\n"
            "      --lr-min X        final learning rate of the cosine schedule (default %g, Llama\n"
            "                        family and ViTs 1e-5)\n"
            "      --relational X    (sentence encoders) weight of the relational term: the mean\n"
            "                        over pairs of a batch of (cos_c(i,j) - cos_o(i,j))^2 (default %g;\n"
            "                        0 = off)\n"
            "      --hidden X        (sentence encoders) weight of the hidden-state term: each\n"
            "                        token's residual stream after every trained layer against the\n"
            "                        original's, relative squared error (default %g; 0 = off)\n"
            "      --seed N          the order of the batches (default %llu)\n"
            "      --threads K       threads to use (default: all cores)\n"
            "  -q, --quiet           no progress and no summary\n"
            "      --help            this text\n\n"
            "Sentence encoders (UniversalSentenceEncoderLite), the Llama family's Llama, Mistral and\n"
            "Qwen2 blocks, and ViT/DeiT classifiers, in float32. Exit status: 0 ok, 1 unreadable input, unsupported\n"
            "model, numeric failure or failed write, 2 usage error.\n",
            d.steps, d.batch, (double)d.lr, (double)d.lr_min, (double)d.relational, (double)d.hidden,
            (unsigned long long)d.seed);
}

static void on_progress(void *user, const fipsc_distill_progress *p)
{
    fprintf(stderr, "\r\033[Kdistill: step %d/%d  loss (%s) %.5f  lr %.2g", p->step, p->steps, (const char *)user,
            p->loss, (double)p->lr);
    if (p->step == p->steps) fprintf(stderr, "\n");
}

/* The options as given: each family fills the rest with its own defaults. */
typedef struct given {
    fipsc_distill_opts o;
    bool steps, batch, lr, lr_min, relational, hidden;
} given;

static void apply_given(fipsc_distill_opts *o, const given *g)
{
    if (g->steps) o->steps = g->o.steps;
    if (g->batch) o->batch = g->o.batch;
    if (g->lr) o->lr = g->o.lr;
    if (g->lr_min) o->lr_min = g->o.lr_min;
    else if (g->lr) o->lr_min = o->lr_min < g->o.lr ? o->lr_min : g->o.lr / 100.0f;
    if (g->relational) o->relational = g->o.relational;
    if (g->hidden) o->hidden = g->o.hidden;
    o->seed = g->o.seed;
    o->progress = g->o.progress;
}

/* Both models are of one family and shape; which capability distils them. */
static fipsc_status check_pair(const fipsc_model *orig, const fipsc_model *comp, fipsc_error *err)
{
    if (orig->family != comp->family || orig->n_mlps != comp->n_mlps)
        return fipsc_fail(err, FIPSC_ERR_SHAPE, "--original (%s, %d layers) and COMPRESSED (%s, %d layers) are "
                          "different models", orig->arch_name, orig->n_mlps, comp->arch_name, comp->n_mlps);
    const fipsc_encoder_ops *enc = fipsc_model_encoder(comp);
    const fipsc_lm_ops *lm = fipsc_model_lm(comp);
    const fipsc_image_ops *img = fipsc_model_image(comp);
    if ((enc && !enc->distill) || (lm && !lm->distill) || (img && !img->distill) || (!enc && !lm && !img))
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "%s: fipsc has no distiller for this family yet (sentence "
                          "encoders, the Llama family and ViTs have one)", comp->arch_name);
    return FIPSC_OK;
}

/* A sentence encoder: the sentences embedded by the original, then distilled; meta: the JSON. */
static fipsc_status run_encoder(fipsc_model *m, const fipsc_model *orig, const char *path, const given *g, bool live,
                                fipsc_distill_opts *o, fipsc_distill_report *rep, char **meta, fipsc_error *err)
{
    const fipsc_encoder_ops *enc = fipsc_model_encoder(m);
    fipsc_encoder_info info;
    enc->info(orig, &info);
    fipsc_distill_defaults(o);
    apply_given(o, g);
    fipsc_sentences s = {0};
    int32_t **ids = NULL;
    int *lens = NULL;
    float *target = NULL;
    fipsc_status st = fipsc_sentences_read(path, &s, err);
    if (!st) {
        ids = calloc((size_t)s.n, sizeof *ids);
        lens = calloc((size_t)s.n, sizeof *lens);
        target = malloc((size_t)s.n * info.dim * sizeof *target);
        if (!ids || !lens || !target) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; !st && i < s.n; i++)
        if ((st = enc->tokenize(orig, s.text[i], strlen(s.text[i]), &ids[i], &lens[i], err)))
            fipsc_fail_context(err, "%s line %d: ", path, s.line[i]);
    if (!st && live) fprintf(stderr, "distill: embedding %d sentences with the original...", s.n);
    if (!st) st = enc->encode(orig, s.n, (const int32_t *const *)ids, lens, target, NULL, err);
    if (live) fprintf(stderr, "\r\033[K");
    o->progress_user = (void *)"1 - cos";
    if (!st) st = enc->distill(m, orig, s.n, (const int32_t *const *)ids, lens, target, o, rep, err);
    if (!st && !(*meta = malloc(512))) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    if (!st)
        snprintf(*meta, 512,
                 "{\"sentences\":%d,\"rows\":%lld,\"steps\":%d,\"batch\":%d,\"lr\":%g,\"lr_min\":%g,"
                 "\"relational\":%g,\"hidden\":%g,\"seed\":%llu,\"params\":%lld,\"cos_before\":%.6f,\"cos_after\":%.6f}",
                 rep->items, (long long)rep->rows, rep->steps, o->batch, (double)o->lr, (double)o->lr_min,
                 (double)o->relational, (double)o->hidden, (unsigned long long)o->seed, (long long)rep->params,
                 rep->score_before, rep->score_after);
    for (int i = 0; ids && i < s.n; i++) free(ids[i]);
    free(ids);
    free(lens);
    free(target);
    fipsc_sentences_free(&s);
    return st;
}

/* A language model: distilled on the corpus's sequences; meta: the JSON. */
static fipsc_status run_lm(fipsc_model *m, const fipsc_model *orig, const char *path, const given *g,
                           fipsc_distill_opts *o, fipsc_distill_report *rep, char **meta, fipsc_error *err)
{
    const fipsc_lm_ops *lm = fipsc_model_lm(m);
    lm->distill_defaults(o);
    apply_given(o, g);
    if (g->relational || g->hidden)
        return fipsc_fail(err, FIPSC_ERR_ARG, "--relational and --hidden are the sentence encoder's terms; a "
                          "language model is distilled on the next-token KL alone");
    fipsc_corpus *c = NULL;
    fipsc_status st = fipsc_corpus_load(path, &c, err);
    o->progress_user = (void *)"KL";
    if (!st) st = lm->distill(m, orig, c, o, rep, err);
    if (!st && !(*meta = malloc(512))) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    if (!st)
        snprintf(*meta, 512,
                 "{\"sequences\":%d,\"positions\":%lld,\"steps\":%d,\"batch\":%d,\"lr\":%g,\"lr_min\":%g,"
                 "\"seed\":%llu,\"params\":%lld,\"kl_before\":%.6f,\"kl_after\":%.6f}",
                 rep->items, (long long)rep->rows, rep->steps, o->batch, (double)o->lr, (double)o->lr_min,
                 (unsigned long long)o->seed, (long long)rep->params, rep->score_before, rep->score_after);
    fipsc_corpus_free(c);
    return st;
}

/* An image classifier: the images read, preprocessed and distilled on; meta: the JSON. */
static fipsc_status run_image(fipsc_model *m, const fipsc_model *orig, const char *path,
                              const char *const *exclude_dirs, int n_exclude, int count, const given *g, fipsc_distill_opts *o, fipsc_distill_report *rep,
                              char **meta, fipsc_error *err)
{
    const fipsc_image_ops *ops = fipsc_model_image(m);
    ops->distill_defaults(o);
    apply_given(o, g);
    if (g->relational || g->hidden)
        return fipsc_fail(err, FIPSC_ERR_ARG, "--relational and --hidden are the sentence encoder's terms; an "
                          "image classifier is distilled on the logits' KL alone");
    fipsc_image_info info;
    ops->info(orig, &info);
    fipsc_image_list exclude = {0}, images = {0}, more = {0};
    float *pixels = NULL;
    fipsc_status st = FIPSC_OK;
    for (int k = 0; !st && k < n_exclude; k++)
        if (!(st = fipsc_image_list_read_dir(exclude_dirs[k], NULL, 0, &more, NULL, err)))
            st = fipsc_image_list_append(&exclude, &more, err);
    fipsc_image_list_free(&more);
    if (!st)
        st = fipsc_image_list_is_dir(path) ? fipsc_image_list_read_dir(path, &exclude, count, &images, NULL, err)
                                           : fipsc_image_list_read_idx(path, &exclude, count, &images, NULL, err);
    if (!st && images.n < 1) st = fipsc_fail(err, FIPSC_ERR_ARG, "%s: no images to distil on", path);
    const size_t per_image = (size_t)info.channels * info.height * info.width;
    if (!st && !(pixels = malloc((size_t)images.n * per_image * sizeof *pixels)))
        st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for %d images", images.n);
    for (int i = 0; !st && i < images.n; i++)
        st = fipsc_image_preprocess(&images.images[i], info.preproc, info.height, info.width,
                                    pixels + (size_t)i * per_image, images.names[i], err);
    o->progress_user = (void *)"KL";
    if (!st) st = ops->distill(m, orig, pixels, images.n, o, rep, err);
    if (!st && !(*meta = malloc(512))) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    if (!st)
        snprintf(*meta, 512,
                 "{\"images\":%d,\"rows\":%lld,\"steps\":%d,\"batch\":%d,\"lr\":%g,\"lr_min\":%g,"
                 "\"seed\":%llu,\"params\":%lld,\"kl_before\":%.8f,\"kl_after\":%.8f}",
                 rep->items, (long long)rep->rows, rep->steps, o->batch, (double)o->lr, (double)o->lr_min,
                 (unsigned long long)o->seed, (long long)rep->params, rep->score_before, rep->score_after);
    free(pixels);
    fipsc_image_list_free(&images);
    fipsc_image_list_free(&exclude);
    return st;
}

int cmd_distill(int argc, char **argv)
{
    static const struct option opts[] = {{"original", required_argument, 0, 'O'},
                                         {"sentences", required_argument, 0, 's'},
                                         {"corpus", required_argument, 0, 'c'},
                                         {"images", required_argument, 0, 'i'},
                                         {"exclude", required_argument, 0, 'x'},
                                         {"count", required_argument, 0, 'C'},
                                         {"output", required_argument, 0, 'o'},
                                         {"steps", required_argument, 0, 'n'},
                                         {"batch", required_argument, 0, 'b'},
                                         {"lr", required_argument, 0, 'l'},
                                         {"lr-min", required_argument, 0, 'm'},
                                         {"seed", required_argument, 0, 'S'},
                                         {"relational", required_argument, 0, 'r'},
                                         {"hidden", required_argument, 0, 'H'},
                                         {"threads", required_argument, 0, 't'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    given g = {0};
    fipsc_distill_defaults(&g.o);
    const char *original = NULL, *sentences = NULL, *corpus = NULL, *images = NULL, *output = NULL;
    enum { MAX_EXCLUDE = 16 };
    const char *exclude[MAX_EXCLUDE];
    int n_exclude = 0;
    long long v, threads = 0, count = 0;
    double x;
    bool quiet = false;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'O': original = optarg; break;
        case 's': sentences = optarg; break;
        case 'c': corpus = optarg; break;
        case 'i': images = optarg; break;
        case 'x':
            if (n_exclude == MAX_EXCLUDE) return cli_usage_error(CMD, "at most %d --exclude directories", MAX_EXCLUDE);
            exclude[n_exclude++] = optarg;
            break;
        case 'C':
            if (!cli_parse_int(CMD, "--count", optarg, 1, 100000000, &count)) return CLI_USAGE;
            break;
        case 'o': output = optarg; break;
        case 'n':
            if (!cli_parse_int(CMD, "--steps", optarg, 1, 10000000, &v)) return CLI_USAGE;
            g.o.steps = (int)v;
            g.steps = true;
            break;
        case 'b':
            if (!cli_parse_int(CMD, "--batch", optarg, 1, 1000000, &v)) return CLI_USAGE;
            g.o.batch = (int)v;
            g.batch = true;
            break;
        case 'l':
            if (!cli_parse_double(CMD, "--lr", optarg, 1e-12, 1.0, &x)) return CLI_USAGE;
            g.o.lr = (float)x;
            g.lr = true;
            break;
        case 'm':
            if (!cli_parse_double(CMD, "--lr-min", optarg, 0.0, 1.0, &x)) return CLI_USAGE;
            g.o.lr_min = (float)x;
            g.lr_min = true;
            break;
        case 'r':
            if (!cli_parse_double(CMD, "--relational", optarg, 0.0, 1e6, &x)) return CLI_USAGE;
            g.o.relational = (float)x;
            g.relational = true;
            break;
        case 'H':
            if (!cli_parse_double(CMD, "--hidden", optarg, 0.0, 1e6, &x)) return CLI_USAGE;
            g.o.hidden = (float)x;
            g.hidden = true;
            break;
        case 'S':
            if (!cli_parse_int(CMD, "--seed", optarg, 0, (long long)(~0ULL >> 1), &v)) return CLI_USAGE;
            g.o.seed = (uint64_t)v;
            break;
        case 't':
            if (!cli_parse_int(CMD, "--threads", optarg, 1, 4096, &threads)) return CLI_USAGE;
            break;
        case 'q': quiet = true; break;
        case 'h': usage(stdout); return CLI_OK;
        case ':': return cli_usage_error(CMD, "option '%s' needs an argument", argv[optind - 1]);
        default: return cli_usage_error(CMD, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind == argc) return cli_usage_error(CMD, "missing COMPRESSED (the compressed model to distil)");
    if (optind != argc - 1) return cli_usage_error(CMD, "expects exactly one compressed model, got %d", argc - optind);
    if (!original) return cli_usage_error(CMD, "missing --original MODEL (the uncompressed model)");
    if (!sentences && !corpus && !images)
        return cli_usage_error(CMD, "missing --sentences FILE (a sentence encoder's calibration sentences), "
                               "--corpus FILE (a language model's token sequences) or --images PATH (an image "
                               "classifier's images)");
    if (!!sentences + !!corpus + !!images > 1)
        return cli_usage_error(CMD, "give one of --sentences, --corpus and --images, not several");
    if ((n_exclude || count) && !images) return cli_usage_error(CMD, "--exclude and --count go with --images");
    if (!output) return cli_usage_error(CMD, "missing -o OUT (the file to write)");
    if (g.lr && g.lr_min && g.o.lr_min > g.o.lr)
        return cli_usage_error(CMD, "--lr-min %g is above --lr %g", (double)g.o.lr_min, (double)g.o.lr);
    if (threads > 0) fipsc_threads_set((int)threads);
    const char *input = argv[optind];
    const bool live = !quiet && isatty(2);

    fipsc_error err = {0};
    fipsc_model *orig = NULL, *m = NULL;
    fipsc_st_file *f = NULL;
    char *meta = NULL, *carried = NULL;
    int rc = CLI_OK;
    fipsc_status st = fipsc_model_load(original, &orig, &err);
    if (!st && !fipsc_compressed_is_file(input))
        st = fipsc_fail(&err, FIPSC_ERR_FORMAT, "%s is not a fipsc compressed file (make one with fipsc compress)", input);
    if (!st) st = fipsc_model_load(input, &m, &err);
    if (!st) st = check_pair(orig, m, &err);
    /* the capability the model has and the data it needs */
    enum { ENCODER, LM, IMAGE } kind = ENCODER;
    if (!st) kind = fipsc_model_lm(m) ? LM : fipsc_model_image(m) ? IMAGE : ENCODER;
    static const char *const kind_name[] = {"a sentence encoder", "a language model", "an image classifier"};
    static const char *const kind_option[] = {"--sentences FILE", "--corpus FILE", "--images PATH"};
    const char *data[] = {sentences, corpus, images};
    if (!st && !data[kind])
        st = fipsc_fail(&err, FIPSC_ERR_ARG, "%s is %s: give its calibration data with %s", input, kind_name[kind],
                        kind_option[kind]);
    if (!st && (st = fipsc_st_open(input, &f, &err)) == FIPSC_OK) {
        const char *prev = fipsc_st_meta(f, "fipsc.compress");
        if (prev && !(carried = strdup(prev))) st = fipsc_fail(&err, FIPSC_ERR_NOMEM, "out of memory");
        fipsc_st_close(f);
    }
    fipsc_distill_opts o;
    fipsc_distill_report rep;
    if (!st) {
        g.o.progress = live ? on_progress : NULL;
        if (kind == LM) st = run_lm(m, orig, corpus, &g, &o, &rep, &meta, &err);
        else if (kind == IMAGE) st = run_image(m, orig, images, exclude, n_exclude, (int)count, &g, &o, &rep, &meta, &err);
        else st = run_encoder(m, orig, sentences, &g, live, &o, &rep, &meta, &err);
    }
    if (!st) {
        const char *extra[] = {"fipsc.distill", meta, carried ? "fipsc.compress" : NULL, carried, NULL};
        /* every group keeps the dtypes it was read in */
        st = fipsc_compressed_write_ex(m, output, extra, NULL, &err);
    }
    static const char *const item_name[] = {"sentences", "sequences", "images"};
    if (!st && !quiet) {
        if (kind == LM)
            printf("%s -> %s\nmean KL(original || compressed) over %d sequences (%lld positions): %.6f -> %.6f\n",
                   input, output, rep.items, (long long)rep.rows, rep.score_before, rep.score_after);
        else if (kind == IMAGE)
            printf("%s -> %s\nmean KL(original || compressed) of the logits over %d images: %.8f -> %.8f\n", input,
                   output, rep.items, rep.score_before, rep.score_after);
        else
            printf("%s -> %s\nmean cos(compressed, original) over %d sentences (%lld rows): %.6f -> %.6f\n", input,
                   output, rep.items, (long long)rep.rows, rep.score_before, rep.score_after);
        printf("%d steps of %d %s, %lld parameters trained from layer %d up, %.1f s\n", rep.steps, o.batch,
               item_name[kind], (long long)rep.params, rep.first_layer, rep.seconds);
    }
    if (st) rc = cli_report(CMD, &err);
    free(meta);
    free(carried);
    fipsc_model_free(m);
    fipsc_model_free(orig);
    return rc;
}
