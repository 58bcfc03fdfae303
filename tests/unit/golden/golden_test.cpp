// Golden vectors from an independent PyTorch implementation (tools/gen_golden.py, run on an
// NVIDIA GPU; tests/golden/README.md): every case and mode must match byte for byte, on both the
// scalar reference and the SIMD backend. The searches (mse, fp8 sweep, four-over-six) are exact
// too: generator and library implement the same sequential IEEE loss of docs/FORMATS.md.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "format/codec/e2m1.h"
#include "format/codec/e4m3.h"
#include "format/codec/hd.h"
#include "format/nvfp4.h"
#include "format/quantize.h"
#include "format/weight_view.h"
#include "io/safetensors.h"
#include "microscale/dtype.h"
#include "microscale/error.h"
#include "microscale/format.h"

namespace ms = microscale;
namespace fmt_ = microscale::format;
using nlohmann::json;

namespace {

std::filesystem::path golden_path(const char* file) { return std::filesystem::path(MICROSCALE_GOLDEN_DIR) / file; }

// One fixture file, opened once. Tensors are copied out (vector storage is suitably aligned;
// offsets inside a safetensors file need not be).
class Fixture {
public:
    explicit Fixture(const char* file) : file_(ms::io::SafetensorsFile::open(golden_path(file))) {}

    bool has(const std::string& name) const { return file_.find(name) != nullptr; }
    const ms::io::TensorInfo& info(const std::string& name) const {
        const ms::io::TensorInfo* t = file_.find(name);
        if (t == nullptr) throw std::runtime_error("golden fixture " + file_.path().string() + " lacks " + name);
        return *t;
    }
    std::vector<uint8_t> bytes(const std::string& name) const {
        const auto span = file_.bytes(info(name));
        return {span.begin(), span.end()};
    }
    template <class T>
    std::vector<T> values(const std::string& name) const {
        const auto b = bytes(name);
        if (b.size() % sizeof(T) != 0) throw std::runtime_error(name + ": size not a multiple of the element");
        std::vector<T> out(b.size() / sizeof(T));
        std::memcpy(out.data(), b.data(), b.size());
        return out;
    }
    float scalar_f32(const std::string& name) const {
        const auto v = values<float>(name);
        if (v.size() != 1) throw std::runtime_error(name + ": not a scalar");
        return v[0];
    }
    json meta_json(const std::string& key) const {
        const auto it = file_.metadata().find(key);
        if (it == file_.metadata().end()) throw std::runtime_error("golden metadata lacks " + key);
        return json::parse(it->second);
    }
    std::string meta(const std::string& key) const {
        const auto it = file_.metadata().find(key);
        return it == file_.metadata().end() ? std::string() : it->second;
    }

private:
    ms::io::SafetensorsFile file_;
};

const Fixture& nvfp4_fixture() {
    static const Fixture f("golden_nvfp4.safetensors");
    return f;
}
const Fixture& fp8_mx_fixture() {
    static const Fixture f("golden_fp8_mx.safetensors");
    return f;
}
const Fixture& codecs_fixture() {
    static const Fixture f("golden_codecs.safetensors");
    return f;
}

ms::DType dtype_of(const std::string& torch_name) {
    if (torch_name == "bfloat16") return ms::DType::BF16;
    if (torch_name == "float16") return ms::DType::F16;
    if (torch_name == "float32") return ms::DType::F32;
    throw std::runtime_error("unknown dtype in golden metadata: " + torch_name);
}

struct Case {
    std::string name;
    ms::DType dtype;
    int64_t rows, cols;
    std::vector<std::string> modes;
    bool fused = false;
};

std::vector<Case> cases_of(const Fixture& f) {
    std::vector<Case> out;
    for (const auto& c : f.meta_json("cases")) {
        Case k;
        k.name = c.at("name").get<std::string>();
        k.dtype = dtype_of(c.at("dtype").get<std::string>());
        k.rows = c.at("rows").get<int64_t>();
        k.cols = c.at("cols").get<int64_t>();
        k.modes = c.at("modes").get<std::vector<std::string>>();
        k.fused = c.contains("global_amax");
        out.push_back(std::move(k));
    }
    return out;
}

bool has_mode(const Case& c, const std::string& mode) {
    for (const auto& m : c.modes)
        if (m == mode) return true;
    return false;
}

struct Input {
    std::vector<uint8_t> storage;
    fmt_::WeightView view;
};

Input load_input(const Fixture& f, const Case& c) {
    Input in;
    const std::string name = c.name + ".input";
    const auto& info = f.info(name);
    EXPECT_EQ(info.dtype, c.dtype) << name;
    EXPECT_EQ(info.shape, (std::vector<int64_t>{c.rows, c.cols})) << name;
    in.storage = f.bytes(name);
    in.view = fmt_::WeightView{in.storage.data(), c.dtype, c.rows, c.cols, c.name};
    return in;
}

const char* backend_name(fmt_::Backend b) { return b == fmt_::Backend::REF ? "REF" : "SIMD"; }

std::string hex8(uint8_t v) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "0x%02X", v);
    return buf;
}
std::string f32_desc(float v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.9g (0x%08X)", static_cast<double>(v), ms::codec::float_bits(v));
    return buf;
}

