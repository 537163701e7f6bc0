// deltatune's compiled CPU kernels (float32, channels-last activations).
//
// Built on first use by deltatune/delta/native.py with torch.utils.cpp_extension; every function here
// has a plain-torch twin that is used when this module cannot be built (no compiler) or the tensors
// live on another device. The maths of truncate_pointwise is DeltaCNN's pointwise rule exactly as
// documented in deltatune/delta/truncation.py (the one place that defines it); this file is only a
// faster body for it, and tests hold the two equal.
//
// Layout: activations are [N, C, H, W] tensors in channels-last memory (NHWC), so one pixel's channel
// vector is contiguous; masks are bool [N, 1, H, W] (contiguous, one byte per pixel).

#include <torch/extension.h>
#include <ATen/Parallel.h>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#define DELTATUNE_PACKED_GEMM 1
#endif

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cmath>
#include <cstring>
#include <limits>
#include <tuple>
#include <type_traits>
#include <vector>

namespace {

constexpr auto kCL = at::MemoryFormat::ChannelsLast;
// GEMMs at least this large (multiply-adds) go through oneDNN's 1x1 convolution instead of at::mm.
constexpr int64_t kOneDnnMinMacs = 2000000;

at::Tensor as_cl(const at::Tensor& t) { return t.contiguous(kCL); }

// Zeroes the C floats of every pixel of a channels-last buffer that the contiguous bool mask leaves unset
// (pixels: N*H*W); set pixels are not touched.
void zero_unset(float* xp, const bool* m, int64_t pixels, int64_t c) {
  const int64_t grain = std::max<int64_t>(256, 65536 / std::max<int64_t>(c, 1));
  at::parallel_for(0, pixels, grain, [&](int64_t begin, int64_t end) {
    for (int64_t px = begin; px < end; ++px)
      if (!m[px]) std::memset(xp + px * c, 0, sizeof(float) * c);
  });
}

// Runs body(std::integral_constant<int, C>{}) with C = channels when it is one of the channel counts the
// hot per-pixel loops have bodies compiled for (whole vectors, no remainder loop), else with C = 0: the
// generic body, which reads the count at run time.
template <typename Body>
void with_channel_count(int64_t channels, Body&& body) {
  switch (channels) {
    case 16: body(std::integral_constant<int, 16>{}); break;
    case 18: body(std::integral_constant<int, 18>{}); break;
    case 24: body(std::integral_constant<int, 24>{}); break;
    case 32: body(std::integral_constant<int, 32>{}); break;
    case 36: body(std::integral_constant<int, 36>{}); break;
    case 48: body(std::integral_constant<int, 48>{}); break;
    default: body(std::integral_constant<int, 0>{}); break;
  }
}

// Flat indices (n*H*W + y*W + x) of the set pixels of a contiguous bool mask.
std::vector<int64_t> set_pixels(const bool* m, int64_t total) {
  std::vector<int64_t> idx;
  idx.reserve(static_cast<size_t>(total / 8 + 16));
  for (int64_t i = 0; i < total; ++i)
    if (m[i]) idx.push_back(i);
  return idx;
}

}  // namespace

// Output pixels of a conv whose receptive field touches a set input pixel (separable dilation), and
// how many there are. mask: bool [N, 1, H, W]. Returns (bool [N, 1, Ho, Wo], count).
std::tuple<at::Tensor, int64_t> conv_out_mask(const at::Tensor& mask_in, int64_t kh, int64_t kw, int64_t sh,
                                              int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw,
                                              int64_t ho, int64_t wo) {
  TORCH_CHECK(mask_in.dim() == 4 && mask_in.scalar_type() == at::kBool, "conv_out_mask: bool [N,1,H,W] mask");
  at::Tensor mask = mask_in.contiguous();
  const int64_t n = mask.size(0), h = mask.size(2), w = mask.size(3);
  const uint8_t* m = reinterpret_cast<const uint8_t*>(mask.data_ptr<bool>());
  // horizontal pass: tmp[n, y, ox] = OR_kx m[n, y, ox*sw - pw + kx*dw] (bools are 0/1 bytes)
  std::vector<uint8_t> tmp(static_cast<size_t>(n * h * wo), 0);
  for (int64_t r = 0; r < n * h; ++r) {
    const uint8_t* row = m + r * w;
    uint8_t any = 0;
    for (int64_t x = 0; x < w; ++x) any |= row[x];
    if (!any) continue;
    uint8_t* out = tmp.data() + r * wo;
    if (sw != 1) {  // strided: few output columns, each an OR over its taps
      for (int64_t ox = 0; ox < wo; ++ox) {
        const int64_t x0 = ox * sw - pw;
        uint8_t v = 0;
        for (int64_t k = 0; k < kw && !v; ++k) {
          const int64_t x = x0 + k * dw;
          if (x >= 0 && x < w) v = row[x];
        }
        out[ox] = v;
      }
      continue;
    }
    for (int64_t k = 0; k < kw; ++k) {  // stride 1: one shifted OR per tap over the columns it reaches
      const int64_t off = k * dw - pw;  // input column of output column ox: ox + off
      const int64_t lo = std::max<int64_t>(0, -off);
      const int64_t hi = std::min<int64_t>(wo, w - off);  // exclusive
      const uint8_t* __restrict__ src = row;
      uint8_t* __restrict__ dst = out;
      for (int64_t ox = lo; ox < hi; ++ox) dst[ox] |= src[ox + off];
    }
  }
  at::Tensor res = at::empty({n, 1, ho, wo}, mask.options());
  uint8_t* o = reinterpret_cast<uint8_t*>(res.data_ptr<bool>());
  int64_t count = 0;
  for (int64_t b = 0; b < n; ++b) {
    const uint8_t* t = tmp.data() + b * h * wo;
    for (int64_t oy = 0; oy < ho; ++oy) {
      const int64_t y0 = oy * sh - ph;
      uint8_t* orow = o + (b * ho + oy) * wo;
      std::memset(orow, 0, static_cast<size_t>(wo));
      for (int64_t k = 0; k < kh; ++k) {
        const int64_t y = y0 + k * dh;
        if (y < 0 || y >= h) continue;
        const uint8_t* __restrict__ trow = t + y * wo;
        uint8_t* __restrict__ dst = orow;
        for (int64_t ox = 0; ox < wo; ++ox) dst[ox] |= trow[ox];
      }
      uint32_t c = 0;
      for (int64_t ox = 0; ox < wo; ++ox) c += orow[ox];
      count += c;
    }
  }
  return {res, count};
}

// Weights of the sparse GEMMs in the layout packed_gemm reads: [K, N] -> [ceil(N / 32), K, 32] column
// panels, zero padded. A pure layout change, done once per conv (SparseConv).
at::Tensor pack_weight(const at::Tensor& w_in) {
  TORCH_CHECK(w_in.dim() == 2 && w_in.scalar_type() == at::kFloat, "pack_weight: float32 [K, N] weight");
  constexpr int64_t nr = 32;
  at::Tensor w = w_in.contiguous();
  const int64_t k = w.size(0), n = w.size(1), np = (n + nr - 1) / nr;
  at::Tensor out = at::zeros({np, k, nr}, w.options());
  const float* s = w.data_ptr<float>();
  float* d = out.data_ptr<float>();
  for (int64_t j = 0; j < np; ++j)
    for (int64_t r = 0; r < k; ++r)
      for (int64_t c = 0; c < nr && j * nr + c < n; ++c) d[(j * k + r) * nr + c] = s[r * n + j * nr + c];
  return out;
}

