/* fipsc eval-sts: how well a sentence encoder's cosine similarities rank sentence pairs like
 * people do — Spearman and Pearson correlations with the gold scores of an STS file. */
#include <getopt.h>
#include <stdio.h>

#include "cli/cli.h"
#include "fipsc/sts.h"
#include "fipsc/threads.h"
#include "fipsc/use.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: fipsc eval-sts MODEL FILE.tsv [--json] [--threads N]\n\n"
            "Embeds both sentences of every pair in FILE.tsv with the sentence encoder MODEL (a\n"
            "TF.js directory or an imported .safetensors), scores each pair by the cosine similarity\n"
            "of the embeddings, and prints the Spearman (average ranks for ties) and Pearson\n"
            "correlations of those scores with the gold scores.\n\n"
            "FILE.tsv is in the STS Benchmark layout: tab-separated genre, file, year, id, score,\n"
            "sentence 1, sentence 2 per line (further columns are ignored; LF or CRLF line ends).\n\n"
            "      --json         one JSON object: {\"pairs\", \"spearman\", \"pearson\"}\n"
            "      --threads N    threads for the forward (default: all cores)\n"
            "      --help         this text\n\n"
            "Exit status: 0 ok, 1 unreadable model or file, 2 usage error.\n");
}

int cmd_eval_sts(int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, 0, 'j'},
                                         {"threads", required_argument, 0, 'T'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int json = 0, c;
    long long threads = 0;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': json = 1; break;
        case 'T':
            if (!cli_parse_int("eval-sts", "--threads", optarg, 1, 1024, &threads)) return CLI_USAGE;
            break;
        case 'h': usage(stdout); return CLI_OK;
        case ':': return cli_usage_error("eval-sts", "option '%s' needs an argument", argv[optind - 1]);
        default: return cli_usage_error("eval-sts", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 2)
        return cli_usage_error("eval-sts", "expects MODEL and FILE.tsv, got %d argument(s)", argc - optind);
    if (threads > 0) fipsc_threads_set((int)threads);

    fipsc_error err = {0};
    fipsc_sts_set set;
    if (fipsc_sts_read(argv[optind + 1], &set, &err)) return cli_report("eval-sts", &err);
    fipsc_model *m = NULL;
    fipsc_sts_result res = {0};
    fipsc_status st = fipsc_model_load(argv[optind], &m, &err);
    if (!st) st = fipsc_sts_evaluate(m, &set, &res, NULL, NULL, &err);
    if (!st) {
        if (json)
            printf("{\"pairs\": %d, \"spearman\": %.6f, \"pearson\": %.6f}\n", res.pairs, res.spearman, res.pearson);
        else
            printf("%s: %d pairs, Spearman %.4f, Pearson %.4f\n", argv[optind + 1], res.pairs, res.spearman,
                   res.pearson);
    }
    fipsc_model_free(m);
    fipsc_sts_free(&set);
    return st ? cli_report("eval-sts", &err) : CLI_OK;
}
