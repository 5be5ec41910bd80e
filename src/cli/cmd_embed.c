/* fipsc embed: sentence embeddings from a sentence encoder (the Universal Sentence Encoder Lite,
 * as a TF.js directory or an imported .safetensors).
 *
 * Sentences come from --text options or from a file with one sentence per line; all of them are
 * embedded in one call (the encoder capability's embed), so a file gets the encoder's batching. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "families/registry.h"
#include "cli/cli.h"
#include "core/file.h"
#include "core/threads.h"
#include "model/family.h"

typedef enum { FORMAT_TEXT, FORMAT_JSON, FORMAT_F32 } out_format;

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: fipsc embed MODEL (--text TEXT ... | --file FILE) [-o OUT] [--format F]\n\n"
            "Embeds sentences with a sentence encoder: MODEL is the Universal Sentence Encoder Lite\n"
            "as a TF.js directory (scripts/fetch-models) or as imported by 'fipsc import-tfjs'.\n"
            "Each embedding has 512 dimensions and unit length.\n\n"
            "  -t, --text TEXT    a sentence (repeatable; embedded in the order given)\n"
            "  -f, --file FILE    one sentence per line (UTF-8, LF or CRLF line ends; '-' reads\n"
            "                     standard input); an empty line is an empty sentence\n"
            "  -o, --output OUT   write to OUT (atomically) instead of standard output\n"
            "      --format F     text (default): one line per sentence, numbers separated by spaces;\n"
            "                     json: a JSON array of arrays; f32: raw little-endian float32\n"
            "                     [sentences, 512] (only with -o)\n"
            "      --threads N    threads for the forward (default: all cores)\n"
            "      --help         this text\n\n"
            "Exit status: 0 ok, 1 unreadable model or input or failed write, 2 usage error.\n");
}

/* Splits a file's text into lines (in place): LF or CRLF ends, no extra empty line after a final
 * line end. */
static int split_lines(char *text, size_t size, char ***lines_out, size_t **lens_out)
{
    size_t cap = 1;
    for (size_t i = 0; i < size; i++) cap += text[i] == '\n';
    char **lines = malloc(cap * sizeof *lines);
    size_t *lens = malloc(cap * sizeof *lens);
    if (!lines || !lens) {
        free(lines);
        free(lens);
        return -1;
    }
    int n = 0;
    size_t start = 0;
    while (start < size) {
        char *nl = memchr(text + start, '\n', size - start);
        size_t end = nl ? (size_t)(nl - text) : size, len = end - start;
        if (len > 0 && text[start + len - 1] == '\r') len--;
        text[start + len] = '\0';
        lines[n] = text + start;
        lens[n] = len;
        n++;
        start = end + 1;
    }
    *lines_out = lines;
    *lens_out = lens;
    return n;
}

/* Writes the embeddings [n, d] in `format` to fp. */
static void write_embeddings(FILE *fp, out_format format, const float *e, int n, int d)
{
    if (format == FORMAT_F32) {
        fwrite(e, sizeof *e, (size_t)n * (size_t)d, fp);
        return;
    }
    if (format == FORMAT_JSON) fputs("[", fp);
    for (int i = 0; i < n; i++) {
        if (format == FORMAT_JSON) fputs(i ? ",\n [" : "\n [", fp);
        for (int j = 0; j < d; j++) {
            /* 9 significant digits: the float32 value reads back exactly */
            fprintf(fp, j ? (format == FORMAT_JSON ? ", %.9g" : " %.9g") : "%.9g", (double)e[(size_t)i * d + j]);
        }
        fputs(format == FORMAT_JSON ? "]" : "\n", fp);
    }
    if (format == FORMAT_JSON) fputs("\n]\n", fp);
}