namespace {

// oneDNN builds (JIT-compiles) a primitive per GEMM shape and caches it: with the pixel count changing
// every frame, an exact-size GEMM would compile on almost every call. Rounding the row count up to a
// bucket keeps the shapes few (the padding rows are zero and their results are dropped).
int64_t padded_rows(int64_t p) {
  const int64_t bucket = p < 1024 ? 32 : (p < 8192 ? 256 : 1024);
  return (p + bucket - 1) / bucket * bucket;
}

#if defined(DELTATUNE_PACKED_GEMM)
// A register-blocked GEMM for the sparse convs' row blocks, in AVX-512 or AVX2+FMA (whichever the build
// machine has; -march=native). Why our own: oneDNN pays a fixed cost per call that dominates the small
// GEMMs of a sparse frame, and MKL's sgemm reaches only part of its large-GEMM rate on them.
// AVX-512 measured ~200 G multiply-adds/s on 2 cores at every size from 5 M up (2.2x MKL and oneDNN at
// 6 M, equal to oneDNN at 200 M; 2026-12-04). Not on every AVX-512 machine: a 2-core AMD EPYC (Zen 4, one
// 512-bit FMA a cycle) reached 47-52 G per thread at K >= 64, and 74-88 G on 2 threads on hrnet's real
// sparse frames (2026-12-07). AVX2: see use_packed for where it beats at::mm.
// Blocking: kKC-deep k slices (256 with AVX-512, 128 with AVX2), row blocks of <= 96 rows (the A block
// and the weight slice stay in L2), one equal share of the rows per thread. Weight panels are 32 columns
// wide (pack_weight).
constexpr int64_t kNR = 32;

#if defined(__AVX512F__)
// Micro-kernel: M (<= 12) rows x 32 columns held in 24 zmm accumulators, one k step = 2 panel loads,
// M broadcasts, 2M FMAs. Partial panels (cols < 32) load and store C through lane masks.
constexpr int64_t kMR = 12, kKC = 256;

// A panel's last <= 16 columns (the rest of N = 36, 72, 144, 9 x 18 = 162, ...): M rows x 16 columns in M
// zmm accumulators, half the FMAs of the 32-column body, whose second half would multiply zero padding.
// The k order per output value is the same, so the values equal the 32-column body's bitwise. Alone
// (packed_matmul, 2 threads, 2026-12-07): K 18 x N 162 (HRNet's 18-channel input-centric 3x3) 1.08-1.09x,
// the gathered 3x3s' N 36 / 72 / 144 (K 162-2304) 1.14-1.30x, N 324-1296 (one half panel in 11-41) 1.0x.
template <int M>
inline void gemm_micro_half(const float* a, int64_t lda, const float* b, int64_t kc, float* c, int64_t ldc,
                            int64_t cols, bool accumulate) {
  const auto m0 = static_cast<__mmask16>(cols >= 16 ? 0xFFFFu : (1u << cols) - 1u);
  __m512 acc[M];
  for (int r = 0; r < M; ++r) acc[r] = accumulate ? _mm512_maskz_loadu_ps(m0, c + r * ldc) : _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_loadu_ps(b + k * kNR);
    for (int r = 0; r < M; ++r) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(a[r * lda + k]), b0, acc[r]);
  }
  for (int r = 0; r < M; ++r) _mm512_mask_storeu_ps(c + r * ldc, m0, acc[r]);
}

template <int M>
inline void gemm_micro(const float* a, int64_t lda, const float* b, int64_t kc, float* c, int64_t ldc,
                       int64_t cols, bool accumulate) {
  if (cols <= 16) return gemm_micro_half<M>(a, lda, b, kc, c, ldc, cols, accumulate);
  const auto m0 = static_cast<__mmask16>(cols >= 16 ? 0xFFFFu : (1u << cols) - 1u);
  const auto m1 = static_cast<__mmask16>(cols >= 32 ? 0xFFFFu : (cols <= 16 ? 0u : (1u << (cols - 16)) - 1u));
  __m512 acc0[M], acc1[M];
  for (int r = 0; r < M; ++r) {
    acc0[r] = accumulate ? _mm512_maskz_loadu_ps(m0, c + r * ldc) : _mm512_setzero_ps();
    acc1[r] = accumulate ? _mm512_maskz_loadu_ps(m1, c + r * ldc + 16) : _mm512_setzero_ps();
  }
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_loadu_ps(b + k * kNR), b1 = _mm512_loadu_ps(b + k * kNR + 16);
    for (int r = 0; r < M; ++r) {
      const __m512 av = _mm512_set1_ps(a[r * lda + k]);
      acc0[r] = _mm512_fmadd_ps(av, b0, acc0[r]);
      acc1[r] = _mm512_fmadd_ps(av, b1, acc1[r]);
    }
  }
  for (int r = 0; r < M; ++r) {
    _mm512_mask_storeu_ps(c + r * ldc, m0, acc0[r]);
    _mm512_mask_storeu_ps(c + r * ldc + 16, m1, acc1[r]);
  }
}
#else
// Micro-kernel: M (<= 6) rows x 16 columns (W = 2 ymm per row: one half of a 32-column panel) in 12 ymm
// accumulators, one k step = 2 panel loads, M broadcasts, 2M FMAs; or x 8 columns (W = 1) for a panel's
// last <= 8 columns (e.g. 18 output channels: 16 + 2), at half the FMAs. Partial column groups load and
// store C through lane masks. The k loop runs on local accumulators: with them in arrays passed between
// functions, GCC kept them in memory and stored all 12 every k step (2.5x slower).
constexpr int64_t kMR = 6, kKC = 128;  // a 128 x 32 weight slice is half of the 32 KB L1

