/* fipsc inspect: configuration, tensors and parameter counts of a model. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "fipsc/model.h"

static void usage(FILE *out)
{
    fprintf(out, "Usage: fipsc inspect MODEL [--json]\n\n"
                 "MODEL is a llama2.c .bin checkpoint.\n"
                 "  --json   machine-readable output\n"
                 "  --help   this text\n");
}

int cmd_inspect(int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, 0, 'j'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int json = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'j') json = 1;
        else if (c == 'h') { usage(stdout); return CLI_OK; }
        else return cli_usage_error("inspect", "unknown option");
    }
    if (optind != argc - 1) return cli_usage_error("inspect", "expects exactly one MODEL");
    fipsc_error err = {0};
    fipsc_model *m;
    if (fipsc_model_load(argv[optind], &m, &err)) return cli_report("inspect", &err);
    const fipsc_config *cf = &m->cfg;
    fipsc_param_counts pc = fipsc_model_count_params(m);
    if (json) {
        printf("{\"architecture\": \"%s\", \"dim\": %d, \"hidden_dim\": %d, \"n_layers\": %d, "
               "\"n_heads\": %d, \"n_kv_heads\": %d, \"vocab_size\": %d, \"params\": {\"mlp\": %lld, "
               "\"attention\": %lld, \"embeddings\": %lld, \"other\": %lld, \"total\": %lld}}\n",
               cf->arch_name, cf->dim, cf->hidden_dim, cf->n_layers, cf->n_heads, cf->n_kv_heads,
               cf->vocab_size, pc.mlp, pc.attention, pc.embeddings, pc.other, pc.total);
    } else {
        printf("architecture %s: dim %d, hidden %d, %d layers, %d heads, %d kv heads, vocab %d\n",
               cf->arch_name, cf->dim, cf->hidden_dim, cf->n_layers, cf->n_heads, cf->n_kv_heads, cf->vocab_size);
        printf("parameters: mlp %lld, attention %lld, embeddings %lld, other %lld, total %lld\n", pc.mlp,
               pc.attention, pc.embeddings, pc.other, pc.total);
    }
    fipsc_model_free(m);
    return CLI_OK;
}
