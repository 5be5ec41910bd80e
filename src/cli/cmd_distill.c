/* fipsc distill: end-to-end distillation of a compressed sentence encoder against the original
 * (src/families/use/distill.h): the calibration sentences are embedded by the original model,
 * then the compressed model's bases U and kept V entries are trained so that its embeddings of
 * the same sentences point the same way. The result is a compressed file like the input, with
 * the same sparsity; its __metadata__ keeps the input's "fipsc.compress" entry and adds
 * "fipsc.distill" (options and cosines). */
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
#include "formats/sentences.h"
#include "model/family.h"

#define CMD "distill"

static void usage(FILE *out)
{
    fipsc_distill_opts d;
    fipsc_distill_defaults(&d);
    fprintf(out,
            "Usage: fipsc distill COMPRESSED --original MODEL --sentences FILE -o OUT [options]\n\n"
            "Fine-tunes a compressed sentence encoder end to end against the original (the\n"
            "paper's optional knowledge distillation): MODEL embeds the sentences of FILE, then\n"
            "every basis U and every kept entry of V in COMPRESSED is trained (AdamW, cosine\n"
            "learning rate) to minimise the mean of 1 - cos(compressed, original embedding),\n"
            "with gradients through the layers above the first compressed MLP, the pooling and\n"
            "the output layer. Pruned entries stay zero: OUT has COMPRESSED's sparsity and size.\n"
            "OUT is written atomically (nothing is left behind on failure).\n\n"
            "  --original MODEL      the uncompressed encoder COMPRESSED was made from\n"
            "  --sentences FILE      FILE.tsv: both sentences of every pair of an STS file (e.g.\n"
            "                        ../shared/data/sts-b-train.tsv); else one sentence a line\n"
            "  -o, --output OUT      the compressed file to write\n"
            "      --steps N         optimiser steps (default %d)\n"
            "      --batch N         sentences per step (default %d)\n"
            "      --lr X            peak learning rate (default %g)\n"
            "      --lr-min X        final learning rate of the cosine schedule (default %g)\n"
            "      --relational X    weight of the relational term: the mean over pairs of a\n"
            "                        batch of (cos_c(i,j) - cos_o(i,j))^2 (default %g; 0 = off)\n"
            "      --hidden X        weight of the hidden-state term: each token's residual stream\n"
            "                        after every trained layer against the original's, relative\n"
            "                        squared error (default %g; 0 = off)\n"
            "      --seed N          the order of the batches (default %llu)\n"
            "      --threads K       threads to use (default: all cores)\n"
            "  -q, --quiet           no progress and no summary\n"
            "      --help            this text\n\n"
            "Sentence encoders only (UniversalSentenceEncoderLite). Exit status: 0 ok, 1 unreadable\n"
            "input, numeric failure or failed write, 2 usage error.\n",
            d.steps, d.batch_sentences, (double)d.lr, (double)d.lr_min, (double)d.relational, (double)d.hidden,
            (unsigned long long)d.seed);
}

static void on_progress(void *user, const fipsc_distill_progress *p)
{
    (void)user;
    fprintf(stderr, "\r\033[Kdistill: step %d/%d  loss (1 - cos) %.5f  lr %.2g", p->step, p->steps, p->loss,
            (double)p->lr);
    if (p->step == p->steps) fprintf(stderr, "\n");
}

/* Both models are sentence encoders of one family and shape, and the family can distil. */
static fipsc_status check_pair(const fipsc_model *orig, const fipsc_model *comp, const fipsc_encoder_ops **enc,
                               fipsc_encoder_info *info, fipsc_error *err)
{
    const fipsc_encoder_ops *a = fipsc_model_encoder(orig), *b = fipsc_model_encoder(comp);
    if (!a) return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "--original (%s) is not a sentence encoder", orig->arch_name);
    if (!b) return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "COMPRESSED (%s) is not a sentence encoder", comp->arch_name);
    fipsc_encoder_info ia, ib;
    a->info(orig, &ia);
    b->info(comp, &ib);
    if (orig->family != comp->family || ia.dim != ib.dim || orig->n_mlps != comp->n_mlps)
        return fipsc_fail(err, FIPSC_ERR_SHAPE, "--original (%s, d %d, %d layers) and COMPRESSED (%s, d %d, %d "
                          "layers) are different encoders", orig->arch_name, ia.dim, orig->n_mlps, comp->arch_name,
                          ib.dim, comp->n_mlps);
    if (!b->distill)
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "%s: fipsc has no distiller for this family yet", comp->arch_name);
    *enc = b;
    *info = ia;
    return FIPSC_OK;
}