inline __m256i lanes_below(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

template <int M, int W>
inline void gemm_cols(const float* a, int64_t lda, const float* b, int64_t kc, float* c, int64_t ldc, int64_t cols,
                      bool accumulate) {
  const bool full = cols == 8 * W;
  __m256i mask[W];
  for (int v = 0; v < W; ++v) mask[v] = lanes_below(cols - 8 * v);
  __m256 acc[M][W];
#pragma GCC unroll 6
  for (int r = 0; r < M; ++r)
    for (int v = 0; v < W; ++v)
      acc[r][v] = !accumulate ? _mm256_setzero_ps()
                  : full      ? _mm256_loadu_ps(c + r * ldc + 8 * v)
                              : _mm256_maskload_ps(c + r * ldc + 8 * v, mask[v]);
  for (int64_t k = 0; k < kc; ++k) {
    __m256 bv[W];
    for (int v = 0; v < W; ++v) bv[v] = _mm256_loadu_ps(b + k * kNR + 8 * v);
#pragma GCC unroll 6
    for (int r = 0; r < M; ++r) {
      const __m256 av = _mm256_broadcast_ss(a + r * lda + k);
      for (int v = 0; v < W; ++v) acc[r][v] = _mm256_fmadd_ps(av, bv[v], acc[r][v]);
    }
  }
#pragma GCC unroll 6
  for (int r = 0; r < M; ++r)
    for (int v = 0; v < W; ++v) {
      if (full) {
        _mm256_storeu_ps(c + r * ldc + 8 * v, acc[r][v]);
      } else {
        _mm256_maskstore_ps(c + r * ldc + 8 * v, mask[v], acc[r][v]);
      }
    }
}

// M rows x one 32-column panel (cols of it meaningful): 16-column halves, an 8-column rest alone.
template <int M>
inline void gemm_micro(const float* a, int64_t lda, const float* b, int64_t kc, float* c, int64_t ldc,
                       int64_t cols, bool accumulate) {
  for (int64_t j = 0; j < cols; j += 16) {
    const int64_t rest = std::min<int64_t>(cols - j, 16);
    if (rest <= 8) {
      gemm_cols<M, 1>(a, lda, b + j, kc, c + j, ldc, rest, accumulate);
    } else {
      gemm_cols<M, 2>(a, lda, b + j, kc, c + j, ldc, rest, accumulate);
    }
  }
}
#endif

template <int M>
inline void gemm_rows_upto(int m, const float* a, int64_t lda, const float* b, int64_t kc, float* c, int64_t ldc,
                           int64_t cols, bool accumulate) {
  if constexpr (M > 1) {
    if (m < M) return gemm_rows_upto<M - 1>(m, a, lda, b, kc, c, ldc, cols, accumulate);
  }
  gemm_micro<M>(a, lda, b, kc, c, ldc, cols, accumulate);
}

// m consecutive rows of A (row stride k) times all of W (k x n, packed by pack_weight: np panels) into
// m consecutive rows of C (row stride n): k slices of kKC, then panels, then micro-tiles of kMR rows.
// Each output value sums its k products in order, whatever m and the rows around it.
void gemm_block(const float* a, int64_t m, int64_t k, const float* bp, int64_t np, int64_t n, float* c) {
  for (int64_t k0 = 0; k0 < k; k0 += kKC) {
    const int64_t kc = std::min(kKC, k - k0);
    for (int64_t j = 0; j < np; ++j) {
      const int64_t cols = std::min(kNR, n - j * kNR);
      const float* panel = bp + (j * k + k0) * kNR;
      for (int64_t r = 0; r < m; r += kMR)
        gemm_rows_upto<kMR>(static_cast<int>(std::min(kMR, m - r)), a + r * k + k0, k, panel, kc,
                            c + r * n + j * kNR, n, cols, k0 > 0);
    }
  }
}

// C [P, n] = A [P, K] (contiguous rows) x W, with W packed by pack_weight.
at::Tensor packed_gemm(const at::Tensor& a, const at::Tensor& packed, int64_t n) {
  const int64_t p = a.size(0), k = a.size(1), np = packed.size(0);
  at::Tensor c = at::empty({p, n}, a.options());
  const float* ap = a.data_ptr<float>();
  const float* bp = packed.data_ptr<float>();
  float* cp = c.data_ptr<float>();
  // rows [r_lo, r_hi) times all of W
  auto block = [&](int64_t r_lo, int64_t r_hi) {
    gemm_block(ap + r_lo * k, r_hi - r_lo, k, bp, np, n, cp + r_lo * n);
  };
  // one equal share of the rows per thread, walked in blocks of at most 96 rows (a fixed block size
  // left one of two threads nearly idle at ~200 rows)
  const int64_t shares = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), p / kMR));
  at::parallel_for(0, shares, 1, [&](int64_t s0, int64_t s1) {
    for (int64_t share = s0; share < s1; ++share) {
      const int64_t hi = p * (share + 1) / shares;
      for (int64_t lo = p * share / shares; lo < hi; lo += 96) block(lo, std::min(hi, lo + 96));
    }
  });
  return c;
}

// A 1x1 stride-1 conv of the channels-last x [N, C, H, W] with the packed weight [C, cout], computed at
// the pixels set in om and (when given) in im, and zero at the other pixels of om (and everywhere else
// too with zero_fill; else left undefined there). Consecutive such pixels are consecutive rows of the
// input and of the output, so each run of them is one GEMM block read and written where it lies: no
// gathered copy of the input rows, no copy of the result rows into the output. The GEMM is packed_gemm's
// (same micro-kernel, same k order per output value), so the values equal the gathered form's bitwise.
at::Tensor pointwise_runs(const at::Tensor& x, const bool* om, const bool* im, const at::Tensor& packed,
                          int64_t cout, bool zero_fill) {
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3), total = n * h * w;
  const int64_t np = packed.size(0);
  at::Tensor y = at::empty({n, cout, h, w}, x.options(), kCL);
  const float* xp = x.data_ptr<float>();
  const float* bp = packed.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  auto computed = [&](int64_t px) { return om[px] && (!im || im[px]); };
  // the runs of computed pixels, and the computed pixels before each run
  std::vector<int64_t> starts, before;
  int64_t rows = 0;
  for (int64_t i = 0; i < total;) {
    if (!computed(i)) {
      ++i;
      continue;
    }
    int64_t j = i + 1;
    while (j < total && computed(j)) ++j;
    starts.push_back(i);
    before.push_back(rows);
    rows += j - i;
    i = j;
  }
  // m consecutive computed pixels from pixel px0 (called with at most 96, as packed_gemm's blocks)
  auto block = [&](int64_t px0, int64_t m) {
    gemm_block(xp + px0 * c, m, c, bp, np, cout, yp + px0 * cout);
  };
  // one equal share of the computed pixels per thread (a share may begin or end inside a run)
  const int64_t runs = static_cast<int64_t>(starts.size());
  const int64_t shares = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), rows / kMR));
  at::parallel_for(0, shares, 1, [&](int64_t s0, int64_t s1) {
    for (int64_t share = s0; share < s1; ++share) {
      const int64_t lo = rows * share / shares, hi = rows * (share + 1) / shares;
      // the run holding computed pixel lo
      int64_t r = std::upper_bound(before.begin(), before.end(), lo) - before.begin() - 1;
      for (int64_t cur = lo; cur < hi && r < runs; ++r) {
        const int64_t run_end = r + 1 < runs ? before[r + 1] : rows;  // in computed-pixel counts
        const int64_t stop = std::min(hi, run_end);
        for (int64_t q = cur; q < stop; q += 96)
          block(starts[r] + (q - before[r]), std::min<int64_t>(96, stop - q));
        cur = stop;
      }
    }
  });
  at::parallel_for(0, total, 4096, [&](int64_t begin, int64_t end) {
    for (int64_t px = begin; px < end; ++px)
      if (!computed(px) && (zero_fill || om[px])) std::memset(yp + px * cout, 0, sizeof(float) * cout);
  });
  return y;
}
#endif

// Whether rows_gemm multiplies a [p, kdim] x [kdim, nout] product with packed_gemm (given a packed
// weight). AVX-512: except for very short K with a large result, which is store-bound there (oneDNN is
// faster). What decides is the result's size, not the multiply-adds: oneDNN won only once the result
// outgrew the caches, at about 1 M floats (AVX-512 EPYC, 2 threads, 2026-12-07): K = 8-27 with
// N = 64-216 ran packed 1.05-1.8x oneDNN up to 0.5-0.9 M floats and 0.86-0.94x from 1.15 M (K = 3: the
// crossover lies between 1.15 M and 2.3 M). The former rule (K * N * rows >= 2 M multiply-adds) sent
// HRNet's 18-channel input-centric 3x3 convs (K 18, N 162, about 1,000-2,500 rows a call on vtest) to
// oneDNN at 1.3-1.7x the packed time. AVX2 (the 2-core AMD EPYC, Zen 3): always; interleaved on the sparse frames' shapes it ran
// 1.0-1.4x at::mm and 1.1-2.3x oneDNN, and equal to at::mm at 18 output channels, its worst case.
bool use_packed(int64_t p, int64_t kdim, int64_t nout, const c10::optional<at::Tensor>& packed) {
  const bool have = packed.has_value() && packed->defined();
#if defined(__AVX512F__)
  return have && !(kdim < 32 && p * nout >= (int64_t{1} << 20));
#elif defined(DELTATUNE_PACKED_GEMM)
  return have;
#else
  return false;
#endif
}

// Rows to allocate for rows_gemm's left operand of p pixels: exactly p for packed_gemm, else p rounded up
// by padded_rows (the caller zeroes the padding rows).
int64_t gemm_rows(int64_t p, int64_t kdim, int64_t nout, const c10::optional<at::Tensor>& packed) {
  return use_packed(p, kdim, nout, packed) ? p : padded_rows(p);
}

