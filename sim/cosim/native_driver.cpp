// The native stream driver: the Verilated engine driven by a C++ loop, a whole job at a time.
//
// It does what the cocotb bench (molxbar/sim/cosim/testbench.py) does, without Python in
// every cycle: it drives the command stream with random idle cycles, takes the response
// stream with random, bursty back-pressure, resets the engine before each segment (and in
// mid-traffic when a segment asks for it), and counts cycles. Comparing the responses with
// the golden engine is left to the caller (molxbar/sim/cosim/native.py).
//
//   molxbar_native --stream-bytes B [--seed S] [--idle-in P] [--stall-out P] [--burst N]
//                  [--max-cycles N] --out DIR SEGMENT[@RESET_AFTER]...
//
// Each SEGMENT is a file of command bytes; its responses go to DIR/responses<k>.bin. While
// it runs, the driver prints "progress <segment> <its command bytes taken>" lines; at the end one line
// "result {...}" with the counts (JSON), or "error <text>" and exit status 1 on a timeout.
//
// Timing, as in the cocotb bench: the inputs for a cycle are set, the model settles with the
// clock low, the stream handshakes are sampled, then the rising edge is evaluated. A transfer
// happens at an edge when valid and ready were both high just before it.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "Vmolxbar_engine.h"
#include "verilated.h"

// The stream ports, as Verilator names them (it writes a double underscore as "___05F").
#define CMD_VALID cmd___05Fvalid
#define CMD_READY cmd___05Fready
#define CMD_PAYLOAD cmd___05Fpayload
#define RSP_VALID rsp___05Fvalid
#define RSP_READY rsp___05Fready
#define RSP_PAYLOAD rsp___05Fpayload

