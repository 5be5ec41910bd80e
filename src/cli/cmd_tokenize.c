/* fipsc tokenize: text to token ids with a Hugging Face tokenizer.json, as llama.cpp's
 * llama-tokenize does for GGUF vocabularies. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "text/tokenizer.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: fipsc tokenize --tokenizer PATH (--text TEXT | --file FILE) [--json] [--no-special]\n"
            "                      [--decode]\n\n"
            "Encodes text with a Hugging Face tokenizer (tokenizer.json, and tokenizer_config.json\n"
            "beside it) exactly as transformers' JavaScript port does (tests/tokenizers/ holds the\n"
            "goldens): byte-level BPE (Llama-3, Qwen) and SentencePiece-style BPE with byte\n"
            "fallback (Llama-2, Gemma). Ill-formed UTF-8 is read as U+FFFD.\n\n"
            "Without --json the whole input is one text, printed one token a line: the id, a tab and\n"
            "the token as stored in the vocabulary. With --json every input line (newline not\n"
            "included) is tokenized on its own and printed as one JSON array of ids.\n\n"
            "      --tokenizer PATH  a tokenizer.json or the directory holding it (required)\n"
            "      --text TEXT       the text to tokenize\n"
            "      --file FILE       ... or the contents of FILE ('-': standard input)\n"
            "      --json            one JSON array of ids per input line\n"
            "      --no-special      no special tokens from the post-processor (e.g. no BOS)\n"
            "      --decode          print the text the ids decode to (special tokens left out)\n"
            "                        instead, and the token count and speed on stderr\n"
            "      --help            this text\n\n"
            "Exit status: 0 ok, 1 unreadable or unsupported tokenizer, 2 usage error.\n");
}

/* The token as stored, with control characters, quotes and backslashes escaped. */
static void print_piece(const char *p, size_t len)
{
    putchar('\'');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '\n') fputs("\\n", stdout);
        else if (c == '\t') fputs("\\t", stdout);
        else if (c == '\\' || c == '\'') printf("\\%c", c);
        else if (c < 0x20 || c == 0x7f) printf("\\x%02x", c);
        else putchar(c);
    }
    putchar('\'');
}

static int tokenize_one(const fipsc_tokenizer *t, const char *text, size_t len, bool special, bool json, bool decode,
                        size_t *tokens)
{
    fipsc_error err = {0};
    int32_t *ids = NULL;
    size_t n = 0;
    if (fipsc_tokenizer_encode(t, text, len, special, &ids, &n, &err)) return cli_report("tokenize", &err);
    *tokens += n;
    if (decode) {
        char *out = NULL;
        size_t out_len = 0;
        if (fipsc_tokenizer_decode(t, ids, n, true, &out, &out_len, &err)) {
            free(ids);
            return cli_report("tokenize", &err);
        }
        fwrite(out, 1, out_len, stdout);
        putchar('\n');
        free(out);
    } else if (json) {
        putchar('[');
        for (size_t i = 0; i < n; i++) printf(i ? ", %d" : "%d", (int)ids[i]);
        puts("]");
    } else {
        for (size_t i = 0; i < n; i++) {
            size_t plen = 0;
            const char *piece = fipsc_tokenizer_token(t, ids[i], &plen);
            printf("%d\t", (int)ids[i]);
            print_piece(piece ? piece : "", piece ? plen : 0);
            putchar('\n');
        }
    }
    free(ids);
    return CLI_OK;
}

int cmd_tokenize(int argc, char **argv)
{
    enum { OPT_TOKENIZER = 256, OPT_TEXT, OPT_FILE, OPT_JSON, OPT_NO_SPECIAL, OPT_DECODE };
    static const struct option opts[] = {{"tokenizer", required_argument, 0, OPT_TOKENIZER},
                                         {"text", required_argument, 0, OPT_TEXT},
                                         {"file", required_argument, 0, OPT_FILE},
                                         {"json", no_argument, 0, OPT_JSON},
                                         {"no-special", no_argument, 0, OPT_NO_SPECIAL},
                                         {"decode", no_argument, 0, OPT_DECODE},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *tok_path = NULL, *text = NULL, *file = NULL;
    bool json = false, special = true, decode = false;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_TOKENIZER: tok_path = optarg; break;
        case OPT_TEXT: text = optarg; break;
        case OPT_FILE: file = optarg; break;
        case OPT_JSON: json = true; break;
        case OPT_NO_SPECIAL: special = false; break;
        case OPT_DECODE: decode = true; break;
        case 'h': usage(stdout); return CLI_OK;
        case ':': return cli_usage_error("tokenize", "option '%s' needs an argument", argv[optind - 1]);
        default: return cli_usage_error("tokenize", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc) return cli_usage_error("tokenize", "unexpected argument '%s'", argv[optind]);
    if (!tok_path) return cli_usage_error("tokenize", "missing --tokenizer PATH");
    if (!text == !file) return cli_usage_error("tokenize", "give exactly one of --text TEXT and --file FILE");
    if (json && decode) return cli_usage_error("tokenize", "--json and --decode exclude each other");

    fipsc_error err = {0};
    char *buf = NULL;
    size_t len = 0;
    if (file && cli_read_input(file, &buf, &len, &err)) return cli_report("tokenize", &err);
    if (text) len = strlen(text);
    const char *input = text ? text : buf;
    fipsc_tokenizer *t = NULL;
    if (fipsc_tokenizer_load(tok_path, &t, &err)) {
        free(buf);
        return cli_report("tokenize", &err);
    }
    int rc = CLI_OK;
    size_t tokens = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (json) { /* every line on its own */
        for (size_t start = 0; start <= len && rc == CLI_OK;) {
            const char *nl = memchr(input + start, '\n', len - start);
            size_t end = nl ? (size_t)(nl - input) : len;
            if (end == len && start == len && start > 0) break; /* no empty line after a final newline */
            rc = tokenize_one(t, input + start, end - start, special, true, false, &tokens);
            start = end + 1;
        }
    } else {
        rc = tokenize_one(t, input, len, special, false, decode, &tokens);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (decode && rc == CLI_OK) {
        double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        fprintf(stderr, "%zu tokens, %zu bytes, encoded and decoded in %.3f s (%.2f MB/s)\n", tokens, len, s,
                s > 0 ? (double)len / s / 1e6 : 0.0);
    }
    fipsc_tokenizer_free(t);
    free(buf);
    return rc;
}