// Rows [gemm_rows(p, ...), K] (the first p are pixels) times a weight [K, N_out]: packed_gemm where
// use_packed says so; else at::mm for small GEMMs, oneDNN's 1x1 convolution for large ones (weight_1x1 is
// the same weight as [N_out, K, 1, 1]; measured ~2x faster than MKL's sgemm here). Only the first p result
// rows are meaningful.
at::Tensor rows_gemm(const at::Tensor& rows, int64_t p, const at::Tensor& weight, const at::Tensor& weight_1x1,
                     const c10::optional<at::Tensor>& packed) {
  const int64_t p_pad = rows.size(0), kdim = rows.size(1), nout = weight.size(1);
#if defined(DELTATUNE_PACKED_GEMM)
  if (use_packed(p, kdim, nout, packed)) return packed_gemm(rows, *packed, nout);
#endif
  if (p_pad * kdim * nout >= kOneDnnMinMacs)
    return at::conv2d(rows.view({1, p_pad, 1, kdim}).permute({0, 3, 1, 2}), weight_1x1).contiguous(kCL);
  return at::mm(rows, weight);
}

// Input-centric ("scatter") form of the same conv, for stride-1 k x k layers: every updated *input* pixel
// is multiplied once by the weight as [C, K*Cout] (one GEMM over the input pixels, which are fewer than
// the updated output pixels because the output mask is the input mask dilated by the kernel), and its K
// tap results are added into the K output pixels it reaches. Each thread owns whole output rows (it
// walks the input rows that reach them), so there are no write conflicts. The sums are the same
// products as the dense conv in another order; pixels no set input pixel reaches stay zero, which is
// exactly the output-centric result there too (their receptive fields hold only zero deltas).
at::Tensor scatter_conv(const at::Tensor& x, const at::Tensor& in_mask, const at::Tensor& weight_in,
                        const at::Tensor& weight_in_1x1, const c10::optional<at::Tensor>& weight_in_packed,
                        int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh,
                        int64_t dw, int64_t ho, int64_t wo, const bool* out_mask, bool zero_fill) {
  TORCH_CHECK(sh == 1 && sw == 1, "scatter_conv: stride-1 convs only");
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t k = kh * kw, cout = weight_in.size(1) / k;
  const bool* im = in_mask.data_ptr<bool>();
  // input pixels by row: row_ptr[b*h + y] .. row_ptr[b*h + y + 1] index the sorted pixel list
  std::vector<int64_t> idx = set_pixels(im, n * h * w);
  const int64_t p = static_cast<int64_t>(idx.size());
  std::vector<int64_t> row_ptr(static_cast<size_t>(n * h + 1), 0);
  for (int64_t i : idx) ++row_ptr[i / w + 1];
  for (int64_t r = 0; r < n * h; ++r) row_ptr[r + 1] += row_ptr[r];
  const int64_t p_pad = gemm_rows(p, c, k * cout, weight_in_packed);
  at::Tensor rows = at::empty({p_pad, c}, x.options());
  float* rp = rows.data_ptr<float>();
  if (p_pad > p) std::memset(rp + p * c, 0, sizeof(float) * (p_pad - p) * c);
  const float* xp = x.data_ptr<float>();
  at::parallel_for(0, p, 256, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) std::memcpy(rp + i * c, xp + idx[i] * c, sizeof(float) * c);
  });
  // [>= p, K*Cout], tap-major columns
  at::Tensor res = rows_gemm(rows, p, weight_in, weight_in_1x1, weight_in_packed);
  const float* tp = res.data_ptr<float>();
  at::Tensor y = at::empty({n, cout, ho, wo}, x.options(), kCL);
  float* yp = y.data_ptr<float>();
  // the scatter, with the output channel count fixed at compile time for the common small ones (CO > 0):
  // the tap adds then fit whole vectors instead of a generic loop with a remainder per tap
  auto scatter = [&](auto out_channels) {
    constexpr int CO = decltype(out_channels)::value;
    const int64_t co = CO > 0 ? CO : cout;
    at::parallel_for(0, n * ho, 4, [&](int64_t begin, int64_t end) {
      for (int64_t orow = begin; orow < end; ++orow) {
        const int64_t b = orow / ho, oy = orow - b * ho;
        float* yrow = yp + orow * wo * co;
        if (zero_fill) {
          std::memset(yrow, 0, sizeof(float) * wo * co);
        } else {  // only the pixels the taps below add into (the out mask): the rest stays undefined
          const bool* mrow = out_mask + orow * wo;
          for (int64_t ox = 0; ox < wo; ++ox)
            if (mrow[ox]) std::memset(yrow + ox * co, 0, sizeof(float) * co);
        }
        for (int64_t ky = 0; ky < kh; ++ky) {
          const int64_t iy = oy * sh - ph + ky * dh;
          if (iy < 0 || iy >= h) continue;
          const int64_t r0 = row_ptr[b * h + iy], r1 = row_ptr[b * h + iy + 1];
          for (int64_t i = r0; i < r1; ++i) {
            const int64_t ix = idx[i] - (b * h + iy) * w;
            const float* src = tp + i * k * co + ky * kw * co;
            for (int64_t kx = 0; kx < kw; ++kx) {
              const int64_t ox = ix + pw - kx * dw;  // stride 1: no division
              if (ox < 0 || ox >= wo) continue;
              float* __restrict__ dst = yrow + ox * co;
              const float* __restrict__ s = src + kx * co;
#pragma omp simd
              for (int64_t ch = 0; ch < co; ++ch) dst[ch] += s[ch];
            }
          }
        }
      }
    });
  };
  with_channel_count(cout, scatter);
  return y;
}

int64_t count_set(const bool* m, int64_t total) {
  int64_t count = 0;
  for (int64_t i = 0; i < total; ++i) count += m[i];
  return count;
}

}  // namespace

