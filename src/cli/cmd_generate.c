/* fipsc generate: continue a prompt (token ids, or text through the model's tokenizer) with a
 * language model; text is printed while it is generated. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "families/registry.h"
#include "cli/cli.h"
#include "model/generate.h"
#include "model/family.h"
#include "model/model.h"
#include "model/text_corpus.h"
#include "core/threads.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: fipsc generate MODEL [--prompt \"TEXT\" [--tokenizer PATH] | --prompt-tokens \"1 403 ...\"]\n"
            "                      [-n N] [--temperature T] [--top-p P] [--seed S] [--ignore-eos]\n"
            "                      [--threads K]\n\n"
            "Feeds the prompt to MODEL (a language model) and samples N more tokens.\n"
            "With --prompt, the text is tokenized by the model's tokenizer.json (beside the\n"
            "checkpoint, or --tokenizer) after the model's BOS, and the prompt and its continuation\n"
            "are printed as text while they are generated. With --prompt-tokens (or no prompt: the\n"
            "BOS id), the prompt ids followed by the generated ids are printed on one line.\n"
            "Generation stops early after the end-of-sequence token unless --ignore-eos.\n"
            "The same seed gives the same tokens whatever the thread count.\n\n"
            "      --prompt TEXT        the prompt as text\n"
            "      --tokenizer PATH     the tokenizer.json (or its directory) for --prompt\n"
            "      --prompt-tokens IDS  whitespace- or comma-separated token ids (default: the BOS id)\n"
            "  -n, --tokens N           tokens to generate (default 64)\n"
            "      --temperature T      0 = always the most likely token (default 1)\n"
            "      --top-p P            sample from the most likely tokens holding mass P, in (0, 1]\n"
            "                           (default 0.9)\n"
            "      --seed S             random seed, 0 .. 2^63 (default 1)\n"
            "      --ignore-eos         keep going after the end-of-sequence token\n"
            "      --threads K          threads to use (default: all cores)\n"
            "      --help               this text\n\n"
            "Exit status: 0 ok, 1 unreadable model or failed run, 2 usage error.\n");
}

/* Parses "1 403, 7" into ids; returns the count or -1 after a usage error. */
static int parse_ids(const char *text, int32_t **out)
{
    size_t cap = 16, n = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    const char *p = text;
    while (ids) {
        while (*p == ' ' || *p == '\t' || *p == ',' || *p == '\n') p++;
        if (!*p) break;
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 0 || v > INT32_MAX || (*end && !strchr(" \t,\n", *end))) {
            free(ids);
            cli_usage_error("generate", "--prompt-tokens expects non-negative integer ids, got '%s'", text);
            return -1;
        }
        if (n == cap) {
            int32_t *grown = realloc(ids, 2 * cap * sizeof *ids);
            if (!grown) break;
            ids = grown;
            cap *= 2;
        }
        ids[n++] = (int32_t)v;
        p = end;
    }
    if (!ids || *p) {
        free(ids);
        fprintf(stderr, "fipsc generate: out of memory\n");
        return -2;
    }
    *out = ids;
    return (int)n;
}

/* Printing text while it is generated: the decode of all ids so far, of which the bytes not yet
 * printed are written, except a trailing U+FFFD (EF BF BD) that may be the start of a character
 * whose next byte tokens are still to come. */
typedef struct text_stream {
    const fipsc_tokenizer *tok;
    int32_t *ids;
    size_t n, cap, printed;
    bool failed;
} text_stream;

static void stream_print(text_stream *ts, bool final)
{
    char *text = NULL;
    size_t len = 0;
    fipsc_error err = {0};
    if (fipsc_tokenizer_decode(ts->tok, ts->ids, ts->n, true, &text, &len, &err)) {
        if (!ts->failed) fprintf(stderr, "fipsc generate: %s\n", err.message);
        ts->failed = true;
        return;
    }
    size_t upto = len;
    if (!final && upto >= 3 && !memcmp(text + upto - 3, "\xEF\xBF\xBD", 3)) upto -= 3;
    if (upto > ts->printed) { /* a decode can shrink (clean-up of " ."): print only what grew */
        fwrite(text + ts->printed, 1, upto - ts->printed, stdout);
        fflush(stdout);
        ts->printed = upto;
    }
    free(text);
}

static void stream_push(text_stream *ts, int32_t token)
{
    if (ts->failed) return;
    if (ts->n == ts->cap) {
        size_t cap = ts->cap ? 2 * ts->cap : 256;
        int32_t *grown = realloc(ts->ids, cap * sizeof *grown);
        if (!grown) {
            ts->failed = true;
            return;
        }
        ts->ids = grown;
        ts->cap = cap;
    }
    ts->ids[ts->n++] = token;
}

static void on_token(void *ctx, int32_t token)
{
    text_stream *ts = ctx;
    stream_push(ts, token);
    if (!ts->failed) stream_print(ts, false);
}

