/* fipsc sample: sample token sequences from a model into a token corpus file and/or, through the
 * model's tokenizer, a text file. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "families/registry.h"
#include "cli/cli.h"
#include "formats/corpus.h"
#include "model/generate.h"
#include "model/family.h"
#include "model/model.h"
#include "core/file.h"
#include "core/threads.h"
#include "model/text_corpus.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: fipsc sample MODEL (-o CORPUS | --text-out FILE [--tokenizer PATH]) [--n N] [--len L]\n"
            "                    [--seed S] [--temperature T] [--top-p P] [--threads K]\n\n"
            "Samples N sequences of L tokens from MODEL (a language model), each starting with\n"
            "the BOS token, and writes them as a binary token corpus (docs/FORMAT.md) for\n"
            "`fipsc eval` and for calibration. Sequence i is drawn with its own seed derived from\n"
            "S and i, so the corpus is the same whatever the thread count.\n\n"
            "  -o, --output CORPUS   the corpus file to write (atomically)\n"
            "      --text-out FILE   (also) write the sequences as text, decoded by the model's\n"
            "                        tokenizer.json without special tokens, a blank line between them\n"
            "      --tokenizer PATH  the tokenizer.json (or its directory) for --text-out (default:\n"
            "                        beside MODEL)\n"
            "  -n, --n N             number of sequences (default 64)\n"
            "      --len L           tokens per sequence, BOS included, at most the model's\n"
            "                        context (default 256)\n"
            "      --seed S          random seed, 0 .. 2^63 (default 1)\n"
            "      --temperature T   default 1 (sample from the model's distribution)\n"
            "      --top-p P         in (0, 1], default 1 (no truncation)\n"
            "      --threads K       threads to use (default: all cores)\n"
            "      --help            this text\n\n"
            "Progress goes to stderr when it is a terminal. Exit status: 0 ok, 1 unreadable model\n"
            "or failed write, 2 usage error.\n");
}

static void show_progress(void *ctx, long long done, long long total, double elapsed)
{
    (void)ctx;
    char el[32], eta[32];
    cli_format_seconds(el, sizeof el, elapsed);
    cli_format_seconds(eta, sizeof eta, done > 0 ? elapsed * (double)(total - done) / (double)done : -1.0);
    fprintf(stderr, "\r\033[Ksample: %lld/%lld tokens, %.1f tok/s, elapsed %s ETA %s", done, total,
            elapsed > 0 ? (double)done / elapsed : 0.0, el, eta);
    if (done == total) fprintf(stderr, "\n");
}

/* The n sequences as text, a blank line between them, written atomically. */
static fipsc_status write_text(const fipsc_tokenizer *tok, const int32_t *ids, int n, int len, const char *path,
                               fipsc_error *err)
{
    fipsc_atomic_file af;
    fipsc_status st = fipsc_atomic_open(path, &af, err);
    if (st) return st;
    for (int i = 0; i < n && !st; i++) {
        char *text = NULL;
        size_t text_len = 0;
        if ((st = fipsc_tokenizer_decode(tok, ids + (size_t)i * len, (size_t)len, true, &text, &text_len, err))) break;
        fipsc_atomic_write(&af, text, text_len, err);
        fipsc_atomic_write(&af, i + 1 < n ? "\n\n" : "\n", i + 1 < n ? 2 : 1, err);
        free(text);
    }
    if (st) {
        fipsc_atomic_abort(&af);
        return st;
    }
    return fipsc_atomic_commit(&af, err);
}

