/* libFuzzer target: token corpora, binary ("FIPSCTOK" header) and text (fipsc_corpus_load).
 *
 * The loader only takes a path, so each input is written to a file in a RAM-backed scratch
 * directory. A loaded corpus must be consistent: offsets increasing from 0, every id
 * non-negative (and below the header's vocab_size for the binary form). */
#include <stdint.h>
#include <stdlib.h>

#include "formats/corpus.h"
#include "fuzzutil.h"

#define REQUIRE(cond) \
    do {              \
        if (!(cond)) abort(); \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_write_scratch("corpus", data, size);
    fipsc_corpus *c = NULL;
    fipsc_error err;
    if (fipsc_corpus_load(fuzz_scratch_path("corpus"), &c, &err) != FIPSC_OK) {
        fuzz_note(&err);
        REQUIRE(c == NULL && err.code != FIPSC_OK && err.message[0]);
    } else {
        fuzz_note(NULL);
        REQUIRE(c->n_seqs > 0 && c->offsets[0] == 0);
        for (int s = 0; s < c->n_seqs; s++) {
            REQUIRE(fipsc_corpus_length(c, s) > 0);
            const int32_t *seq = fipsc_corpus_seq(c, s);
            for (int i = 0; i < fipsc_corpus_length(c, s); i++)
                REQUIRE(seq[i] >= 0 && (c->vocab_size == 0 || seq[i] < c->vocab_size));
        }
        fipsc_error vocab_err;
        if (c->vocab_size > 0) REQUIRE(fipsc_corpus_check_vocab(c, c->vocab_size, "fuzz", &vocab_err) == FIPSC_OK);
        fipsc_corpus_free(c);
    }
    fuzz_clear_scratch();
    return 0;
}