// Bias-free conv of x [N, C, H, W] evaluated only at the set pixels of out_mask [N, 1, Ho, Wo]:
// gather the receptive fields into cols [P, K*C] (one contiguous channel vector per tap), one GEMM with
// weight [K*C, Cout] (rows ordered tap-major, then input channel), scatter into a zero channels-last
// output. Pixels outside out_mask are zero. The GEMM (rows_gemm) runs packed_gemm on weight_packed
// (pack_weight of weight) where AVX-512 is compiled in; else large GEMMs run as a 1x1 oneDNN convolution
// with weight_1x1 (the same weight as [Cout, K*C, 1, 1]) and small ones as at::mm.
// max_fraction: when at least this fraction of the output pixels is set (and it is < 1), nothing is
// computed and an undefined tensor (None) is returned with the count: the caller runs the dense conv.
// in_mask (the input delta's mask; the delta is zero outside it) with weight_in ([C, K*Cout], columns
// tap-major), weight_in_1x1 ([K*Cout, C, 1, 1]) and weight_in_packed selects the input-centric form
// (scatter_conv) for stride-1 k x k convs: fewer multiply-adds (updated input pixels instead of output
// pixels) and no K-fold gather. Same result either way. The input delta may hold anything outside
// in_mask when in_mask is given (only set pixels are read). zero_fill: write zeros at the output pixels
// outside out_mask; false leaves them undefined (the caller knows the result is zero there).
std::tuple<at::Tensor, int64_t> sparse_conv(const at::Tensor& x_in, const at::Tensor& out_mask_in,
                                            const at::Tensor& weight, const at::Tensor& weight_1x1,
                                            const c10::optional<at::Tensor>& weight_packed, int64_t kh,
                                            int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh,
                                            int64_t dw, double max_fraction,
                                            const c10::optional<at::Tensor>& in_mask_in,
                                            const c10::optional<at::Tensor>& weight_in,
                                            const c10::optional<at::Tensor>& weight_in_1x1,
                                            const c10::optional<at::Tensor>& weight_in_packed, bool zero_fill) {
  TORCH_CHECK(x_in.dim() == 4 && x_in.scalar_type() == at::kFloat, "sparse_conv: float32 [N,C,H,W] input");
  TORCH_CHECK(out_mask_in.dim() == 4 && out_mask_in.scalar_type() == at::kBool,
              "sparse_conv: bool [N,1,Ho,Wo] output mask");
  // one mask row per batch entry, also when the caller passes one mask for all ([1, 1, Ho, Wo])
  at::Tensor out_mask =
      out_mask_in.expand({x_in.size(0), 1, out_mask_in.size(2), out_mask_in.size(3)}).contiguous();
  const bool scatter = in_mask_in.has_value() && in_mask_in->defined() && weight_in.has_value() &&
                       weight_in->defined() && weight_in_1x1.has_value() && sh == 1 && sw == 1 && kh * kw > 1;
  // a 1x1 stride-1 conv: each output pixel is its input pixel times the weight, multiplied in place
  // (pointwise_runs) on every packed build, AVX-512 included, also for the short products use_packed
  // leaves to oneDNN there: without the two copies the packed GEMM ran 1.3-1.6x the gathered oneDNN form
  // at 16-18 input channels and 30-60 % updated pixels (AVX-512 EPYC, 2 threads, 2026-12-04)
#if defined(DELTATUNE_PACKED_GEMM)
  const bool in_place = kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0 &&
                        weight_packed.has_value() && weight_packed->defined();
#else
  const bool in_place = false;
#endif
  std::vector<int64_t> idx;
  int64_t p;
  if (scatter || in_place) {
    p = count_set(out_mask.data_ptr<bool>(), out_mask.numel());
  } else {
    idx = set_pixels(out_mask.data_ptr<bool>(), out_mask.numel());
    p = static_cast<int64_t>(idx.size());
  }
  if (max_fraction < 1.0 && static_cast<double>(p) >= max_fraction * static_cast<double>(out_mask.numel()))
    return {at::Tensor(), p};
  at::Tensor x = as_cl(x_in);
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t ho = out_mask.size(2), wo = out_mask.size(3);
  const int64_t cout = weight.size(1), k = kh * kw;
  TORCH_CHECK(weight.size(0) == k * c, "sparse_conv: weight rows must be kh*kw*C_in");
  if (p == 0) return {at::empty({n, cout, ho, wo}, x.options(), kCL).zero_(), 0};
  at::Tensor in_mask;
  const bool* im = nullptr;  // gather: taps at pixels outside in_mask read zero (the delta may hold anything)
  if (in_mask_in.has_value() && in_mask_in->defined()) {
    in_mask = in_mask_in->expand({n, 1, h, w}).contiguous();
    im = in_mask.data_ptr<bool>();
  }
  if (scatter) {
    return {scatter_conv(x, in_mask, *weight_in, *weight_in_1x1, weight_in_packed, kh, kw, sh, sw, ph, pw, dh, dw,
                         ho, wo, out_mask.data_ptr<bool>(), zero_fill),
            p};
  }
#if defined(DELTATUNE_PACKED_GEMM)
  if (in_place) return {pointwise_runs(x, out_mask.data_ptr<bool>(), im, *weight_packed, cout, zero_fill), p};
#endif
  at::Tensor y = at::empty({n, cout, ho, wo}, x.options(), kCL);  // every pixel is written below
  const float* xp = x.data_ptr<float>();
  const int64_t p_pad = gemm_rows(p, k * c, cout, weight_packed);
  at::Tensor cols = at::empty({p_pad, k * c}, x.options());
  float* cp = cols.data_ptr<float>();
  if (p_pad > p) std::memset(cp + p * k * c, 0, sizeof(float) * (p_pad - p) * k * c);
  const int64_t hw_out = ho * wo;
  at::parallel_for(0, p, 64, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t flat = idx[i];
      const int64_t b = flat / hw_out, pos = flat - b * hw_out;
      const int64_t oy = pos / wo, ox = pos - (pos / wo) * wo;
      float* dst = cp + i * k * c;
      for (int64_t ky = 0; ky < kh; ++ky) {
        const int64_t iy = oy * sh - ph + ky * dh;
        for (int64_t kx = 0; kx < kw; ++kx, dst += c) {
          const int64_t ix = ox * sw - pw + kx * dw;
          if (iy < 0 || iy >= h || ix < 0 || ix >= w || (im && !im[(b * h + iy) * w + ix])) {
            std::memset(dst, 0, sizeof(float) * c);
          } else {
            std::memcpy(dst, xp + ((b * h + iy) * w + ix) * c, sizeof(float) * c);
          }
        }
      }
    }
  });
  at::Tensor res = rows_gemm(cols, p, weight, weight_1x1, weight_packed);  // [>= P, Cout]
  const float* rp = res.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  const bool* om = out_mask.data_ptr<bool>();
  // one pass over the output: result rows at the set pixels (idx is sorted), zeros elsewhere
  const int64_t total = n * ho * wo;
  at::parallel_for(0, total, 1024, [&](int64_t begin, int64_t end) {
    int64_t i = std::lower_bound(idx.begin(), idx.end(), begin) - idx.begin();
    for (int64_t px = begin; px < end; ++px) {
      float* dst = yp + px * cout;
      if (om[px]) {
        std::memcpy(dst, rp + (i++) * cout, sizeof(float) * cout);
      } else if (zero_fill) {
        std::memset(dst, 0, sizeof(float) * cout);
      }
    }
  });
  return {y, p};
}

namespace {

inline uint32_t abs_bits(float v) {
  uint32_t u;
  std::memcpy(&u, &v, sizeof(u));
  return u & 0x7fffffffu;  // |v| as bits: ordered like |v| for non-NaN values, and max-reducible
}

inline float from_bits(uint32_t u) {
  float v;
  std::memcpy(&v, &u, sizeof(v));
  return v;
}

// The truncation step is compiled without trapping math: that changes no value (only whether a float
// comparison may raise an exception flag, which nothing reads) and lets the compiler turn the clamps and
// sign choices into vector selects. Only here: it made the depthwise kernel slightly slower.
#pragma GCC push_options
#pragma GCC optimize("no-trapping-math")

// One pixel of the truncation step (see truncate_pointwise). MODE: 0 max, 1 L2 norm, 2 rms.
// The pointers never alias (a, r: this op's buffers; d: an input or a local sum; e: a fresh output), and
// every value is computed unconditionally and then selected, so the channel loops vectorise with no
// branch. Loaded under the sign condition, the slope made it a branch that a scattered change mispredicts
// on about half the values; the step then ran one float at a time, about 8x slower than now. The max
// reduction is exact in any order; the sums of the norm modes keep their left-to-right order.
// CC > 0: the channel count known at compile time (the caller's c equals it), so that the compiler fits
// the channel loops to whole vectors instead of a generic loop with a remainder per pixel. HRNet's
// 18- and 36-channel maps hold 68 of its 111 truncation steps; whole hrnet frames ran 1.10x faster
// (benchmarks/kernels_ab.py, 2026-12-04), with bitwise the same outputs.
template <int MODE, int CC = 0>
inline bool truncate_pixel(const float* __restrict__ dd, float* __restrict__ aa, float* __restrict__ rr,
                           float* __restrict__ ee, int64_t c_runtime, const float* __restrict__ sl, float lo,
                           float hi, bool truncate, float thr, bool accumulate, bool zero_fill) {
  const int64_t c = CC > 0 ? CC : c_runtime;
#pragma omp simd
  for (int64_t ch = 0; ch < c; ++ch) {
    const float a = aa[ch], k = sl[ch];
    const float s = a + (rr[ch] + dd[ch]);
    const float ks = s * k, ka = a * k;
    float fs = s < 0.0f ? ks : s;
    float fa = a < 0.0f ? ka : a;
    fs = fs < lo ? lo : fs;  // std::min/std::max, written out: theirs are compiled with trapping math
    fs = hi < fs ? hi : fs;
    fa = fa < lo ? lo : fa;
    fa = hi < fa ? hi : fa;
    ee[ch] = fs - fa;
  }
  float score;
  if (MODE == 0) {
    uint32_t umax = 0;
    if (CC > 0 && CC % 8 == 0) {
      // eight running maxima, one per lane of an AVX2 vector, then one across them. For 24 channels
      // the simd reduction below compiled to one 16-float vector, a scalar tail and a combine through
      // the stack whose narrow store and wide reload stalled on store forwarding: a BlazePose-sized
      // 24-channel step spent a fifth of its time on that one reload (perf, 2026-12-05).
      uint32_t lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (int64_t ch = 0; ch < c; ch += 8)
        for (int j = 0; j < 8; ++j) lane[j] = std::max(lane[j], abs_bits(ee[ch + j]));
      for (int j = 0; j < 8; ++j) umax = std::max(umax, lane[j]);
    } else {
#pragma omp simd reduction(max : umax)
      for (int64_t ch = 0; ch < c; ++ch) umax = std::max(umax, abs_bits(ee[ch]));
    }
    score = from_bits(umax);
  } else {
    float sq = 0.0f;
    for (int64_t ch = 0; ch < c; ++ch) sq += ee[ch] * ee[ch];
    score = MODE == 1 ? std::sqrt(sq) : std::sqrt(sq / static_cast<float>(c));
  }
  const bool fires = !truncate || score > thr;
  if (fires) {
#pragma omp simd
    for (int64_t ch = 0; ch < c; ++ch) {
      aa[ch] = aa[ch] + (rr[ch] + dd[ch]);
      rr[ch] = 0.0f;
    }
  } else {
    if (zero_fill) std::memset(ee, 0, sizeof(float) * c);
    if (accumulate) {
#pragma omp simd
      for (int64_t ch = 0; ch < c; ++ch) rr[ch] = rr[ch] + dd[ch];
    } else {
      std::memset(rr, 0, sizeof(float) * c);
    }
  }
  return fires;
}

}  // namespace

