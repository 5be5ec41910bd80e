/* Text for language models: the model's tokenizer, a text as the token stream the model reads, and
 * that stream cut into the token corpora calibration and evaluation use.
 *
 * The stream: the tokenizer's ids of the whole text with its special tokens (a TemplateProcessing
 * BOS), and the model's BOS token (config.json bos_token_id) in front when the model has one and
 * the tokenizer did not put it there (Llama-3's tokenizer.json adds none). Every id must be inside
 * the model's vocabulary. */
#ifndef FIPSC_MODEL_TEXT_CORPUS_H
#define FIPSC_MODEL_TEXT_CORPUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "formats/corpus.h"
#include "model/model.h"
#include "text/tokenizer.h"

/* The tokenizer of m: `path` when given (a tokenizer.json or its directory), else tokenizer.json
 * in the model's directory (the checkpoint directory, or the directory of a checkpoint file).
 * FIPSC_ERR_NOT_FOUND, saying how to give one, when there is none. */
fipsc_status fipsc_model_tokenizer(const fipsc_model *m, const char *path, fipsc_tokenizer **out, fipsc_error *err);

/* The path of the tokenizer.json beside m into buf; false (buf: the path looked at) when there
 * is none. */
bool fipsc_model_tokenizer_file(const fipsc_model *m, char *buf, size_t cap);

/* The stream of text[0..len) for language model m (see above): malloc'ed ids, *n of them. */
fipsc_status fipsc_text_stream(const fipsc_model *m, const fipsc_tokenizer *t, const char *text, size_t len,
                               int32_t **ids, size_t *n, fipsc_error *err);

/* Calibration sequences of seq_len tokens from a stream: when the model has a BOS token every
 * sequence is BOS + seq_len − 1 consecutive tokens of the text after the stream's BOS, else
 * seq_len consecutive tokens. The text gives `*available` such disjoint chunks; at most max_seqs
 * of them are taken, spread evenly over the text (chunk ⌊k · available / n⌋ for k = 0..n−1).
 * FIPSC_ERR_ARG when the text is too short for one sequence. */
fipsc_status fipsc_text_calibration(const int32_t *stream, size_t n, int bos, int seq_len, int max_seqs, int vocab,
                                    fipsc_corpus **out, int *available, fipsc_error *err);

/* The strided windows of the perplexity protocol (Hugging Face's "perplexity of fixed-length
 * models"): windows of at most `context` tokens starting every `stride` tokens; window w scores
 * only the targets that no earlier window scored, so every token but the first is scored once,
 * each with up to context − 1 tokens before it. *skip_rows[w] is the number of the window's
 * leading prediction rows that are context only (fipsc_eval_options.skip_rows). */
fipsc_status fipsc_text_windows(const int32_t *stream, size_t n, int context, int stride, int vocab,
                                fipsc_corpus **out, int **skip_rows, fipsc_error *err);

#endif
