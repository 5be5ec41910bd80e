/* fipsc eval: perplexity of a language model on a token corpus, and with --ref the KL
 * divergence, top-1 agreement and perplexity change against a reference model. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "families/registry.h"
#include "cli/cli.h"
#include "formats/corpus.h"
#include "eval/eval.h"
#include "model/model.h"
#include "core/threads.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: fipsc eval MODEL --corpus FILE [--ref REFMODEL] [--json] [--threads K]\n\n"
            "Scores MODEL on every sequence of the token corpus FILE (binary, from `fipsc sample`,\n"
            "or text: whitespace-separated ids, one sequence per line). Position 0 (BOS) is context\n"
            "only; every later token is predicted from the ones before it.\n"
            "Reports the perplexity exp(mean −log p(token)). With --ref, also KL(ref ‖ model) per\n"
            "token (mean, median, 99th percentile, max, in nats), the fraction of positions where\n"
            "both models' most likely token agrees, the reference's perplexity and the difference\n"
            "(MODEL − REFMODEL), as llama.cpp's perplexity --kl-divergence does.\n\n"
            "      --corpus FILE     the token corpus (required)\n"
            "      --ref REFMODEL    the reference model (e.g. the uncompressed original)\n"
            "      --json            one JSON object on stdout instead of the table\n"
            "      --threads K       threads to use (default: all cores); results do not depend on it\n"
            "      --help            this text\n\n"
            "Progress goes to stderr when it is a terminal. Exit status: 0 ok, 1 unreadable input,\n"
            "2 usage error (including token ids outside the model's vocabulary).\n");
}

static void show_progress(void *ctx, int done, int total)
{
    (void)ctx;
    fprintf(stderr, "\reval: %d/%d sequences", done, total);
    if (done == total) fprintf(stderr, "\n");
}

static int print_json(const char *model, const char *corpus, const char *ref, const fipsc_eval_result *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", model);
    cJSON_AddStringToObject(o, "corpus", corpus);
    cJSON_AddNumberToObject(o, "sequences", r->n_sequences);
    cJSON_AddNumberToObject(o, "scored_tokens", (double)r->n_predicted);
    cJSON_AddNumberToObject(o, "nll", r->nll);
    cJSON_AddNumberToObject(o, "perplexity", r->ppl);
    if (r->has_ref) {
        cJSON_AddStringToObject(o, "reference", ref);
        cJSON_AddNumberToObject(o, "ref_nll", r->ref_nll);
        cJSON_AddNumberToObject(o, "ref_perplexity", r->ref_ppl);
        cJSON_AddNumberToObject(o, "delta_perplexity", r->delta_ppl);
        cJSON_AddNumberToObject(o, "kl_mean", r->kl_mean);
        cJSON_AddNumberToObject(o, "kl_median", r->kl_median);
        cJSON_AddNumberToObject(o, "kl_p99", r->kl_p99);
        cJSON_AddNumberToObject(o, "kl_max", r->kl_max);
        cJSON_AddNumberToObject(o, "top1_agreement", r->top1_agreement);
    }
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    if (!text) {
        fprintf(stderr, "fipsc eval: out of memory\n");
        return CLI_FAILURE;
    }
    printf("%s\n", text);
    cJSON_free(text);
    return CLI_OK;
}

static void print_table(const char *model, const char *corpus, const char *ref, const fipsc_eval_result *r)
{
    printf("model            %s\n", model);
    printf("corpus           %s: %d sequences, %lld scored tokens\n", corpus, r->n_sequences,
           (long long)r->n_predicted);
    printf("perplexity       %.6f   (mean NLL %.6f nats/token)\n", r->ppl, r->nll);
    if (!r->has_ref) return;
    printf("reference        %s\n", ref);
    printf("ref perplexity   %.6f   (mean NLL %.6f nats/token)\n", r->ref_ppl, r->ref_nll);
    printf("delta perplexity %+.6f\n", r->delta_ppl);
    printf("KL(ref||model)   mean %.6g, median %.6g, p99 %.6g, max %.6g (nats/token)\n", r->kl_mean,
           r->kl_median, r->kl_p99, r->kl_max);
    printf("top-1 agreement  %.4f %%\n", 100.0 * r->top1_agreement);
}

int cmd_eval(int argc, char **argv)
{
    enum { OPT_CORPUS = 256, OPT_REF, OPT_JSON, OPT_THREADS };
    static const struct option opts[] = {{"corpus", required_argument, 0, OPT_CORPUS},
                                         {"ref", required_argument, 0, OPT_REF},
                                         {"json", no_argument, 0, OPT_JSON},
                                         {"threads", required_argument, 0, OPT_THREADS},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *corpus_path = NULL, *ref_path = NULL;
    int json = 0, c;
    long long threads = 0;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_CORPUS: corpus_path = optarg; break;
        case OPT_REF: ref_path = optarg; break;
        case OPT_JSON: json = 1; break;
        case OPT_THREADS:
            if (!cli_parse_int("eval", "--threads", optarg, 1, 1024, &threads)) return CLI_USAGE;
            break;
        case 'h': usage(stdout); return CLI_OK;
        case ':': return cli_usage_error("eval", "option '%s' needs an argument", argv[optind - 1]);
        default: return cli_usage_error("eval", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind == argc) return cli_usage_error("eval", "missing MODEL");
    if (optind != argc - 1) return cli_usage_error("eval", "expects exactly one MODEL, got %d", argc - optind);
    if (!corpus_path) return cli_usage_error("eval", "missing --corpus FILE");
    if (threads > 0) fipsc_threads_set((int)threads);
    const char *model_path = argv[optind];

    fipsc_error err = {0};
    fipsc_model *m = NULL, *ref = NULL;
    fipsc_corpus *corpus = NULL;
    fipsc_eval_result res;
    int rc = CLI_OK;
    if (fipsc_corpus_load(corpus_path, &corpus, &err) || fipsc_model_load(model_path, &m, &err)) {
        rc = cli_report("eval", &err);
    } else if (ref_path && fipsc_model_load(ref_path, &ref, &err)) {
        fipsc_fail_context(&err, "reference model: ");
        rc = cli_report("eval", &err);
    } else {
        fipsc_eval_options opt = {.ref = ref, .progress = isatty(2) ? show_progress : NULL};
        if (fipsc_eval_corpus(m, corpus, &opt, &res, &err)) rc = cli_report("eval", &err);
        else if (json) rc = print_json(model_path, corpus_path, ref_path, &res);
        else print_table(model_path, corpus_path, ref_path, &res);
    }
    fipsc_corpus_free(corpus);
    fipsc_model_free(ref);
    fipsc_model_free(m);
    return rc;
}