int cmd_sample(int argc, char **argv)
{
    enum { OPT_LEN = 256, OPT_SEED, OPT_TEMP, OPT_TOPP, OPT_THREADS, OPT_TEXT_OUT, OPT_TOKENIZER };
    static const struct option opts[] = {{"output", required_argument, 0, 'o'},
                                         {"text-out", required_argument, 0, OPT_TEXT_OUT},
                                         {"tokenizer", required_argument, 0, OPT_TOKENIZER},
                                         {"n", required_argument, 0, 'n'},
                                         {"len", required_argument, 0, OPT_LEN},
                                         {"seed", required_argument, 0, OPT_SEED},
                                         {"temperature", required_argument, 0, OPT_TEMP},
                                         {"top-p", required_argument, 0, OPT_TOPP},
                                         {"threads", required_argument, 0, OPT_THREADS},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *output = NULL, *text_out = NULL, *tok_path = NULL;
    long long n = 64, len = 256, seed = 1, threads = 0;
    double temperature = 1.0, top_p = 1.0;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:n:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': output = optarg; break;
        case OPT_TEXT_OUT: text_out = optarg; break;
        case OPT_TOKENIZER: tok_path = optarg; break;
        case 'n':
            if (!cli_parse_int("sample", "--n", optarg, 1, 1 << 24, &n)) return CLI_USAGE;
            break;
        case OPT_LEN:
            if (!cli_parse_int("sample", "--len", optarg, 1, 1 << 24, &len)) return CLI_USAGE;
            break;
        case OPT_SEED:
            if (!cli_parse_int("sample", "--seed", optarg, 0, INT64_MAX, &seed)) return CLI_USAGE;
            break;
        case OPT_TEMP:
            if (!cli_parse_double("sample", "--temperature", optarg, 0.0, 1e6, &temperature)) return CLI_USAGE;
            break;
        case OPT_TOPP:
            if (!cli_parse_double("sample", "--top-p", optarg, 1e-12, 1.0, &top_p)) return CLI_USAGE;
            break;
        case OPT_THREADS:
            if (!cli_parse_int("sample", "--threads", optarg, 1, 1024, &threads)) return CLI_USAGE;
            break;
        case 'h': usage(stdout); return CLI_OK;
        case ':': return cli_usage_error("sample", "option '%s' needs an argument", argv[optind - 1]);
        default: return cli_usage_error("sample", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind == argc) return cli_usage_error("sample", "missing MODEL");
    if (optind != argc - 1) return cli_usage_error("sample", "expects exactly one MODEL, got %d", argc - optind);
    if (!output && !text_out) return cli_usage_error("sample", "missing -o CORPUS or --text-out FILE (what to write)");
    if (tok_path && !text_out) return cli_usage_error("sample", "--tokenizer applies to --text-out only");
    if (n * len > (1LL << 31)) return cli_usage_error("sample", "%lld × %lld tokens is too many", n, len);
    if (threads > 0) fipsc_threads_set((int)threads);

    fipsc_error err = {0};
    fipsc_model *m = NULL;
    if (fipsc_model_load(argv[optind], &m, &err)) return cli_report("sample", &err);
    const fipsc_lm_ops *lm;
    if (fipsc_model_need_lm(m, &lm, &err)) {
        fipsc_model_free(m);
        return cli_report("sample", &err);
    }
    fipsc_lm_info info;
    lm->info(m, &info);
    int rc = CLI_OK;
    int32_t *ids = malloc((size_t)(n * len) * sizeof *ids);
    fipsc_corpus *corpus = NULL;
    fipsc_tokenizer *tok = NULL; /* loaded before sampling: a missing tokenizer fails fast */
    if (!ids) {
        fprintf(stderr, "fipsc sample: out of memory for %lld token ids\n", n * len);
        rc = CLI_FAILURE;
    } else if ((text_out && fipsc_model_tokenizer(m, tok_path, &tok, &err)) ||
               fipsc_lm_sample_sequences(m, (int)n, (int)len, (float)temperature, (float)top_p, (uint64_t)seed, ids,
                                         isatty(2) ? show_progress : NULL, NULL, &err) ||
               (output && (fipsc_corpus_from_ids(ids, (int)n, (int)len, info.vocab_size, &corpus, &err) ||
                           fipsc_corpus_write(corpus, output, &err))) ||
               (text_out && write_text(tok, ids, (int)n, (int)len, text_out, &err))) {
        rc = cli_report("sample", &err);
    } else {
        printf("wrote %s%s%s: %lld sequences × %lld tokens (vocabulary %d, seed %lld)\n", output ? output : "",
               output && text_out ? " and " : "", text_out ? text_out : "", n, len, info.vocab_size, seed);
    }
    fipsc_tokenizer_free(tok);
    fipsc_corpus_free(corpus);
    free(ids);
    fipsc_model_free(m);
    return rc;
}