int cmd_generate(int argc, char **argv)
{
    enum { OPT_PROMPT = 256, OPT_TEMP, OPT_TOPP, OPT_SEED, OPT_IGNORE_EOS, OPT_THREADS, OPT_TEXT, OPT_TOKENIZER };
    static const struct option opts[] = {{"prompt-tokens", required_argument, 0, OPT_PROMPT},
                                         {"prompt", required_argument, 0, OPT_TEXT},
                                         {"tokenizer", required_argument, 0, OPT_TOKENIZER},
                                         {"tokens", required_argument, 0, 'n'},
                                         {"temperature", required_argument, 0, OPT_TEMP},
                                         {"top-p", required_argument, 0, OPT_TOPP},
                                         {"seed", required_argument, 0, OPT_SEED},
                                         {"ignore-eos", no_argument, 0, OPT_IGNORE_EOS},
                                         {"threads", required_argument, 0, OPT_THREADS},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *prompt_text = NULL, *text = NULL, *tok_path = NULL;
    long long n_new = 64, seed = 1, threads = 0;
    double temperature = 1.0, top_p = 0.9;
    int ignore_eos = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":n:h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_PROMPT: prompt_text = optarg; break;
        case OPT_TEXT: text = optarg; break;
        case OPT_TOKENIZER: tok_path = optarg; break;
        case 'n':
            if (!cli_parse_int("generate", "-n", optarg, 0, 1 << 24, &n_new)) return CLI_USAGE;
            break;
        case OPT_TEMP:
            if (!cli_parse_double("generate", "--temperature", optarg, 0.0, 1e6, &temperature)) return CLI_USAGE;
            break;
        case OPT_TOPP:
            if (!cli_parse_double("generate", "--top-p", optarg, 1e-12, 1.0, &top_p)) return CLI_USAGE;
            break;
        case OPT_SEED:
            if (!cli_parse_int("generate", "--seed", optarg, 0, INT64_MAX, &seed)) return CLI_USAGE;
            break;
        case OPT_IGNORE_EOS: ignore_eos = 1; break;
        case OPT_THREADS:
            if (!cli_parse_int("generate", "--threads", optarg, 1, 1024, &threads)) return CLI_USAGE;
            break;
        case 'h': usage(stdout); return CLI_OK;
        case ':': return cli_usage_error("generate", "option '%s' needs an argument", argv[optind - 1]);
        default: return cli_usage_error("generate", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind == argc) return cli_usage_error("generate", "missing MODEL");
    if (optind != argc - 1) return cli_usage_error("generate", "expects exactly one MODEL, got %d", argc - optind);
    if (text && prompt_text) return cli_usage_error("generate", "--prompt and --prompt-tokens exclude each other");
    if (tok_path && !text) return cli_usage_error("generate", "--tokenizer applies to --prompt only");
    int32_t *prompt = NULL;
    int n_prompt = 0;
    if (prompt_text) {
        n_prompt = parse_ids(prompt_text, &prompt);
        if (n_prompt < 0) return n_prompt == -1 ? CLI_USAGE : CLI_FAILURE;
        if (n_prompt == 0) {
            free(prompt);
            return cli_usage_error("generate", "--prompt-tokens holds no token id");
        }
    }
    if (threads > 0) fipsc_threads_set((int)threads);

    fipsc_error err = {0};
    fipsc_model *m = NULL;
    if (fipsc_model_load(argv[optind], &m, &err)) {
        free(prompt);
        return cli_report("generate", &err);
    }
    const fipsc_lm_ops *lm;
    if (fipsc_model_need_lm(m, &lm, &err)) {
        free(prompt);
        fipsc_model_free(m);
        return cli_report("generate", &err);
    }
    fipsc_lm_info info;
    lm->info(m, &info);
    fipsc_tokenizer *tok = NULL;
    text_stream ts = {0};
    if (text) {
        size_t n = 0;
        if (fipsc_model_tokenizer(m, tok_path, &tok, &err) ||
            fipsc_text_stream(m, tok, text, strlen(text), &prompt, &n, &err)) {
            fipsc_tokenizer_free(tok);
            fipsc_model_free(m);
            return cli_report("generate", &err);
        }
        if (n == 0 || n > INT32_MAX) {
            free(prompt);
            fipsc_tokenizer_free(tok);
            fipsc_model_free(m);
            return cli_usage_error("generate", "--prompt gives no tokens and the model has no BOS token to start from");
        }
        n_prompt = (int)n;
        ts.tok = tok;
        for (int i = 0; i < n_prompt; i++) stream_push(&ts, prompt[i]);
        if (!ts.failed) stream_print(&ts, false); /* the prompt is the first text printed */
    }
    int32_t bos;
    if (!prompt) {
        bos = info.bos_token;
        prompt = &bos;
        n_prompt = 1;
    }
    int rc = CLI_OK;
    fipsc_sampler sampler = {0};
    int32_t *out = malloc((size_t)(n_new ? n_new : 1) * sizeof *out);
    int n_out = 0;
    if (!out) {
        fprintf(stderr, "fipsc generate: out of memory\n");
        rc = CLI_FAILURE;
    } else if (fipsc_sampler_init(&sampler, info.vocab_size, (float)temperature, (float)top_p,
                                  (uint64_t)seed, &err) ||
               fipsc_lm_generate_streaming(m, prompt, n_prompt, (int)n_new, &sampler, !ignore_eos,
                                           tok ? on_token : NULL, &ts, out, &n_out, &err)) {
        if (tok) printf("\n");
        rc = cli_report("generate", &err);
    } else if (tok) {
        stream_print(&ts, true);
        printf("\n");
        if (ts.failed) rc = CLI_FAILURE;
    } else {
        for (int i = 0; i < n_prompt; i++) printf(i ? " %d" : "%d", (int)prompt[i]);
        for (int i = 0; i < n_out; i++) printf(" %d", (int)out[i]);
        printf("\n");
    }
    if (rc == CLI_OK && fflush(stdout) != 0) {
        fprintf(stderr, "fipsc generate: cannot write to standard output: %s\n", strerror(errno));
        rc = CLI_FAILURE;
    }
    free(ts.ids);
    fipsc_tokenizer_free(tok);
    fipsc_sampler_free(&sampler);
    free(out);
    if (prompt != &bos) free(prompt);
    fipsc_model_free(m);
    return rc;
}