// DeltaCNN's pointwise truncation step (see truncation.py) for f(v) = clamp(v < 0 ? slope_c * v : v, lo, hi)
// (ReLU, ReLU6, Hardtanh, LeakyReLU, PReLU), on the updated pixels only: per updated pixel
// r += d; s = a + r; change = f(s) - f(a); the pixel fires iff score(change) > threshold; firing emits
// the change and sets a = s, r = 0; otherwise it emits 0 and keeps r (accumulate) or drops it.
// d is the sum of the tensors in d_parts (summed left to right per element, as a chain of + would: a
// residual add fused into the step, so the sum is never stored). Part i may be stored at 1/factors[i]
// of the resolution (a nearest-neighbour upsampling by that integer factor fused in: pixel (y, x) reads
// (y / f, x / f)). The updated pixels are the union of the bool [N, 1, H / f_i, W / f_i] masks, one per
// part and read the same way (none given: every pixel); a part is read only where its own mask is set
// (it may hold anything elsewhere). a and r are channels-last buffers updated in place. mode: 0 max,
// 1 L2 norm, 2 rms over channels; threshold < 0 means "never truncate". zero_fill: write the emitted
// zeros at the pixels that do not fire; false leaves them undefined (the fire mask says where).
// Returns (emitted delta, fire mask, number of firing pixels).
std::tuple<at::Tensor, at::Tensor, int64_t> truncate_pointwise(const std::vector<at::Tensor>& d_parts,
                                                              const std::vector<int64_t>& factors,
                                                              const std::vector<at::Tensor>& masks_in,
                                                              at::Tensor a, at::Tensor r, double threshold,
                                                              int64_t mode, bool accumulate, double slope,
                                                              double lo, double hi,
                                                              const c10::optional<at::Tensor>& slopes_in,
                                                              bool zero_fill) {
  TORCH_CHECK(!d_parts.empty() && factors.size() == d_parts.size(),
              "truncate_pointwise: at least one delta, one factor per delta");
  TORCH_CHECK(masks_in.empty() || masks_in.size() == d_parts.size(),
              "truncate_pointwise: no masks, or one mask per delta");
  TORCH_CHECK(a.is_contiguous(kCL) && r.is_contiguous(kCL), "truncate_pointwise: channels-last buffers");
  TORCH_CHECK(mode >= 0 && mode <= 2, "truncate_pointwise: mode must be 0, 1 or 2");
  const int64_t n = a.size(0), c = a.size(1), h = a.size(2), w = a.size(3);
  const int64_t pixels = n * h * w;
  const size_t np = d_parts.size();
  std::vector<at::Tensor> parts;
  std::vector<const float*> dps;
  bool scaled = false;
  for (size_t i = 0; i < np; ++i) {
    const int64_t f = factors[i];
    const auto& t = d_parts[i];
    TORCH_CHECK(f >= 1 && h % f == 0 && w % f == 0 && t.dim() == 4 && t.scalar_type() == at::kFloat &&
                    t.size(0) == n && t.size(1) == c && t.size(2) * f == h && t.size(3) * f == w,
                "truncate_pointwise: float32 [N,C,H/f,W/f] deltas for [N,C,H,W] buffers");
    parts.push_back(as_cl(t));
    dps.push_back(parts.back().data_ptr<float>());
    scaled = scaled || f > 1;
  }
  at::Tensor emitted = at::empty({n, c, h, w}, a.options(), kCL);  // every pixel is written below
  at::Tensor fire = at::empty({n, 1, h, w}, a.options().dtype(at::kBool));
  // the union of the masks at full resolution (one mask as it is, when it needs no upsampling)
  const bool* m = nullptr;
  at::Tensor mask;
  std::vector<at::Tensor> part_masks;  // each part's own mask (at its resolution), when there are masks
  std::vector<const bool*> pms;
  for (size_t i = 0; i < masks_in.size(); ++i) {
    part_masks.push_back(masks_in[i].expand({n, 1, h / factors[i], w / factors[i]}).contiguous());
    pms.push_back(part_masks.back().data_ptr<bool>());
  }
  if (!masks_in.empty()) {
    if (np == 1 && factors[0] == 1) {
      mask = part_masks[0];
    } else {
      mask = at::zeros({n, 1, h, w}, a.options().dtype(at::kBool));
      uint8_t* mu = reinterpret_cast<uint8_t*>(mask.data_ptr<bool>());
      for (size_t i = 0; i < np; ++i) {
        const int64_t f = factors[i], hs = h / f, ws = w / f;
        const uint8_t* mp = reinterpret_cast<const uint8_t*>(pms[i]);
        for (int64_t row = 0; row < n * h; ++row) {
          const int64_t b = row / h, y = row - b * h;
          const uint8_t* __restrict__ src = mp + (b * hs + y / f) * ws;
          uint8_t* __restrict__ dst = mu + row * w;
          if (f == 1) {
            for (int64_t x = 0; x < w; ++x) dst[x] |= src[x];
          } else {
            for (int64_t x = 0; x < w; ++x) dst[x] |= src[x / f];
          }
        }
      }
    }
    m = mask.data_ptr<bool>();
  }
  std::vector<float> slope_vec(static_cast<size_t>(c), static_cast<float>(slope));
  if (slopes_in.has_value() && slopes_in->defined()) {
    at::Tensor sl = slopes_in->to(at::kFloat).expand({c}).contiguous();
    std::memcpy(slope_vec.data(), sl.data_ptr<float>(), sizeof(float) * c);
  }
  const float* sl = slope_vec.data();
  float* ap = a.data_ptr<float>();
  float* rp = r.data_ptr<float>();
  float* ep = emitted.data_ptr<float>();
  bool* fp = fire.data_ptr<bool>();
  const float flo = static_cast<float>(lo), fhi = static_cast<float>(hi), thr = static_cast<float>(threshold);
  const bool truncate = threshold >= 0.0;
  std::atomic<int64_t> fired{0};
  // The state a, r of the updated pixels was last touched a frame ago (cold), and a scattered mask
  // defeats the hardware prefetcher: fetch the updated pixels' lines ourselves, about 4 KiB ahead
  // (measured on a scattered half-updated 32-channel map: 1.5x faster than without).
  const int64_t ahead = std::max<int64_t>(4, 1024 / c);
  const int64_t line_floats = 16;
  // part i's pixel index at full-resolution pixel px
  auto src_pixel = [&](size_t i, int64_t px) -> int64_t {
    const int64_t f = factors[i];
    if (f == 1) return px;
    const int64_t row = px / w, x = px - row * w, b = row / h, y = row - b * h;
    return (b * (h / f) + y / f) * (w / f) + x / f;
  };
  const bool check = !pms.empty() && np > 1;  // a part is read only where its own mask is set
  // the pixel loop, with the channel count fixed at compile time for the common small ones (CC > 0)
  auto pixel_loop = [&](auto channels) {
    constexpr int CC = decltype(channels)::value;
    const int64_t c = CC > 0 ? CC : a.size(1);
    at::parallel_for(0, pixels, 256, [&](int64_t begin, int64_t end) {
      std::vector<float> sum(np > 1 ? static_cast<size_t>(c) : 0);
      int64_t local = 0;
      for (int64_t px = begin; px < end; ++px) {
        const int64_t off = px * c;
        const int64_t pf = px + ahead;
        if (pf < end && (!m || m[pf])) {
          const int64_t poff = pf * c;
          for (int64_t ch = 0; ch < c; ch += line_floats) {
            __builtin_prefetch(ap + poff + ch, 1);
            __builtin_prefetch(rp + poff + ch, 1);
            if (!scaled)
              for (size_t i = 0; i < np; ++i) __builtin_prefetch(dps[i] + poff + ch, 0);
          }
        }
        if (m && !m[px]) {
          if (zero_fill) std::memset(ep + off, 0, sizeof(float) * c);
          fp[px] = false;
          continue;
        }
        // d: the parts that hold a change here, summed left to right (a part outside its mask is zero)
        const float* dd = nullptr;
        int used = 0;
        for (size_t i = 0; i < np; ++i) {
          const int64_t sp = scaled ? src_pixel(i, px) : px;
          if (check && !pms[i][sp]) continue;
          const float* di = dps[i] + sp * c;
          if (used == 0) {
            dd = di;
          } else if (used == 1) {
            for (int64_t ch = 0; ch < c; ++ch) sum[ch] = dd[ch] + di[ch];
            dd = sum.data();
          } else {
            for (int64_t ch = 0; ch < c; ++ch) sum[ch] += di[ch];
          }
          ++used;
        }
        bool fires;
        if (mode == 0) {
          fires = truncate_pixel<0, CC>(dd, ap + off, rp + off, ep + off, c, sl, flo, fhi, truncate, thr,
                                        accumulate, zero_fill);
        } else if (mode == 1) {
          fires = truncate_pixel<1>(dd, ap + off, rp + off, ep + off, c, sl, flo, fhi, truncate, thr, accumulate,
                                    zero_fill);
        } else {
          fires = truncate_pixel<2>(dd, ap + off, rp + off, ep + off, c, sl, flo, fhi, truncate, thr, accumulate,
                                    zero_fill);
        }
        fp[px] = fires;
        local += fires;
      }
      fired += local;
    });
  };
  // the norm modes keep one generic body: their sums are scalar anyway
  with_channel_count(mode == 0 ? c : 0, pixel_loop);
  return {emitted, fire, fired.load()};
}

