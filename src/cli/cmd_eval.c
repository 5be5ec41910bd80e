/* fipsc eval: perplexity of a language model on a token corpus or a text, and with --ref the KL
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
#include "model/text_corpus.h"
#include "core/file.h"
#include "core/threads.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: fipsc eval MODEL (--corpus FILE | --text FILE [--tokenizer PATH] [--context C]\n"
            "                  [--stride S]) [--ref REFMODEL] [--json] [--threads K]\n\n"
            "Scores MODEL on every sequence of the token corpus FILE (binary, from `fipsc sample`,\n"
            "or text: whitespace-separated ids, one sequence per line). Position 0 (BOS) is context\n"
            "only; every later token is predicted from the ones before it.\n"
            "With --text, scores a UTF-8 text instead: tokenized by the model's tokenizer.json (beside\n"
            "the checkpoint, or --tokenizer), the model's BOS first, then cut into windows of C tokens\n"
            "every S tokens, each scoring only the tokens no earlier window scored (Hugging Face's\n"
            "protocol for fixed-length models): every token but the first is scored once, with up to\n"
            "C - 1 tokens of context. Reports the token count and bits per byte as well.\n"
            "Reports the perplexity exp(mean −log p(token)). With --ref, also KL(ref ‖ model) per\n"
            "token (mean, median, 99th percentile, max, in nats), the fraction of positions where\n"
            "both models' most likely token agrees, the reference's perplexity and the difference\n"
            "(MODEL − REFMODEL), as llama.cpp's perplexity --kl-divergence does.\n\n"
            "      --corpus FILE     the token corpus\n"
            "      --text FILE       ... or a UTF-8 text\n"
            "      --tokenizer PATH  the tokenizer.json (or its directory) for --text\n"
            "      --context C       tokens per window (default: the model's context, at most 1024)\n"
            "      --stride S        tokens between window starts (default C / 2)\n"
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

static int print_json(const char *model, const char *corpus, const char *ref, const fipsc_eval_result *r,
                      const fipsc_text_eval *tx)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", model);
    cJSON_AddStringToObject(o, tx ? "text" : "corpus", corpus);
    if (tx) {
        cJSON_AddNumberToObject(o, "bytes", (double)tx->bytes);
        cJSON_AddNumberToObject(o, "tokens", (double)tx->tokens);
        cJSON_AddNumberToObject(o, "context", tx->context);
        cJSON_AddNumberToObject(o, "stride", tx->stride);
        cJSON_AddNumberToObject(o, "bits_per_byte", tx->bits_per_byte);
    }
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

static void print_table(const char *model, const char *corpus, const char *ref, const fipsc_eval_result *r,
                        const fipsc_text_eval *tx)
{
    printf("model            %s\n", model);
    if (tx) {
        printf("text             %s: %zu bytes, %zu tokens; %d windows of %d tokens every %d, %lld scored\n",
               corpus, tx->bytes, tx->tokens, tx->windows, tx->context, tx->stride, (long long)r->n_predicted);
    } else {
        printf("corpus           %s: %d sequences, %lld scored tokens\n", corpus, r->n_sequences,
               (long long)r->n_predicted);
    }
    printf("perplexity       %.6f   (mean NLL %.6f nats/token)\n", r->ppl, r->nll);
    if (tx) printf("bits per byte    %.6f\n", tx->bits_per_byte);
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
    enum { OPT_CORPUS = 256, OPT_REF, OPT_JSON, OPT_THREADS, OPT_TEXT, OPT_TOKENIZER, OPT_CONTEXT, OPT_STRIDE };
    static const struct option opts[] = {{"corpus", required_argument, 0, OPT_CORPUS},
                                         {"text", required_argument, 0, OPT_TEXT},
                                         {"tokenizer", required_argument, 0, OPT_TOKENIZER},
                                         {"context", required_argument, 0, OPT_CONTEXT},
                                         {"stride", required_argument, 0, OPT_STRIDE},
                                         {"ref", required_argument, 0, OPT_REF},
                                         {"json", no_argument, 0, OPT_JSON},
                                         {"threads", required_argument, 0, OPT_THREADS},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *corpus_path = NULL, *ref_path = NULL, *text_path = NULL, *tok_path = NULL;
    int json = 0, c;
    long long threads = 0, context = 0, stride = 0;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_CORPUS: corpus_path = optarg; break;
        case OPT_REF: ref_path = optarg; break;
        case OPT_TEXT: text_path = optarg; break;
        case OPT_TOKENIZER: tok_path = optarg; break;
        case OPT_CONTEXT:
            if (!cli_parse_int("eval", "--context", optarg, 2, 1 << 24, &context)) return CLI_USAGE;
            break;
        case OPT_STRIDE:
            if (!cli_parse_int("eval", "--stride", optarg, 1, 1 << 24, &stride)) return CLI_USAGE;
            break;
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
    if (!corpus_path == !text_path) return cli_usage_error("eval", "give exactly one of --corpus FILE and --text FILE");
    if (!text_path && (tok_path || context || stride))
        return cli_usage_error("eval", "--tokenizer, --context and --stride apply to --text only");
    if (context && stride > context)
        return cli_usage_error("eval", "--stride %lld is larger than --context %lld", stride, context);
    if (threads > 0) fipsc_threads_set((int)threads);
    const char *model_path = argv[optind];

    fipsc_error err = {0};
    fipsc_model *m = NULL, *ref = NULL;
    fipsc_corpus *corpus = NULL;
    fipsc_tokenizer *tok = NULL;
    char *text = NULL;
    size_t text_len = 0;
    fipsc_eval_result res;
    fipsc_text_eval tx;
    int rc = CLI_OK;
    if ((corpus_path && fipsc_corpus_load(corpus_path, &corpus, &err)) || fipsc_model_load(model_path, &m, &err) ||
        (text_path && (fipsc_read_file(text_path, &text, &text_len, &err) || fipsc_model_tokenizer(m, tok_path, &tok, &err)))) {
        rc = cli_report("eval", &err);
    } else if (ref_path && fipsc_model_load(ref_path, &ref, &err)) {
        fipsc_fail_context(&err, "reference model: ");
        rc = cli_report("eval", &err);
    } else {
        fipsc_eval_options opt = {.ref = ref, .progress = isatty(2) ? show_progress : NULL};
        fipsc_status st = text ? fipsc_eval_text(m, tok, text, text_len, (int)context, (int)stride, &opt, &res, &tx, &err)
                               : fipsc_eval_corpus(m, corpus, &opt, &res, &err);
        const char *input = text ? text_path : corpus_path;
        if (st) rc = cli_report("eval", &err);
        else if (json) rc = print_json(model_path, input, ref_path, &res, text ? &tx : NULL);
        else print_table(model_path, input, ref_path, &res, text ? &tx : NULL);
    }
    fipsc_tokenizer_free(tok);
    free(text);
    fipsc_corpus_free(corpus);
    fipsc_model_free(ref);
    fipsc_model_free(m);
    return rc;
}