// Counts of one comparison and the description of its first mismatch.
struct Diff {
    size_t mismatches = 0;
    std::string first;
};

// Element data (packed nibbles or 1-byte codes). `elems_per_byte` is 2 for packed E2M1.
Diff compare_data(const std::vector<uint8_t>& got, const std::vector<uint8_t>& want, const Input& in,
                  int elems_per_byte, int block, const std::vector<uint8_t>& got_scales,
                  const std::vector<uint8_t>& want_scales) {
    Diff d;
    if (got.size() != want.size()) {
        d.mismatches = std::max(got.size(), want.size());
        d.first = "size " + std::to_string(got.size()) + " != golden " + std::to_string(want.size());
        return d;
    }
    const int64_t row_bytes = in.view.cols / elems_per_byte;
    for (size_t i = 0; i < got.size(); ++i) {
        if (got[i] == want[i]) continue;
        if (d.mismatches++ == 0) {
            const int64_t r = static_cast<int64_t>(i) / row_bytes;
            const int64_t c0 = (static_cast<int64_t>(i) % row_bytes) * elems_per_byte;
            const int64_t b = c0 / block;
            std::ostringstream os;
            os << "row " << r << " col " << c0 << " (block " << b << "): got " << hex8(got[i]) << " golden "
               << hex8(want[i]) << "; w =";
            for (int e = 0; e < elems_per_byte; ++e) os << " " << f32_desc(in.view.at(r, c0 + e));
            const size_t si = static_cast<size_t>(r * (in.view.cols / block) + b);
            if (si < got_scales.size() && si < want_scales.size())
                os << "; block scale got " << hex8(got_scales[si]) << " golden " << hex8(want_scales[si]);
            d.first = os.str();
        }
    }
    return d;
}

Diff compare_scales(const std::vector<uint8_t>& got, const std::vector<uint8_t>& want, const Input& in, int block) {
    Diff d;
    if (got.size() != want.size()) {
        d.mismatches = std::max(got.size(), want.size());
        d.first = "size " + std::to_string(got.size()) + " != golden " + std::to_string(want.size());
        return d;
    }
    const int64_t nb = in.view.cols / block;
    for (size_t i = 0; i < got.size(); ++i) {
        if (got[i] == want[i]) continue;
        if (d.mismatches++ == 0) {
            const int64_t r = static_cast<int64_t>(i) / nb, b = static_cast<int64_t>(i) % nb;
            float amax = 0.0f;
            for (int64_t c = b * block; c < (b + 1) * block; ++c) amax = std::max(amax, std::fabs(in.view.at(r, c)));
            std::ostringstream os;
            os << "row " << r << " block " << b << ": got " << hex8(got[i]) << " ("
               << ms::codec::e4m3_to_float(got[i]) << " as e4m3) golden " << hex8(want[i]) << " ("
               << ms::codec::e4m3_to_float(want[i]) << " as e4m3); block amax " << f32_desc(amax);
            d.first = os.str();
        }
    }
    return d;
}

// ---------------------------------------------------------------------------------------------
// Modes
// ---------------------------------------------------------------------------------------------

