// Gemmini (Berkeley systolic array) as a Spike RoCC extension: functional semantics plus a
// queue-based cycle model. Written for tvmx from the public ISA description; see ../TIMING.md.
//
// One compiled library serves every configuration: DIM, memory sizes and timing parameters are
// read at start-up from the key/value file named by $TVMX_GEMMINI_CONFIG, and the counters are
// written as JSON to $TVMX_GEMMINI_STATS when Spike exits.
//
// Every malformed command (unknown funct, out-of-range or ill-flagged local address, instruction
// used before its config, unsupported option) raises an illegal-instruction trap in the guest
// (mcause 2) and prints the reason on stderr; the simulator itself never aborts.

#include <riscv/csrs.h>
#include <riscv/extension.h>
#include <riscv/mmu.h>
#include <riscv/processor.h>
#include <riscv/trap.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

namespace {

// funct7 values of the commands (custom-3 opcode).
enum Funct : unsigned {
  kConfig = 0, kMvin2 = 1, kMvin = 2, kMvout = 3, kComputePreloaded = 4, kComputeAccumulated = 5,
  kPreload = 6, kFlush = 7, kLoopWs = 8, kLoopWsBounds = 9, kLoopWsAddrsAB = 10, kLoopWsAddrsDC = 11,
  kLoopWsStridesAB = 12, kLoopWsStridesDC = 13, kMvin3 = 14, kLoopConvWs = 15, kLoopConvWsConfig1 = 16,
  kLoopConvWsConfig6 = 21, kCounter = 126,
};
constexpr unsigned kFunct3NoRd = 0x3;  // xs1, xs2
constexpr unsigned kFunct3Rd = 0x7;    // xs1, xs2, xd
constexpr uint32_t kGarbage = 0xFFFFFFFFu;

// Counter ids for the COUNTER command (rs1[7:0]); keep in sync with gemmini.h.
enum Counter : unsigned {
  kCtrCycles = 0, kCtrLoadBusy, kCtrExecBusy, kCtrStoreBusy, kCtrStall, kCtrInsts, kCtrMacs,
  kCtrActive, kCtrDmaRead, kCtrDmaWritten, kNumCounters,
};

enum Unit : uint8_t { kLoad = 0, kExec = 1, kStore = 2, kNoUnit = 3 };

struct Config {
  unsigned dim = 16;
  uint32_t sp_rows = 16384, acc_rows = 1024;
  unsigned dma_bus_bytes = 16, dma_max_bytes = 64;
  bool has_ws = true, has_os = true, has_loop_ws = false, has_loop_conv = false;
  unsigned queue_depth[3] = {8, 16, 4};
  uint64_t dma_latency = 100, dma_request_cycles = 1, spad_read_latency = 4, compute_cycles = 16,
           preload_cycles = 16, pipeline_latency = 32, config_cycles = 1;
};

// The file is written by tvmx (tvmx/accelerators/gemmini.py): one `key value` pair per line.
Config load_config() {
  Config c;
  const char* path = std::getenv("TVMX_GEMMINI_CONFIG");
  if (!path || !*path) return c;
  FILE* f = std::fopen(path, "r");
  if (!f) {
    std::fprintf(stderr, "gemmini: cannot read $TVMX_GEMMINI_CONFIG=%s; using the default configuration\n", path);
    return c;
  }
  char key[64];
  unsigned long long v;
  while (std::fscanf(f, "%63s %llu", key, &v) == 2) {
    std::string k(key);
    if (k == "dim") c.dim = v;
    else if (k == "sp_rows") c.sp_rows = v;
    else if (k == "acc_rows") c.acc_rows = v;
    else if (k == "dma_bus_bytes") c.dma_bus_bytes = v;
    else if (k == "dma_max_bytes") c.dma_max_bytes = v;
    else if (k == "has_ws") c.has_ws = v;
    else if (k == "has_os") c.has_os = v;
    else if (k == "has_loop_ws") c.has_loop_ws = v;
    else if (k == "has_loop_conv") c.has_loop_conv = v;
    else if (k == "queue_load") c.queue_depth[kLoad] = v;
    else if (k == "queue_execute") c.queue_depth[kExec] = v;
    else if (k == "queue_store") c.queue_depth[kStore] = v;
    else if (k == "dma_latency") c.dma_latency = v;
    else if (k == "dma_request_cycles") c.dma_request_cycles = v;
    else if (k == "spad_read_latency") c.spad_read_latency = v;
    else if (k == "compute_cycles") c.compute_cycles = v;
    else if (k == "preload_cycles") c.preload_cycles = v;
    else if (k == "pipeline_latency") c.pipeline_latency = v;
    else if (k == "config_cycles") c.config_cycles = v;
    else std::fprintf(stderr, "gemmini: unknown config key '%s' ignored\n", key);
  }
  std::fclose(f);
  return c;
}

// Raised for a malformed command; becomes an illegal-instruction trap.
struct BadCommand {
  std::string why;
};

[[noreturn]] void bad(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void bad(const char* fmt, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  throw BadCommand{buf};
}

float f32(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round half to even (the host runs in the default round-to-nearest-even mode), then saturate.
int32_t scale_sat(int64_t x, float scale, int32_t lo, int32_t hi) {
  float r = std::nearbyint(static_cast<float>(x) * scale);
  if (!(r >= static_cast<float>(lo))) return lo;  // also catches NaN
  if (r >= static_cast<float>(hi)) return hi;
  return static_cast<int32_t>(r);
}

int8_t sat8(int64_t x) { return static_cast<int8_t>(std::clamp<int64_t>(x, -128, 127)); }

// Arithmetic right shift rounding to nearest, ties to even.
int64_t shift_rne(int64_t x, unsigned s) {
  if (s == 0) return x;
  int64_t q = x >> s;  // floor
  int64_t rem = x - (q << s);
  int64_t half = int64_t{1} << (s - 1);
  if (rem > half || (rem == half && (q & 1))) q++;
  return q;
}

// C[i][j] += sum_k A[i][k] * BT[j][k] on DIM x DIM blocks of int16 (int8 values, widened): dot
// products over contiguous rows, with DIM a compile-time constant, vectorise (pmaddwd on x86).
template <unsigned D>
void mac_block(const int16_t* a, const int16_t* bt, int32_t* c) {
  for (unsigned i = 0; i < D; i++)
    for (unsigned j = 0; j < D; j++) {
      int32_t s = 0;
      for (unsigned k = 0; k < D; k++) s += int32_t{a[i * D + k]} * int32_t{bt[j * D + k]};
      c[i * D + j] += s;
    }
}

void mac(unsigned d, const int16_t* a, const int16_t* bt, int32_t* c) {
  switch (d) {
    case 4: return mac_block<4>(a, bt, c);
    case 8: return mac_block<8>(a, bt, c);
    case 16: return mac_block<16>(a, bt, c);
    case 32: return mac_block<32>(a, bt, c);
    default:
      for (unsigned i = 0; i < d; i++)
        for (unsigned j = 0; j < d; j++)
          for (unsigned k = 0; k < d; k++) c[i * d + j] += int32_t{a[i * d + k]} * bt[j * d + k];
  }
}

struct Local {
  bool garbage, acc, accumulate, full;
  uint32_t row;
  uint16_t rows, cols;
};

// Operand layout: [31:0] local address, [47:32] columns, [63:48] rows.
Local operand(uint64_t v) {
  uint32_t a = static_cast<uint32_t>(v);
  return Local{a == kGarbage, ((a >> 31) & 1u) != 0, ((a >> 30) & 1u) != 0, ((a >> 29) & 1u) != 0, a & 0x1FFFFFFFu,
               static_cast<uint16_t>(v >> 48), static_cast<uint16_t>(v >> 32)};
}

// Per-row bookkeeping of the cycle model: when the last write lands, by which unit, and until
// when each unit reads the row (for write-after-read hazards).
struct RowTiming {
  uint64_t ready = 0;
  uint64_t read_done[3] = {0, 0, 0};
  uint8_t writer = kNoUnit;
};

struct UnitState {
  uint64_t free_at = 0;
  uint64_t busy = 0;
  std::deque<uint64_t> inflight;  // completion times of reservation-station entries, in order
};

// Max pooling on mvout (config_mvout with a non-zero pool stride; field layout in gemmini.h).
struct PoolState {
  unsigned stride = 0, size = 0, upad = 0, lpad = 0;
  uint32_t pitch = 0, out_dim = 0, porows = 0, pocols = 0, orows = 0, ocols = 0;
  bool enabled() const { return stride != 0; }
};

void check_pool(PoolState& p, const char* what);

// Decodes and checks the pooling fields of config_mvout's rs1; every pooled pixel's window must
// hold at least one conv output of the tile.
PoolState decode_pool(uint64_t rs1) {
  PoolState p;
  p.stride = (rs1 >> 4) & 3;
  p.size = (rs1 >> 6) & 3;
  p.upad = (rs1 >> 8) & 3;
  p.lpad = (rs1 >> 10) & 3;
  p.pitch = (rs1 >> 12) & 0xFFF;
  p.out_dim = (rs1 >> 24) & 0xFF;
  p.porows = (rs1 >> 32) & 0xFF;
  p.pocols = (rs1 >> 40) & 0xFF;
  p.orows = (rs1 >> 48) & 0xFF;
  p.ocols = (rs1 >> 56) & 0xFF;
  if (!p.enabled()) {
    if (rs1 >> 6) bad("config_mvout: pooling fields set with pool stride 0");
    return p;
  }
  check_pool(p, "config_mvout");
  return p;
}

// What pooled mvouts need of a pooling configuration (config_mvout's, or a LOOP_CONV_WS's).
void check_pool(PoolState& p, const char* what) {
  if (p.size == 0) bad("%s: pool size 0 with pool stride %u", what, p.stride);
  if (!p.orows || !p.ocols || !p.porows || !p.pocols)
    bad("%s: pooling %ux%u conv outputs into %ux%u pooled pixels", what, p.orows, p.ocols, p.porows, p.pocols);
  if (p.pitch == 0) p.pitch = p.ocols;
  if (p.pitch < p.ocols) bad("%s: pool pitch %u < %u conv columns", what, p.pitch, p.ocols);
  if (p.out_dim < p.pocols) bad("%s: pool_out_dim %u < %u pooled columns", what, p.out_dim, p.pocols);
  if (p.upad >= p.size || p.lpad >= p.size)
    bad("%s: pool padding %u/%u not below the pool size %u", what, p.upad, p.lpad, p.size);
  if ((p.porows - 1) * p.stride >= p.orows + p.upad || (p.pocols - 1) * p.stride >= p.ocols + p.lpad)
    bad("%s: %ux%u pooled pixels (stride %u, padding %u/%u) reach past the %ux%u conv outputs", what, p.porows,
        p.pocols, p.stride, p.upad, p.lpad, p.orows, p.ocols);
}

// LOOP_WS's configuration (funct 9..13), consumed by the LOOP_WS command (funct 8).
struct LoopWsConfig {
  unsigned given = 0;  // bit (funct - kLoopWsBounds) per config command since the last LOOP_WS
  uint32_t I = 0, J = 0, K = 0, pad_I = 0, pad_J = 0, pad_K = 0;
  uint64_t A = 0, B = 0, D = 0, C = 0, stride_A = 0, stride_B = 0, stride_D = 0, stride_C = 0;
  static constexpr unsigned kAll = 0x1F;
};

// Where the loop unroller's last loops left their tiles (Gemmini's double buffering by loop).
struct LoopWsState {
  unsigned half = 1;       // scratchpad half of the last loop (A at its start, B at its end)
  unsigned c_half = 1;     // accumulator half of the last C tile
  bool a_valid = false;    // an A tile that a later loop may reuse is in the scratchpad
  uint32_t a_row = 0, a_I = 0, a_K = 0, a_pad_I = 0, a_pad_K = 0;
  uint64_t a_dram = 0, a_stride = 0;
};

// LOOP_CONV_WS's configuration (funct 16..21), consumed by the LOOP_CONV_WS command (funct 15);
// the fields of gemmini-rocc-tests' gemmini_loop_conv_ws, at its bit positions.
struct LoopConvConfig {
  unsigned given = 0;  // bit (funct - kLoopConvWsConfig1) per config command since the last loop
  uint32_t batch_size = 0, in_row_dim = 0, in_col_dim = 0, in_channels = 0, out_channels = 0, out_row_dim = 0,
           out_col_dim = 0, pool_out_row_dim = 0, pool_out_col_dim = 0, stride = 0, padding = 0, kernel_dim = 0,
           kernel_dilation = 0, pool_size = 0, pool_stride = 0, pool_padding = 0, batches = 0, porows = 0, pocols = 0,
           pochs = 0, krows = 0, kcols = 0, kchs = 0, lpad = 0, rpad = 0, upad = 0, dpad = 0, plpad = 0, prpad = 0,
           pupad = 0, pdpad = 0, orows = 0, ocols = 0, in_stride = 0, weight_stride = 0, out_stride = 0;
  uint64_t weights = 0, output = 0, bias = 0, input = 0;
  static constexpr unsigned kAll = 0x3F;
};

struct LoadState {
  bool configured = false, shrink = false;
  uint32_t block_stride = 0;
  float scale = 1.0f;
  uint64_t dram_stride = 0;
};

class Gemmini {
 public:
  Config cfg;
  std::vector<int8_t> sp;
  std::vector<int32_t> acc;

  void reset(processor_t& p) {
    cfg = load_config();
    pid_ = getpid();
    minstret_ = p.get_state()->minstret;
    const unsigned d = cfg.dim;
    sp.assign(size_t{cfg.sp_rows} * d, 0);
    acc.assign(size_t{cfg.acc_rows} * d, 0);
    sp_t_.assign(cfg.sp_rows, RowTiming{});
    acc_t_.assign(cfg.acc_rows, RowTiming{});
    pending_.assign(size_t{d} * d, 0);
    array_.assign(size_t{d} * d, 0);
    pending16_.assign(size_t{d} * d, 0);
    wt16_.assign(size_t{d} * d, 0);
    scratch_b_.assign(size_t{d} * d, 0);
    a16_.assign(size_t{d} * d, 0);
    b16_.assign(size_t{d} * d, 0);
    ex_configured_ = st_configured_ = have_preload_ = false;
    pending_cols_ = wt_cols_ = 0;
    pool_ = PoolState{};
    loop_cfg_ = LoopWsConfig{};
    loop_ = LoopWsState{};
    conv_cfg_ = LoopConvConfig{};
    conv_half_ = conv_c_half_ = 1;
    conv_c_valid_ = false;
    conv_stream_ = false;
    for (auto& t : stream_clock_) t = 0;
    conv_done_[0] = conv_done_[1] = ws_done_ = 0;
    unrolling_ = false;
    unroll_clock_ = unroll_done_ = 0;
    for (auto& l : ld_) l = LoadState{};
    for (auto& u : units_) u = UnitState{};
    counters_.fill(0);
    stall_ = drain_at_ = active_until_ = 0;
    active_ = true;
  }

  uint64_t execute(processor_t* p, unsigned funct, unsigned funct3, uint64_t rs1, uint64_t rs2) {
    if (!active_) reset(*p);
    if ((funct == kCounter) != (funct3 == kFunct3Rd) || (funct != kCounter && funct3 != kFunct3NoRd))
      bad("funct7 %u with funct3 %u: COUNTER uses funct3 7, every other command funct3 3", funct, funct3);
    p_ = p;
    mmu_ = p->get_mmu();
    switch (funct) {
      case kConfig: config(rs1, rs2); break;
      case kMvin: mvin(0, rs1, rs2); break;
      case kMvin2: mvin(1, rs1, rs2); break;
      case kMvin3: mvin(2, rs1, rs2); break;
      case kMvout: mvout(rs1, rs2); break;
      case kPreload: preload(rs1, rs2); break;
      case kComputePreloaded: compute(true, rs1, rs2); break;
      case kComputeAccumulated: compute(false, rs1, rs2); break;
      case kFlush: flush(); break;
      case kCounter: return counter(rs1);
      case kLoopWs: loop_ws(rs1, rs2); break;
      case kLoopWsBounds: case kLoopWsAddrsAB: case kLoopWsAddrsDC: case kLoopWsStridesAB: case kLoopWsStridesDC:
        loop_ws_config(funct, rs1, rs2);
        break;
      case kLoopConvWs: loop_conv_ws(rs1, rs2); break;
      default:
        if (funct >= kLoopConvWsConfig1 && funct <= kLoopConvWsConfig6) loop_conv_config(funct, rs1, rs2);
        else bad("unknown funct7 %u", funct);
    }
    counters_[kCtrInsts]++;
    return 0;
  }

  // Written when Spike exits; the processor is gone by then, but its minstret CSR object is
  // shared-owned, so it is still readable.
  void write_stats() {
    if (!active_ || getpid() != pid_) return;  // not used, or a forked child (Spike runs dtc)
    const char* path = std::getenv("TVMX_GEMMINI_STATS");
    if (!path || !*path) return;
    FILE* f = std::fopen(path, "w");
    if (!f) return;
    uint64_t instret = minstret_ ? minstret_->read() : 0;
    uint64_t cpu_end = instret + stall_;
    uint64_t total = std::max(cpu_end, drain_at_);
    std::fprintf(f,
                 "{\"dim\": %u, \"minstret\": %llu, \"stall_cycles\": %llu, \"drain_after_exit\": %llu, "
                 "\"cycles\": %llu, \"load_busy\": %llu, \"execute_busy\": %llu, \"store_busy\": %llu, "
                 "\"accelerator_active\": %llu, \"commands\": %llu, \"macs\": %llu, "
                 "\"dma_bytes_read\": %llu, \"dma_bytes_written\": %llu}\n",
                 cfg.dim, ull(instret), ull(stall_), ull(total - cpu_end), ull(total), ull(units_[kLoad].busy),
                 ull(units_[kExec].busy), ull(units_[kStore].busy), ull(counters_[kCtrActive]),
                 ull(counters_[kCtrInsts]), ull(counters_[kCtrMacs]), ull(counters_[kCtrDmaRead]),
                 ull(counters_[kCtrDmaWritten]));
    std::fclose(f);
  }

 private:
  static unsigned long long ull(uint64_t v) { return static_cast<unsigned long long>(v); }

  processor_t* p_ = nullptr;
  mmu_t* mmu_ = nullptr;
  std::shared_ptr<wide_counter_csr_t> minstret_;
  pid_t pid_ = 0;
  bool active_ = false;

  // --- architectural state ---
  bool ex_configured_ = false, st_configured_ = false, have_preload_ = false;
  bool ws_ = true, a_transpose_ = false, b_transpose_ = false;
  unsigned ex_act_ = 0, in_shift_ = 0, st_act_ = 0;
  uint32_t a_stride_ = 1, c_stride_ = 1;
  float st_scale_ = 1.0f;
  uint64_t st_stride_ = 0;
  PoolState pool_;
  LoadState ld_[3];
  LoopWsConfig loop_cfg_;
  LoopWsState loop_;
  LoopConvConfig conv_cfg_;
  unsigned conv_half_ = 1, conv_c_half_ = 1;  // halves of the last conv loop's tiles
  bool conv_c_valid_ = false;                 // its C tile may be accumulated onto (same shape)
  uint32_t conv_c_shape_[4] = {0, 0, 0, 0};   // pochs, batches, orows, ocols of that tile
  Local pre_bd_{}, pre_c_{};
  std::vector<int32_t> pending_, array_;     // OS: staged D, accumulators in the array
  std::vector<int16_t> pending16_, wt16_;    // WS: staged and stationary weights, both as B^T
  unsigned pending_cols_ = 0, wt_cols_ = 0;  // WS: their columns (0 for the garbage address: zeros)
  std::vector<int32_t> scratch_b_;           // WS: D of the current compute
  std::vector<int16_t> a16_, b16_;           // A and (OS) B^T of the current compute
  std::vector<uint8_t> row_buf_;                    // one DMA row

  // --- cycle model ---
  std::vector<RowTiming> sp_t_, acc_t_;
  UnitState units_[3];
  std::array<uint64_t, kNumCounters> counters_{};
  uint64_t stall_ = 0, drain_at_ = 0, active_until_ = 0;
  // LOOP_WS's unroller issues commands on its own clock, one per cycle; a CPU command after a
  // LOOP_WS enters the command stream behind the unroller's and waits (stalls) until it is done.
  bool unrolling_ = false;
  uint64_t unroll_clock_ = 0, unroll_done_ = 0;
  // LOOP_CONV_WS's unroller runs three streams, as Gemmini's LoopConv runs its load, execute and
  // store state machines: each issues one command per cycle on its own clock into its unit's
  // reservation station. Up to two loops are in flight: the third waits (the CPU stalls on it).
  bool conv_stream_ = false;
  uint64_t ws_done_ = 0;  // when the last LOOP_WS had issued its last command
  uint64_t stream_clock_[3] = {0, 0, 0};
  uint64_t conv_done_[2] = {0, 0};  // when the last two conv loops had issued their last command

  // ---------------------------------------------------------------- helpers
  uint64_t cpu_now() const { return (minstret_ ? minstret_->read() : 0) + stall_; }

  // When a command enters its reservation station: the unroller's clock for its own commands; for
  // the CPU's, now, after the commands of a LOOP_WS still being unrolled (the CPU stalls for them).
  uint64_t issue_time(Unit unit = kNoUnit) {
    if (unrolling_) return conv_stream_ ? stream_clock_[unit] : unroll_clock_;
    uint64_t now = cpu_now();
    if (unroll_done_ > now) {
      stall_ += unroll_done_ - now;
      counters_[kCtrStall] += unroll_done_ - now;
      now = unroll_done_;
    }
    return now;
  }

  unsigned max_blocks(bool to_acc, bool shrink) const {
    unsigned elem = to_acc && !shrink ? 4 : 1;
    return std::max(1u, cfg.dma_max_bytes / (cfg.dim * elem));
  }

  // Checks that rows [row, row + count) exist in the addressed memory.
  void check_rows(const Local& l, uint64_t last_row_exclusive, const char* what) const {
    uint32_t limit = l.acc ? cfg.acc_rows : cfg.sp_rows;
    if (last_row_exclusive > limit)
      bad("%s: local address row %u..%llu outside the %s (%u rows)", what, l.row,
          ull(last_row_exclusive - 1), l.acc ? "accumulator" : "scratchpad", limit);
  }

  void check_dims(const Local& l, unsigned max_cols, const char* what) const {
    if (l.rows == 0 || l.cols == 0 || l.rows > cfg.dim || l.cols > max_cols)
      bad("%s: %u rows x %u cols, allowed 1..%u x 1..%u", what, l.rows, l.cols, cfg.dim, max_cols);
  }

  void read_dram(uint64_t addr, uint8_t* out, size_t n) {
    size_t i = 0;
    for (; i < n && (addr + i) % 8; i++) out[i] = mmu_->load<uint8_t>(addr + i);
    for (; i + 8 <= n; i += 8) {
      uint64_t v = mmu_->load<uint64_t>(addr + i);
      std::memcpy(out + i, &v, 8);
    }
    for (; i < n; i++) out[i] = mmu_->load<uint8_t>(addr + i);
  }

  void write_dram(uint64_t addr, const uint8_t* in, size_t n) {
    size_t i = 0;
    for (; i < n && (addr + i) % 8; i++) mmu_->store<uint8_t>(addr + i, in[i]);
    for (; i + 8 <= n; i += 8) {
      uint64_t v;
      std::memcpy(&v, in + i, 8);
      mmu_->store<uint64_t>(addr + i, v);
    }
    for (; i < n; i++) mmu_->store<uint8_t>(addr + i, in[i]);
  }

  RowTiming& timing_row(bool in_acc, uint32_t row) { return in_acc ? acc_t_[row] : sp_t_[row]; }

  // Row footprint of one command, for dependency tracking.
  struct Footprint {
    struct Span { bool acc; uint32_t first, count, stride; bool write; };
    Span spans[4];
    int n = 0;
    void add(const Local& l, uint32_t count, uint32_t stride, bool write) {
      if (!l.garbage && count) spans[n++] = Span{l.acc, l.row, count, stride, write};
    }
  };

  // Schedules one command on `unit`: waits for a reservation-station entry (stalling the CPU),
  // for the unit, and for the rows it reads or overwrites; then books its occupancy.
  void schedule(Unit unit, uint64_t occupancy, uint64_t latency, const Footprint& fp, bool exposed_fill = false,
                uint64_t fill = 0) {
    UnitState& u = units_[unit];
    uint64_t now = issue_time(unit);
    while (!u.inflight.empty() && u.inflight.front() <= now) u.inflight.pop_front();
    if (u.inflight.size() >= cfg.queue_depth[unit]) {
      uint64_t wait = u.inflight.front() - now;
      if (!unrolling_) stall_ += wait, counters_[kCtrStall] += wait;  // the unroller waits, not the CPU
      now += wait;
      u.inflight.pop_front();
    }
    if (unrolling_) (conv_stream_ ? stream_clock_[unit] : unroll_clock_) = now + 1;  // one command per cycle
    uint64_t start = std::max(now, u.free_at);
    for (int i = 0; i < fp.n; i++) {
      const auto& s = fp.spans[i];
      for (uint32_t r = 0; r < s.count; r++) {
        const RowTiming& t = timing_row(s.acc, s.first + r * s.stride);
        if (t.writer != unit && t.writer != kNoUnit) start = std::max(start, t.ready);  // RAW, WAW
        if (s.write)
          for (int v = 0; v < 3; v++)
            if (v != unit) start = std::max(start, t.read_done[v]);  // WAR
      }
    }
    if (exposed_fill && start > u.free_at) occupancy += fill;  // the array sat idle: nothing to overlap with
    uint64_t end = start + occupancy;
    for (int i = 0; i < fp.n; i++) {
      const auto& s = fp.spans[i];
      for (uint32_t r = 0; r < s.count; r++) {
        RowTiming& t = timing_row(s.acc, s.first + r * s.stride);
        if (s.write) {
          t.ready = end + latency;
          t.writer = unit;
        } else {
          t.read_done[unit] = std::max(t.read_done[unit], end);
        }
      }
    }
    u.free_at = end;
    u.busy += occupancy;
    u.inflight.push_back(end);
    drain_at_ = std::max(drain_at_, end + latency);
    // Union of busy intervals; exact when commands start in order, an estimate otherwise.
    if (start >= active_until_) counters_[kCtrActive] += occupancy;
    else if (end > active_until_) counters_[kCtrActive] += end - active_until_;
    active_until_ = std::max(active_until_, end);
  }

  uint64_t dma_occupancy(unsigned rows, size_t row_bytes) const {
    uint64_t beats = (row_bytes + cfg.dma_bus_bytes - 1) / cfg.dma_bus_bytes;
    uint64_t requests = (row_bytes + cfg.dma_max_bytes - 1) / cfg.dma_max_bytes;
    return uint64_t{rows} * (beats + requests * cfg.dma_request_cycles);
  }

  // ---------------------------------------------------------------- commands
  void config(uint64_t rs1, uint64_t rs2) {
    Footprint none;
    switch (rs1 & 3) {
      case 0: {  // EX
        bool only_strides = (rs1 >> 7) & 1;
        uint32_t a_stride = (rs1 >> 16) & 0xFFFF, c_stride = (rs2 >> 48) & 0xFFFF;
        if (a_stride == 0 || c_stride == 0) bad("config_ex: A stride %u / C stride %u must be >= 1", a_stride, c_stride);
        if (!only_strides) {
          bool ws = (rs1 >> 2) & 1;
          unsigned act = (rs1 >> 3) & 3;
          bool at = (rs1 >> 8) & 1, bt = (rs1 >> 9) & 1;
          uint32_t shift = static_cast<uint32_t>(rs2);
          if (ws ? !cfg.has_ws : !cfg.has_os) bad("config_ex: dataflow %s is not in this configuration", ws ? "WS" : "OS");
          if (act > 1) bad("config_ex: activation %u not modelled (0 none, 1 ReLU)", act);
          if (ws && at) bad("config_ex: A transpose is not available in the WS dataflow");
          if (shift > 31) bad("config_ex: in_shift %u > 31", shift);
          ws_ = ws; ex_act_ = act; a_transpose_ = at; b_transpose_ = bt; in_shift_ = shift;
          have_preload_ = false;
        } else if (!ex_configured_) {
          bad("config_ex: set-strides-only before a full config_ex");
        }
        a_stride_ = a_stride; c_stride_ = c_stride;
        ex_configured_ = true;
        schedule(kExec, cfg.config_cycles, 0, none);
        break;
      }
      case 1: {  // LD
        unsigned id = (rs1 >> 3) & 3;
        if (id > 2) bad("config_mvin: state id 3 does not exist (0 mvin, 1 mvin2, 2 mvin3)");
        float scale = f32(static_cast<uint32_t>(rs1 >> 32));
        if (!std::isfinite(scale)) bad("config_mvin: scale is not a finite float32");
        ld_[id] = LoadState{true, static_cast<bool>((rs1 >> 2) & 1), static_cast<uint32_t>((rs1 >> 16) & 0xFFFF),
                            scale, rs2};
        schedule(kLoad, cfg.config_cycles, 0, none);
        break;
      }
      case 2: {  // ST
        unsigned act = (rs1 >> 2) & 3;
        if (act > 1) bad("config_mvout: activation %u not modelled (0 none, 1 ReLU)", act);
        PoolState pool = decode_pool(rs1);
        float scale = f32(static_cast<uint32_t>(rs2 >> 32));
        if (!std::isfinite(scale)) bad("config_mvout: acc_scale is not a finite float32");
        st_act_ = act; st_stride_ = static_cast<uint32_t>(rs2); st_scale_ = scale; pool_ = pool;
        st_configured_ = true;
        schedule(kStore, cfg.config_cycles, 0, none);
        break;
      }
      default:  // NORM: no normalisation unit is modelled; accepted as a no-op
        break;
    }
  }

  void mvin(int id, uint64_t dram, uint64_t rs2) {
    static const char* names[] = {"mvin", "mvin2", "mvin3"};
    const char* what = names[id];
    const LoadState& st = ld_[id];
    if (!st.configured) bad("%s before config_mvin for state %d", what, id);
    Local l = operand(rs2);
    if (l.garbage) bad("%s: destination is the garbage address", what);
    if (!l.acc && (l.accumulate || l.full)) bad("%s: accumulate/full-row flags on a scratchpad address", what);
    if (l.acc && l.full) bad("%s: the full-row flag is for reads", what);
    const unsigned d = cfg.dim;
    unsigned blocks_max = max_blocks(l.acc, st.shrink);
    check_dims(l, d * blocks_max, what);
    unsigned blocks = (l.cols + d - 1) / d;
    if (blocks > 1 && st.block_stride < l.rows) bad("%s: %u blocks with block stride %u overlap", what, blocks, st.block_stride);
    check_rows(l, uint64_t{l.row} + uint64_t{blocks - 1} * st.block_stride + l.rows, what);
    const unsigned elem = l.acc && !st.shrink ? 4 : 1;
    const size_t row_bytes = size_t{l.cols} * elem;
    std::vector<uint8_t>& buf = row_buf_;
    buf.resize(row_bytes);
    for (unsigned r = 0; r < l.rows; r++) {
      read_dram(dram + r * st.dram_stride, buf.data(), row_bytes);
      for (unsigned c = 0; c < l.cols; c++) {
        size_t row = l.row + (c / d) * size_t{st.block_stride} + r;
        size_t idx = row * d + c % d;
        if (!l.acc) {
          sp[idx] = static_cast<int8_t>(scale_sat(static_cast<int8_t>(buf[c]), st.scale, -128, 127));
        } else {
          int64_t x = elem == 1 ? static_cast<int8_t>(buf[c]) : [&] { int32_t v; std::memcpy(&v, &buf[c * 4], 4); return v; }();
          int32_t v = scale_sat(x, st.scale, INT32_MIN, INT32_MAX);
          acc[idx] = l.accumulate ? static_cast<int32_t>(static_cast<uint32_t>(acc[idx]) + static_cast<uint32_t>(v)) : v;
        }
      }
    }
    counters_[kCtrDmaRead] += row_bytes * l.rows;
    Footprint fp;  // blocks as one span: exact for contiguous blocks, conservative otherwise
    fp.add(l, (blocks - 1) * st.block_stride + l.rows, 1, true);
    schedule(kLoad, dma_occupancy(l.rows, row_bytes), cfg.dma_latency, fp);
  }

  // An accumulator element as mvout writes it: act(sat8(round_half_even(x * acc_scale))).
  int8_t requant(int32_t x) const {
    int32_t v = scale_sat(x, st_scale_, -128, 127);
    if (st_act_ == 1 && v < 0) v = 0;
    return static_cast<int8_t>(v);
  }

  void mvout(uint64_t dram, uint64_t rs2) {
    if (!st_configured_) bad("mvout before config_mvout");
    Local l = operand(rs2);
    if (l.garbage) bad("mvout: source is the garbage address");
    if (l.accumulate || (!l.acc && l.full)) bad("mvout: accumulate flag, or full-row flag on a scratchpad address");
    if (pool_.enabled()) return mvout_pool(dram, l);
    check_dims(l, cfg.dim, "mvout");
    check_rows(l, uint64_t{l.row} + l.rows, "mvout");
    const unsigned d = cfg.dim;
    const unsigned elem = l.acc && l.full ? 4 : 1;
    const size_t row_bytes = size_t{l.cols} * elem;
    std::vector<uint8_t>& buf = row_buf_;
    buf.resize(row_bytes);
    for (unsigned r = 0; r < l.rows; r++) {
      size_t base = size_t{l.row + r} * d;
      for (unsigned c = 0; c < l.cols; c++) {
        if (!l.acc) {
          buf[c] = static_cast<uint8_t>(sp[base + c]);
        } else if (l.full) {
          std::memcpy(&buf[c * 4], &acc[base + c], 4);
        } else {
          buf[c] = static_cast<uint8_t>(requant(acc[base + c]));
        }
      }
      write_dram(dram + r * st_stride_, buf.data(), row_bytes);
    }
    counters_[kCtrDmaWritten] += row_bytes * l.rows;
    Footprint fp;
    fp.add(l, l.rows, 1, false);
    schedule(kStore, dma_occupancy(l.rows, row_bytes), cfg.spad_read_latency + cfg.dma_latency, fp);
  }

  // mvout with pooling: the tile of orows x ocols conv outputs at accumulator rows
  // l.row + orow * pitch + ocol, `cols` channels each, becomes porows x pocols pooled pixels.
  // Window positions outside the tile are ignored (the conv's edge, or pooling padding).
  void mvout_pool(uint64_t dram, const Local& l) {
    const PoolState& p = pool_;
    if (!l.acc || l.full) bad("mvout: pooling reads int8 results from the accumulator (no scratchpad, no full row)");
    if (l.rows != 0) bad("mvout: %u rows with pooling; must be 0 (config_mvout gives the tile)", l.rows);
    if (l.cols == 0 || l.cols > cfg.dim) bad("mvout: %u columns with pooling, allowed 1..%u", l.cols, cfg.dim);
    const uint32_t span = (p.orows - 1) * p.pitch + p.ocols;
    check_rows(l, uint64_t{l.row} + span, "mvout (pooling)");
    const unsigned d = cfg.dim;
    std::vector<uint8_t>& buf = row_buf_;
    buf.resize(l.cols);
    uint64_t reads = 0;
    for (unsigned pr = 0; pr < p.porows; pr++)
      for (unsigned pc = 0; pc < p.pocols; pc++) {
        std::fill(buf.begin(), buf.end(), static_cast<uint8_t>(static_cast<int8_t>(-128)));
        for (unsigned wr = 0; wr < p.size; wr++) {
          const long orow = long{pr} * p.stride + wr - p.upad;
          if (orow < 0 || orow >= long{p.orows}) continue;
          for (unsigned wc = 0; wc < p.size; wc++) {
            const long ocol = long{pc} * p.stride + wc - p.lpad;
            if (ocol < 0 || ocol >= long{p.ocols}) continue;
            const int32_t* src = &acc[(size_t{l.row} + size_t(orow) * p.pitch + size_t(ocol)) * d];
            for (unsigned c = 0; c < l.cols; c++)
              buf[c] = static_cast<uint8_t>(std::max(static_cast<int8_t>(buf[c]), requant(src[c])));
            reads++;
          }
        }
        write_dram(dram + (uint64_t{pr} * p.out_dim + pc) * st_stride_, buf.data(), l.cols);
      }
    const unsigned pooled = p.porows * p.pocols;
    counters_[kCtrDmaWritten] += uint64_t{l.cols} * pooled;
    Footprint fp;
    fp.add(l, span, 1, false);
    schedule(kStore, reads + dma_occupancy(pooled, l.cols), cfg.spad_read_latency + cfg.dma_latency, fp);
  }

  // Reads a DIM x DIM block (zero outside rows x cols) from the scratchpad, optionally transposed.
  void read_block(const Local& l, uint32_t stride, bool transpose, std::vector<int32_t>& out) {
    const unsigned d = cfg.dim;
    std::fill(out.begin(), out.end(), 0);
    if (l.garbage) return;
    for (unsigned r = 0; r < l.rows; r++) {
      const int8_t* src = &sp[size_t{l.row + r * stride} * d];
      for (unsigned c = 0; c < l.cols; c++) (transpose ? out[c * d + r] : out[r * d + c]) = src[c];
    }
  }

  // The same for the MAC kernel's int16 operands.
  void read_block16(const Local& l, uint32_t stride, bool transpose, std::vector<int16_t>& out) {
    const unsigned d = cfg.dim;
    std::fill(out.begin(), out.end(), int16_t{0});
    if (l.garbage) return;
    for (unsigned r = 0; r < l.rows; r++) {
      const int8_t* src = &sp[size_t{l.row + r * stride} * d];
      if (transpose)
        for (unsigned c = 0; c < l.cols; c++) out[c * d + r] = src[c];
      else
        for (unsigned c = 0; c < l.cols; c++) out[r * d + c] = src[c];
    }
  }

  void check_spad_operand(const Local& l, uint32_t stride, const char* what) const {
    if (l.garbage) return;
    if (l.acc || l.accumulate || l.full) bad("%s: operand must be a plain scratchpad address", what);
    check_dims(l, cfg.dim, what);
    check_rows(l, uint64_t{l.row} + (uint64_t{l.rows} - 1) * stride + 1, what);
  }

  void preload(uint64_t rs1, uint64_t rs2) {
    if (!ex_configured_) bad("preload before config_ex");
    Local bd = operand(rs1), c = operand(rs2);
    check_spad_operand(bd, 1, "preload B/D");
    if (!c.garbage) {
      if (c.full || (!c.acc && c.accumulate)) bad("preload C: full-row flag, or accumulate flag on a scratchpad address");
      check_dims(c, cfg.dim, "preload C");
      check_rows(c, uint64_t{c.row} + (uint64_t{c.rows} - 1) * c_stride_ + 1, "preload C");
    }
    if (ws_) {
      read_block16(bd, 1, !b_transpose_, pending16_);  // B, transposed for the dot products
      pending_cols_ = bd.garbage ? 0 : (b_transpose_ ? bd.rows : bd.cols);
    } else {
      read_block(bd, 1, false, pending_);  // D
    }
    pre_bd_ = bd;
    pre_c_ = c;
    have_preload_ = true;
    Footprint fp;
    fp.add(bd, bd.rows, 1, false);
    schedule(kExec, 1, 0, fp, !bd.garbage, cfg.preload_cycles > 0 ? cfg.preload_cycles - 1 : 0);
  }

  void compute(bool preloaded, uint64_t rs1, uint64_t rs2) {
    const char* what = preloaded ? "compute_preloaded" : "compute_accumulated";
    if (!ex_configured_) bad("%s before config_ex", what);
    if (!have_preload_) bad("%s without a preceding preload", what);
    Local a = operand(rs1), bd = operand(rs2);
    check_spad_operand(a, a_stride_, what);
    check_spad_operand(bd, 1, what);
    have_preload_ = false;
    const unsigned d = cfg.dim;
    std::vector<int32_t>& bm = scratch_b_;
    read_block16(a, a_stride_, a_transpose_, a16_);
    if (ws_) {
      if (preloaded) wt16_.swap(pending16_), wt_cols_ = pending_cols_;  // the staged weights become stationary
      read_block(bd, 1, false, bm);            // D, added to the product
      mac(d, a16_.data(), wt16_.data(), bm.data());
      write_c(bm);
    } else {
      if (preloaded) array_ = pending_;
      read_block16(bd, 1, !b_transpose_, b16_);  // B, transposed for the dot products
      mac(d, a16_.data(), b16_.data(), array_.data());
      write_c(array_);
    }
    unsigned ar = a.garbage ? 0 : (a_transpose_ ? a.cols : a.rows);
    unsigned ak = a.garbage ? 0 : (a_transpose_ ? a.rows : a.cols);
    // useful MACs: A's rows x its columns x B's columns (WS: the stationary weights; OS: this
    // compute's B), whatever the preload's C (OS leaves it garbage until a block's last compute)
    const unsigned bcols = ws_ ? wt_cols_ : (bd.garbage ? 0 : (b_transpose_ ? bd.rows : bd.cols));
    counters_[kCtrMacs] += uint64_t{ar} * ak * bcols;
    Footprint fp;
    fp.add(a, a.rows, a_stride_, false);
    fp.add(bd, bd.rows, 1, false);
    fp.add(pre_c_, pre_c_.rows, c_stride_, true);
    schedule(kExec, cfg.compute_cycles, cfg.pipeline_latency, fp);
  }

  void write_c(const std::vector<int32_t>& v) {
    const Local c = pre_c_;
    if (c.garbage) return;
    // Locals, not members, in the loops: the stores below may alias any member as far as the
    // compiler knows, which would reload every flag per element.
    const unsigned d = cfg.dim, shift = in_shift_, stride = c_stride_;
    const bool relu = ex_act_ == 1;
    int32_t* acc_base = acc.data();
    int8_t* sp_base = sp.data();
    for (unsigned r = 0; r < c.rows; r++) {
      const size_t base = size_t{c.row + r * stride} * d;
      const int32_t* src = &v[size_t{r} * d];
      if (c.acc && c.accumulate) {
        uint32_t* dst = reinterpret_cast<uint32_t*>(acc_base + base);  // wrapping 32-bit add
        for (unsigned j = 0; j < c.cols; j++) dst[j] += static_cast<uint32_t>(src[j]);
      } else if (c.acc) {
        std::memcpy(acc_base + base, src, sizeof(int32_t) * c.cols);
      } else {
        for (unsigned j = 0; j < c.cols; j++) {
          int8_t y = sat8(shift_rne(src[j], shift));
          sp_base[base + j] = (relu && y < 0) ? 0 : y;
        }
      }
    }
  }

  // FLUSH waits until every unit is idle and every result has landed: the CPU stalls.
  void flush() {
    uint64_t now = cpu_now(), done = std::max(drain_at_, unroll_done_);
    if (done > now) {
      stall_ += done - now;
      counters_[kCtrStall] += done - now;
    }
    for (auto& u : units_) u.inflight.clear();
  }

  // ---------------------------------------------------------------- LOOP_WS (hardware loop unroller)
  // Field layouts are Gemmini's gemmini_loop_ws: BOUNDS rs1 = pad_K[47:32] pad_J[31:16] pad_I[15:0],
  // rs2 = K J I likewise (in DIM blocks); ADDRS_AB A, B; ADDRS_DC D, C (0 = no bias / no store);
  // STRIDES_AB and STRIDES_DC the row strides in elements.
  void loop_ws_config(unsigned funct, uint64_t rs1, uint64_t rs2) {
    if (!cfg.has_loop_ws) bad("LOOP_WS config (funct %u): this configuration has no LOOP_WS unroller", funct);
    LoopWsConfig& c = loop_cfg_;
    switch (funct) {
      case kLoopWsBounds:
        c.I = rs2 & 0xFFFF, c.J = (rs2 >> 16) & 0xFFFF, c.K = (rs2 >> 32) & 0xFFFF;
        c.pad_I = rs1 & 0xFFFF, c.pad_J = (rs1 >> 16) & 0xFFFF, c.pad_K = (rs1 >> 32) & 0xFFFF;
        break;
      case kLoopWsAddrsAB: c.A = rs1, c.B = rs2; break;
      case kLoopWsAddrsDC: c.D = rs1, c.C = rs2; break;
      case kLoopWsStridesAB: c.stride_A = rs1, c.stride_B = rs2; break;
      default: c.stride_D = rs1, c.stride_C = rs2; break;
    }
    c.given |= 1u << (funct - kLoopWsBounds);
  }

  // What a LOOP_WS needs of the bounds and of the CPU-issued configs its commands run under.
  void check_loop(const LoopWsConfig& c, bool full_c) const {
    const unsigned d = cfg.dim;
    if (c.given != LoopWsConfig::kAll) bad("LOOP_WS: config commands missing since the last LOOP_WS (mask 0x%x)", c.given);
    if (!c.I || !c.J || !c.K) bad("LOOP_WS: bounds I=%u J=%u K=%u must be >= 1", c.I, c.J, c.K);
    if (c.pad_I >= d || c.pad_J >= d || c.pad_K >= d) bad("LOOP_WS: padding %u/%u/%u not below DIM", c.pad_I, c.pad_J, c.pad_K);
    if (uint64_t{c.I * c.K + c.K * c.J} * d > cfg.sp_rows / 2)
      bad("LOOP_WS: A (%ux%u blocks) and B (%ux%u) exceed half the scratchpad", c.I, c.K, c.K, c.J);
    if (uint64_t{c.I} * c.J * d > cfg.acc_rows / 2) bad("LOOP_WS: C (%ux%u blocks) exceeds half the accumulator", c.I, c.J);
    if (!ex_configured_ || !ws_ || a_transpose_ || b_transpose_ || a_stride_ != 1 || c_stride_ != 1)
      bad("LOOP_WS: needs config_ex WS, no transposes, A and C strides 1");
    const uint64_t want[3] = {c.stride_A, c.stride_B, c.stride_D * 4};
    for (int id = 0; id < 3; id++) {
      if (id == 2 && !c.D) continue;
      const LoadState& l = ld_[id];
      if (!l.configured || l.block_stride != d || l.shrink || l.dram_stride != want[id])
        bad("LOOP_WS: config_mvin %d must have block stride DIM, no shrink, DRAM stride %llu", id, ull(want[id]));
    }
    if (c.C && (!st_configured_ || pool_.enabled() || st_stride_ != c.stride_C * (full_c ? 4 : 1)))
      bad("LOOP_WS: config_mvout must have no pooling and DRAM stride %llu", ull(c.stride_C * (full_c ? 4 : 1)));
  }

  // LOOP_WS rs1: ex_accumulate [0], full_C [1], low_D [2], act [10:8], b_spad_id [17:16],
  // a_spad_id [19:18] (tvmx: non-zero = A is the tile the last A-loading loop left in the
  // scratchpad, not loaded again); rs2: A_transpose [0], B_transpose [1], is_resadd [2].
  void loop_ws(uint64_t rs1, uint64_t rs2) {
    if (!cfg.has_loop_ws) bad("LOOP_WS: this configuration has no LOOP_WS unroller");
    const bool ex_acc = rs1 & 1, full_c = (rs1 >> 1) & 1, low_d = (rs1 >> 2) & 1, reuse_a = (rs1 >> 18) & 3;
    const unsigned act = (rs1 >> 8) & 7;
    if (low_d || act > 1 || (rs2 & 7))
      bad("LOOP_WS: unsupported flags (low_D %d, act %u, transposes/resadd 0x%llx)", low_d, act, ull(rs2 & 7));
    const LoopWsConfig c = loop_cfg_;
    check_loop(c, full_c);
    LoopWsState& s = loop_;
    if (reuse_a && !(s.a_valid && s.a_I == c.I && s.a_K == c.K && s.a_pad_I == c.pad_I && s.a_pad_K == c.pad_K &&
                     s.a_dram == c.A && s.a_stride == c.stride_A))
      bad("LOOP_WS: a_spad_id asks to reuse an A tile the last loop did not load");
    loop_cfg_.given = 0;
    const uint32_t half_rows = cfg.sp_rows / 2;
    s.half ^= 1;
    if (!ex_acc) s.c_half ^= 1;  // a new C tile; an accumulating loop adds onto the last one
    if (!reuse_a) s = LoopWsState{s.half, s.c_half, true, s.half * half_rows, c.I, c.K, c.pad_I, c.pad_K, c.A, c.stride_A};
    const uint32_t b_row = (s.half + 1) * half_rows - c.K * c.J * cfg.dim;
    const uint32_t c_row = s.c_half * (cfg.acc_rows / 2);
    const unsigned saved_act = st_act_;
    unroll_clock_ = issue_time();  // after the previous loop's commands
    unrolling_ = true;
    st_act_ = act;  // the loop's mvouts apply its activation, with config_mvout's scale
    try {
      unroll(c, s.a_row, b_row, c_row, ex_acc, full_c, !reuse_a);
    } catch (...) {
      unrolling_ = false;
      st_act_ = saved_act;
      throw;
    }
    unrolling_ = false;
    st_act_ = saved_act;
    unroll_done_ = ws_done_ = unroll_clock_;
  }

  static uint64_t op(uint32_t local, unsigned cols, unsigned rows) {
    return (uint64_t{rows} << 48) | (uint64_t{cols} << 32) | local;
  }

  // One command of the unroller, executed and scheduled like the CPU's (counted as a command).
  void unrolled(unsigned funct, uint64_t rs1, uint64_t rs2) {
    switch (funct) {
      case kMvin: mvin(0, rs1, rs2); break;
      case kMvin2: mvin(1, rs1, rs2); break;
      case kMvin3: mvin(2, rs1, rs2); break;
      case kPreload: preload(rs1, rs2); break;
      case kComputePreloaded: compute(true, rs1, rs2); break;
      case kComputeAccumulated: compute(false, rs1, rs2); break;
      default: mvout(rs1, rs2); break;
    }
    counters_[kCtrInsts]++;
  }

  // Rows or columns of `n` blocks from `first` of `total`, the last block short by `pad`.
  unsigned span(uint32_t first, uint32_t n, uint32_t total, uint32_t pad) const {
    return n * cfg.dim - (first + n == total ? pad : 0);
  }

  // The tiled matmul of one loop, in gemmini.h's WS order (tiled_matmul's CPU path): the bias
  // blocks into C's accumulator tile; then per (j, k) block pair, j-major, the loads of pair q +
  // kLoopLookahead (A's column of blocks k with the next ones of the same mvins, at j = 0; B's
  // block row k) before the computes of pair q (B (k, j) preloaded once, the I row blocks of A
  // streaming past); then the mvouts of C. Layout: A at a_row, block (i, k) at (i*K + k)*DIM; B at
  // b_row, (k, j) at (k*J + j)*DIM; C at c_row of the accumulator, (i, j) at (i*J + j)*DIM.
  static constexpr uint32_t kLoopLookahead = 3;
  void unroll(const LoopWsConfig& c, uint32_t a_row, uint32_t b_row, uint32_t c_row, bool ex_acc, bool full_c,
              bool load_a) {
    const unsigned d = cfg.dim, mbl = max_blocks(false, false);
    const uint32_t acc = 1u << 31, accumulate = 1u << 30, full = 1u << 29;
    if (c.D)
      for (uint32_t i = 0; i < c.I; i++)
        for (uint32_t j = 0; j < c.J; j++)
          unrolled(kMvin3, c.D + (uint64_t{i} * d * c.stride_D + j * d) * 4,
                   op(acc | (c_row + (i * c.J + j) * d), span(j, 1, c.J, c.pad_J), span(i, 1, c.I, c.pad_I)));
    auto load = [&](uint32_t j, uint32_t k) {
      if (load_a && j == 0 && k % mbl == 0)
        for (uint32_t i = 0; i < c.I; i++)
          unrolled(kMvin, c.A + uint64_t{i} * d * c.stride_A + k * d,
                   op(a_row + (i * c.K + k) * d, span(k, std::min(mbl, c.K - k), c.K, c.pad_K), span(i, 1, c.I, c.pad_I)));
      if (j % mbl == 0)
        unrolled(kMvin2, c.B + uint64_t{k} * d * c.stride_B + j * d,
                 op(b_row + (k * c.J + j) * d, span(j, std::min(mbl, c.J - j), c.J, c.pad_J), span(k, 1, c.K, c.pad_K)));
    };
    const uint64_t garbage = op(kGarbage, d, d);
    const uint32_t units = c.J * c.K;
    uint32_t loaded = 0;
    for (uint32_t j = 0, q = 0; j < c.J; j++)
      for (uint32_t k = 0; k < c.K; k++, q++) {
        for (; loaded < units && loaded <= q + kLoopLookahead; loaded++) load(loaded / c.K, loaded % c.K);
        const unsigned jc = span(j, 1, c.J, c.pad_J), kc = span(k, 1, c.K, c.pad_K);
        const uint32_t flag = (c.D || ex_acc || k > 0) ? accumulate : 0;
        for (uint32_t i = 0; i < c.I; i++) {
          const unsigned rows = span(i, 1, c.I, c.pad_I);
          const uint64_t c_op = op(acc | flag | (c_row + (i * c.J + j) * d), jc, rows);
          unrolled(kPreload, i == 0 ? op(b_row + (k * c.J + j) * d, jc, kc) : garbage, c_op);
          unrolled(i == 0 ? kComputePreloaded : kComputeAccumulated, op(a_row + (i * c.K + k) * d, kc, rows), garbage);
        }
      }
    if (c.C)
      for (uint32_t i = 0; i < c.I; i++)
        for (uint32_t j = 0; j < c.J; j++)
          unrolled(kMvout, c.C + (uint64_t{i} * d * c.stride_C + j * d) * (full_c ? 4 : 1),
                   op(acc | (full_c ? full : 0) | (c_row + (i * c.J + j) * d), span(j, 1, c.J, c.pad_J),
                      span(i, 1, c.I, c.pad_I)));
  }

  // ---------------------------------------------------------------- LOOP_CONV_WS (conv loop unroller)
  // Field layouts are gemmini-rocc-tests' gemmini_loop_conv_ws (non-square version):
  //   CONFIG_1 (16) rs1 = out_channels[63:48] in_channels[47:32] in_row_dim[31:16] batch_size[15:0],
  //                 rs2 = padding[63:56] stride[55:48] out_col_dim[47:32] pool_out_row_dim[31:16] out_row_dim[15:0]
  //   CONFIG_2 (17) rs1 = kernel_dim[63:48] pool_out_col_dim[47:32] pool_size[31:16] pool_stride[15:8]
  //                       pool_padding[7:0], rs2 = batches[63:48] porows[47:32] pocols[31:16] pochs[15:0]
  //   CONFIG_3 (18) rs1 = krows[63:48] kcols[47:32] kchs[31:16] lpad[15:0],
  //                 rs2 = rpad[63:48] upad[47:32] dpad[31:24] plpad[23:16] in_col_dim[15:0]
  //   CONFIG_4 (19) rs1 = orows[63:48] prpad[47:32] pupad[31:21] pdpad[20:10] kernel_dilation[9:0],
  //                 rs2 = in_stride[63:48] weight_stride[47:32] out_stride[31:16] ocols[15:0]
  //   CONFIG_5 (20) weights, output; CONFIG_6 (21) bias, input
  void loop_conv_config(unsigned funct, uint64_t rs1, uint64_t rs2) {
    if (!cfg.has_loop_conv) bad("LOOP_CONV_WS config (funct %u): this configuration has no LOOP_CONV_WS unroller", funct);
    LoopConvConfig& c = conv_cfg_;
    auto f = [](uint64_t v, unsigned lo, unsigned bits) { return static_cast<uint32_t>((v >> lo) & ((1ull << bits) - 1)); };
    switch (funct - kLoopConvWsConfig1) {
      case 0:
        c.batch_size = f(rs1, 0, 16), c.in_row_dim = f(rs1, 16, 16), c.in_channels = f(rs1, 32, 16);
        c.out_channels = f(rs1, 48, 16);
        c.out_row_dim = f(rs2, 0, 16), c.pool_out_row_dim = f(rs2, 16, 16), c.out_col_dim = f(rs2, 32, 16);
        c.stride = f(rs2, 48, 8), c.padding = f(rs2, 56, 8);
        break;
      case 1:
        c.pool_padding = f(rs1, 0, 8), c.pool_stride = f(rs1, 8, 8), c.pool_size = f(rs1, 16, 16);
        c.pool_out_col_dim = f(rs1, 32, 16), c.kernel_dim = f(rs1, 48, 16);
        c.pochs = f(rs2, 0, 16), c.pocols = f(rs2, 16, 16), c.porows = f(rs2, 32, 16), c.batches = f(rs2, 48, 16);
        break;
      case 2:
        c.lpad = f(rs1, 0, 16), c.kchs = f(rs1, 16, 16), c.kcols = f(rs1, 32, 16), c.krows = f(rs1, 48, 16);
        c.in_col_dim = f(rs2, 0, 16), c.plpad = f(rs2, 16, 8), c.dpad = f(rs2, 24, 8), c.upad = f(rs2, 32, 16);
        c.rpad = f(rs2, 48, 16);
        break;
      case 3:
        c.kernel_dilation = f(rs1, 0, 10), c.pdpad = f(rs1, 10, 11), c.pupad = f(rs1, 21, 11), c.prpad = f(rs1, 32, 16);
        c.orows = f(rs1, 48, 16);
        c.ocols = f(rs2, 0, 16), c.out_stride = f(rs2, 16, 16), c.weight_stride = f(rs2, 32, 16);
        c.in_stride = f(rs2, 48, 16);
        break;
      case 4: c.weights = rs1, c.output = rs2; break;
      default: c.bias = rs1, c.input = rs2; break;
    }
    c.given |= 1u << (funct - kLoopConvWsConfig1);
  }

  // The tile's padded input: rows and columns of input pixels the loop's computes read.
  static uint32_t conv_irows(const LoopConvConfig& c) { return (c.orows - 1) * c.stride + c.krows; }
  static uint32_t conv_icols(const LoopConvConfig& c) { return (c.ocols - 1) * c.stride + c.kcols; }

  void check_conv_loop(const LoopConvConfig& c, bool pool, bool accumulate) const {
    const unsigned d = cfg.dim;
    if (c.given != LoopConvConfig::kAll)
      bad("LOOP_CONV_WS: config commands missing since the last LOOP_CONV_WS (mask 0x%x)", c.given);
    if (!c.batches || !c.orows || !c.ocols || !c.krows || !c.kcols || !c.kchs || !c.pochs || !c.stride)
      bad("LOOP_CONV_WS: batches %u, orows %u, ocols %u, krows %u, kcols %u, kchs %u, pochs %u, stride %u must be >= 1",
          c.batches, c.orows, c.ocols, c.krows, c.kcols, c.kchs, c.pochs, c.stride);
    if (c.kernel_dilation != 1) bad("LOOP_CONV_WS: kernel dilation %u (only 1 is modelled)", c.kernel_dilation);
    if (c.kcols > c.kernel_dim || c.kchs > c.in_channels || c.pochs > c.out_channels)
      bad("LOOP_CONV_WS: tile kernel columns %u / %u input / %u output channels beyond the conv's %u / %u / %u",
          c.kcols, c.kchs, c.pochs, c.kernel_dim, c.in_channels, c.out_channels);
    // (Input pixels may overlap, as a tap-packed conv's do: the loads only read. Written rows may not.)
    if (!c.in_stride || c.weight_stride < c.pochs || c.out_stride < c.pochs)
      bad("LOOP_CONV_WS: strides in %u / weight %u / out %u: in 0, or weight or out below the tile's %u output "
          "channels", c.in_stride, c.weight_stride, c.out_stride, c.pochs);
    const uint32_t irows = conv_irows(c), icols = conv_icols(c);
    if (c.upad + c.dpad > irows || c.lpad + c.rpad > icols)
      bad("LOOP_CONV_WS: padding %u+%u rows / %u+%u columns exceeds the tile's %ux%u input", c.upad, c.dpad, c.lpad,
          c.rpad, irows, icols);
    if (irows - c.upad - c.dpad > c.in_row_dim || icols - c.lpad - c.rpad > c.in_col_dim)
      bad("LOOP_CONV_WS: the tile reads %ux%u input pixels of a %ux%u image", irows - c.upad - c.dpad,
          icols - c.lpad - c.rpad, c.in_row_dim, c.in_col_dim);
    const uint64_t kb = (c.kchs + d - 1) / d, ob = (c.pochs + d - 1) / d;
    const uint64_t in_rows = kb * c.batches * irows * icols, w_rows = ob * c.krows * c.kcols * c.kchs;
    if (in_rows + w_rows > cfg.sp_rows / 2)
      bad("LOOP_CONV_WS: input (%llu rows) and weights (%llu) exceed half the scratchpad", ull(in_rows), ull(w_rows));
    if (ob * c.batches * c.orows * c.ocols > cfg.acc_rows / 2)
      bad("LOOP_CONV_WS: the output tile (%llu rows) exceeds half the accumulator", ull(ob * c.batches * c.orows * c.ocols));
    if (pool) {
      if (c.output && (c.pool_out_col_dim < c.pocols || c.pool_out_row_dim < c.porows))
        bad("LOOP_CONV_WS: %ux%u pooled pixels in a %ux%u pooled image", c.porows, c.pocols, c.pool_out_row_dim,
            c.pool_out_col_dim);
    } else if (c.output && (c.out_col_dim < c.ocols || c.out_row_dim < c.orows)) {
      bad("LOOP_CONV_WS: %ux%u conv outputs in a %ux%u output image", c.orows, c.ocols, c.out_row_dim, c.out_col_dim);
    }
    if (accumulate && !(conv_c_valid_ && conv_c_shape_[0] == c.pochs && conv_c_shape_[1] == c.batches &&
                        conv_c_shape_[2] == c.orows && conv_c_shape_[3] == c.ocols))
      bad("LOOP_CONV_WS: no bias address and no_bias 0 accumulate onto the last loop's tile, which has another shape");
    if (!ex_configured_ || !ws_ || b_transpose_) bad("LOOP_CONV_WS: needs config_ex WS without transposes");
    if (c.output && !st_configured_) bad("LOOP_CONV_WS: needs config_mvout (its acc_scale)");
  }

  // LOOP_CONV_WS rs1: a_spad_id [19:18], b_spad_id [17:16], max_pixels_per_row [15:8], dw [6],
  // trans_input_3120 [5], trans_weight_0132 [4], trans_weight_1203 [3], trans_output_1203 [2],
  // wrot180 [1], no_bias [0]; rs2: activation [4:3], input_dilated [2], downsample [1], no_pool [0].
  // Bias: no_bias 1 starts the tile from zero; a bias address loads it (int32, one row broadcast
  // to every pixel); address 0 with no_bias 0 accumulates onto the tile the last loop left in the
  // accumulator (Gemmini's tiled_conv passes no bias to its later input-channel steps). Output 0:
  // no stores (the tile stays for such a loop).
  void loop_conv_ws(uint64_t rs1, uint64_t rs2) {
    if (!cfg.has_loop_conv) bad("LOOP_CONV_WS: this configuration has no LOOP_CONV_WS unroller");
    const bool no_bias = rs1 & 1, pool = !(rs2 & 1);
    const unsigned act = (rs2 >> 3) & 3;
    if ((rs1 & 0x7E) || ((rs1 >> 16) & 0xF) || (rs2 & 6) || act > 1)
      bad("LOOP_CONV_WS: unsupported flags (rs1 0x%llx: transposes, wrot180, dw, spad ids; rs2 0x%llx: input_dilated, "
          "downsample, activation %u)", ull(rs1 & 0xF007E), ull(rs2 & 6), act);
    const LoopConvConfig c = conv_cfg_;
    const bool accumulate = !no_bias && !c.bias;
    check_conv_loop(c, pool, accumulate);
    PoolState p;
    if (pool) {
      p.stride = c.pool_stride, p.size = c.pool_size, p.upad = c.pupad, p.lpad = c.plpad, p.pitch = c.ocols;
      p.out_dim = c.pool_out_col_dim, p.porows = c.porows, p.pocols = c.pocols, p.orows = c.orows, p.ocols = c.ocols;
      if (!p.stride) bad("LOOP_CONV_WS: pooling with pool stride 0");
      check_pool(p, "LOOP_CONV_WS");
    }
    conv_cfg_.given = 0;
    // Two loops in flight: the CPU waits until the one before the last has issued everything.
    uint64_t now = cpu_now();
    if (conv_done_[0] > now) {
      stall_ += conv_done_[0] - now;
      counters_[kCtrStall] += conv_done_[0] - now;
      now = conv_done_[0];
    }
    conv_half_ ^= 1;
    if (!accumulate) conv_c_half_ ^= 1;
    const uint32_t half = cfg.sp_rows / 2;
    const uint32_t in_row = conv_half_ * half;
    const uint32_t w_row = (conv_half_ + 1) * half - ((c.pochs + cfg.dim - 1) / cfg.dim) * c.krows * c.kcols * c.kchs;
    const uint32_t c_row = conv_c_half_ * (cfg.acc_rows / 2);
    // The unroller's commands run under its own load, execute and store settings; the CPU's are
    // restored afterwards (Gemmini's unroller issues its own config commands).
    const LoadState saved_ld[3] = {ld_[0], ld_[1], ld_[2]};
    const PoolState saved_pool = pool_;
    const unsigned saved_act = st_act_;
    const uint64_t saved_st_stride = st_stride_;
    const uint32_t saved_a_stride = a_stride_, saved_c_stride = c_stride_;
    for (auto& t : stream_clock_) t = std::max({t, now, ws_done_});
    unrolling_ = conv_stream_ = true;
    try {
      unroll_conv(c, in_row, w_row, c_row, no_bias, pool, act, p);
    } catch (...) {
      unrolling_ = conv_stream_ = false;
      ld_[0] = saved_ld[0], ld_[1] = saved_ld[1], ld_[2] = saved_ld[2];
      pool_ = saved_pool, st_act_ = saved_act, st_stride_ = saved_st_stride, a_stride_ = saved_a_stride;
      c_stride_ = saved_c_stride;
      throw;
    }
    unrolling_ = conv_stream_ = false;
    ld_[0] = saved_ld[0], ld_[1] = saved_ld[1], ld_[2] = saved_ld[2];
    pool_ = saved_pool, st_act_ = saved_act, st_stride_ = saved_st_stride, a_stride_ = saved_a_stride;
    c_stride_ = saved_c_stride;
    conv_c_valid_ = true;
    conv_c_shape_[0] = c.pochs, conv_c_shape_[1] = c.batches, conv_c_shape_[2] = c.orows, conv_c_shape_[3] = c.ocols;
    const uint64_t done = *std::max_element(stream_clock_, stream_clock_ + 3);
    conv_done_[0] = conv_done_[1];
    conv_done_[1] = done;
    unroll_done_ = std::max(unroll_done_, done);
  }

  // Zeros into `rows` scratchpad rows from `row` (`cols` columns of DIM-wide blocks `block_stride`
  // rows apart): Gemmini's mvin from DRAM address 0 (its zero writer; no DMA), one row per cycle.
  void zero_rows(uint32_t row, unsigned cols, unsigned rows, uint32_t block_stride) {
    const unsigned d = cfg.dim, blocks = (cols + d - 1) / d;
    for (unsigned b = 0; b < blocks; b++)
      for (unsigned r = 0; r < rows; r++)
        std::fill_n(&sp[(size_t{row} + b * size_t{block_stride} + r) * d], std::min(d, cols - b * d), int8_t{0});
    Footprint fp;
    fp.add(Local{false, false, false, false, row, static_cast<uint16_t>(rows), static_cast<uint16_t>(cols)},
           (blocks - 1) * block_stride + rows, 1, true);
    schedule(kLoad, rows, 0, fp);
    counters_[kCtrInsts]++;
  }

  // One conv tile, in Gemmini's LoopConv order. Scratchpad: input pixel (kch block, b, irow, icol)
  // of the padded tile at in_row + ((kb * batches + b) * irows + irow) * icols + icol; weight row
  // (och block, krow, kcol, kch) at w_row + ((ob * krows + krow) * kcols + kcol) * kchs + kch.
  // Accumulator: output pixel (och block, b, orow, ocol) at c_row + ((ob * batches + b) * orows +
  // orow) * ocols + ocol. Loads (bias, input, weights), then, once they are all issued, the
  // computes (per och block, krow, kcol, kch block: one weight preload, then DIM output columns of
  // one output row per compute, A rows `stride` apart), then, once those are issued, the stores.
  void unroll_conv(const LoopConvConfig& c, uint32_t in_row, uint32_t w_row, uint32_t c_row, bool no_bias, bool pool,
                   unsigned act, const PoolState& p) {
    const unsigned d = cfg.dim, mbl = max_blocks(false, false);
    const uint32_t acc = 1u << 31, accumulate = 1u << 30;
    const uint32_t irows = conv_irows(c), icols = conv_icols(c);
    const uint32_t kb = (c.kchs + d - 1) / d, ob = (c.pochs + d - 1) / d;
    const uint32_t in_block = c.batches * irows * icols, w_block = c.krows * c.kcols * c.kchs;
    auto cols_of = [&](uint32_t total, uint32_t first_block, uint32_t blocks) {
      return std::min(blocks * d, total - first_block * d);
    };
    auto c_addr = [&](uint32_t o, uint32_t b, uint32_t orow, uint32_t ocol) {
      return c_row + ((o * c.batches + b) * c.orows + orow) * c.ocols + ocol;
    };
    // bias: one int32 row per pixel, DRAM stride 0
    if (!no_bias && c.bias) {
      ld_[2] = LoadState{true, false, d, 1.0f, 0};
      for (uint32_t o = 0; o < ob; o++)
        for (uint32_t b = 0; b < c.batches; b++)
          for (uint32_t orow = 0; orow < c.orows; orow++)
            for (uint32_t ocol = 0; ocol < c.ocols; ocol += d)
              unrolled(kMvin3, c.bias + uint64_t{o} * d * 4,
                       op(acc | c_addr(o, b, orow, ocol), cols_of(c.pochs, o, 1), std::min(d, c.ocols - ocol)));
    }
    // input: zeros in the padding, the image's pixels elsewhere
    ld_[0] = LoadState{true, false, in_block, 1.0f, c.in_stride};
    const uint32_t real_cols = icols - c.lpad - c.rpad;
    for (uint32_t k = 0; k < kb; k += mbl) {
      const unsigned cols = cols_of(c.kchs, k, mbl);
      for (uint32_t b = 0; b < c.batches; b++)
        for (uint32_t ir = 0; ir < irows; ir++) {
          const uint32_t row = in_row + ((k * c.batches + b) * irows + ir) * icols;
          if (ir < c.upad || ir >= irows - c.dpad) {
            for (uint32_t x = 0; x < icols; x += d) zero_rows(row + x, cols, std::min(d, icols - x), in_block);
            continue;
          }
          for (uint32_t x = 0; x < c.lpad; x += d) zero_rows(row + x, cols, std::min(d, c.lpad - x), in_block);
          const uint64_t src = c.input + ((uint64_t{b} * c.in_row_dim + (ir - c.upad)) * c.in_col_dim) * c.in_stride +
                               uint64_t{k} * d;
          for (uint32_t x = 0; x < real_cols; x += d)
            unrolled(kMvin, src + uint64_t{x} * c.in_stride, op(row + c.lpad + x, cols, std::min(d, real_cols - x)));
          for (uint32_t x = c.lpad + real_cols; x < icols; x += d) zero_rows(row + x, cols, std::min(d, icols - x), in_block);
        }
    }
    // weights: rows of input channels, DIM output channels per block
    ld_[1] = LoadState{true, false, w_block, 1.0f, c.weight_stride};
    for (uint32_t o = 0; o < ob; o += mbl)
      for (uint32_t kr = 0; kr < c.krows; kr++)
        for (uint32_t kc = 0; kc < c.kcols; kc++)
          for (uint32_t ch = 0; ch < c.kchs; ch += d)
            unrolled(kMvin2, c.weights + ((uint64_t{kr} * c.kernel_dim + kc) * c.in_channels + ch) * c.weight_stride +
                                 uint64_t{o} * d,
                     op(w_row + ((o * c.krows + kr) * c.kcols + kc) * c.kchs + ch, cols_of(c.pochs, o, mbl),
                        std::min(d, c.kchs - ch)));
    // computes, after the loads are issued (Gemmini's LoopConv: execute waits for its loop's loads)
    stream_clock_[kExec] = std::max(stream_clock_[kExec], stream_clock_[kLoad]);
    a_stride_ = c.stride, c_stride_ = 1;
    const uint64_t garbage = op(kGarbage, d, d);
    const bool seeded = !no_bias;  // a bias, or the last loop's partial sums, is in the tile already
    for (uint32_t o = 0; o < ob; o++) {
      const unsigned jc = cols_of(c.pochs, o, 1);
      for (uint32_t kr = 0; kr < c.krows; kr++)
        for (uint32_t kc = 0; kc < c.kcols; kc++)
          for (uint32_t k = 0; k < kb; k++) {
            const unsigned kcs = cols_of(c.kchs, k, 1);
            const uint32_t flag = (seeded || kr || kc || k) ? accumulate : 0;
            bool first = true;
            for (uint32_t b = 0; b < c.batches; b++)
              for (uint32_t orow = 0; orow < c.orows; orow++)
                for (uint32_t ocol = 0; ocol < c.ocols; ocol += d) {
                  const unsigned rows = std::min(d, c.ocols - ocol);
                  const uint32_t a = in_row + ((k * c.batches + b) * irows + orow * c.stride + kr) * icols +
                                     ocol * c.stride + kc;
                  unrolled(kPreload, first ? op(w_row + ((o * c.krows + kr) * c.kcols + kc) * c.kchs + k * d, jc, kcs)
                                           : garbage,
                           op(acc | flag | c_addr(o, b, orow, ocol), jc, rows));
                  unrolled(first ? kComputePreloaded : kComputeAccumulated, op(a, kcs, rows), garbage);
                  first = false;
                }
          }
    }
    if (!c.output) return;
    // stores, after the computes are issued; requantized by config_mvout's scale, the loop's act
    stream_clock_[kStore] = std::max(stream_clock_[kStore], stream_clock_[kExec]);
    st_act_ = act;
    st_stride_ = c.out_stride;
    if (pool) {
      pool_ = p;
      for (uint32_t b = 0; b < c.batches; b++)
        for (uint32_t o = 0; o < ob; o++)
          unrolled(kMvout, c.output + uint64_t{b} * c.pool_out_row_dim * c.pool_out_col_dim * c.out_stride + uint64_t{o} * d,
                   op(acc | c_addr(o, b, 0, 0), cols_of(c.pochs, o, 1), 0));
      return;
    }
    pool_ = PoolState{};
    for (uint32_t o = 0; o < ob; o++)
      for (uint32_t b = 0; b < c.batches; b++)
        for (uint32_t orow = 0; orow < c.orows; orow++)
          for (uint32_t ocol = 0; ocol < c.ocols; ocol += d)
            unrolled(kMvout,
                     c.output + ((uint64_t{b} * c.out_row_dim + orow) * c.out_col_dim + ocol) * c.out_stride + uint64_t{o} * d,
                     op(acc | c_addr(o, b, orow, ocol), cols_of(c.pochs, o, 1), std::min(d, c.ocols - ocol)));
  }

  uint64_t counter(uint64_t rs1) {
    unsigned id = rs1 & 0xFF;
    switch (id) {
      case kCtrCycles: return cpu_now();
      case kCtrLoadBusy: return units_[kLoad].busy;
      case kCtrExecBusy: return units_[kExec].busy;
      case kCtrStoreBusy: return units_[kStore].busy;
      case kCtrStall: return stall_;
      default:
        if (id < kNumCounters) return counters_[id];
        bad("counter: unknown counter id %u", id);
    }
  }
};

Gemmini g_model;

// Static destructors run after Spike's main returns: the last chance to report counters.
struct StatsAtExit {
  ~StatsAtExit() { g_model.write_stats(); }
} g_stats_at_exit;

// Spike bumps minstret once per batch of instructions, so inside a batch it is stale. Returning
// this sentinel pc ends the batch before the command (minstret becomes exact) and Spike executes
// the command again at the start of the next batch with state.serialized set: the same protocol
// Spike's own counter CSR reads use. Value from Spike's decode_macros.h (not an installed header).
constexpr reg_t kPcSerializeBefore = 3;

reg_t gemmini_insn(processor_t* p, insn_t insn, reg_t pc) {
  state_t* s = p->get_state();
  if (!s->serialized) return kPcSerializeBefore;
  s->serialized = false;
  unsigned funct = (insn.bits() >> 25) & 0x7F, funct3 = (insn.bits() >> 12) & 7;
  try {
    reg_t rd = g_model.execute(p, funct, funct3, s->XPR[insn.rs1()], s->XPR[insn.rs2()]);
    if (funct3 == kFunct3Rd) s->XPR.write(insn.rd(), rd);
  } catch (const BadCommand& e) {
    std::fprintf(stderr, "gemmini: illegal command at pc 0x%llx: %s\n", static_cast<unsigned long long>(pc), e.why.c_str());
    throw trap_illegal_instruction(insn.bits());
  }
  return pc + 4;
}

class GemminiExtension : public extension_t {
 public:
  std::vector<insn_desc_t> get_instructions(const processor_t&) override {
    insn_func_t f = &gemmini_insn;
    return {insn_desc_t{0x7b, 0x7f, f, f, f, f, f, f, f, f}};
  }
  std::vector<disasm_insn_t*> get_disasms(const processor_t*) override { return {}; }
  const char* name() const override { return "gemmini"; }
  void reset(processor_t& p) override { g_model.reset(p); }
};

}  // namespace

REGISTER_EXTENSION(gemmini, []() { return new GemminiExtension; })
