/* fipsc import-tfjs: a TF.js graph model (the Universal Sentence Encoder Lite) as safetensors.
 *
 * Loading checks the graph against the forward fipsc implements and translates the weights to
 * fipsc's names and [out, in] orientation (families/use/import_tfjs.c); writing stores them with the
 * configuration and the vocabulary in __metadata__ (families/use/safetensors.c), so the output alone is
 * a complete model for every other command. */
#include <getopt.h>
#include <stdio.h>

#include "cli/cli.h"
#include "families/use/use.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: fipsc import-tfjs DIR -o OUT.safetensors\n\n"
            "Reads the TF.js graph model in DIR (model.json, its float32/int32 weight shards and\n"
            "vocab.json; the Universal Sentence Encoder Lite, as scripts/fetch-models unpacks it)\n"
            "and writes one safetensors file (atomically): F32 tensors under clear names\n"
            "(embeddings.word_embeddings.weight, encoder.layer.<l>.mlp.fc1.weight, ...; linear\n"
            "weights [out, in]), the architecture and configuration in __metadata__ \"config\" and\n"
            "the SentencePiece vocabulary in __metadata__ \"sentencepiece_vocab\".\n\n"
            "  -o, --output FILE  the .safetensors file to write\n"
            "      --help         this text\n\n"
            "Exit status: 0 ok, 1 unreadable or unsupported model or failed write, 2 usage error.\n");
}

int cmd_import_tfjs(int argc, char **argv)
{
    static const struct option opts[] = {{"output", required_argument, 0, 'o'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *output = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': output = optarg; break;
        case 'h': usage(stdout); return CLI_OK;
        case ':': return cli_usage_error("import-tfjs", "option '%s' needs an argument", argv[optind - 1]);
        default: return cli_usage_error("import-tfjs", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind == argc) return cli_usage_error("import-tfjs", "missing DIR (the TF.js model directory)");
    if (optind != argc - 1)
        return cli_usage_error("import-tfjs", "expects exactly one DIR, got %d", argc - optind);
    if (!output) return cli_usage_error("import-tfjs", "missing -o OUT.safetensors");

    fipsc_error err = {0};
    fipsc_model *m;
    if (fipsc_use_load_tfjs(argv[optind], &m, &err)) return cli_report("import-tfjs", &err);
    fipsc_status st = fipsc_use_write_safetensors(m, output, &err);
    if (!st) {
        fipsc_param_counts pc = fipsc_model_count_params(m);
        printf("wrote %s: %s, %d tensors, %lld parameters (%lld in MLPs)\n", output, m->arch_name,
               m->n_tensors, pc.total, pc.mlp);
    }
    fipsc_model_free(m);
    return st ? cli_report("import-tfjs", &err) : CLI_OK;
}