fmt_::Nvfp4Config nvfp4_config(const std::string& mode, const json& params) {
    fmt_::Nvfp4Config cfg;
    const std::string search = params.at("search").get<std::string>();
    if (search == "dynamic_max") cfg.search = fmt_::Nvfp4Search::DYNAMIC_MAX;
    else if (search == "static_max") cfg.search = fmt_::Nvfp4Search::STATIC_MAX;
    else if (search == "mse") cfg.search = fmt_::Nvfp4Search::MSE;
    else if (search == "fp8_sweep") cfg.search = fmt_::Nvfp4Search::FP8_SWEEP;
    else throw std::runtime_error("unknown search " + search + " for " + mode);
    cfg.four_over_six = params.value("four_over_six", false);
    if (cfg.four_over_six != (params.at("m").get<double>() == 256.0))
        throw std::runtime_error(mode + ": m does not match four_over_six");
    if (params.contains("start")) {
        cfg.mse.start = params.at("start").get<double>();
        cfg.mse.stop = params.at("stop").get<double>();
        cfg.mse.step = params.at("step").get<double>();
    }
    if (mode == "nvfp4_four_over_six") {
        // The preset users get must be exactly what the generator ran.
        const fmt_::Nvfp4Config p = fmt_::Nvfp4Config::four_over_six_preset();
        EXPECT_EQ(p.search, cfg.search);
        EXPECT_EQ(p.four_over_six, cfg.four_over_six);
        EXPECT_EQ(p.mse.start, cfg.mse.start);
        EXPECT_EQ(p.mse.stop, cfg.mse.stop);
        EXPECT_EQ(p.mse.step, cfg.mse.step);
        return p;
    }
    return cfg;
}

struct ModeParam {
    std::string mode;
    fmt_::Backend backend;
};

std::vector<ModeParam> all_mode_params() {
    std::vector<ModeParam> out;
    for (const char* m : {"nvfp4_dynamic", "nvfp4_static_max", "nvfp4_mse", "nvfp4_mse_custom", "nvfp4_fp8_sweep",
                          "nvfp4_four_over_six", "nvfp4_static_max_m256", "fp8", "mxfp8", "mxfp4"})
        for (fmt_::Backend b : {fmt_::Backend::REF, fmt_::Backend::SIMD}) out.push_back({m, b});
    return out;
}

class GoldenFormats : public ::testing::TestWithParam<ModeParam> {};

