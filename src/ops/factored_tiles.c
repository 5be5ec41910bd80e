/* Sparse products of a batch on row tiles (see src/ops/factored_tiles.h).
 *
 * Gather: outputs in blocks of OUT_BLOCK, one (tile, block) pair per task; the tile kernel of the
 * active level sums a list over TILE rows at once into acc[OUT_BLOCK][TILE], which is then written
 * back transposed into the row-major output.
 *
 * SDDMM: one task per block of input positions. The gradient of a stored entry (o, q) is a dot product over
 * the n rows of out's column o and in's column q, read from the tiles as TILE contiguous floats
 * per tile: eight-float vectors (GCC/Clang vector extensions) summed over a chunk of tiles, then
 * their lanes in a fixed tree, then the chunks in order. fipsc compiles without floating-point contraction, so the same multiplies
 * and adds run in the same order whatever vector unit the compiler maps them to: the same bits on
 * every CPU. */
#include <stdlib.h>
#include <string.h>

#include "core/isa.h"
#include "ops/factored_gather.h"
#include "ops/factored_tiles.h"

enum { TILE = FIPSC_FACTORED_TILE, OUT_BLOCK = 64, IN_BLOCK = 256 };

/* Bytes of input tiles one SDDMM task reads (half the 1 MB L2 of the machines measured), and
 * the tiles of rows it sums at once. */
#define SDDMM_BLOCK_BYTES (512 * 1024)
enum { SDDMM_CHUNK_TILES = 8 };

/* Multiply-adds below which a loop stays on the calling thread. */
#define PARALLEL_WORK (1LL << 18)

static int tiles_of(int n) { return (n + TILE - 1) / TILE; }

size_t fipsc_tiles_floats(int n, int width) { return (size_t)tiles_of(n) * (size_t)width * TILE; }

_Static_assert(TILE == 32, "a bfloat16 tile row is one 64-byte vector of the BF16 tile kernel");

/* The tiles of x as float32 (into xT32, rows in order) or rounded to bfloat16 (into xT16, in the
 * BF16 tile kernel's row order); for bfloat16, false when a value is not finite or rounds to
 * infinity. */
static bool tiles_from_rows(int n, int width, const float *x, float *xT32, uint16_t *xT16)
{
    const int tiles = tiles_of(n), in_blocks = (width + IN_BLOCK - 1) / IN_BLOCK;
    const size_t tile_elems = (size_t)width * TILE;
    int row_at[TILE]; /* the row a bfloat16 tile holds at word w */
    for (int w = 0; w < TILE; w++) row_at[w] = (w % 8 < 4 ? 0 : 16) + 4 * (w / 8) + w % 4;
    bool finite = true;
#pragma omp parallel for schedule(static) reduction(&& : finite) if ((long long)n * width >= PARALLEL_WORK)
    for (int item = 0; item < tiles * in_blocks; item++) {
        const int t = item / in_blocks, i0 = (item % in_blocks) * IN_BLOCK;
        const int i1 = i0 + IN_BLOCK < width ? i0 + IN_BLOCK : width;
        const int rows = n - t * TILE < TILE ? n - t * TILE : TILE;
        const float *src = x + (size_t)t * TILE * width;
        if (!xT16) {
            float *dst = xT32 + (size_t)t * tile_elems;
            for (int i = i0; i < i1; i++)
                for (int w = 0; w < TILE; w++) dst[(size_t)i * TILE + w] = w < rows ? src[(size_t)w * width + i] : 0.0f;
            continue;
        }
        uint16_t *dst = xT16 + (size_t)t * tile_elems;
        for (int i = i0; i < i1; i++)
            for (int w = 0; w < TILE; w++) {
                const int row = row_at[w];
                dst[(size_t)i * TILE + w] = row < rows ? fipsc_f32_to_bf16(src[(size_t)row * width + i]) : 0;
            }
        /* inf or NaN, before or after rounding: checked on the block just written, still in cache */
        finite = finite && fipsc_first_nonfinite16(FIPSC_BF16, dst + (size_t)i0 * TILE, (size_t)(i1 - i0) * TILE) < 0;
    }
    return finite;
}