int cmd_distill(int argc, char **argv)
{
    static const struct option opts[] = {{"original", required_argument, 0, 'O'},
                                         {"sentences", required_argument, 0, 's'},
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
    fipsc_distill_opts o;
    fipsc_distill_defaults(&o);
    const char *original = NULL, *sentences = NULL, *output = NULL;
    long long v, threads = 0;
    double x;
    bool quiet = false;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'O': original = optarg; break;
        case 's': sentences = optarg; break;
        case 'o': output = optarg; break;
        case 'n':
            if (!cli_parse_int(CMD, "--steps", optarg, 1, 10000000, &v)) return CLI_USAGE;
            o.steps = (int)v;
            break;
        case 'b':
            if (!cli_parse_int(CMD, "--batch", optarg, 1, 1000000, &v)) return CLI_USAGE;
            o.batch_sentences = (int)v;
            break;
        case 'l':
            if (!cli_parse_double(CMD, "--lr", optarg, 1e-12, 1.0, &x)) return CLI_USAGE;
            o.lr = (float)x;
            break;
        case 'm':
            if (!cli_parse_double(CMD, "--lr-min", optarg, 0.0, 1.0, &x)) return CLI_USAGE;
            o.lr_min = (float)x;
            break;
        case 'r':
            if (!cli_parse_double(CMD, "--relational", optarg, 0.0, 1e6, &x)) return CLI_USAGE;
            o.relational = (float)x;
            break;
        case 'H':
            if (!cli_parse_double(CMD, "--hidden", optarg, 0.0, 1e6, &x)) return CLI_USAGE;
            o.hidden = (float)x;
            break;
        case 'S':
            if (!cli_parse_int(CMD, "--seed", optarg, 0, (long long)(~0ULL >> 1), &v)) return CLI_USAGE;
            o.seed = (uint64_t)v;
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
    if (optind == argc) return cli_usage_error(CMD, "missing COMPRESSED (the compressed encoder to distil)");
    if (optind != argc - 1) return cli_usage_error(CMD, "expects exactly one compressed model, got %d", argc - optind);
    if (!original) return cli_usage_error(CMD, "missing --original MODEL (the uncompressed encoder)");
    if (!sentences) return cli_usage_error(CMD, "missing --sentences FILE (the calibration sentences)");
    if (!output) return cli_usage_error(CMD, "missing -o OUT (the file to write)");
    if (o.lr_min > o.lr) return cli_usage_error(CMD, "--lr-min %g is above --lr %g", (double)o.lr_min, (double)o.lr);
    if (threads > 0) fipsc_threads_set((int)threads);
    const char *input = argv[optind];
    const bool live = !quiet && isatty(2);

    fipsc_error err = {0};
    fipsc_model *orig = NULL, *m = NULL;
    fipsc_st_file *f = NULL;
    fipsc_sentences s = {0};
    int32_t **ids = NULL;
    int *lens = NULL;
    float *target = NULL;
    char *meta = NULL, *carried = NULL;
    int rc = CLI_OK;
    fipsc_status st = fipsc_model_load(original, &orig, &err);
    if (!st && !fipsc_compressed_is_file(input))
        st = fipsc_fail(&err, FIPSC_ERR_FORMAT, "%s is not a fipsc compressed file (make one with fipsc compress)", input);
    if (!st) st = fipsc_model_load(input, &m, &err);
    const fipsc_encoder_ops *enc = NULL;
    fipsc_encoder_info info = {0};
    if (!st) st = check_pair(orig, m, &enc, &info, &err);
    if (!st && (st = fipsc_st_open(input, &f, &err)) == FIPSC_OK) {
        const char *prev = fipsc_st_meta(f, "fipsc.compress");
        if (prev && !(carried = strdup(prev))) st = fipsc_fail(&err, FIPSC_ERR_NOMEM, "out of memory");
        fipsc_st_close(f);
    }
    if (!st) st = fipsc_sentences_read(sentences, &s, &err);
    if (!st) {
        ids = calloc((size_t)s.n, sizeof *ids);
        lens = calloc((size_t)s.n, sizeof *lens);
        target = malloc((size_t)s.n * info.dim * sizeof *target);
        if (!ids || !lens || !target) st = fipsc_fail(&err, FIPSC_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; !st && i < s.n; i++)
        if ((st = enc->tokenize(orig, s.text[i], strlen(s.text[i]), &ids[i], &lens[i], &err)))
            fipsc_fail_context(&err, "%s line %d: ", sentences, s.line[i]);
    if (!st && live) fprintf(stderr, "distill: embedding %d sentences with the original...", s.n);
    if (!st) st = enc->encode(orig, s.n, (const int32_t *const *)ids, lens, target, NULL, &err);
    if (live) fprintf(stderr, "\r\033[K");
    if (!st) {
        o.progress = live ? on_progress : NULL;
        fipsc_distill_report rep;
        st = enc->distill(m, orig, s.n, (const int32_t *const *)ids, lens, target, &o, &rep, &err);
        if (!st) {
            size_t cap = 512;
            if ((meta = malloc(cap)))
                snprintf(meta, cap,
                         "{\"sentences\":%d,\"rows\":%lld,\"steps\":%d,\"batch\":%d,\"lr\":%g,\"lr_min\":%g,"
                         "\"relational\":%g,\"hidden\":%g,\"seed\":%llu,\"params\":%lld,\"cos_before\":%.6f,\"cos_after\":%.6f}",
                         rep.sentences, (long long)rep.rows, rep.steps, o.batch_sentences, (double)o.lr,
                         (double)o.lr_min, (double)o.relational, (double)o.hidden, (unsigned long long)o.seed, (long long)rep.params, rep.cos_before,
                         rep.cos_after);
            else
                st = fipsc_fail(&err, FIPSC_ERR_NOMEM, "out of memory");
        }
        if (!st) {
            const char *extra[] = {"fipsc.distill", meta, carried ? "fipsc.compress" : NULL, carried, NULL};
            /* every group keeps the dtypes it was read in */
            st = fipsc_compressed_write_ex(m, output, extra, NULL, &err);
        }
        if (!st && !quiet)
            printf("%s -> %s\nmean cos(compressed, original) over %d sentences (%lld rows): %.6f -> %.6f\n"
                   "%d steps of %d sentences, %lld parameters trained from layer %d up, %.1f s\n",
                   input, output, rep.sentences, (long long)rep.rows, rep.cos_before, rep.cos_after, rep.steps,
                   o.batch_sentences, (long long)rep.params, rep.first_layer, rep.seconds);
    }
    if (st) rc = cli_report(CMD, &err);
    for (int i = 0; ids && i < s.n; i++) free(ids[i]);
    free(ids);
    free(lens);
    free(target);
    free(meta);
    free(carried);
    fipsc_sentences_free(&s);
    fipsc_model_free(m);
    fipsc_model_free(orig);
    return rc;
}