TEST_P(GoldenFormats, MatchesTorchByteForByte) {
    const std::string mode = GetParam().mode;
    const fmt_::Backend backend = GetParam().backend;
    const bool is_nvfp4 = mode.rfind("nvfp4_", 0) == 0;
    const Fixture& f = is_nvfp4 ? nvfp4_fixture() : fp8_mx_fixture();
    const json nvfp4_modes = is_nvfp4 ? f.meta_json("nvfp4_modes") : json::object();

    size_t n_cases = 0, n_pass = 0, data_mm = 0, scale_mm = 0, global_mm = 0, deq_mm = 0, deq_zero_sign = 0;
    for (const Case& c : cases_of(f)) {
        if (!has_mode(c, mode)) continue;
        SCOPED_TRACE(c.name + "." + mode + " " + backend_name(backend));
        ++n_cases;
        const Input in = load_input(f, c);
        const std::string key = c.name + "." + mode;

        fmt_::WeightQuantSpec spec;
        int block = 0, elems_per_byte = 1;
        if (is_nvfp4) {
            spec.format = ms::Format::NVFP4;
            spec.nvfp4 = nvfp4_config(mode, nvfp4_modes.at(mode));
            if (c.fused) spec.nvfp4.global_amax = f.scalar_f32(c.name + ".global_amax");
            block = 16;
            elems_per_byte = 2;
        } else if (mode == "fp8") {
            spec.format = ms::Format::FP8;
        } else if (mode == "mxfp8") {
            spec.format = ms::Format::MXFP8;
            block = 32;
        } else {
            spec.format = ms::Format::MXFP4;
            block = 32;
            elems_per_byte = 2;
        }

        fmt_::QuantizedWeight q;
        try {
            q = fmt_::quantize_weight(in.view, spec, backend, nullptr);
        } catch (const std::exception& e) {
            ADD_FAILURE() << key << ": quantize_weight threw: " << e.what();
            continue;
        }

        const std::vector<uint8_t> want_data = f.bytes(key + ".weight");
        std::vector<uint8_t> want_scales;
        float want_global = 0.0f;
        bool check_global = true;
        if (is_nvfp4) {
            want_scales = f.bytes(key + ".weight_scale");
            want_global = f.scalar_f32(key + ".weight_scale_2");
        } else if (mode == "fp8") {
            want_global = f.scalar_f32(key + ".weight_scale");
        } else {
            want_scales = f.bytes(key + ".weight_scale");
            check_global = false;  // MX: no per-tensor scale
        }

        bool ok = true;
        const Diff dd = compare_data(q.data, want_data, in, elems_per_byte, block ? block : 1, q.block_scales,
                                     want_scales);
        if (dd.mismatches) {
            ok = false;
            data_mm += dd.mismatches;
            ADD_FAILURE() << key << " " << backend_name(backend) << ": " << dd.mismatches << " of " << want_data.size()
                          << " weight bytes differ; first at " << dd.first;
        }
        if (block) {
            const Diff ds = compare_scales(q.block_scales, want_scales, in, block);
            if (ds.mismatches) {
                ok = false;
                scale_mm += ds.mismatches;
                ADD_FAILURE() << key << " " << backend_name(backend) << ": " << ds.mismatches << " of "
                              << want_scales.size() << " block scales differ; first at " << ds.first;
            }
        } else {
            EXPECT_TRUE(q.block_scales.empty()) << key;
        }
        if (check_global && std::memcmp(&q.global_scale, &want_global, sizeof(float)) != 0) {
            ok = false;
            ++global_mm;
            ADD_FAILURE() << key << " " << backend_name(backend) << ": per-tensor scale " << f32_desc(q.global_scale)
                          << " != golden " << f32_desc(want_global);
        }
        if (mode == "nvfp4_dynamic") {
            // Decode of the golden bytes: w_hat = RN(E2M1[nibble] * RN(float(code) * wsf2)), bit for
            // bit. Nibble 0x8 decodes to +0.0 as in ModelOpt's e2m1_values table
            // (docs/FORMATS.md), so every bit must match, the sign of zero included.
            fmt_::QuantizedWeight g;
            g.format = ms::Format::NVFP4;
            g.rows = c.rows;
            g.cols = c.cols;
            g.data = want_data;
            g.block_scales = want_scales;
            g.global_scale = want_global;
            const std::vector<float> got = fmt_::dequantize_weight(g);
            const std::vector<float> want = f.values<float>(key + ".dequant");
            ASSERT_EQ(got.size(), want.size()) << key;
            size_t mm = 0, zs = 0;
            std::string first;
            for (size_t i = 0; i < got.size(); ++i) {
                if (ms::codec::float_bits(got[i]) == ms::codec::float_bits(want[i])) continue;
                if (got[i] == 0.0f && want[i] == 0.0f) ++zs;
                if (mm++ == 0)
                    first = "element " + std::to_string(i) + ": got " + f32_desc(got[i]) + " golden " + f32_desc(want[i]);
            }
            deq_zero_sign += zs;
            if (mm) {
                ok = false;
                deq_mm += mm;
                ADD_FAILURE() << key << ": " << mm << " dequantized values differ; first " << first;
            }
        }
        if (ok) ++n_pass;
    }
    EXPECT_GT(n_cases, 0u) << "no golden case has mode " << mode;
    std::printf("[golden] %-22s %-4s cases %zu/%zu match; mismatching: weight bytes %zu, block scales %zu, "
                "per-tensor scales %zu%s\n",
                mode.c_str(), backend_name(backend), n_pass, n_cases, data_mm, scale_mm, global_mm,
                mode == "nvfp4_dynamic"
                    ? (", dequant values " + std::to_string(deq_mm) + " (+-0 only: " + std::to_string(deq_zero_sign) + ")")
                          .c_str()
                    : "");
}

INSTANTIATE_TEST_SUITE_P(Golden, GoldenFormats, ::testing::ValuesIn(all_mode_params()),
                         [](const ::testing::TestParamInfo<ModeParam>& p) {
                             return p.param.mode + "_" + backend_name(p.param.backend);
                         });

// ---------------------------------------------------------------------------------------------
// Codec tables
// ---------------------------------------------------------------------------------------------

TEST(GoldenCodecs, E4m3CastMatchesTorch) {
    const Fixture& f = codecs_fixture();
    const auto in = f.values<float>("e4m3_cast.input");
    const auto want = f.bytes("e4m3_cast.output");
    ASSERT_EQ(in.size(), want.size());
    size_t mm = 0;
    for (size_t i = 0; i < in.size(); ++i) {
        const uint8_t got = ms::codec::e4m3_from_float(in[i]);
        if (got != want[i] && mm++ < 10)
            ADD_FAILURE() << "e4m3_from_float(" << f32_desc(in[i]) << ") = " << hex8(got) << ", torch "
                          << hex8(want[i]);
    }
    EXPECT_EQ(mm, 0u) << "of " << in.size();
    std::printf("[golden] e4m3 cast: %zu values, %zu mismatches\n", in.size(), mm);
}