void fipsc_tiles_from_rows(int n, int width, const float *x, float *xT) { tiles_from_rows(n, width, x, xT, NULL); }

bool fipsc_tiles16_from_rows(int n, int width, const float *x, uint16_t *xT)
{
    return tiles_from_rows(n, width, x, NULL, xT);
}

static int inputs_of(const fipsc_factored_linear *fl) { return fl->expanding ? fl->r : fl->f; }

/* Multiply-adds of the gather of n rows (each kept entry on every row of every tile). */
static long long gather_work(const fipsc_factored_linear *fl, int n) { return (long long)fl->nnz * tiles_of(n) * TILE; }
static int outputs_of(const fipsc_factored_linear *fl) { return fl->layout == FIPSC_VK_NM ? fl->f : fl->n_lists; }

/* The gather's tiles × blocks of outputs, one pair per task: tile32 on float32 tiles inT, or
 * tile16 on bfloat16 tiles inT16. */
static void gather_tiles(const fipsc_factored_linear *fl, int n, fipsc_gather_tile_fn *tile32, const float *inT,
                         void (*tile16)(const fipsc_factored_linear *, int, const uint16_t *restrict, float *restrict),
                         const uint16_t *inT16, float *y, bool accumulate)
{
    const int n_out = outputs_of(fl), tiles = tiles_of(n), blocks = (n_out + OUT_BLOCK - 1) / OUT_BLOCK;
    const size_t tile_elems = (size_t)inputs_of(fl) * TILE;
#pragma omp parallel for schedule(dynamic, 1) if (gather_work(fl, n) >= PARALLEL_WORK)
    for (int item = 0; item < tiles * blocks; item++) {
        const int t = item / blocks, o0 = (item % blocks) * OUT_BLOCK;
        const int width = n_out - o0 < OUT_BLOCK ? n_out - o0 : OUT_BLOCK;
        const int rows = n - t * TILE < TILE ? n - t * TILE : TILE;
        _Alignas(64) float acc[OUT_BLOCK][TILE];
        for (int o = 0; o < width; o++) {
            if (tile16) tile16(fl, o0 + o, inT16 + (size_t)t * tile_elems, acc[o]);
            else tile32(fl, o0 + o, inT + (size_t)t * tile_elems, acc[o]);
        }
        for (int w = 0; w < rows; w++) {
            float *dst = y + ((size_t)t * TILE + w) * n_out + o0;
            if (accumulate)
                for (int o = 0; o < width; o++) dst[o] += acc[o][w];
            else
                for (int o = 0; o < width; o++) dst[o] = acc[o][w];
        }
    }
}

void fipsc_tiles_gather(const fipsc_factored_linear *fl, int n, const float *inT, float *y, bool accumulate)
{
    fipsc_gather_tile_fn *tile = fipsc_gather_tile;
    uint16_t *decoded = NULL; /* AVX2, bitmap lists: their positions for this call */
    fipsc_factored_linear as_lists;
#if FIPSC_HAVE_AVX2_KERNELS
    const fipsc_isa isa = fipsc_isa_active();
    if (isa >= FIPSC_ISA_AVX512) tile = fipsc_gather_tile_avx512;
    else if (isa >= FIPSC_ISA_AVX2) tile = fipsc_gather_tile_avx2;
    /* Out of memory for the decoded positions: the AVX2 tile kernel hands bitmap lists to the
     * portable one, which reads the bits itself. */
    if (isa == FIPSC_ISA_AVX2 && fl->layout == FIPSC_VK_BITMAP && fl->words <= 65536 / 64 &&
        (decoded = malloc(((size_t)fl->nnz + 1) * sizeof *decoded))) {
        const int lists = fl->n_lists, chunks = (lists + OUT_BLOCK - 1) / OUT_BLOCK;
#pragma omp parallel for schedule(static) if (gather_work(fl, n) >= PARALLEL_WORK)
        for (int c = 0; c < chunks; c++)
            fipsc_gather_bits_positions_avx2(fl, c * OUT_BLOCK, (c + 1) * OUT_BLOCK < lists ? (c + 1) * OUT_BLOCK : lists,
                                             decoded);
        as_lists = *fl; /* the same lists, as 16-bit positions */
        as_lists.layout = fl->expanding ? FIPSC_VK_CSC : FIPSC_VK_CSR;
        as_lists.bits = NULL;
        as_lists.idx16 = decoded;
        fl = &as_lists;
    }
#endif
    gather_tiles(fl, n, tile, inT, NULL, NULL, y, accumulate);
    free(decoded);
}

