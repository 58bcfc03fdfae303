#include "export/verify.h"

#include <fmt/core.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <unordered_map>

#include "export/code_scan.h"
#include "export/inspect.h"
#include "io/checkpoint.h"
#include "microscale/dtype.h"
#include "microscale/error.h"
#include "microscale/format.h"
#include "recipe/glob.h"

namespace microscale::exporter {

using nlohmann::json;

namespace {

constexpr size_t kMaxListedProblems = 20;

// Algorithms vLLM's ModelOpt loader accepts (ecosystem.md §6.1).
const std::set<std::string> kVllmQuantAlgos = {"FP8", "FP8_PER_CHANNEL_PER_TOKEN", "FP8_PB_WO", "NVFP4",
                                               "W4A16_NVFP4", "MXFP8", "MIXED_PRECISION"};
const std::set<std::string> kVllmKvAlgos = {"FP8", "NVFP4"};

struct Module {
    std::string name;
    std::map<TensorRole, const io::TensorRef*> roles;
    std::vector<const io::TensorRef*> all;

    const io::TensorRef* get(TensorRole r) const {
        const auto it = roles.find(r);
        return it == roles.end() ? nullptr : it->second;
    }
    const io::TensorRef* weight() const {
        const io::TensorRef* p = get(TensorRole::WEIGHT_PACKED);
        return p ? p : get(TensorRole::WEIGHT);
    }
    // Any tensor that only a quantized layer has.
    bool quantized() const {
        for (TensorRole r : {TensorRole::WEIGHT_PACKED, TensorRole::WEIGHT_SCALE, TensorRole::WEIGHT_SCALE_2,
                             TensorRole::WEIGHT_GLOBAL_SCALE, TensorRole::INPUT_SCALE, TensorRole::INPUT_GLOBAL_SCALE})
            if (get(r)) return true;
        const io::TensorRef* w = get(TensorRole::WEIGHT);
        return w && (w->info->dtype == DType::U8 || w->info->dtype == DType::F8_E4M3);
    }
    // A weight matrix (2-D or more, float): what a loader would turn into a linear/embedding.
    bool unquantized_matrix() const {
        const io::TensorRef* w = get(TensorRole::WEIGHT);
        return !quantized() && w && dtype_is_float(w->info->dtype) && w->info->shape.size() >= 2;
    }
};

std::optional<Format> format_from_algo(std::string_view algo) {
    for (const FormatInfo& f : format_table())
        if (!f.quant_algo.empty() && f.quant_algo == algo) return f.id;
    return std::nullopt;
}

bool is_nvfp4(Format f) { return f == Format::NVFP4 || f == Format::W4A16_NVFP4; }

std::string shape_str(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

class Verifier {
public:
    Verifier(const std::filesystem::path& dir, VerifyReport& r, core::ThreadPool* pool)
        : dir_(dir), r_(r), ck_(io::Checkpoint::open(dir)), pool_(pool) {}

    void run();

private:
    void problem(std::string s) { r_.problems.push_back(std::move(s)); }
    void warn(std::string s) { r_.warnings.push_back(std::move(s)); }

    void scan_modules();
    void check_modelopt_json(const json* qc);
    void check_modelopt_layers();
    void check_ct_json(const json& qc);
    void check_ct_layers();
    void check_layer(const Module& m, Format f, bool ct);
    void check_fused_groups(bool ct);
    void check_kv_scales();

    // Tensor helpers; all report problems naming the tensor and return false on failure.
    const io::TensorRef* require(const Module& m, TensorRole role, const char* suffix, const char* what);
    bool expect_dtype(const io::TensorRef& t, std::initializer_list<DType> ok);
    bool expect_shape(const io::TensorRef& t, const std::vector<int64_t>& shape);
    std::optional<float> positive_scalar(const io::TensorRef& t, bool allow_1elem);
    void check_block_codes(const io::TensorRef& t, ScaleType type, int64_t blocks_per_row);
    void check_fp8_elements(const io::TensorRef& t);
    void run_scans();

    const std::filesystem::path& dir_;
    VerifyReport& r_;
    io::Checkpoint ck_;
    core::ThreadPool* pool_;
    struct Scan {
        const io::TensorRef* tensor;
        CodeKind kind;
        int64_t blocks_per_row;  // for "row r block b" in messages
    };
    std::vector<Scan> scans_;  // queued by check_block_codes / check_fp8_elements
    std::vector<Module> modules_;
    std::unordered_map<std::string, size_t> index_;
    std::vector<std::string> exclude_;               // fnmatch patterns (ModelOpt) / names (CT)
    std::map<std::string, Format> layer_format_;     // every quantized layer checked, with its format
    std::optional<Format> single_;                   // single-format export
    std::vector<std::pair<std::string, Format>> listed_;  // MIXED_PRECISION quantized_layers
    struct CtGroup {
        std::string name;
        std::vector<std::string> targets;  // exact names, "re:" regexes or class names
        json weights, inputs;
    };
    std::vector<CtGroup> ct_groups_;  // compressed-tensors config_groups
    void check_ct_group(const Module& m, Format f);
};

// ---------------------------------------------------------------------------------------------
// tensor-level checks

const io::TensorRef* Verifier::require(const Module& m, TensorRole role, const char* suffix, const char* what) {
    const io::TensorRef* t = m.get(role);
    if (!t) problem(fmt::format("{} ({}): missing tensor {}.{}", m.name, what, m.name, suffix));
    return t;
}

bool Verifier::expect_dtype(const io::TensorRef& t, std::initializer_list<DType> ok) {
    for (DType d : ok)
        if (t.info->dtype == d) return true;
    std::string names;
    for (DType d : ok) names += (names.empty() ? "" : " or ") + std::string(dtype_name(d));
    problem(fmt::format("{}: dtype {}, expected {}", t.info->name, dtype_name(t.info->dtype), names));
    return false;
}

bool Verifier::expect_shape(const io::TensorRef& t, const std::vector<int64_t>& shape) {
    if (t.info->shape == shape) return true;
    problem(fmt::format("{}: shape {}, expected {}", t.info->name, shape_str(t.info->shape), shape_str(shape)));
    return false;
}

// A per-tensor fp32 scale: F32 0-dim (ModelOpt) or [1] (compressed-tensors), finite and > 0.
std::optional<float> Verifier::positive_scalar(const io::TensorRef& t, bool allow_1elem) {
    if (!expect_dtype(t, {DType::F32})) return std::nullopt;
    const bool ok_shape = t.info->shape.empty() || (allow_1elem && t.info->shape == std::vector<int64_t>{1});
    if (!ok_shape) {
        problem(fmt::format("{}: shape {}, expected [] (a scalar){}", t.info->name, shape_str(t.info->shape),
                            allow_1elem ? " or [1]" : ""));
        return std::nullopt;
    }
    const auto bytes = ck_.bytes(t);
    if (bytes.size() != 4) {
        problem(fmt::format("{}: {} bytes, expected 4", t.info->name, bytes.size()));
        return std::nullopt;
    }
    float v;
    std::memcpy(&v, bytes.data(), 4);
    if (!std::isfinite(v) || !(v > 0.0f)) {
        problem(fmt::format("{}: per-tensor scale {} is not finite and > 0", t.info->name, v));
        return std::nullopt;
    }
    return v;
}

// The byte scans are queued and run together over the pool at the end (run_scans).
void Verifier::check_block_codes(const io::TensorRef& t, ScaleType type, int64_t blocks_per_row) {
    scans_.push_back({&t, type == ScaleType::E4M3 ? CodeKind::E4M3_SCALE : CodeKind::E8M0_SCALE, blocks_per_row});
}

void Verifier::check_fp8_elements(const io::TensorRef& t) { scans_.push_back({&t, CodeKind::E4M3_ELEMENT, 0}); }

void Verifier::run_scans() {
    std::vector<CodeScanJob> jobs;
    for (const Scan& s : scans_) jobs.push_back({ck_.bytes(*s.tensor), s.kind});
    const std::vector<CodeCounts> counts = scan_codes(jobs, pool_);
    for (size_t j = 0; j < scans_.size(); ++j) {
        const io::TensorRef& t = *scans_[j].tensor;
        const CodeCounts& c = counts[j];
        const auto bytes = jobs[j].bytes;
        if (scans_[j].kind == CodeKind::E4M3_ELEMENT) {
            if (c.nan)
                problem(fmt::format("{}: {} NaN E4M3 weight code(s) (first at element {})", t.info->name, c.nan, c.first_nan));
        } else {
            const auto at = [&](size_t i) {
                const int64_t bpr = scans_[j].blocks_per_row > 0 ? scans_[j].blocks_per_row : 1;
                return fmt::format("row {} block {}: 0x{:02X}", int64_t(i) / bpr, int64_t(i) % bpr, bytes[i]);
            };
            const char* kind = scans_[j].kind == CodeKind::E4M3_SCALE ? "E4M3" : "E8M0";
            if (c.nan) problem(fmt::format("{}: {} NaN {} block scale code(s) (first at {})", t.info->name, c.nan, kind, at(c.first_nan)));
            if (c.zero) problem(fmt::format("{}: {} zero block scale code(s) (first at {})", t.info->name, c.zero, at(c.first_zero)));
            if (c.neg) problem(fmt::format("{}: {} negative block scale code(s) (first at {})", t.info->name, c.neg, at(c.first_neg)));
        }
        t.file->release(*t.info);
    }
    scans_.clear();
}

// ---------------------------------------------------------------------------------------------
// one quantized layer against its format (ModelOpt §2-3, compressed-tensors §1.6)

void Verifier::check_layer(const Module& m, Format f, bool ct) {
    const FormatInfo& info = format_info(f);
    const char* fname = info.name.data();
    layer_format_[m.name] = f;
    ++r_.format_counts[std::string(info.name)];
    for (const io::TensorRef* t : m.all) r_.quantized_bytes += t->info->nbytes();

    if (f == Format::BF16) {
        problem(fmt::format("{}: listed as quantized with quant_algo for bf16", m.name));
        return;
    }
    const bool packed4 = info.elem_bits == 4;
    const bool use_packed_name = ct && packed4;
    const io::TensorRef* w = use_packed_name ? require(m, TensorRole::WEIGHT_PACKED, "weight_packed", fname)
                                             : require(m, TensorRole::WEIGHT, "weight", fname);
    if (use_packed_name && m.get(TensorRole::WEIGHT))
        problem(fmt::format("{}: compressed-tensors layer has both weight and weight_packed", m.name));
    if (!ct && m.get(TensorRole::WEIGHT_PACKED))
        problem(fmt::format("{}.weight_packed: a compressed-tensors name in a ModelOpt export", m.name));
    const io::TensorRef* ws = require(m, TensorRole::WEIGHT_SCALE, "weight_scale", fname);

    int64_t out = -1, in = -1;
    if (w && expect_dtype(*w, {packed4 ? DType::U8 : DType::F8_E4M3})) {
        if (w->info->shape.size() != 2) {
            problem(fmt::format("{}: shape {}, expected 2-D [out, in{}]", w->info->name, shape_str(w->info->shape),
                                packed4 ? "/2" : ""));
        } else {
            out = w->info->shape[0];
            in = w->info->shape[1] * (packed4 ? 2 : 1);
        }
    }
    if (out >= 0 && info.block_elems > 0 && in % info.block_elems != 0) {
        problem(fmt::format("{}: {} input features are not a multiple of the {} block size {}", w->info->name, in,
                            info.name, info.block_elems));
        out = -1;
    }
    if (!packed4 && w && w->info->dtype == DType::F8_E4M3) check_fp8_elements(*w);

    // Block or per-tensor weight scale.
    bool scale_ok = false;
    if (ws && info.block_scale != ScaleType::NONE) {
        const bool dt_ok = info.block_scale == ScaleType::E4M3 ? expect_dtype(*ws, {DType::F8_E4M3})
                                                               : expect_dtype(*ws, {DType::U8, DType::F8_E8M0});
        if (dt_ok && out >= 0) {
            scale_ok = expect_shape(*ws, {out, in / info.block_elems});
            if (scale_ok) check_block_codes(*ws, info.block_scale, in / info.block_elems);
        }
    } else if (ws) {
        // FP8 per-tensor (ModelOpt: 0-dim). compressed-tensors may store [1] or per channel [out, 1].
        if (ct && ws->info->shape.size() == 2 && expect_dtype(*ws, {DType::F32})) {
            const auto bytes = ck_.bytes(*ws);
            for (size_t i = 0; i + 4 <= bytes.size(); i += 4) {
                float v;
                std::memcpy(&v, bytes.data() + i, 4);
                if (!std::isfinite(v) || !(v > 0.0f)) {
                    problem(fmt::format("{}: channel {} scale {} is not finite and > 0", ws->info->name, i / 4, v));
                    break;
                }
            }
        } else {
            scale_ok = positive_scalar(*ws, ct).has_value();
        }
    }

    // Per-tensor global scale of NVFP4.
    const io::TensorRef* ws2 = nullptr;
    if (is_nvfp4(f)) {
        ws2 = ct ? require(m, TensorRole::WEIGHT_GLOBAL_SCALE, "weight_global_scale", fname)
                 : require(m, TensorRole::WEIGHT_SCALE_2, "weight_scale_2", fname);
        if (ws2) positive_scalar(*ws2, ct);
    }
    if (!is_nvfp4(f) && (m.get(TensorRole::WEIGHT_SCALE_2) || m.get(TensorRole::WEIGHT_GLOBAL_SCALE)))
        problem(fmt::format("{}: a global weight scale tensor in a {} layer", m.name, info.name));
    if (!ct && m.get(TensorRole::WEIGHT_GLOBAL_SCALE))
        problem(fmt::format("{}.weight_global_scale: a compressed-tensors name in a ModelOpt export", m.name));

    // Activation scale: required for static W4A4 / W8A8 (a missing one loads as 0 -> inf -> NaN in
    // vLLM, ecosystem §6.3); compressed-tensors keeps it optional (dynamic activations).
    // (compressed-tensors FP8 keeps the name input_scale and its value: only NVFP4 inverts.)
    const bool ct_global = ct && is_nvfp4(f);
    const TensorRole in_role = ct_global ? TensorRole::INPUT_GLOBAL_SCALE : TensorRole::INPUT_SCALE;
    const char* in_name = ct_global ? "input_global_scale" : "input_scale";
    const io::TensorRef* is = m.get(in_role);
    if (!is && !ct && (f == Format::NVFP4 || f == Format::FP8))
        problem(fmt::format("{} ({}): missing tensor {}.{}", m.name, fname, m.name, in_name));
    if (is) {
        if (!info.quantizes_activations && !ct)
            warn(fmt::format("{}.{}: present on a {} (weight-only) layer; loaders ignore it", m.name, in_name, info.name));
        positive_scalar(*is, ct);
    }
    if (ct && m.get(TensorRole::INPUT_SCALE) && packed4)
        problem(fmt::format("{}.input_scale: a ModelOpt name in a compressed-tensors NVFP4 layer", m.name));

    // Byte count against the format table: data + block scales + per-tensor weight scale.
    if (w && ws && out >= 0 && scale_ok && (ws2 || !is_nvfp4(f))) {
        uint64_t stored = w->info->nbytes() + ws->info->nbytes();
        if (ws2) stored += ws2->info->nbytes();
        const uint64_t expected = format_storage_bytes(f, uint64_t(out), uint64_t(in));
        if (stored != expected)
            problem(fmt::format("{}: {} bytes of weight tensors, the format table says {} for {} [{}, {}]", m.name,
                                stored, expected, info.name, out, in));
    }
    for (const io::TensorRef* t : m.all) {
        const TensorName tn = split_tensor_name(t->info->name);
        if (tn.role == TensorRole::OTHER && !t->info->name.ends_with(".bias"))
            warn(fmt::format("{}: unexpected tensor in quantized layer {}", t->info->name, m.name));
    }
}

// ---------------------------------------------------------------------------------------------

void Verifier::scan_modules() {
    for (const io::TensorRef& t : ck_.tensors()) {
        r_.total_bytes += t.info->nbytes();
        const TensorName tn = split_tensor_name(t.info->name);
        auto [it, fresh] = index_.try_emplace(tn.module, modules_.size());
        if (fresh) modules_.push_back({tn.module, {}, {}});
        Module& m = modules_[it->second];
        m.all.push_back(&t);
        if (tn.role != TensorRole::OTHER) m.roles[tn.role] = &t;
        // Start reading what the checks will read (scale codes, FP8 weights, scalars) all at once:
        // a file written with O_DIRECT comes back from the disk, and one deep queue of reads beats
        // faulting pages in one tensor at a time. Packed 4-bit data and float copies are not read.
        const bool packed = (tn.role == TensorRole::WEIGHT || tn.role == TensorRole::WEIGHT_PACKED) &&
                            t.info->dtype == DType::U8;
        const bool float_copy = dtype_is_float(t.info->dtype) && t.info->dtype != DType::F8_E4M3 &&
                                t.info->nbytes() > 64;
        if (!packed && !float_copy) t.file->prefetch(*t.info);
    }
    r_.tensor_count = ck_.tensors().size();
}

void Verifier::check_modelopt_json(const json* qc) {
    const auto hf = read_json_file(dir_ / "hf_quant_config.json");
    if (!hf) {
        problem("hf_quant_config.json is missing (vLLM and TensorRT-LLM read it)");
        return;
    }
    if (!hf->is_object() || !hf->contains("quantization") || !(*hf)["quantization"].is_object()) {
        problem("hf_quant_config.json: no \"quantization\" object");
        return;
    }
    if (!hf->contains("producer")) warn("hf_quant_config.json: no \"producer\"");
    const json& q = (*hf)["quantization"];
    if (!q.contains("quant_algo") || !q["quant_algo"].is_string()) {
        problem("hf_quant_config.json: quantization.quant_algo is missing or not a string");
        return;
    }
    r_.quant_algo = q["quant_algo"].get<std::string>();
    if (!kVllmQuantAlgos.count(r_.quant_algo))
        warn(fmt::format("quant_algo {} is not one vLLM's ModelOpt loader accepts", r_.quant_algo));

    // Keys vLLM requires by presence (values may be null), ecosystem §6.1; ModelOpt always writes
    // kv_cache_quant_algo and, for a single format, exclude_modules.
    const bool mixed = r_.quant_algo == "MIXED_PRECISION";
    std::vector<const char*> required = {"kv_cache_quant_algo"};
    if (!mixed) required.push_back("exclude_modules");
    const std::optional<Format> single = mixed ? std::nullopt : format_from_algo(r_.quant_algo);
    if (single && is_nvfp4(*single)) required.push_back("group_size");
    for (const char* key : required)
        if (!q.contains(key))
            problem(fmt::format("hf_quant_config.json: quantization.{} is missing ({} requires the key)", key,
                                r_.quant_algo));
    if (!mixed && !single) problem(fmt::format("hf_quant_config.json: unknown quant_algo {}", r_.quant_algo));

    const auto check_group_size = [&](const json& cfg, Format f, const std::string& where) {
        if (!cfg.contains("group_size") || cfg["group_size"].is_null()) return;
        const int want = format_info(f).block_elems;
        if (!cfg["group_size"].is_number_integer() || cfg["group_size"].get<int64_t>() != want)
            problem(fmt::format("{}: group_size {}, expected {} for {}", where, cfg["group_size"].dump(), want,
                                format_info(f).quant_algo));
    };
    if (single) check_group_size(q, *single, "hf_quant_config.json");

    if (q.contains("kv_cache_quant_algo")) {
        const json& kv = q["kv_cache_quant_algo"];
        if (kv.is_string()) {
            r_.kv_cache_quant_algo = kv.get<std::string>();
            if (!kVllmKvAlgos.count(r_.kv_cache_quant_algo))
                problem(fmt::format("hf_quant_config.json: kv_cache_quant_algo {} is not FP8 or NVFP4",
                                    r_.kv_cache_quant_algo));
        } else if (!kv.is_null()) {
            problem("hf_quant_config.json: kv_cache_quant_algo must be a string or null");
        }
    }
    if (q.contains("exclude_modules")) {
        const json& ex = q["exclude_modules"];
        if (!ex.is_array() && !ex.is_null()) problem("hf_quant_config.json: exclude_modules is not a list");
        if (ex.is_array())
            for (const json& e : ex) {
                if (e.is_string()) exclude_.push_back(e.get<std::string>());
                else problem("hf_quant_config.json: exclude_modules holds a non-string entry");
            }
    }
    if (mixed) {
        const auto ql = q.find("quantized_layers");
        if (ql == q.end() || !ql->is_object() || ql->empty()) {
            problem("hf_quant_config.json: MIXED_PRECISION needs a non-empty quantized_layers object");
        } else {
            std::set<std::string> unsupported;
            for (const auto& [name, cfg] : ql->items()) {
                if (!cfg.is_object() || !cfg.contains("quant_algo") || !cfg["quant_algo"].is_string()) {
                    problem(fmt::format("hf_quant_config.json: quantized_layers.{} has no quant_algo", name));
                    continue;
                }
                const auto f = format_from_algo(cfg["quant_algo"].get<std::string>());
                if (!f) {
                    problem(fmt::format("hf_quant_config.json: quantized_layers.{}: unknown quant_algo {}", name,
                                        cfg["quant_algo"].get<std::string>()));
                    continue;
                }
                check_group_size(cfg, *f, "hf_quant_config.json: quantized_layers." + name);
                listed_.emplace_back(name, *f);
                const std::string algo(format_info(*f).quant_algo);
                if (!kVllmQuantAlgos.count(algo) && unsupported.insert(algo).second)
                    warn(fmt::format("quantized_layers use quant_algo {}, which vLLM's ModelOpt loader does not accept",
                                     algo));
            }
        }
    } else if (single) {
        single_ = single;
    }

    // config.json["quantization_config"] must say the same thing (§4.3).
    if (!qc) return;
    if (!qc->contains("quant_algo") || (*qc)["quant_algo"] != q["quant_algo"])
        problem(fmt::format("config.json: quantization_config.quant_algo {} differs from hf_quant_config.json's {}",
                            qc->contains("quant_algo") ? (*qc)["quant_algo"].dump() : "(missing)", q["quant_algo"].dump()));
    if (mixed && q.contains("quantized_layers") &&
        (!qc->contains("quantized_layers") || (*qc)["quantized_layers"] != q["quantized_layers"]))
        problem("config.json: quantization_config.quantized_layers differs from hf_quant_config.json");
    if (!mixed && q.contains("exclude_modules") && q["exclude_modules"].is_array()) {
        std::set<std::string> a(exclude_.begin(), exclude_.end()), b;
        if (qc->contains("ignore") && (*qc)["ignore"].is_array())
            for (const json& e : (*qc)["ignore"])
                if (e.is_string()) b.insert(e.get<std::string>());
        if (a != b) problem("config.json: quantization_config.ignore differs from hf_quant_config.json exclude_modules");
    }
    const bool qc_kv = qc->contains("kv_cache_scheme") && !(*qc)["kv_cache_scheme"].is_null();
    if (!r_.kv_cache_quant_algo.empty() && !qc_kv)
        problem("config.json: kv_cache_quant_algo is set but quantization_config has no kv_cache_scheme");
    if (r_.kv_cache_quant_algo.empty() && qc_kv)
        problem("config.json: quantization_config.kv_cache_scheme is set but kv_cache_quant_algo is null");
}

void Verifier::check_modelopt_layers() {
    const auto excluded_by = [&](const std::string& module) -> const std::string* {
        for (const std::string& p : exclude_)
            if (recipe::glob_match(p, module)) return &p;
        return nullptr;
    };
    std::set<std::string> claimed;
    if (single_) {
        for (const Module& m : modules_) {
            if (m.quantized()) {
                if (const std::string* p = excluded_by(m.name))
                    problem(fmt::format("{}: quantized tensors, but exclude_modules pattern '{}' matches it", m.name, *p));
                check_layer(m, *single_, false);
                claimed.insert(m.name);
            } else if (m.unquantized_matrix() && !excluded_by(m.name)) {
                problem(fmt::format("{}: {} weight {} is neither quantized nor in exclude_modules; a loader "
                                    "expects {} tensors for it",
                                    m.weight()->info->name, dtype_name(m.weight()->info->dtype),
                                    shape_str(m.weight()->info->shape), format_info(*single_).quant_algo));
            }
        }
        if (claimed.empty())
            problem(fmt::format("quant_algo {} but no layer has quantized tensors", r_.quant_algo));
    } else {
        // Exact names first; a name that is no module is a container (fused experts, §4.2) whose
        // quantized descendants inherit its format, as vLLM's prefix lookup does.
        std::vector<std::pair<std::string, Format>> containers;
        for (const auto& [name, f] : listed_) {
            const auto it = index_.find(name);
            if (it != index_.end() && modules_[it->second].quantized()) {
                check_layer(modules_[it->second], f, false);
                claimed.insert(name);
            } else if (it != index_.end() && modules_[it->second].weight()) {
                const auto* w = modules_[it->second].weight()->info;
                problem(fmt::format("{}: listed in quantized_layers as {}, but {} is {} with no scale tensors", name,
                                    format_info(f).quant_algo, w->name, dtype_name(w->dtype)));
                claimed.insert(name);
            } else {
                containers.emplace_back(name, f);
            }
        }
        for (const auto& [name, f] : containers) {
            size_t n = 0;
            for (const Module& m : modules_)
                if (!claimed.count(m.name) && m.quantized() && m.name.starts_with(name + ".")) {
                    check_layer(m, f, false);
                    claimed.insert(m.name);
                    ++n;
                }
            if (!n)
                problem(fmt::format("{}: listed in quantized_layers as {} but has no tensors", name,
                                    format_info(f).quant_algo));
        }
        for (const Module& m : modules_) {
            if (!m.quantized()) continue;
            if (!claimed.count(m.name))
                problem(fmt::format("{}: has quantized tensors but is not in quantized_layers", m.name));
            else if (const std::string* p = excluded_by(m.name))
                problem(fmt::format("{}: quantized, but exclude_modules pattern '{}' matches it", m.name, *p));
        }
    }
}

void Verifier::check_ct_json(const json& qc) {
    if (!qc.contains("format") || !qc["format"].is_string()) problem("config.json: compressed-tensors quantization_config has no format");
    else r_.quant_algo = qc["format"].get<std::string>();
    if (!qc.contains("config_groups") || !qc["config_groups"].is_object() || qc["config_groups"].empty()) {
        problem("config.json: compressed-tensors quantization_config needs a non-empty config_groups");
    } else {
        for (const auto& [g, cfg] : qc["config_groups"].items()) {
            if (!cfg.is_object() || !cfg.contains("targets") || !cfg["targets"].is_array())
                problem(fmt::format("config.json: config_groups.{} has no targets list", g));
            if (!cfg.is_object() || !cfg.contains("weights") || !cfg["weights"].is_object())
                problem(fmt::format("config.json: config_groups.{} has no weights args", g));
            if (!cfg.is_object()) continue;
            CtGroup group{g, {}, cfg.value("weights", json()), cfg.value("input_activations", json())};
            if (cfg.contains("targets") && cfg["targets"].is_array())
                for (const json& t : cfg["targets"])
                    if (t.is_string()) group.targets.push_back(t.get<std::string>());
            ct_groups_.push_back(std::move(group));
        }
    }
    if (qc.value("quantization_status", std::string()) != "compressed")
        warn("config.json: quantization_status is not \"compressed\"");
    if (qc.contains("ignore") && qc["ignore"].is_array())
        for (const json& e : qc["ignore"])
            if (e.is_string()) exclude_.push_back(e.get<std::string>());
    if (qc.contains("kv_cache_scheme") && qc["kv_cache_scheme"].is_object()) {
        const json& kv = qc["kv_cache_scheme"];
        r_.kv_cache_quant_algo = kv.value("type", std::string("?")) + std::to_string(kv.value("num_bits", 0));
    }
}

// Structural: each quantized layer's format comes from its tensors; the ignore list (names or
// "re:" regexes, matched from the start as compressed-tensors does) must not name it.
void Verifier::check_ct_layers() {
    const auto ignored = [&](const std::string& module) -> const std::string* {
        for (const std::string& p : exclude_) {
            if (p.starts_with("re:")) {
                try {
                    if (std::regex_search(module, std::regex(p.substr(3)), std::regex_constants::match_continuous))
                        return &p;
                } catch (const std::regex_error&) {
                    problem(fmt::format("config.json: ignore entry '{}' is not a valid regex", p));
                }
            } else if (p == module) {
                return &p;
            }
        }
        return nullptr;
    };
    size_t n = 0;
    for (const Module& m : modules_) {
        if (!m.quantized()) continue;
        ++n;
        if (const std::string* p = ignored(m.name))
            problem(fmt::format("{}: quantized tensors, but the ignore entry '{}' matches it", m.name, *p));
        const io::TensorRef* ws = m.get(TensorRole::WEIGHT_SCALE);
        Format f;
        if (m.get(TensorRole::WEIGHT_PACKED) || m.get(TensorRole::WEIGHT_GLOBAL_SCALE)) {
            f = ws && (ws->info->dtype == DType::U8 || ws->info->dtype == DType::F8_E8M0) ? Format::MXFP4
                : m.get(TensorRole::INPUT_GLOBAL_SCALE)                                 ? Format::NVFP4
                                                                                        : Format::W4A16_NVFP4;
        } else {
            f = ws && (ws->info->dtype == DType::U8 || ws->info->dtype == DType::F8_E8M0) ? Format::MXFP8 : Format::FP8;
        }
        check_layer(m, f, true);
        check_ct_group(m, f);
    }
    if (!n) problem("compressed-tensors config but no layer has quantized tensors");
    // Exact-name targets must name quantized modules (vLLM would load them as unquantized).
    for (const CtGroup& g : ct_groups_)
        for (const std::string& t : g.targets) {
            if (t.starts_with("re:") || t == "Linear" || t.find('.') == std::string::npos) continue;
            const auto it = index_.find(t);
            if (it == index_.end() || !modules_[it->second].quantized())
                problem(fmt::format("config.json: config_groups.{} targets {}, which has no quantized tensors", g.name, t));
        }
}

// JSON <-> tensors for one quantized module: the config group vLLM will pick for it (first
// matching target: exact name, "re:" regex from the start, or a class name contained in
// "Linear"), its weight args against the stored format, its activation args against the
// stored input scale, and the NVFP4 global scale's convention (compressed-tensors divides).
void Verifier::check_ct_group(const Module& m, Format f) {
    const CtGroup* group = nullptr;
    for (const CtGroup& g : ct_groups_) {
        for (const std::string& t : g.targets) {
            bool hit = t == m.name;
            if (!hit && t.starts_with("re:")) {
                try {
                    hit = std::regex_search(m.name, std::regex(t.substr(3)), std::regex_constants::match_continuous);
                } catch (const std::regex_error&) {
                }
            }
            if (!hit && t.find('.') == std::string::npos && !t.starts_with("re:")) hit = std::string("Linear").find(t) != std::string::npos;
            if (hit) {
                group = &g;
                break;
            }
        }
        if (group) break;
    }
    if (!group) {
        problem(fmt::format("{}: quantized tensors, but no compressed-tensors config group targets it", m.name));
        return;
    }
    const FormatInfo& info = format_info(f);
    const json& w = group->weights;
    if (w.is_object()) {
        const int bits = w.value("num_bits", 0);
        const std::string strategy = w.value("strategy", std::string());
        const std::string want_strategy = is_nvfp4(f) ? "tensor_group" : "tensor";
        if (bits != info.elem_bits || w.value("type", std::string()) != "float" ||
            (f != Format::MXFP4 && f != Format::MXFP8 && strategy != want_strategy && !(f == Format::FP8 && strategy == "channel")))
            problem(fmt::format("{}: stored as {}, but config_groups.{} weights say num_bits {} type {} strategy {}",
                                m.name, info.name, group->name, w.value("num_bits", 0),
                                w.value("type", std::string("?")), strategy.empty() ? "?" : strategy));
        if (is_nvfp4(f) && w.value("group_size", 0) != info.block_elems)
            problem(fmt::format("{}: config_groups.{} weights group_size {}, NVFP4 needs {}", m.name, group->name,
                                w.contains("group_size") ? w["group_size"].dump() : "(missing)", info.block_elems));
    }
    // vLLM's W4A4 and static W8A8 schemes register the input scale and read it on load.
    const json& in = group->inputs;
    const bool static_global = in.is_object() && (in.value("dynamic", json(false)) == json(false) ||
                                                  in.value("dynamic", json(false)) == json("local"));
    const TensorRole in_role = is_nvfp4(f) ? TensorRole::INPUT_GLOBAL_SCALE : TensorRole::INPUT_SCALE;
    const char* in_leaf = is_nvfp4(f) ? "input_global_scale" : "input_scale";
    if (static_global && !m.get(in_role))
        problem(fmt::format("{}: config_groups.{} quantizes input activations with a static scale, but {}.{} is "
                            "missing",
                            m.name, group->name, m.name, in_leaf));
    if (!in.is_object() && m.get(in_role))
        warn(fmt::format("{}.{}: present, but config_groups.{} has no input_activations (ignored by loaders)", m.name,
                         in_leaf, group->name));
    if (const io::TensorRef* t = m.get(in_role)) positive_scalar(*t, true);
    // A ModelOpt weight_scale_2 copied without inverting is amax/2688, almost always < 1; the
    // compressed-tensors value 2688/amax is < 1 only for |W| > 2688.
    if (is_nvfp4(f))
        if (const io::TensorRef* g = m.get(TensorRole::WEIGHT_GLOBAL_SCALE); g && g->info->nbytes() == 4) {
            float v;
            std::memcpy(&v, ck_.bytes(*g).data(), 4);
            if (std::isfinite(v) && v > 0.0f && v < 1.0f)
                warn(fmt::format("{}: weight_global_scale {:g} < 1 implies max |W| > 2688; compressed-tensors divides by "
                                 "it (= 1/weight_scale_2), was a ModelOpt scale copied without inverting?",
                                 g->info->name, v));
        }
}

// q/k/v, gate/up, w1/w3 of one parent: one format, and for NVFP4 bit-identical global (and
// input) scales, since the fused runtime kernel uses one value for all shards (ecosystem §6.2).
void Verifier::check_fused_groups(bool ct) {
    std::map<std::string, std::vector<const Module*>> groups;
    for (const Module& m : modules_)
        if (m.weight() && (m.quantized() || m.unquantized_matrix()))
            if (auto key = fused_group_key(m.name)) groups[*key].push_back(&m);
    const auto scalar_bits = [&](const io::TensorRef* t) -> std::optional<uint32_t> {
        if (!t || t->info->dtype != DType::F32 || t->info->nbytes() != 4) return std::nullopt;
        uint32_t b;
        std::memcpy(&b, ck_.bytes(*t).data(), 4);
        return b;
    };
    for (const auto& [key, members] : groups) {
        if (members.size() < 2) continue;
        std::string formats;
        bool differ = false, any_quant = false;
        int first = -1;  // Format as int, -1 = unquantized
        for (size_t i = 0; i < members.size(); ++i) {
            const auto it = layer_format_.find(members[i]->name);
            const int f = it == layer_format_.end() ? -1 : static_cast<int>(it->second);
            any_quant |= f >= 0;
            if (i == 0) first = f;
            else differ |= f != first;
            formats += fmt::format("{}{} {}", i ? ", " : "", members[i]->name,
                                   f >= 0 ? format_info(static_cast<Format>(f)).name : std::string_view("unquantized"));
        }
        if (!any_quant) continue;
        if (differ) {
            problem(fmt::format("fused group ({}): members differ in format, which a fused loader rejects", formats));
            continue;
        }
        if (first < 0 || !is_nvfp4(static_cast<Format>(first))) continue;  // FP8 keeps per-shard scales (§3.1)
        ++r_.fused_groups_checked;
        for (const auto& [role, label] : {std::pair{ct ? TensorRole::WEIGHT_GLOBAL_SCALE : TensorRole::WEIGHT_SCALE_2,
                                                   ct ? "weight_global_scale" : "weight_scale_2"},
                                         std::pair{ct ? TensorRole::INPUT_GLOBAL_SCALE : TensorRole::INPUT_SCALE,
                                                   ct ? "input_global_scale" : "input_scale"}}) {
            std::string values;
            std::set<std::optional<uint32_t>> seen;
            bool any = false;
            for (const Module* m : members) {
                const auto bits = scalar_bits(m->get(role));
                any |= bits.has_value();
                seen.insert(bits);
                values += fmt::format("{}{}={}", values.empty() ? "" : ", ", m->name,
                                      bits ? fmt::format("{:g}", std::bit_cast<float>(*bits)) : std::string("absent"));
            }
            if (any && seen.size() > 1)
                problem(fmt::format("fused group {} of '{}': {} must be bit-identical across members ({})",
                                    key.substr(key.find('|') + 1), key.substr(0, key.find('|')), label, values));
        }
    }
}

void Verifier::check_kv_scales() {
    for (const Module& m : modules_) {
        for (const auto& [role, leaf] : {std::pair{TensorRole::K_SCALE, "k_proj"}, std::pair{TensorRole::V_SCALE, "v_proj"}}) {
            const io::TensorRef* t = m.get(role);
            if (!t) continue;
            ++r_.kv_scales;
            positive_scalar(*t, true);
            if (r_.kv_cache_quant_algo.empty())
                problem(fmt::format("{}: a KV cache scale, but the config sets no KV cache quantization", t->info->name));
            if (!m.name.ends_with(leaf))
                warn(fmt::format("{}: KV scale on a module not named {}", t->info->name, leaf));
        }
    }
}

void Verifier::run() {
    scan_modules();
    const auto config = read_json_file(dir_ / "config.json");
    const json* qc = nullptr;
    if (!config || !config->is_object()) {
        problem("config.json is missing or not an object");
    } else if (!config->contains("quantization_config") || !(*config)["quantization_config"].is_object()) {
        problem("config.json has no quantization_config");
    } else {
        qc = &(*config)["quantization_config"];
    }
    std::string method = qc && qc->contains("quant_method") && (*qc)["quant_method"].is_string()
                             ? (*qc)["quant_method"].get<std::string>()
                             : "";
    if (qc && method != "modelopt" && method != "compressed-tensors")
        problem(fmt::format("config.json: quantization_config.quant_method is {}, expected \"modelopt\"",
                            method.empty() ? "missing" : "\"" + method + "\""));
    const bool ct = method == "compressed-tensors";
    r_.dialect = ct ? "compressed-tensors" : "modelopt";
    if (ct) {
        check_ct_json(*qc);
        check_ct_layers();
    } else {
        check_modelopt_json(qc);
        if (single_ || !listed_.empty()) check_modelopt_layers();
    }
    r_.quantized_layers = layer_format_.size();
    check_fused_groups(ct);
    check_kv_scales();
    run_scans();
}

}  // namespace

VerifyReport check_export(const std::filesystem::path& dir, core::ThreadPool* pool) {
    VerifyReport r;
    r.dir = dir;
    Verifier(dir, r, pool).run();
    return r;
}

VerifyReport verify_export(const std::filesystem::path& dir, core::ThreadPool* pool) {
    VerifyReport r = check_export(dir, pool);
    if (r.problems.empty()) return r;
    std::string msg = fmt::format("verify {}: {} problem(s)", dir.string(), r.problems.size());
    for (size_t i = 0; i < r.problems.size() && i < kMaxListedProblems; ++i) msg += "\n  - " + r.problems[i];
    if (r.problems.size() > kMaxListedProblems)
        msg += fmt::format("\n  ... and {} more", r.problems.size() - kMaxListedProblems);
    throw Error(msg);
}

std::string verify_summary(const VerifyReport& r) {
    std::string formats;
    for (const auto& [name, n] : r.format_counts) formats += fmt::format("{}{} {}", formats.empty() ? "" : ", ", name, n);
    return fmt::format("verified {}: {} {}, {} tensors, {} quantized layers ({}), {} fused groups share scales, "
                       "{} KV scales (kv {}), {:.2f} MiB{}",
                       r.dir.string(), r.dialect, r.quant_algo, r.tensor_count, r.quantized_layers, formats,
                       r.fused_groups_checked, r.kv_scales, r.kv_cache_quant_algo.empty() ? "none" : r.kv_cache_quant_algo,
                       double(r.total_bytes) / (1024.0 * 1024.0),
                       r.warnings.empty() ? "" : fmt::format(", {} warning(s)", r.warnings.size()));
}

}  // namespace microscale::exporter