TEST(GoldenCodecs, E4m3DecodeMatchesTorch) {
    const auto want = codecs_fixture().values<float>("e4m3_decode.output");
    ASSERT_EQ(want.size(), 256u);
    for (int c = 0; c < 256; ++c) {
        const float got = ms::codec::e4m3_to_float(static_cast<uint8_t>(c));
        if (std::isnan(want[c])) {
            EXPECT_TRUE(std::isnan(got)) << "code " << hex8(static_cast<uint8_t>(c));
        } else {
            EXPECT_EQ(ms::codec::float_bits(got), ms::codec::float_bits(want[c]))
                << "code " << hex8(static_cast<uint8_t>(c)) << ": " << f32_desc(got) << " vs torch " << f32_desc(want[c]);
        }
    }
}

TEST(GoldenCodecs, E2m1CastMatchesTorch) {
    const Fixture& f = codecs_fixture();
    const auto in = f.values<float>("e2m1_cast.input");
    const auto nv = f.bytes("e2m1_cast.nvfp4");
    const auto mx = f.bytes("e2m1_cast.mxfp4");
    ASSERT_EQ(in.size(), nv.size());
    ASSERT_EQ(in.size(), mx.size());
    size_t mm_nv = 0, mm_mx = 0;
    for (size_t i = 0; i < in.size(); ++i) {
        const uint8_t a = ms::codec::e2m1_from_float(in[i]);
        const uint8_t b = ms::codec::e2m1_from_float_mx(in[i]);
        if (a != nv[i] && mm_nv++ < 10)
            ADD_FAILURE() << "e2m1_from_float(" << f32_desc(in[i]) << ") = " << hex8(a) << ", torch " << hex8(nv[i]);
        if (b != mx[i] && mm_mx++ < 10)
            ADD_FAILURE() << "e2m1_from_float_mx(" << f32_desc(in[i]) << ") = " << hex8(b) << ", torch " << hex8(mx[i]);
    }
    EXPECT_EQ(mm_nv, 0u);
    EXPECT_EQ(mm_mx, 0u);
}

TEST(GoldenCodecs, MseMultipliersMatchCudaLinspace) {
    const Fixture& f = codecs_fixture();
    const json lin = f.meta_json("linspace");
    ASSERT_FALSE(lin.empty());
    for (const auto& e : lin) {
        const int i = e.at("index").get<int>();
        const auto params = f.values<double>("linspace." + std::to_string(i) + ".params");
        ASSERT_EQ(params.size(), 3u);
        const auto want = f.values<float>("linspace." + std::to_string(i) + ".values");
        const fmt_::MseSweep sweep{params[0], params[1], params[2]};
        SCOPED_TRACE("linspace(" + std::to_string(params[0]) + ", " + std::to_string(params[1]) + ", step " +
                     std::to_string(params[2]) + ")");
        const std::vector<float> got = fmt_::mse_multipliers(sweep);
        ASSERT_EQ(got.size(), want.size());
        for (size_t k = 0; k < got.size(); ++k)
            EXPECT_EQ(ms::codec::float_bits(got[k]), ms::codec::float_bits(want[k]))
                << "k " << k << ": " << f32_desc(got[k]) << " vs torch " << f32_desc(want[k]);
    }
}

// What the generator recorded about ModelOpt-style (tree-summed, torch.sum) losses: informational.
TEST(GoldenCodecs, FixtureProvenance) {
    const Fixture& f = nvfp4_fixture();
    EXPECT_FALSE(f.meta("torch").empty());
    std::printf("[golden] fixtures from torch %s, CUDA %s on %s (%s)\n", f.meta("torch").c_str(),
                f.meta("cuda").c_str(), f.meta("device").c_str(), f.meta("generated").c_str());
    std::printf("[golden] tree-sum loss would choose a different code on: %s\n",
                f.meta("tree_sum_disagreements").c_str());
    EXPECT_EQ(f.meta("cuda").empty() || f.meta("device") == "cpu", false) << "fixtures must come from a GPU run";
}

}  // namespace
