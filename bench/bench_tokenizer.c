/* Tokenizer speed: encodes (and decodes) a text file with a tokenizer.json, repeatedly, and
 * prints megabytes of text per second, single-threaded (bench/tokenizer-vs-js.sh compares it with
 * the JavaScript client on the same files).
 *
 *   bench_tokenizer TOKENIZER TEXT [SECONDS]     (default: at least 2 s of encoding)
 *
 * Prints one line: "load S s, encode X MB/s, decode Y MB/s, N tokens per pass". */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/file.h"
#include "text/tokenizer.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static _Noreturn void die(const fipsc_error *err)
{
    fprintf(stderr, "bench_tokenizer: %s\n", err->message);
    exit(1);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_tokenizer TOKENIZER TEXT [SECONDS]\n");
        return 2;
    }
    const double seconds = argc > 3 ? atof(argv[3]) : 2.0;
    fipsc_error err = {0};
    char *text = NULL;
    size_t len = 0;
    if (fipsc_read_file(argv[2], &text, &len, &err)) die(&err);
    double t0 = now();
    fipsc_tokenizer *t = NULL;
    if (fipsc_tokenizer_load(argv[1], &t, &err)) die(&err);
    const double load = now() - t0;
    int32_t *ids = NULL;
    size_t n = 0;
    int passes = 0;
    t0 = now();
    do {
        free(ids);
        if (fipsc_tokenizer_encode(t, text, len, true, &ids, &n, &err)) die(&err);
        passes++;
    } while (now() - t0 < seconds);
    const double encode = (now() - t0) / passes;
    int dec_passes = 0;
    t0 = now();
    do {
        char *out = NULL;
        size_t out_len = 0;
        if (fipsc_tokenizer_decode(t, ids, n, true, &out, &out_len, &err)) die(&err);
        free(out);
        dec_passes++;
    } while (now() - t0 < seconds / 2);
    const double decode = (now() - t0) / dec_passes;
    printf("load %.3f s, encode %.2f MB/s, decode %.2f MB/s, %zu tokens per pass\n", load, (double)len / encode / 1e6,
           (double)len / decode / 1e6, n);
    free(ids);
    free(text);
    fipsc_tokenizer_free(t);
    return 0;
}