#pragma GCC pop_options

// DeltaCNN's input sparsify (see truncation.py: InputSparsify) for a channels-last frame x against its
// reference ref, in one pass: per pixel diff = x - ref, score = max |diff| (mode 0), its L2 norm (1) or
// rms (2) over channels; the pixel is active iff threshold < 0 ("never truncate") or score > threshold.
// Returns (delta: diff at the active pixels, undefined elsewhere unless zero_fill; the active mask; the
// number of active pixels; the new reference: x at the active pixels and ref elsewhere, or x everywhere
// without accumulation). ref is not modified.
std::tuple<at::Tensor, at::Tensor, int64_t, at::Tensor> input_sparsify(const at::Tensor& x_in,
                                                                     const at::Tensor& ref_in, double threshold,
                                                                     int64_t mode, bool accumulate,
                                                                     bool zero_fill) {
  TORCH_CHECK(x_in.dim() == 4 && x_in.scalar_type() == at::kFloat && ref_in.sizes() == x_in.sizes() &&
                  ref_in.scalar_type() == at::kFloat,
              "input_sparsify: float32 [N,C,H,W] frame and reference of one shape");
  TORCH_CHECK(mode >= 0 && mode <= 2, "input_sparsify: mode must be 0, 1 or 2");
  at::Tensor x = as_cl(x_in), ref = as_cl(ref_in);
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t pixels = n * h * w;
  at::Tensor delta = at::empty({n, c, h, w}, x.options(), kCL);
  at::Tensor out_ref = at::empty({n, c, h, w}, x.options(), kCL);
  at::Tensor active = at::empty({n, 1, h, w}, x.options().dtype(at::kBool));
  const float* xp = x.data_ptr<float>();
  const float* rp = ref.data_ptr<float>();
  float* dp = delta.data_ptr<float>();
  float* op = out_ref.data_ptr<float>();
  bool* ap = active.data_ptr<bool>();
  const float thr = static_cast<float>(threshold);
  const bool truncate = threshold >= 0.0;
  std::atomic<int64_t> count{0};
  at::parallel_for(0, pixels, 1024, [&](int64_t begin, int64_t end) {
    int64_t local = 0;
    for (int64_t px = begin; px < end; ++px) {
      const float* xx = xp + px * c;
      const float* rr = rp + px * c;
      float* dd = dp + px * c;
      uint32_t umax = 0;
      float sq = 0.0f;
      for (int64_t ch = 0; ch < c; ++ch) {
        const float d = xx[ch] - rr[ch];
        dd[ch] = d;
        if (mode == 0) {
          umax = std::max(umax, abs_bits(d));
        } else {
          sq += d * d;
        }
      }
      const float score = mode == 0 ? from_bits(umax)
                                    : (mode == 1 ? std::sqrt(sq) : std::sqrt(sq / static_cast<float>(c)));
      const bool on = !truncate || score > thr;
      ap[px] = on;
      local += on;
      if (!on && zero_fill) std::memset(dd, 0, sizeof(float) * c);
      std::memcpy(op + px * c, (on || !accumulate) ? xx : rr, sizeof(float) * c);
    }
    count += local;
  });
  return {delta, active, count.load(), out_ref};
}

