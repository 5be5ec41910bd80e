/* fipsc export: write a compressed model as a standard checkpoint other runtimes load, or as a
 * GGUF file for llama.cpp (--gguf).
 *
 * --dense reconstructs every compressed MLP matrix as U·V_i in its original [out, in]
 * orientation (fipsc_model_densify) and writes the model in its family's standard form (a
 * Hugging Face checkpoint directory: config.json + model.safetensors, every tensor F32 under its
 * standard name; the sentence encoder: one .safetensors file). Any model fipsc loads is accepted
 * (an uncompressed one is written as it is). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "families/registry.h"
#include "formats/gguf.h"
#include "cli/cli.h"
#include "model/compressed.h"
#include "model/family.h"
#include "model/model.h"
#include "model/text_corpus.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: fipsc export MODEL --dense -o DIR [--force]\n"
            "       fipsc export MODEL --gguf -o OUT.gguf [--type f32|f16|bf16|q8_0|q4_0] [--vocab-from F]\n"
            "                    [--force]\n\n"
            "Writes MODEL (a fipsc compressed .safetensors, or any model fipsc loads) for other\n"
            "runtimes. Every compressed MLP matrix is first reconstructed as U·V_i in its original\n"
            "[out, in] orientation (neither form has a FiPS operator).\n\n"
            "--dense writes the family's standard checkpoint: a Hugging Face directory\n"
            "DIR/config.json + DIR/model.safetensors (F32, standard tensor names), created whole or\n"
            "not at all (assembled in a temporary directory beside it, then renamed); a family that\n"
            "writes one .safetensors file takes OUT instead of DIR.\n\n"
            "--gguf writes one GGUF v3 file for llama.cpp (language models of the families marked\n"
            "'gguf' below): tensor names, metadata and the q/k row order of llama.cpp's own\n"
            "converter; --type stores the matrices as F32 (default), F16, BF16, Q8_0 or Q4_0 (blocks\n"
            "bit-exact to llama.cpp's quantizers; norms stay F32, matrices whose rows are not whole\n"
            "32-value blocks F16). The tokenizer: --vocab-from F, a GGUF file of the same vocabulary\n"
            "whose tokenizer is copied, or a Hugging Face tokenizer.json (or its directory) written as\n"
            "llama.cpp's vocabulary (byte-level BPE as 'gpt2', BPE with byte fallback as 'llama');\n"
            "default: MODEL itself when it is a GGUF file with one, else the tokenizer.json beside\n"
            "MODEL; without either the vocabulary is a labelled placeholder (token ids, not text,\n"
            "match). Written atomically.\n\n"
            "  --dense            a Hugging Face checkpoint (dense MLP weights)\n"
            "  --gguf             a GGUF file for llama.cpp\n"
            "      --type T       GGUF matrix type: f32, f16, bf16, q8_0, q4_0 (default f32)\n"
            "      --vocab-from F the tokenizer: a GGUF file, or a tokenizer.json or its directory\n"
            "  -o, --output PATH  the directory (--dense) or file (--gguf) to create\n"
            "      --force        replace an existing output (--dense: config.json and\n"
            "                     model.safetensors in a non-empty DIR)\n"
            "      --help         this text\n\n"
            "Exit status: 0 ok, 1 unreadable input or failed write, 2 usage error.\n\n"
            "What each model family writes:\n");
    for (int i = 0; i < fipsc_family_count(); i++)
        if (fipsc_family_at(i)->export_dense)
            fprintf(out, "  %-9s %s%s\n", fipsc_family_at(i)->name, fipsc_family_at(i)->export_form,
                    fipsc_family_at(i)->export_gguf ? "; gguf" : "");
}

int cmd_export(int argc, char **argv)
{
    static const struct option opts[] = {{"dense", no_argument, 0, 'd'},
                                         {"gguf", no_argument, 0, 'g'},
                                         {"type", required_argument, 0, 't'},
                                         {"vocab-from", required_argument, 0, 'v'},
                                         {"output", required_argument, 0, 'o'},
                                         {"force", no_argument, 0, 'f'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *output = NULL, *type = NULL, *vocab_from = NULL;
    int dense = 0, gguf = 0, force = 0, c;
    optind = 1;
    opterr = 0; /* we word the errors ourselves */
    while ((c = getopt_long(argc, argv, ":o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': dense = 1; break;
        case 'g': gguf = 1; break;
        case 't': type = optarg; break;
        case 'v': vocab_from = optarg; break;
        case 'o': output = optarg; break;
        case 'f': force = 1; break;
        case 'h': usage(stdout); return CLI_OK;
        case ':': return cli_usage_error("export", "option '%s' needs an argument", argv[optind - 1]);
        default: return cli_usage_error("export", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind == argc) return cli_usage_error("export", "missing MODEL (the model to export)");
    if (optind != argc - 1) return cli_usage_error("export", "expects exactly one model, got %d", argc - optind);
    if (dense == gguf) return cli_usage_error("export", "give exactly one of --dense (Hugging Face) and --gguf (llama.cpp)");
    if (type && !gguf) return cli_usage_error("export", "--type applies to --gguf only");
    if (vocab_from && !gguf) return cli_usage_error("export", "--vocab-from applies to --gguf only");
    fipsc_ggml_type gtype = FIPSC_GGML_F32;
    if (type && !fipsc_ggml_type_parse(type, &gtype))
        return cli_usage_error("export", "--type must be f32, f16, bf16, q8_0 or q4_0, not '%s'", type);
    if (!output) return cli_usage_error("export", "missing -o %s (the output)", gguf ? "OUT.gguf" : "DIR");

    fipsc_error err = {0};
    fipsc_model *m;
    if (fipsc_model_load(argv[optind], &m, &err)) return cli_report("export", &err);
    int matrices = fipsc_model_factored_count(m), groups = fipsc_model_group_count(m);
    /* a GGUF input with a tokenizer lends it to the output unless another is named */
    if (gguf && !vocab_from && fipsc_gguf_is_file(argv[optind])) {
        fipsc_gguf *g;
        if (fipsc_gguf_open(argv[optind], &g, NULL) == FIPSC_OK) {
            if (fipsc_gguf_find(g, "tokenizer.ggml.tokens")) vocab_from = argv[optind];
            fipsc_gguf_close(g);
        }
    }
    fipsc_status st = gguf ? fipsc_export_gguf(m, output, fipsc_ggml_type_name(gtype), vocab_from, force, &err)
                           : fipsc_export(m, output, force, &err); /* both reconstruct compressed MLPs first */
    if (st) {
        fipsc_model_free(m);
        int rc = cli_report("export", &err);
        if (!force && strstr(err.message, "refusing to overwrite"))
            fprintf(stderr, "Use --force to replace its config.json and model.safetensors.\n");
        return rc;
    }
    char beside[4096];
    if (gguf && !vocab_from && fipsc_model_tokenizer_file(m, beside, sizeof beside)) vocab_from = beside;
    if (gguf)
        printf("wrote %s: GGUF v3 for llama.cpp (%d tensors, matrices %s; %d compressed matrices of %d group%s "
               "reconstructed; %s%s)\n",
               output, m->n_tensors, fipsc_ggml_type_name(gtype), matrices, groups, groups == 1 ? "" : "s",
               vocab_from ? "tokenizer from " : "placeholder vocabulary", vocab_from ? vocab_from : "");
    else
        printf("wrote %s: %s (%d tensors, F32; %d compressed matrices of %d group%s reconstructed)\n", output,
               m->family->export_is_directory ? "config.json and model.safetensors" : m->family->export_form,
               m->n_tensors, matrices, groups, groups == 1 ? "" : "s");
    fipsc_model_free(m);
    return CLI_OK;
}
