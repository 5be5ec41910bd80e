/* Sparse products of a batch on row tiles: the batched V step of the factored linears
 * (src/ops/factored_kernels.c) and the V-sparse FiPS training step (src/fips/recon.c).
 *
 * A batch x [n, width] (row-major, one token per row) is first transposed into tiles of
 * TILE = FIPSC_FACTORED_TILE rows, xT[t][i][w] = x[t·TILE + w][i] (zero past row n), so that one
 * stored entry of V meets a whole tile row of TILE contiguous floats. On tiles:
 *   gather: y[n, lists] (+)= the factored linear's sparse step (fipsc_factored_apply's V step):
 *           y[row][o] = Σ over list o of value · x[row][position];
 *   sddmm:  the gradient of that product at the stored entries only (sampled dense-dense product):
 *           for list o and its entry at position q, Σ_rows out[row][o] · in[row][q].
 * With V_i [r, f] held as lists per column (CSC: list = column c, positions = rows k) or per row
 * (CSR: list = row k, positions = columns c):
 *   CSC gather:  h[n, f] = t[n, r]·V_i        CSR gather:  z[n, r] = h[n, f]·V_iᵀ
 *   CSR sddmm:   dV_i[k, c] = Σ_rows dz[row][k] · h[row][c]   (= (dzᵀ·h)[k, c] where V_i keeps k, c,
 *                in the order of the lists: one value per stored entry)
 * Every output is summed by one thread in a fixed order: results do not depend on the thread count.
 * The gather runs the kernels of the active instruction set level (src/ops/factored_gather.h); the
 * sddmm is one portable kernel whose arithmetic is the same on every x86-64 CPU. */
#ifndef FIPSC_FACTORED_TILES_H
#define FIPSC_FACTORED_TILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/isa.h"
#include "ops/factored.h"

/* Floats of the tiles of n rows of width floats: ⌈n/TILE⌉·width·TILE. */
size_t fipsc_tiles_floats(int n, int width);

/* xT (fipsc_tiles_floats(n, width) floats, 64-byte aligned) = the tiles of x [n, width]. */
void fipsc_tiles_from_rows(int n, int width, const float *x, float *xT);

/* The tiles of x [n, width] rounded to bfloat16 (round to nearest even), for the AVX-512 BF16 tile
 * kernel (fipsc_gather_tile_bits16_dot): xT[t][i] holds 32 bfloat16 (64 bytes, 64-byte aligned
 * when xT is), row 4q+j of the tile at word 8q+j and row 16+4q+j at word 8q+4+j (q, j < 4),
 * the order that kernel's 16-bit interleave turns back into rows 0-31; zero past row n. xT holds
 * fipsc_tiles_floats(n, width) 16-bit words. False when a value is not finite or rounds to
 * infinity (the kernel would then compute 0 · inf where the other levels do not). */
bool fipsc_tiles16_from_rows(int n, int width, const float *x, uint16_t *xT);

/* y[n, lists] (+)= the sparse step of fl on the tiles inT of its input [n, inputs] (inputs = r for
 * an expanding linear, f for a contracting one). Any kernel layout but DENSE. */
void fipsc_tiles_gather(const fipsc_factored_linear *fl, int n, const float *inT, float *y, bool accumulate);

#if FIPSC_HAVE_AVX2_KERNELS
/* The same with the AVX-512 BF16 tile kernel on bfloat16 tiles (fipsc_tiles16_from_rows), for fl a
 * bitmap layout of at most 65536 inputs with BF16 values; only where that level runs. */
void fipsc_tiles_gather16(const fipsc_factored_linear *fl, int n, const uint16_t *inT, float *y, bool accumulate);
#endif

/* For fl with CSC or CSR lists (16- or 32-bit positions): for every stored entry p (list o,
 * position q), g[p] = Σ_rows outT(row, o) · inT(row, q): g holds fl->nnz values in fl's list order,
 * outT are the tiles of n rows of width fl->n_lists and inT of width fl's inputs. */
void fipsc_tiles_sddmm(const fipsc_factored_linear *fl, int n, const float *outT, const float *inT, float *g);

#endif