int cmd_embed(int argc, char **argv)
{
    static const struct option opts[] = {{"text", required_argument, 0, 't'},
                                         {"file", required_argument, 0, 'f'},
                                         {"output", required_argument, 0, 'o'},
                                         {"format", required_argument, 0, 'F'},
                                         {"threads", required_argument, 0, 'T'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *file = NULL, *output = NULL;
    const char **texts = calloc((size_t)argc + 1, sizeof *texts);
    int n_texts = 0, c;
    out_format format = FORMAT_TEXT;
    long long threads = 0;
    if (!texts) {
        fprintf(stderr, "fipsc embed: out of memory\n");
        return CLI_FAILURE;
    }
    int rc = CLI_OK;
    optind = 1;
    opterr = 0;
    while (rc == CLI_OK && (c = getopt_long(argc, argv, ":t:f:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 't': texts[n_texts++] = optarg; break;
        case 'f': file = optarg; break;
        case 'o': output = optarg; break;
        case 'F':
            if (strcmp(optarg, "text") == 0) format = FORMAT_TEXT;
            else if (strcmp(optarg, "json") == 0) format = FORMAT_JSON;
            else if (strcmp(optarg, "f32") == 0) format = FORMAT_F32;
            else rc = cli_usage_error("embed", "--format expects text, json or f32, got '%s'", optarg);
            break;
        case 'T':
            if (!cli_parse_int("embed", "--threads", optarg, 1, 1024, &threads)) rc = CLI_USAGE;
            break;
        case 'h': usage(stdout); free(texts); return CLI_OK;
        case ':': rc = cli_usage_error("embed", "option '%s' needs an argument", argv[optind - 1]); break;
        default: rc = cli_usage_error("embed", "unknown option '%s'", argv[optind - 1]); break;
        }
    }
    if (rc == CLI_OK) {
        if (optind == argc) rc = cli_usage_error("embed", "missing MODEL");
        else if (optind != argc - 1) rc = cli_usage_error("embed", "expects exactly one MODEL, got %d", argc - optind);
        else if (!file && n_texts == 0) rc = cli_usage_error("embed", "nothing to embed: give --text TEXT or --file FILE");
        else if (file && n_texts > 0) rc = cli_usage_error("embed", "give either --text or --file, not both");
        else if (format == FORMAT_F32 && !output)
            rc = cli_usage_error("embed", "--format f32 writes binary data: give -o OUT");
    }
    if (rc != CLI_OK) {
        free(texts);
        return rc;
    }
    if (threads > 0) fipsc_threads_set((int)threads);

    fipsc_error err = {0};
    fipsc_model *m = NULL;
    char *text = NULL, **lines = NULL;
    size_t size = 0, *lens = NULL;
    float *emb = NULL;
    int n = n_texts;
    const fipsc_encoder_ops *enc = NULL;
    fipsc_encoder_info info = {0};
    fipsc_status st = fipsc_model_load(argv[optind], &m, &err);
    if (!st) st = fipsc_model_need_encoder(m, &enc, &err);
    if (!st) enc->info(m, &info);
    if (!st && file) {
        st = cli_read_input(file, &text, &size, &err);
        if (!st && (n = split_lines(text, size, &lines, &lens)) < 0)
            st = fipsc_fail(&err, FIPSC_ERR_NOMEM, "out of memory splitting %s into lines", file);
    }
    const int d = info.dim;
    if (!st && !(emb = malloc(((size_t)n * (size_t)d + 1) * sizeof *emb)))
        st = fipsc_fail(&err, FIPSC_ERR_NOMEM, "out of memory for %d embeddings", n);
    if (!st) st = enc->embed(m, n, file ? (const char *const *)lines : texts, file ? lens : NULL, emb, &err);
    if (!st) {
        if (output) {
            fipsc_atomic_file af;
            if (!(st = fipsc_atomic_open(output, &af, &err))) {
                write_embeddings(af.fp, format, emb, n, d);
                st = fipsc_atomic_commit(&af, &err);
            }
        } else {
            write_embeddings(stdout, format, emb, n, d);
            if (fflush(stdout) != 0 || ferror(stdout))
                st = fipsc_fail(&err, FIPSC_ERR_IO, "cannot write the embeddings to standard output");
        }
    }
    rc = st ? cli_report("embed", &err) : CLI_OK;
    free(emb);
    free(lines);
    free(lens);
    free(text);
    free(texts);
    fipsc_model_free(m);
    return rc;
}
