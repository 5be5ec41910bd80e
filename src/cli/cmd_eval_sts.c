/* fipsc eval-sts: how well a sentence encoder's cosine similarities rank sentence pairs like
 * people do — Spearman and Pearson correlations with the gold scores of an STS file. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "families/registry.h"
#include "cli/cli.h"
#include "eval/sts.h"
#include "core/threads.h"
#include "model/family.h"
#include "eval/embedding_compare.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: fipsc eval-sts MODEL FILE.tsv [--ref REFMODEL] [--json] [--threads N]\n\n"
            "Embeds both sentences of every pair in FILE.tsv with the sentence encoder MODEL (a\n"
            "TF.js directory or an imported .safetensors), scores each pair by the cosine similarity\n"
            "of the embeddings, and prints the Spearman (average ranks for ties) and Pearson\n"
            "correlations of those scores with the gold scores.\n\n"
            "FILE.tsv is in the STS Benchmark layout: tab-separated genre, file, year, id, score,\n"
            "sentence 1, sentence 2 per line (further columns are ignored; LF or CRLF line ends).\n\n"
            "With --ref, MODEL (e.g. a compressed encoder) is also compared with REFMODEL (its\n"
            "original) over the file's sentences: the mean and minimum cosine similarity of the two\n"
            "models' embeddings of each sentence, and per block the relative output error of MODEL's\n"
            "MLP, ||MLP(x) - y|| / ||y|| over the rows (x, y) that REFMODEL's MLP takes and gives.\n\n"
            "      --ref REFMODEL compare with this sentence encoder\n"
            "      --json         one JSON object: {\"pairs\", \"spearman\", \"pearson\"}, with --ref\n"
            "                     also \"reference\", \"sentences\", \"mean_cosine\", \"min_cosine\",\n"
            "                     \"mlp_rel_err\" (one number per block)\n"
            "      --threads N    threads for the forward (default: all cores)\n"
            "      --help         this text\n\n"
            "Exit status: 0 ok, 1 unreadable model or file, 2 usage error.\n");
}

/* s as the inside of a JSON string (quotes, backslashes and control characters escaped). */
static void json_string_body(FILE *out, const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(out, "\\%c", ch);
        else if (ch < 0x20) fprintf(out, "\\u%04x", ch);
        else fputc(ch, out);
    }
}

int cmd_eval_sts(int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, 0, 'j'},
                                         {"ref", required_argument, 0, 'r'},
                                         {"threads", required_argument, 0, 'T'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int json = 0, c;
    const char *ref_path = NULL;
    long long threads = 0;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': json = 1; break;
        case 'r': ref_path = optarg; break;
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
    fipsc_model *m = NULL, *ref = NULL;
    fipsc_sts_result res = {0};
    fipsc_embedding_comparison cmp = {0};
    float *emb = NULL; /* with --ref: MODEL's embeddings, pair i's sentences in rows 2i and 2i+1 */
    const char **texts = NULL;
    fipsc_status st = fipsc_model_load(argv[optind], &m, &err);
    if (!st && ref_path && (st = fipsc_model_load(ref_path, &ref, &err))) fipsc_fail_context(&err, "--ref: ");
    const fipsc_encoder_ops *enc = st ? NULL : fipsc_model_encoder(m);
    if (!st && ref && enc) {
        fipsc_encoder_info info;
        enc->info(m, &info);
        emb = malloc(2 * (size_t)set.n * (size_t)info.dim * sizeof *emb);
        texts = malloc(2 * (size_t)set.n * sizeof *texts);
        if (!emb || !texts) st = fipsc_fail(&err, FIPSC_ERR_NOMEM, "out of memory for %d embeddings", 2 * set.n);
        for (int i = 0; texts && i < set.n; i++) {
            texts[2 * i] = set.s1[i];
            texts[2 * i + 1] = set.s2[i];
        }
    }
    if (!st) st = fipsc_sts_evaluate(m, &set, &res, NULL, emb, &err);
    if (!st && ref) st = fipsc_embedding_compare(ref, m, 2 * set.n, texts, emb, &cmp, &err);
    if (!st) {
        if (json) {
            printf("{\"pairs\": %d, \"spearman\": %.6f, \"pearson\": %.6f", res.pairs, res.spearman, res.pearson);
            if (ref) {
                printf(", \"reference\": \"");
                json_string_body(stdout, ref_path);
                printf("\", \"sentences\": %d, \"mean_cosine\": %.8f, \"min_cosine\": %.8f, \"mlp_rel_err\": [",
                       cmp.sentences, cmp.mean_cosine, cmp.min_cosine);
                for (int l = 0; l < cmp.n_mlps; l++) printf("%s%.6f", l ? ", " : "", cmp.mlp_rel_err[l]);
                printf("]");
            }
            printf("}\n");
        } else {
            printf("%s: %d pairs, Spearman %.4f, Pearson %.4f\n", argv[optind + 1], res.pairs, res.spearman,
                   res.pearson);
            if (ref) {
                printf("against %s over %d sentences: cosine mean %.6f, min %.4f; MLP output error", ref_path,
                       cmp.sentences, cmp.mean_cosine, cmp.min_cosine);
                for (int l = 0; l < cmp.n_mlps; l++) printf("%s block %d %.4f", l ? "," : "", l, cmp.mlp_rel_err[l]);
                printf("\n");
            }
        }
    }
    fipsc_embedding_comparison_free(&cmp);
    free(emb);
    free(texts);
    fipsc_model_free(ref);
    fipsc_model_free(m);
    fipsc_sts_free(&set);
    return st ? cli_report("eval-sts", &err) : CLI_OK;
}