// Depthwise conv (groups == C == Cout: one kh x kw filter per channel) of x [N, C, H, W] evaluated only at
// the set pixels of out_mask [N, 1, Ho, Wo]. No GEMM: each output channel reads only its own input channel,
// so per set output pixel the K taps' contiguous channel vectors are multiplied by the weight's tap rows
// (weight [K, C], tap-major) and summed in place (the inner loop over channels vectorises). Taps outside
// the image, or at input pixels outside in_mask when it is given, read zero: the input delta may hold
// anything outside in_mask. Same products as the dense depthwise conv, summed in tap order.
// max_fraction and zero_fill as in sparse_conv.
std::tuple<at::Tensor, int64_t> sparse_depthwise(const at::Tensor& x_in, const at::Tensor& out_mask_in,
                                                 const at::Tensor& weight_in, int64_t kh, int64_t kw, int64_t sh,
                                                 int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw,
                                                 double max_fraction, const c10::optional<at::Tensor>& in_mask_in,
                                                 bool zero_fill) {
  TORCH_CHECK(x_in.dim() == 4 && x_in.scalar_type() == at::kFloat, "sparse_depthwise: float32 [N,C,H,W] input");
  TORCH_CHECK(out_mask_in.dim() == 4 && out_mask_in.scalar_type() == at::kBool,
              "sparse_depthwise: bool [N,1,Ho,Wo] output mask");
  at::Tensor out_mask =
      out_mask_in.expand({x_in.size(0), 1, out_mask_in.size(2), out_mask_in.size(3)}).contiguous();
  std::vector<int64_t> idx = set_pixels(out_mask.data_ptr<bool>(), out_mask.numel());
  const int64_t p = static_cast<int64_t>(idx.size());
  if (max_fraction < 1.0 && static_cast<double>(p) >= max_fraction * static_cast<double>(out_mask.numel()))
    return {at::Tensor(), p};
  at::Tensor x = as_cl(x_in);
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t ho = out_mask.size(2), wo = out_mask.size(3);
  at::Tensor weight = weight_in.contiguous();
  TORCH_CHECK(weight.dim() == 2 && weight.size(0) == kh * kw && weight.size(1) == c,
              "sparse_depthwise: weight must be [kh*kw, C]");
  if (p == 0) return {at::empty({n, c, ho, wo}, x.options(), kCL).zero_(), 0};
  at::Tensor in_mask;
  const bool* im = nullptr;
  if (in_mask_in.has_value() && in_mask_in->defined()) {
    in_mask = in_mask_in->expand({n, 1, h, w}).contiguous();
    im = in_mask.data_ptr<bool>();
  }
  at::Tensor y = at::empty({n, c, ho, wo}, x.options(), kCL);
  const float* xp = x.data_ptr<float>();
  const float* wp = weight.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  const int64_t hw_out = ho * wo;
  at::parallel_for(0, p, 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t flat = idx[i];
      const int64_t b = flat / hw_out, pos = flat - b * hw_out;
      const int64_t oy = pos / wo, ox = pos - (pos / wo) * wo;
      float* __restrict dst = yp + flat * c;
      std::memset(dst, 0, sizeof(float) * c);
      for (int64_t ky = 0; ky < kh; ++ky) {
        const int64_t iy = oy * sh - ph + ky * dh;
        if (iy < 0 || iy >= h) continue;
        for (int64_t kx = 0; kx < kw; ++kx) {
          const int64_t ix = ox * sw - pw + kx * dw;
          if (ix < 0 || ix >= w || (im && !im[(b * h + iy) * w + ix])) continue;
          const float* __restrict src = xp + ((b * h + iy) * w + ix) * c;
          const float* __restrict wr = wp + (ky * kw + kx) * c;
          for (int64_t ch = 0; ch < c; ++ch) dst[ch] += wr[ch] * src[ch];
        }
      }
    }
  });
  if (zero_fill) zero_unset(yp, out_mask.data_ptr<bool>(), n * hw_out, c);
  return {y, p};
}

// Zeroes, in place, the pixels of a channels-last x [N, C, H, W] that mask [N, 1, H, W] leaves unset
// (x.masked_fill_(~mask, 0) for this layout). Only the unset pixels are written, one memset of C floats
// each, and a fully set mask writes nothing; masked_fill_ reads a mask byte per element and writes
// every element of its broadcast iteration.
void zero_outside(at::Tensor x, const at::Tensor& mask_in) {
  TORCH_CHECK(x.dim() == 4 && x.scalar_type() == at::kFloat && x.is_contiguous(kCL),
              "zero_outside: x must be a float32 channels-last 4-d tensor");
  const at::Tensor mask = mask_in.contiguous();
  const int64_t n = x.size(0), c = x.size(1), hw = x.size(2) * x.size(3);
  TORCH_CHECK(mask.scalar_type() == at::kBool && mask.numel() == n * hw,
              "zero_outside: mask must be bool [N, 1, H, W]");
  zero_unset(x.data_ptr<float>(), mask.data_ptr<bool>(), n * hw, c);
}

// F.pad(x, (left, right, top, bottom)) with zeros for a channels-last x [N, C, H, W]: every output byte is
// written once (borders zeroed, each input row copied as one block of W*C floats), where constant_pad_nd
// fills the whole output and then copies the interior over it through a strided view.
at::Tensor pad_zeros(const at::Tensor& x_in, int64_t left, int64_t right, int64_t top, int64_t bottom) {
  TORCH_CHECK(x_in.dim() == 4 && x_in.scalar_type() == at::kFloat, "pad_zeros: x must be a float32 4-d tensor");
  TORCH_CHECK(left >= 0 && right >= 0 && top >= 0 && bottom >= 0, "pad_zeros: pads must be >= 0");
  const at::Tensor x = as_cl(x_in);
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t ho = h + top + bottom, wo = w + left + right;
  at::Tensor y = at::empty({n, c, ho, wo}, x.options().memory_format(kCL));
  const float* xp = x.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  const int64_t row_in = w * c, row_out = wo * c;
  at::parallel_for(0, n * ho, std::max<int64_t>(1, 16384 / std::max<int64_t>(row_out, 1)),
                   [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t b = r / ho, yo = r % ho, yi = yo - top;
      float* out = yp + r * row_out;
      if (yi < 0 || yi >= h) {
        std::memset(out, 0, sizeof(float) * row_out);
        continue;
      }
      if (left) std::memset(out, 0, sizeof(float) * left * c);
      std::memcpy(out + left * c, xp + (b * h + yi) * row_in, sizeof(float) * row_in);
      if (right) std::memset(out + (left + w) * c, 0, sizeof(float) * right * c);
    }
  });
  return y;
}

// A [P, K] x W [K, n] with W packed by pack_weight, through the register-blocked GEMM the sparse convs
// use (for tests and benchmarks: the convs call it directly). Fails when this build has none.
at::Tensor packed_matmul(const at::Tensor& a, const at::Tensor& packed, int64_t n) {
  TORCH_CHECK(a.dim() == 2 && a.scalar_type() == at::kFloat, "packed_matmul: float32 [P, K] left operand");
  TORCH_CHECK(packed.dim() == 3 && packed.size(1) == a.size(1) && packed.size(2) == 32 &&
                  packed.size(0) * 32 >= n && n > packed.size(0) * 32 - 32,
              "packed_matmul: weight must be pack_weight of a [K, n] matrix");
#if defined(DELTATUNE_PACKED_GEMM)
  return packed_gemm(a.contiguous(), packed.contiguous(), n);
#else
  TORCH_CHECK(false, "packed_matmul: this build has no packed GEMM (needs AVX2+FMA or AVX-512)");
#endif
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, mod) {
  mod.doc() = "deltatune CPU kernels (channels-last, float32)";
  mod.def("conv_out_mask", &conv_out_mask, "updated output pixels of a conv, and their count");
  mod.def("pack_weight", &pack_weight, "a [K, N] weight as the sparse GEMM's [N/32, K, 32] column panels");
  mod.def("packed_matmul", &packed_matmul, "a [P, K] x a pack_weight panel weight, with the sparse GEMM");
#if defined(DELTATUNE_PACKED_GEMM)
  mod.attr("packed_gemm") = true;
#else
  mod.attr("packed_gemm") = false;
#endif
  mod.def("sparse_conv", &sparse_conv, "gather -> GEMM -> scatter conv at the set pixels of out_mask");
  mod.def("sparse_depthwise", &sparse_depthwise, "depthwise conv at the set pixels of out_mask");
  mod.def("truncate_pointwise", &truncate_pointwise, "DeltaCNN pointwise truncation on updated pixels");
  mod.def("pad_zeros", &pad_zeros, "zero spatial padding of a channels-last tensor");
  mod.def("zero_outside", &zero_outside, "zero a channels-last tensor at the pixels a mask leaves unset");
  mod.def("input_sparsify", &input_sparsify, "DeltaCNN input sparsify: delta, active mask, count, reference");
}