#if FIPSC_HAVE_AVX2_KERNELS
void fipsc_tiles_gather16(const fipsc_factored_linear *fl, int n, const uint16_t *inT, float *y, bool accumulate)
{
    gather_tiles(fl, n, NULL, NULL, fipsc_gather_tile_bits16_dot, inT, y, accumulate);
}
#endif

typedef float vf8 __attribute__((vector_size(32)));
typedef float vf8_in __attribute__((vector_size(32), aligned(4), may_alias));
_Static_assert(TILE % 8 == 0 && TILE / 8 == 4, "the sddmm kernel sums a tile row as four vf8");

/* Σ_rows a·b over the tiles, a and b each one tile row (TILE floats) per tile, strides apart. */
static inline float tile_dot(const float *a, size_t a_stride, const float *b, size_t b_stride, int tiles)
{
    vf8 s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
    for (int t = 0; t < tiles; t++, a += a_stride, b += b_stride) {
        s0 += *(const vf8_in *)a * *(const vf8_in *)b;
        s1 += *(const vf8_in *)(a + 8) * *(const vf8_in *)(b + 8);
        s2 += *(const vf8_in *)(a + 16) * *(const vf8_in *)(b + 16);
        s3 += *(const vf8_in *)(a + 24) * *(const vf8_in *)(b + 24);
    }
    const vf8 s = (s0 + s1) + (s2 + s3);
    return ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
}

void fipsc_tiles_sddmm(const fipsc_factored_linear *fl, int n, const float *outT, const float *inT, float *g)
{
    const int tiles = tiles_of(n), lists = fl->n_lists, inputs = inputs_of(fl);
    const size_t out_stride = (size_t)lists * TILE, in_stride = (size_t)inputs * TILE;
    /* Rows in chunks of SDDMM_CHUNK_TILES tiles, summed into g one chunk after the other; inside a
     * chunk, positions in blocks whose input stays in a core's L2 while every list visits the
     * block, one task per block. (Reading a list's entries across all the input at once streams
     * it from memory for every list.) */
    const int chunk_tiles = tiles < SDDMM_CHUNK_TILES ? tiles : SDDMM_CHUNK_TILES;
    const int per_block = SDDMM_BLOCK_BYTES / (chunk_tiles * TILE * (int)sizeof(float));
    const int block = per_block > 64 ? per_block : 64, blocks = (inputs + block - 1) / block;
    const long long work = (long long)fl->nnz * chunk_tiles * TILE;
    for (int t0 = 0; t0 < tiles; t0 += chunk_tiles) {
        const int nt = tiles - t0 < chunk_tiles ? tiles - t0 : chunk_tiles;
        const float *outC = outT + (size_t)t0 * out_stride, *inC = inT + (size_t)t0 * in_stride;
#pragma omp parallel for schedule(dynamic, 1) if (work >= PARALLEL_WORK && blocks > 1)
        for (int b = 0; b < blocks; b++) {
            const int64_t q0 = (int64_t)b * block, q1 = q0 + block;
            for (int o = 0; o < lists; o++) {
                const float *a = outC + (size_t)o * TILE;
                for (uint32_t p = fipsc_factored_list_from(fl, o, q0), hi = fl->ptr[o + 1]; p < hi; p++) {
                    const int64_t q = fipsc_factored_position(fl, p);
                    if (q >= q1) break;
                    const float s = tile_dot(a, out_stride, inC + (size_t)q * TILE, in_stride, nt);
                    g[p] = t0 ? g[p] + s : s;
                }
            }
        }
    }
}
