/* libFuzzer target: STS Benchmark files (fipsc_sts_read: tab-separated genre, file, year, id,
 * score, sentence 1, sentence 2 per line; the sentence-encoder evaluation's input).
 *
 * The input is the file, written to a RAM-backed scratch file for each execution (the reader
 * takes a path). A set that reads has at least two pairs, finite scores and both sentences of
 * every pair. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eval/sts.h"
#include "fuzzutil.h"

#define REQUIRE(cond) \
    do {              \
        if (!(cond)) abort(); \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_write_scratch("sts.tsv", data, size);
    fipsc_sts_set set;
    fipsc_error err;
    if (fipsc_sts_read(fuzz_scratch_path("sts.tsv"), &set, &err) != FIPSC_OK) {
        fuzz_note(&err);
        REQUIRE(set.n == 0 && set.score == NULL && err.code != FIPSC_OK && err.message[0]);
    } else {
        fuzz_note(NULL);
        REQUIRE(set.n >= 2 && set.extra_column_rows >= 0 && set.extra_column_rows <= set.n);
        size_t bytes = 0;
        for (int i = 0; i < set.n; i++) {
            REQUIRE(isfinite(set.score[i]) && set.s1[i] && set.s2[i]);
            bytes += strlen(set.s1[i]) + strlen(set.s2[i]);
        }
        REQUIRE(bytes <= size);
        fipsc_sts_free(&set);
    }
    fuzz_clear_scratch();
    return 0;
}