namespace {

// A beat payload as 32-bit words, least significant first: room for the widest beat
// (16 bytes and a 5-bit count).
constexpr int kWords = 8;
using Words = uint32_t[kWords];

// Port access whatever width Verilator chose for the port (8 to 64 bits, or wider).
template <typename T>
void put(T& port, const Words words) {
    port = static_cast<T>(words[0] | (static_cast<uint64_t>(words[1]) << 32));
}
template <std::size_t N>
void put(VlWide<N>& port, const Words words) {
    for (std::size_t i = 0; i < N; ++i) port[i] = words[i];
}
template <typename T>
void get(const T& port, Words words) {
    const uint64_t value = port;
    std::memset(words, 0, sizeof(Words));
    words[0] = static_cast<uint32_t>(value);
    words[1] = static_cast<uint32_t>(value >> 32);
}
template <std::size_t N>
void get(const VlWide<N>& port, Words words) {
    std::memset(words, 0, sizeof(Words));
    for (std::size_t i = 0; i < N; ++i) words[i] = port[i];
}

// splitmix64: the random draws of the idle cycles, back-pressure and reset timing.
struct Random {
    uint64_t state;
    uint64_t next() {
        uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
    uint64_t below(uint64_t n) { return next() % n; }
};

// A stall pattern (molxbar/sim/stalls.py): runs of 1 to 2*burst-1 cycles, each run stalled
// with probability p; burst 1 draws every cycle on its own.
struct Stalls {
    double p;
    uint64_t burst;
    Random* random;
    uint64_t left = 0;
    bool stalled = false;
    bool next() {
        if (p <= 0.0) return false;
        if (burst <= 1) return random->uniform() < p;
        if (left == 0) {
            left = 1 + random->below(2 * burst - 1);
            stalled = random->uniform() < p;
        }
        --left;
        return stalled;
    }
};

struct Options {
    int stream_bytes = 1;
    uint64_t seed = 0;
    double idle_in = 0.0;
    double stall_out = 0.0;
    uint64_t burst = 1;
    uint64_t max_cycles = 0;  // 0: 20,000 + 4,000 a command byte, as the cocotb bench
    std::string out;
    std::vector<std::pair<std::string, long long>> segments;  // file, reset_after (-1: none)
};

struct SegmentResult {
    uint64_t taken = 0;
    uint64_t cycles = 0;
    bool reset = false;
};

struct Counters {
    uint64_t cmd_stall_cycles = 0;
    uint64_t cmd_idle_cycles = 0;
    uint64_t rsp_backpressure_cycles = 0;
};

[[noreturn]] void fail(const std::string& text) {
    std::printf("error %s\n", text.c_str());
    std::fflush(stdout);
    std::exit(1);
}

Options parse(int argc, char** argv) {
    Options options;
    for (int k = 1; k < argc; ++k) {
        const std::string arg = argv[k];
        auto value = [&]() -> std::string {
            if (k + 1 >= argc) fail(arg + " needs a value");
            return argv[++k];
        };
        if (arg == "--stream-bytes") options.stream_bytes = std::stoi(value());
        else if (arg == "--seed") options.seed = std::stoull(value());
        else if (arg == "--idle-in") options.idle_in = std::stod(value());
        else if (arg == "--stall-out") options.stall_out = std::stod(value());
        else if (arg == "--burst") options.burst = std::stoull(value());
        else if (arg == "--max-cycles") options.max_cycles = std::stoull(value());
        else if (arg == "--out") options.out = value();
        else if (arg.rfind("--", 0) == 0) fail("unknown option " + arg);
        else {
            const auto at = arg.rfind('@');
            if (at == std::string::npos) options.segments.emplace_back(arg, -1);
            else options.segments.emplace_back(arg.substr(0, at), std::stoll(arg.substr(at + 1)));
        }
    }
    if (options.stream_bytes < 1 || options.stream_bytes > 16)
        fail("--stream-bytes must be in [1, 16]");
    if (options.out.empty()) fail("--out DIR is required");
    return options;
}

std::vector<uint8_t> read_file(const std::string& path) {
    std::ifstream file(path, std::ios::binary);
    if (!file) fail("cannot read " + path);
    return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

class Bench {
public:
    Bench(const Options& options, Vmolxbar_engine& top)
        : options_(options),
          top_(top),
          random_{options.seed},
          idle_{options.idle_in, 1, &random_},
          stall_{options.stall_out, options.burst, &random_} {
        count_bits_ = 0;
        for (int b = options.stream_bytes; b; b >>= 1) ++count_bits_;
    }

    Counters counters;

    void tick() {
        top_.clk = 0;
        top_.eval();
        top_.clk = 1;
        top_.eval();
    }

    void reset() {
        top_.CMD_VALID = 0;
        top_.RSP_READY = 0;
        top_.rst = 1;
        for (int k = 0; k < 3; ++k) tick();
        top_.rst = 0;
    }

    // One command stream on a freshly reset engine; returns once the engine is idle again
    // (or right after the mid-traffic reset that ends the segment).
    SegmentResult segment(const std::vector<uint8_t>& commands, long long reset_after,
                          std::vector<uint8_t>& responses, int index) {
        const int width = options_.stream_bytes;
        const uint64_t limit =
            options_.max_cycles ? options_.max_cycles : 20000 + 4000 * commands.size();
        reset();
        responses.clear();
        SegmentResult result;
        size_t next = 0;  // byte offset of the next beat to send
        bool driving = false, ready = false;
        int quiet = 0;
        long long countdown = -1;
        auto last_report = std::chrono::steady_clock::now();
        Words words;
        while (true) {
            top_.clk = 0;
            top_.eval();
            const bool cmd_ready = top_.CMD_READY;
            const bool rsp_valid = top_.RSP_VALID;
            const bool idle = top_.idle;
            if (rsp_valid && ready) {
                get(top_.RSP_PAYLOAD, words);
                take(words, responses);
            }
            top_.clk = 1;
            top_.eval();
            ++result.cycles;
            // the command source
            bool hold = false;
            if (driving) {
                if (cmd_ready) {
                    const size_t size = std::min<size_t>(width, commands.size() - next);
                    result.taken += size;
                    next += size;
                } else {
                    ++counters.cmd_stall_cycles;
                    hold = true;
                }
            }
            if (!hold) {
                if (next < commands.size()) {
                    if (idle_.next()) {
                        ++counters.cmd_idle_cycles;
                        top_.CMD_VALID = 0;
                        driving = false;
                    } else {
                        pack(commands, next, words);
                        put(top_.CMD_PAYLOAD, words);
                        top_.CMD_VALID = 1;
                        driving = true;
                    }
                } else if (driving) {
                    top_.CMD_VALID = 0;
                    driving = false;
                }
            }
            // the response sink
            if (rsp_valid && !ready) ++counters.rsp_backpressure_cycles;
            ready = !stall_.next();
            top_.RSP_READY = ready;
            // the end of the segment
            if (reset_after >= 0) {
                if (countdown < 0 && result.taken >= static_cast<uint64_t>(reset_after))
                    countdown = static_cast<long long>(random_.below(24));
                if (countdown == 0) {
                    result.reset = true;
                    return result;
                }
                if (countdown > 0) --countdown;
            } else if (next == commands.size() && !driving && !rsp_valid && idle) {
                if (++quiet >= 2) return result;
            } else {
                quiet = 0;
            }
            if (result.cycles >= limit) {
                fail("segment " + std::to_string(index) +
                     ": the engine did not finish within " + std::to_string(limit) +
                     " cycles (" + std::to_string(result.taken) + " of " +
                     std::to_string(commands.size()) + " command bytes taken, " +
                     std::to_string(responses.size()) + " response bytes)");
            }
            if ((result.cycles & 0xffff) == 0) {
                const auto now = std::chrono::steady_clock::now();
                if (now - last_report > std::chrono::milliseconds(250)) {
                    last_report = now;
                    std::printf("progress %d %llu\n", index,
                                static_cast<unsigned long long>(result.taken));
                    std::fflush(stdout);
                }
            }
        }
    }

private:
    // The beat that carries commands[start:start+B]: data bytes, then the count above them.
    void pack(const std::vector<uint8_t>& commands, size_t start, Words words) const {
        const int width = options_.stream_bytes;
        const int count = static_cast<int>(std::min<size_t>(width, commands.size() - start));
        std::memset(words, 0, sizeof(Words));
        for (int k = 0; k < count; ++k)
            words[k / 4] |= static_cast<uint32_t>(commands[start + k]) << (8 * (k % 4));
        const int shift = 8 * width;
        words[shift / 32] |= static_cast<uint32_t>(count) << (shift % 32);
    }

    // The valid bytes of a response beat (a count above B reads as B).
    void take(const Words words, std::vector<uint8_t>& responses) const {
        const int width = options_.stream_bytes;
        const int shift = 8 * width;
        int count = static_cast<int>((words[shift / 32] >> (shift % 32)) & ((1u << count_bits_) - 1));
        if (count > width) count = width;
        for (int k = 0; k < count; ++k)
            responses.push_back(static_cast<uint8_t>(words[k / 4] >> (8 * (k % 4))));
    }

    const Options& options_;
    Vmolxbar_engine& top_;
    Random random_;
    Stalls idle_;
    Stalls stall_;
    int count_bits_;
};

}  // namespace

int main(int argc, char** argv) {
    const Options options = parse(argc, argv);
    VerilatedContext context;
    Vmolxbar_engine top{&context};
    Bench bench(options, top);
    const auto start = std::chrono::steady_clock::now();
    std::vector<SegmentResult> results;
    std::vector<uint8_t> responses;
    for (size_t k = 0; k < options.segments.size(); ++k) {
        const auto& [path, reset_after] = options.segments[k];
        const std::vector<uint8_t> commands = read_file(path);
        results.push_back(bench.segment(commands, reset_after, responses, static_cast<int>(k)));
        std::printf("progress %zu %llu\n", k, static_cast<unsigned long long>(results.back().taken));
        const std::string out = options.out + "/responses" + std::to_string(k) + ".bin";
        std::ofstream file(out, std::ios::binary);
        file.write(reinterpret_cast<const char*>(responses.data()),
                   static_cast<std::streamsize>(responses.size()));
        if (!file) fail("cannot write " + out);
    }
    Words words;
    get(top.vmm_cycles, words);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("result {\"segments\": [");
    for (size_t k = 0; k < results.size(); ++k) {
        std::printf("%s{\"taken\": %llu, \"cycles\": %llu, \"reset\": %s}", k ? ", " : "",
                    static_cast<unsigned long long>(results[k].taken),
                    static_cast<unsigned long long>(results[k].cycles),
                    results[k].reset ? "true" : "false");
    }
    std::printf("], \"vmm_cycles\": %llu, \"cmd_stall_cycles\": %llu, \"cmd_idle_cycles\": %llu, "
                "\"rsp_backpressure_cycles\": %llu, \"seconds\": %.6f}\n",
                static_cast<unsigned long long>(words[0] | (static_cast<uint64_t>(words[1]) << 32)), static_cast<unsigned long long>(bench.counters.cmd_stall_cycles),
                static_cast<unsigned long long>(bench.counters.cmd_idle_cycles),
                static_cast<unsigned long long>(bench.counters.rsp_backpressure_cycles),
                seconds);
    top.final();
    return 0;
}
